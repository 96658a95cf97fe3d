"""read_regular_file: FIFOs, devices and oversized files are refused, never read."""

from __future__ import annotations

import os
import threading

import pytest

from colorizer.core.files import UnsafeFile, read_regular_file

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")


def read_with_timeout(path, max_bytes, timeout=20):
    """Run read_regular_file in a thread: a FIFO opened without O_NONBLOCK would block forever."""
    result = {}

    def target():
        try:
            result["value"] = read_regular_file(path, max_bytes)
        except Exception as err:  # noqa: BLE001  handed to the test below
            result["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"reading {path} blocked for {timeout} s"
    return result


def test_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    error = read_with_timeout(tmp_path / "pipe", 1024)["error"]
    assert isinstance(error, UnsafeFile) and "pipe" in str(error) and "FIFO" in str(error)


def test_device_link_is_refused(tmp_path):
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    error = read_with_timeout(tmp_path / "zero.png", 1024)["error"]
    assert isinstance(error, UnsafeFile) and "character device" in str(error)


def test_size_cap(tmp_path):
    (tmp_path / "ok").write_bytes(b"x" * 1024)
    assert read_regular_file(tmp_path / "ok", 1024) == b"x" * 1024
    (tmp_path / "big").write_bytes(b"x" * 1025)
    with pytest.raises(UnsafeFile, match=r"big: 1,025 bytes is over the 1,024-byte limit"):
        read_regular_file(tmp_path / "big", 1024)
