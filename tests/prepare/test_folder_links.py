"""A folder source reads only regular files inside it, each up to `data.max_file_mib`.

Links to a FIFO (would block forever), to /dev/zero (would read until memory runs
out) or to files outside the source are refused and reported, never read. Each
download runs in a subprocess with a timeout, so a regression fails, not hangs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, colour_image, image_bytes, write_image_tree

from colorizer.data.raw import read_manifest, read_report

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symbolic links (POSIX)")


def download_in_subprocess(tmp_path: Path, source: Path, max_file_mib: int = 256, timeout: float = 120) -> Path:
    """Run download on `source` in a child process; returns data/raw. Fails if it takes over `timeout` s."""
    script = textwrap.dedent(f"""
        from pathlib import Path
        from conftest import tiny_params
        from colorizer.prepare.download import download
        params = tiny_params(Path({str(tmp_path)!r}), {{"data": {{"source": {str(source)!r}, "max_file_mib": {max_file_mib}}}}})
        download(params, out=Path(params.paths.raw), root=Path({str(tmp_path)!r}))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests")])}
    try:
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                                timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"download did not finish in {timeout} s: a FIFO or device was read")
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / "data/raw"


def test_links_to_fifos_devices_and_outside_files_are_refused_and_reported(tmp_path):
    src = tmp_path / "src"
    write_image_tree(src, {"train/a": 3, "val/a": 2, "test/a": 2})
    outside = tmp_path / "private.jpg"
    outside.write_bytes(image_bytes(colour_image(50)))
    os.mkfifo(tmp_path / "pipe")
    os.mkfifo(src / "train/a/fifo.jpg")  # a FIFO itself, not a link
    (src / "train/a/pipe.jpg").symlink_to(src / "train/a/fifo.jpg")  # inside, but not a regular file
    (src / "train/a/outside_pipe.jpg").symlink_to(tmp_path / "pipe")
    (src / "train/a/zero.jpg").symlink_to("/dev/zero")
    (src / "train/a/private.jpg").symlink_to(outside)
    (src / "train/a/dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    (src / "train/a/linked_dir").symlink_to(tmp_path, target_is_directory=True)
    (src / "train/a/inside.jpg").symlink_to(src / "val/a/img_000.jpg")  # inside the source: followed

    raw = download_in_subprocess(tmp_path, src)

    reasons = {Path(s["file"]).name: s["reason"] for s in read_report(raw)["skipped"]}
    assert "not a regular file (a FIFO" in reasons["fifo.jpg"]
    assert "symbolic link to a FIFO" in reasons["pipe.jpg"]
    assert "outside the source folder" in reasons["outside_pipe.jpg"]
    assert "/dev/zero, outside the source folder" in reasons["zero.jpg"]
    assert "outside the source folder" in reasons["private.jpg"]
    assert "broken symbolic link" in reasons["dangling.jpg"]
    assert "folder" in reasons["linked_dir"]
    assert all("refused" in r for r in reasons.values())
    kept = {r["file"] for r in read_manifest(raw)}
    assert not any(name in f for f in kept for name in ("fifo", "pipe", "zero", "private", "dangling"))
    # The followed link is the same photo as val/a/img_000.jpg: kept once (train first), the other reported.
    assert "train/a/inside.jpg" in kept


def test_files_over_max_file_mib_are_refused_before_reading(tmp_path):
    src = tmp_path / "src"
    write_image_tree(src, {"train/a": 3, "val/a": 2, "test/a": 2})
    big = src / "train/a/huge.jpg"
    big.write_bytes(image_bytes(colour_image(3)))
    with open(big, "r+b") as handle:  # a valid JPEG followed by 2 MiB of padding
        handle.seek(2 << 20)
        handle.write(b"\0")

    raw = download_in_subprocess(tmp_path, src, max_file_mib=1)

    reasons = {Path(s["file"]).name: s["reason"] for s in read_report(raw)["skipped"]}
    assert "over the 1,048,576-byte limit" in reasons["huge.jpg"]
    assert len(read_manifest(raw)) == 7
