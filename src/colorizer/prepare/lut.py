"""The shard stage's LAB conversion as one table lookup per pixel.

The resized images are 8-bit RGB, so there are only 2^24 possible input colours.
Their quantised LAB bytes (`tfrecords.quantise(lab.rgb_to_lab(rgb))`) are
computed once, packed into one uint32 per colour (64 MiB), cached on disk, and
every image after that is converted by a gather: about 9x faster than computing
the cube roots per pixel, and bit-identical to doing so (the table *is* that
computation). The cache file's name carries a hash of the conversion's source
code and of NumPy's version, so any change to either rebuilds it.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from pathlib import Path

import numpy as np

from colorizer.core import atomic
from colorizer.data import lab, tfrecords

_CHUNK = 1 << 20


def cache_dir() -> Path:
    base = os.environ.get("COLORIZER_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(base) / "landscape-colorizer"


def table_path() -> Path:
    """The cached table, built on first use (a few seconds, once per machine)."""
    source = inspect.getsource(lab) + inspect.getsource(tfrecords.quantise) + np.__version__
    path = cache_dir() / f"srgb-lab-u8-{hashlib.sha256(source.encode()).hexdigest()[:16]}.npy"
    if not path.exists():
        _build(path)
    return path


def load_table() -> np.ndarray:
    return np.load(table_path(), mmap_mode="r")  # shared by all workers through the page cache


def quantised_lab(pixels: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 RGB (..., 3) -> (L bytes (...), ab bytes (..., 2)), as `tfrecords.quantise(rgb_to_lab(...))`.

    Both contiguous, ready to serialise. In-place shifts (half the time of building the
    index from three temporaries) and unpacking by value, not by a strided byte view
    (a further 0.1 ms per 224 px image: measured in bench/README.md)."""
    index = pixels[..., 0].astype(np.uint32)
    index <<= 8
    index |= pixels[..., 1]
    index <<= 8
    index |= pixels[..., 2]
    packed = np.take(table, index)
    lightness = packed.astype(np.uint8)  # the low byte
    ab = (packed >> 8).astype("<u2")  # a | b << 8, stored little-endian: the bytes a, b
    return lightness, ab.view(np.uint8).reshape(*index.shape, 2)


def ab_histogram(ab: np.ndarray) -> np.ndarray:
    """Counts (256, 256) of the ab bytes (..., 2) of `quantised_lab`, indexed [a byte, b byte]."""
    pairs = np.ascontiguousarray(ab).view("<u2")  # b byte * 256 + a byte
    return np.bincount(pairs.ravel(), minlength=256 * 256).reshape(256, 256).T


def _build(path: Path) -> None:
    table = np.empty(1 << 24, "<u4")  # little-endian: bytes L, a, b, 0 whatever the machine
    for start in range(0, 1 << 24, _CHUNK):
        index = np.arange(start, start + _CHUNK, dtype=np.uint32)
        rgb = np.stack([(index >> 16) & 255, (index >> 8) & 255, index & 255], axis=-1).astype(np.uint8)
        lightness, ab = tfrecords.quantise(lab.rgb_to_lab(rgb))
        table[start : start + _CHUNK] = (
            lightness.astype(np.uint32) | ab[:, 0].astype(np.uint32) << 8 | ab[:, 1].astype(np.uint32) << 16
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".partial-{os.getpid()}.{path.name}")  # concurrent builders never collide
    try:
        with atomic.writing(path, partial):
            np.save(partial, table)
    except BaseException:
        partial.unlink(missing_ok=True)  # a full disk or a kill leaves no 64 MiB fragment behind
        raise
    os.replace(partial, path)
