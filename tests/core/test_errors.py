"""Stage scripts report a user's mistake in one line, without a traceback."""

import subprocess
import sys

import yaml
from conftest import REPO, repo_params_dict


def run_stage(project, name: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "stages" / f"{name}.py")], cwd=project,
                          capture_output=True, text=True, timeout=120)


def test_a_bad_param_is_one_line_naming_the_key(tmp_path):
    params = repo_params_dict()
    params["train"]["seed"] = 2**32
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_stage(tmp_path, "train")
    assert result.returncode == 1
    assert result.stderr.strip() == "train: params.yaml: train.seed must be in [0, 4294967295], got 4294967296"


def test_a_missing_source_is_one_line_naming_it(tmp_path):
    params = repo_params_dict()
    params["data"]["source"] = "no/such/folder"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_stage(tmp_path, "download")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("download: data.source: 'no/such/folder'") and "does not exist" in result.stderr
