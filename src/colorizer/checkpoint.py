"""Per-epoch resume state of `train`, so a killed run continues where it stopped.

After every epoch the model's weights (with the optimizer's state), the epoch
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

from colorizer import atomic

STATE = "state.json"
WEIGHTS = "weights.weights.h5"


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


def load(folder: Path, expected: str, model: keras.Model) -> Resumable | None:
    """Restore weights and optimizer state into the compiled `model` if a matching
    checkpoint exists; otherwise remove any stale one and return None."""
    state_path = Path(folder) / STATE
    if not state_path.exists():
        return None
    state = json.loads(state_path.read_text())
    if state.get("fingerprint") != expected:
        print(f"train: ignoring the checkpoint in {folder}: params or data changed since it was written")
        clear(folder)
        return None
    model.optimizer.build(model.trainable_variables)
    model.load_weights(Path(folder) / WEIGHTS)
    print(f"train: resuming after epoch {state['epoch']} from {folder}", flush=True)
    return Resumable(state["epoch"], state["run_id"], state["history"])


def clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


class Checkpointer(keras.callbacks.Callback):
    """Writes the resume state at the end of every epoch (after the history logger)."""

    def __init__(self, folder: Path, fingerprint_: str, run_id: str, history_rows: list[dict]):
        super().__init__()
        self.folder, self.fingerprint, self.run_id = Path(folder), fingerprint_, run_id
        self.history_rows = history_rows  # shared with the logger, which appends to it

    def on_epoch_end(self, epoch, logs=None):
        with atomic.output_dir(self.folder) as staging:
            self.model.save_weights(staging / WEIGHTS)
            state = {"fingerprint": self.fingerprint, "epoch": epoch + 1, "run_id": self.run_id,
                     "history": self.history_rows}
            (staging / STATE).write_text(json.dumps(state, indent=2))
