"""The test split is read once, by `evaluate`: nothing chosen during training (sample
photos, early choices, settings) may have looked at it, or the test score is no longer
an honest estimate."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

from colorizer.data import shards as shard_format

PACKAGE = REPO / "src" / "colorizer"
THE_READER = PACKAGE / "evaluation" / "evaluate.py"


def test_training_never_asks_for_the_test_split(train_params, tiny_data, tmp_path, monkeypatch):
    from colorizer.training.train import train

    asked = []
    split_files = shard_format.split_files

    def recording(shards, split):
        asked.append(split)
        return split_files(shards, split)

    # Every tf.data pipeline (dataset.training and dataset.evaluation) finds its files here.
    monkeypatch.setattr(shard_format, "split_files", recording)
    # prior_correction auto: the choice made after training reads validation, never test.
    train(train_params({"train": {"epochs": 1}, "model": {"prior_correction": "auto"}}),
          shards=Path(tiny_data.paths.shards), root=tmp_path)
    assert {"train", "val"} <= set(asked)  # the wrapper sees what training reads
    assert "test" not in asked, f"train read the test split (splits asked for: {asked})"


def test_only_evaluate_names_the_test_split():
    """Statically: no module but evaluation/evaluate.py passes the literal "test" to a
    function (dataset.evaluation, split_files, score_split, ...) or indexes with it
    (meta["splits"]["test"])."""
    found = []
    for file in sorted(PACKAGE.rglob("*.py")):
        if file == THE_READER:
            continue
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                used = [*node.args, *(k.value for k in node.keywords)]
            elif isinstance(node, ast.Subscript):
                used = [node.slice]
            else:
                continue
            if any(isinstance(v, ast.Constant) and v.value == "test" for v in used):
                found.append(f"{file.relative_to(REPO)}:{node.lineno}")
    assert not found, f'"test" split read outside {THE_READER.relative_to(REPO)}: {found}'


def test_the_static_check_sees_evaluate_reading_the_test_split():
    """evaluate.py itself passes "test": the check above would have caught it anywhere else."""
    tree = ast.parse(THE_READER.read_text(encoding="utf-8"))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and any(isinstance(a, ast.Constant) and a.value == "test" for a in n.args)]
    assert calls
