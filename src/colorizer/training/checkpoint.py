"""Resume state of `train`, so a killed or stopped run continues where it stopped.

After every epoch, and when a signal stops training mid-epoch (`stopping.py`: then
with the steps done and their metric sums), the model's weights, the optimizer's
state, the epoch count, the history so far and the MLflow run id are written to
`paths.checkpoints`, atomically. A re-run with the same params, shards and
training code resumes from the last completed epoch; anything else, or
`train.resume: false`, starts fresh. The state is removed once training ends.
It is not a DVC output: DVC deletes a stage's outputs before running it, which
would defeat the purpose.

The folder may be shared storage (docs/scaling.md), so train deletes only
what it wrote and can recognise: a folder it uses holds a marker file, and
only the names below are ever removed. A folder that exists, is not empty and
has no marker is refused before any training. Layout:

    <paths.checkpoints>/
        .colorizer-checkpoints   marker: this folder is train's
        attempt.json             the MLflow run of the attempt using the folder
        last_epoch/              state.json, weights, optimizer (swapped in whole)
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

from colorizer.core import atomic
from colorizer.core.errors import UserError, damaged_file

MARKER = ".colorizer-checkpoints"
ATTEMPT = "attempt.json"
LAST_EPOCH = "last_epoch"
STATE = "state.json"
WEIGHTS = "weights.weights.h5"
OPTIMIZER = "optimizer.npz"
_SWAP_TEMPORARIES = (f".partial.{LAST_EPOCH}", f".old.{LAST_EPOCH}")  # atomic.output_dir's siblings
# Everything train may delete in a folder holding its marker: its own names and the atomic swap's temporaries.
OWN_NAMES = frozenset({MARKER, ATTEMPT, LAST_EPOCH, *_SWAP_TEMPORARIES})
_MARKER_TEXT = "Resume state of the colorizer's `train` stage; train deletes this folder when training ends.\n"

# The layers whose code decides the trained weights (not tracking: it only logs, nor app/prepare).
PACKAGE = Path(__file__).resolve().parents[1]
TRAINING_CODE = ("__init__.py", "core", "data", "model", "evaluation", "training")


class CheckpointFolderError(UserError, RuntimeError):
    """`paths.checkpoints` names a folder train did not create."""


@dataclass
class EpochProgress:
    """How far into an epoch a stopped run got: steps trained, their metric sums, seconds spent."""

    steps: int = 0
    totals: list = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])
    seconds: float = 0.0


@dataclass
class Resumable:
    epoch: int  # epochs completed
    run_id: str
    history: list[dict]
    progress: EpochProgress  # into the next epoch (no steps: resume at its start)


def claim(folder: Path) -> None:
    """Make `folder` train's (create it with its marker) or refuse it if it holds anything else."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointFolderError(f"paths.checkpoints: {folder} is a file, not a folder")
    if folder.is_dir() and not (folder / MARKER).exists():
        # Without the marker nothing in it is train's, whatever its name: files named like train's
        # own (a user's state.json) are someone else's too.
        foreign = sorted(p.name for p in folder.iterdir())
        if foreign:
            shown = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else "")
            raise CheckpointFolderError(
                f"paths.checkpoints: {folder} already exists and holds files train did not write ({shown}). "
                "train deletes its checkpoint folder when training ends, so it only uses a new or empty one "
                f"(or one holding its marker {MARKER}). Point paths.checkpoints at a subfolder, "
                "e.g. <shared storage>/colorizer-checkpoints; if these are train's own files and only the "
                f"marker was deleted, delete {folder} to train afresh."
            )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text(_MARKER_TEXT)


def clear(folder: Path) -> None:
    """Remove train's own files from `folder`, and the folder once nothing else is left in it."""
    folder = Path(folder)
    if not (folder / MARKER).exists():
        return  # not train's (or already gone): never delete what it cannot recognise as its own
    discard_state(folder)
    (folder / ATTEMPT).unlink(missing_ok=True)
    (folder / MARKER).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass  # someone put files in it meanwhile: theirs stay, and so does the folder


def discard_state(folder: Path) -> None:
    """Drop the resume state (a stale one, before a fresh start), keeping the marker."""
    folder = Path(folder)
    for name in (LAST_EPOCH, *_SWAP_TEMPORARIES):
        shutil.rmtree(folder / name, ignore_errors=True)


def record_attempt(folder: Path, run_id: str) -> None:
    """Name the MLflow run this attempt logs into: a later attempt that finds it
    knows that run was left open by a process that never finished (see `previous_attempt`)."""
    atomic.write_json(Path(folder) / ATTEMPT, {"run_id": run_id})


def previous_attempt(folder: Path) -> str | None:
    """The MLflow run of the last attempt that used `folder` and did not finish.

    The folder's files are removed when training ends, so a run named here was
    left by a killed process. Only one training may use a checkpoint folder at a
    time (two would overwrite each other's state), so no live process owns it."""
    path = Path(folder) / ATTEMPT
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())["run_id"]
    except (ValueError, KeyError):
        print(f"train: ignoring {path}: not a run id file")
        return None


def code_version(package: Path = PACKAGE) -> str:
    """A hash of the source of the layers that decide the trained weights, and of Keras and TensorFlow."""
    import tensorflow as tf

    digest = hashlib.sha256(f"keras {keras.__version__} tensorflow {tf.__version__}\n".encode())
    for name in TRAINING_CODE:
        files = [package / name] if name.endswith(".py") else sorted((package / name).rglob("*.py"))
        for file in files:
            digest.update(file.relative_to(package).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def fingerprint(params_flat: dict, shards_meta: dict, code: str | None = None) -> str:
    """What a checkpoint must match to be resumed: every result-changing param, the data and the code."""
    relevant = {k: v for k, v in params_flat.items() if k != "train.resume" and not k.startswith("mlflow.")}
    blob = json.dumps({"params": relevant, "shards": shards_meta, "code": code or code_version()},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def load(folder: Path, expected: str, model: keras.Model, optimizer) -> Resumable | None:
    """Restore weights and the (built) optimizer's state if a matching checkpoint exists."""
    state_dir = Path(folder) / LAST_EPOCH
    if not (state_dir / STATE).exists():
        return None
    with _damaged(state_dir / STATE):
        state = json.loads((state_dir / STATE).read_text())
        _check_state(state)
    if state.get("fingerprint") != expected:
        print(f"train: not resuming from the checkpoint in {folder}: params, data or training code "
              "changed since it was written; starting afresh", flush=True)
        return None
    with _damaged(state_dir / WEIGHTS):
        model.load_weights(state_dir / WEIGHTS)
    with _damaged(state_dir / OPTIMIZER), np.load(state_dir / OPTIMIZER) as saved:
        optimizer.load_own_variables({key: saved[key] for key in saved.files})
    progress = EpochProgress(**state.get("progress", {}))
    where = f"at epoch {state['epoch'] + 1}, step {progress.steps + 1}" if progress.steps else f"after epoch {state['epoch']}"
    print(f"train: resuming {where} from {folder}", flush=True)
    return Resumable(state["epoch"], state["run_id"], state["history"], progress)


def _check_state(state) -> None:
    """Every value of state.json that resuming uses, of the type it needs (else ValueError)."""
    if not isinstance(state, dict) or not {"epoch", "run_id", "history"} <= state.keys():
        raise ValueError("keys missing")
    progress = state.get("progress", {})
    fine = (_is_whole(state["epoch"]) and isinstance(state["run_id"], str)
            and isinstance(state["history"], list) and all(isinstance(row, dict) for row in state["history"])
            and isinstance(progress, dict) and set(progress) <= {"steps", "totals", "seconds"}
            and _is_whole(progress.get("steps", 0)) and isinstance(progress.get("totals", []), list)
            and all(isinstance(v, (int, float)) for v in [*progress.get("totals", []), progress.get("seconds", 0)]))
    if not fine:
        raise ValueError("a value of the wrong type")


def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _damaged(path: Path):
    """A checkpoint file that cannot be read: the weights may be half loaded by then, so train
    stops rather than start afresh from them."""
    return damaged_file(path, f"delete {path.parent} to start afresh, or set train.resume: false "
                              "(`dvc exp run -S train.resume=false`)", also=(zipfile.BadZipFile,))


def _check_room(folder: Path, variables) -> None:
    """Refuse a checkpoint the disk cannot hold before writing it: h5py, out of space under
    `save_weights`, crashes the whole process (SIGSEGV) instead of raising."""
    needed = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)
    if shutil.disk_usage(folder).free < needed:
        raise OSError(errno.ENOSPC, f"No space left on device: a checkpoint needs about {needed} bytes", str(folder))


class Checkpointer:
    """Writes the resume state after every epoch (or part of one), atomically (a folder swapped into place)."""

    def __init__(self, folder: Path, fingerprint_: str, run_id: str):
        self.folder, self.fingerprint, self.run_id = Path(folder), fingerprint_, run_id

    def save(self, epochs_done: int, model: keras.Model, optimizer, history: list[dict],
             progress: EpochProgress | None = None) -> None:
        """After `epochs_done` epochs, and `progress` into the next one (a run stopped mid-epoch)."""
        with atomic.output_dir(self.folder / LAST_EPOCH) as staging:
            _check_room(staging, [*model.weights, *optimizer.variables])
            model.save_weights(staging / WEIGHTS)
            store: dict = {}
            optimizer.save_own_variables(store)
            np.savez(staging / OPTIMIZER, **store)
            state = {"fingerprint": self.fingerprint, "epoch": epochs_done, "run_id": self.run_id, "history": history,
                     "progress": asdict(progress or EpochProgress())}
            (staging / STATE).write_text(json.dumps(state, indent=2))
