"""Same data and params -> byte-identical manifest and shards; seeded training -> the same metrics."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import prepare

# Float reductions on CPU may be ordered differently by oneDNN threads run to run.
TRAINING_TOLERANCE = 1e-4


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_raw_manifest_and_shards_are_byte_identical_across_runs(tmp_path):
    first, second = prepare(tmp_path / "a"), prepare(tmp_path / "b")
    assert digests(Path(first.paths.raw)) == digests(Path(second.paths.raw))
    shards_a, shards_b = digests(Path(first.paths.shards)), digests(Path(second.paths.shards))
    assert shards_a == shards_b and any(name.endswith(".tfrecord") for name in shards_a)


def test_seeded_training_gives_the_same_metrics(train_params, tiny_data, tmp_path):
    from colorizer.training.train import train

    results = [train(train_params(), shards=Path(tiny_data.paths.shards), root=tmp_path) for _ in range(2)]
    for key in ("train_mse", "val_mse", "val_accuracy"):
        assert results[0][key] == pytest.approx(results[1][key], abs=TRAINING_TOLERANCE), key
