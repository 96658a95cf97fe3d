"""Per-epoch resume state of `train`, so a killed run continues where it stopped.

After every epoch the model's weights, the optimizer's state, the epoch
count, the history so far and the MLflow run id are written to
`paths.checkpoints`, atomically. A re-run with the same params and shards
resumes from the last completed epoch into the same MLflow run; different
params or shards, or `train.resume: false`, start fresh. The state is removed
once training ends. It is not a DVC output: DVC deletes a stage's outputs
before running it, which would defeat the purpose.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from colorizer.core import atomic

STATE = "state.json"
WEIGHTS = "weights.weights.h5"
OPTIMIZER = "optimizer.npz"


@dataclass
class Resumable:
    epoch: int  # epochs completed
    run_id: str
    history: list[dict]


def fingerprint(params_flat: dict, shards_meta: dict) -> str:
    """What a checkpoint must match to be resumed: every result-changing param and the data."""
    relevant = {k: v for k, v in params_flat.items() if k != "train.resume" and not k.startswith("mlflow.")}
    blob = json.dumps({"params": relevant, "shards": shards_meta}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def load(folder: Path, expected: str, model: keras.Model, optimizer) -> Resumable | None:
    """Restore weights and the (built) optimizer's state if a matching checkpoint
    exists; otherwise remove any stale one and return None."""
    state_path = Path(folder) / STATE
    if not state_path.exists():
        return None
    state = json.loads(state_path.read_text())
    if state.get("fingerprint") != expected:
        print(f"train: ignoring the checkpoint in {folder}: params or data changed since it was written")
        clear(folder)
        return None
    model.load_weights(Path(folder) / WEIGHTS)
    with np.load(Path(folder) / OPTIMIZER) as saved:
        optimizer.load_own_variables({key: saved[key] for key in saved.files})
    print(f"train: resuming after epoch {state['epoch']} from {folder}", flush=True)
    return Resumable(state["epoch"], state["run_id"], state["history"])


def clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


class Checkpointer:
    """Writes the resume state after every epoch, atomically (a folder swapped into place)."""

    def __init__(self, folder: Path, fingerprint_: str, run_id: str):
        self.folder, self.fingerprint, self.run_id = Path(folder), fingerprint_, run_id

    def save(self, epochs_done: int, model: keras.Model, optimizer, history: list[dict]) -> None:
        with atomic.output_dir(self.folder) as staging:
            model.save_weights(staging / WEIGHTS)
            store: dict = {}
            optimizer.save_own_variables(store)
            np.savez(staging / OPTIMIZER, **store)
            state = {"fingerprint": self.fingerprint, "epoch": epochs_done, "run_id": self.run_id, "history": history}
            (staging / STATE).write_text(json.dumps(state, indent=2))
