"""dvc.yaml's code deps hold all the code each stage runs, so DVC can never reuse a stale result."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import REPO
from imports import closure

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
# Deps that are not code: the pinned versions (and so the backbone's weights package) train runs on.
VERSION_DEPS = ("requirements.lock",)


def code_deps(stage: str) -> list[str]:
    """The stage's deps that are code files or folders of the repository (not templated data paths)."""
    return [dep for dep in STAGES[stage]["deps"] if "${" not in dep and dep not in VERSION_DEPS]


def test_train_depends_on_the_pinned_versions():
    assert [stage for stage in STAGES if "requirements.lock" in STAGES[stage]["deps"]] == ["train"]


def uncovered(stage: str, deps: list[str]) -> list[str]:
    """Files the stage's script imports (statically, transitively) that no dep holds."""
    script = REPO / "stages" / f"{stage}.py"
    needed = {script, *closure([script])}
    roots = [REPO / dep for dep in deps]
    return sorted(str(f.relative_to(REPO)) for f in needed if not any(f == r or r in f.parents for r in roots))


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_module_a_stage_runs_is_among_its_deps(stage):
    assert STAGES[stage]["cmd"] == f"python stages/{stage}.py"
    missing = uncovered(stage, code_deps(stage))
    assert not missing, f"dvc.yaml: stage {stage} runs {', '.join(missing)} but does not list it (or a folder of it) in deps"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_removing_any_code_dep_is_caught(stage):
    """Each code dep is needed: dropping it leaves some imported module uncovered (so the
    check above has teeth, and no stage depends on code it never runs)."""
    deps = code_deps(stage)
    for dep in deps:
        assert uncovered(stage, [d for d in deps if d != dep]), f"{stage}: dep {dep} covers nothing the stage runs"


def test_closure_follows_imports_inside_functions():
    # stages/train.py imports the training loop inside main(), after validating params.
    files = {str(f.relative_to(REPO)) for f in closure([REPO / "stages" / "train.py"])}
    assert "src/colorizer/training/train.py" in files
    assert "src/colorizer/tracking/pyfunc.py" in files  # imported by the tracker, inside a method
    assert "src/colorizer/training/__init__.py" in files and "src/colorizer/__init__.py" in files
    assert not any(f.startswith("src/colorizer/prepare/") for f in files)


def test_served_model_code_is_within_train_deps():
    """train packages the pyfunc model's code into the MLflow model: that code is train's too."""
    from colorizer.tracking.pyfunc import SERVED_PACKAGES

    deps = code_deps("train")
    for name in SERVED_PACKAGES:
        assert f"src/colorizer/{name}" in deps
    served = closure([REPO / "src/colorizer/tracking/pyfunc.py"])
    assert {Path(f).relative_to(REPO / "src/colorizer").parts[0] for f in served} <= {*SERVED_PACKAGES, "__init__.py"}
