"""A PyTorch state dict (legacy `.pth`) read into NumPy arrays, without PyTorch and without running it.

A `.pth` file is a pickle, and unpickling may call any importable function (`os.system`
included). This reader resolves only the handful of globals that a state dict of
tensors needs, each to a harmless stand-in of ours: `collections.OrderedDict`,
`torch._utils._rebuild_tensor_v2` and the typed storages (`torch.FloatStorage`, ...).
Any other global is refused, naming it, before it could be called. No torch code
runs: the stand-ins record what a tensor is (storage, offset, shape, strides) and
the raw storage bytes are read after the pickle.

The legacy format (torch.save with `_use_new_zipfile_serialization=False`), in order:
a pickled magic number, a protocol version, a dict of system info, the pickled
object (storages as persistent ids), a pickled list of storage keys, then for each
key its element count (int64, little-endian) and its bytes.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from pathlib import Path

import numpy as np

from colorizer.core.errors import UserError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class UnsafePickle(UserError, ValueError):
    """The file asks for a global that a state dict of tensors does not need."""


class BadStateDict(UserError, ValueError):
    """Not a legacy PyTorch state dict of tensors (truncated, another format, other contents)."""


class _Storage:
    """A typed storage class named by the pickle (`torch.FloatStorage`), as a dtype."""

    def __init__(self, name: str):
        self.name, self.dtype = name, np.dtype(STORAGE_DTYPES[name])


class _TensorRef:
    """What `_rebuild_tensor_v2(storage, offset, size, stride, ...)` would build, not yet read."""

    def __init__(self, storage, offset, size, stride, *_ignored):
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)


class _StorageRef:
    def __init__(self, key: str, dtype: np.dtype, count: int):
        self.key, self.dtype, self.count = key, dtype, count


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, path: Path, allow_tensors: bool):
        super().__init__(file)
        self.path, self.allow_tensors, self.storages = path, allow_tensors, {}

    def find_class(self, module: str, name: str):
        if self.allow_tensors:
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return _TensorRef
            if module == "torch" and name in STORAGE_DTYPES:
                return _Storage(name)
        raise UnsafePickle(f"{self.path}: refused to load, the pickle asks for {module}.{name}, which a "
                           "state dict of tensors does not need (nothing in it was run)")

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and len(saved_id) == 6 and saved_id[0] == "storage"
                and isinstance(saved_id[1], _Storage)):
            raise BadStateDict(f"{self.path}: an unexpected persistent id {str(saved_id)[:80]} (not a tensor storage)")
        _, storage, key, _location, count, view = saved_id
        if view is not None:
            raise BadStateDict(f"{self.path}: storage views are not supported")
        ref = self.storages.setdefault(str(key), _StorageRef(str(key), storage.dtype, int(count)))
        return ref


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """{name: array} of a legacy PyTorch state dict, each array in the tensor's own shape (a copy,
    contiguous). Refuses any global beyond a state dict's (UnsafePickle) and anything malformed
    (BadStateDict), naming the file."""
    path = Path(path)
    data = path.read_bytes()
    stream = io.BytesIO(data)
    try:
        header = [_Unpickler(stream, path, allow_tensors=False).load() for _ in range(3)]
        if header[0] != MAGIC_NUMBER or header[1] != PROTOCOL_VERSION:
            raise BadStateDict(f"{path}: not a legacy PyTorch file (zip-format .pth files are not read)")
        unpickler = _Unpickler(stream, path, allow_tensors=True)
        tree = unpickler.load()
        keys = _Unpickler(stream, path, allow_tensors=False).load()
    except (UnsafePickle, BadStateDict):
        raise
    except Exception as err:  # noqa: BLE001  truncated or foreign bytes: pickle raises many kinds
        raise BadStateDict(f"{path}: not a readable PyTorch state dict ({type(err).__name__}: {err})") from None
    if not isinstance(tree, dict) or not all(isinstance(v, _TensorRef) for v in tree.values()):
        raise BadStateDict(f"{path}: holds {type(tree).__name__}, not a dict of tensors")
    buffers = _read_storages(data, stream.tell(), keys, unpickler.storages, path)
    return {str(name): _materialise(ref, buffers, path, str(name)) for name, ref in tree.items()}


def _read_storages(data: bytes, offset: int, keys, storages: dict, path: Path) -> dict[str, np.ndarray]:
    if not isinstance(keys, list) or set(map(str, keys)) != set(storages):
        raise BadStateDict(f"{path}: the storage list does not match the tensors")
    buffers = {}
    for key in map(str, keys):
        ref = storages[key]
        if offset + 8 > len(data):
            raise BadStateDict(f"{path}: truncated (storage {key} missing)")
        (count,) = struct.unpack_from("<q", data, offset)
        size = count * ref.dtype.itemsize
        if count != ref.count or offset + 8 + size > len(data):
            raise BadStateDict(f"{path}: truncated or inconsistent storage {key}")
        buffers[key] = np.frombuffer(data, ref.dtype, count, offset + 8)
        offset += 8 + size
    return buffers


def _materialise(ref: _TensorRef, buffers: dict, path: Path, name: str) -> np.ndarray:
    """The tensor's elements as PyTorch indexes them: storage[offset + sum(index * stride)]."""
    flat = buffers[ref.storage.key]
    if len(ref.size) != len(ref.stride) or any(s < 0 for s in ref.stride):
        raise BadStateDict(f"{path}: tensor {name} has an invalid shape or strides")
    reach = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride) if n > 0)
    if any(n == 0 for n in ref.size):
        return np.zeros(ref.size, flat.dtype)
    if ref.offset < 0 or reach >= len(flat):
        raise BadStateDict(f"{path}: tensor {name} reaches outside its storage")
    item = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(flat[ref.offset:], ref.size, tuple(s * item for s in ref.stride),
                                           writeable=False)
    return np.array(view, order="C")  # a copy (ascontiguousarray would make a scalar 1-d)
