"""Stage scripts report a user's mistake in one line, without a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest
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


@pytest.mark.parametrize("written", [0, 3 * 1024 * 1024])
def test_a_full_disk_names_the_output_and_what_of_it_was_written(tmp_path, written):
    import errno

    from colorizer.core import atomic
    from colorizer.core.errors import disk_full

    final = tmp_path / "model.keras"
    partial = atomic.partial_path(final)
    if written:
        partial.write_bytes(b"\0" * written)
    with pytest.raises(OSError) as raised, atomic.writing(final, partial):
        raise OSError(errno.ENOSPC, "No space left on device")
    line = disk_full(raised.value)
    assert line.startswith(f"no space left on device writing {final} (") and "left on its file system" in line
    assert ("3.0 MiB written" in line) if written else ("nothing of it written yet" in line)


@pytest.mark.parametrize("message", [
    "65536 requested and 5104 written",  # NumPy's np.save on a full disk: no errno
    "Not enough free space to write 67108864 bytes after offset 128",  # NumPy's memmap
    "(sqlite3.OperationalError) database or disk is full",
])
def test_a_full_disk_without_an_errno_is_told_and_named_as_the_output_it_will_be(tmp_path, message):
    from colorizer.core import atomic
    from colorizer.core.errors import disk_full

    staging = atomic.partial_path(tmp_path / "raw")  # a file inside a stage's staging folder
    with pytest.raises(OSError) as raised, atomic.writing(staging / "report.json"):
        raise OSError(message)
    line = disk_full(raised.value)
    assert line and line.startswith(f"no space left on device writing {tmp_path / 'raw' / 'report.json'} (")
    assert disk_full(OSError("permission denied")) is None


def test_a_full_disk_while_the_colour_table_is_built_leaves_no_fragment(tmp_path, monkeypatch):
    import errno

    import numpy as np

    from colorizer.prepare import lut

    def short_write(path, array):
        Path(path).write_bytes(b"\0" * 4096)
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(np, "save", short_write)
    with pytest.raises(OSError):
        lut._build(tmp_path / "table.npy")
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_file_is_one_line_with_its_remedy_and_other_errors_pass_through(tmp_path):
    import csv

    from colorizer.core.errors import UserError, damaged_file

    path = tmp_path / "index.csv"
    with pytest.raises(UserError) as caught, damaged_file(path, "restore it", also=(csv.Error,)):
        raise csv.Error("line contains NUL")
    assert str(caught.value) == f"{path} is damaged (Error: line contains NUL): restore it"
    with pytest.raises(ZeroDivisionError), damaged_file(path, "restore it"):
        1 / 0


def test_a_library_error_is_quoted_by_its_first_line():
    from colorizer.core.errors import one_line

    sqlalchemy_like = ValueError("(sqlite3.DatabaseError) file is not a database\n[SQL: PRAGMA main.table_info]\n"
                                 "(Background on this error at: https://sqlalche.me/e/20/4xp6)")
    assert one_line(sqlalchemy_like) == "ValueError: (sqlite3.DatabaseError) file is not a database..."
    assert one_line(OSError("x" * 30), limit=10) == "OSError: xxxxxxxxxx..."
    assert one_line(KeyError()) == "KeyError: "
