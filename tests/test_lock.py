"""requirements.lock pins every package with its files' sha256, and `make install` refuses a wheel
that does not match: through uv, and through pip when uv is not used."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

LOCKS = ("requirements.lock", "requirements-gpu.lock")
ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ \\]+)")


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def entries(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, [hash lines]) of a hash-pinned lock."""
    found, name = {}, None
    for line in lock.read_text().splitlines():
        if match := ENTRY.match(line):
            name = normalised(match[1])
            found[name] = (match[2], [])
        elif line.strip().startswith("--hash=sha256:") and name:
            found[name][1].append(line.strip().rstrip(" \\"))
    return found


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_carries_its_hashes(lock):
    pinned = entries(REPO / lock)
    assert len(pinned) > 150
    bare = [name for name, (_, hashes) in pinned.items() if not hashes]
    assert not bare, f"{lock}: pins without a hash: {bare}"
    assert all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for _, hashes in pinned.values() for h in hashes)


def test_the_lock_is_what_is_installed():
    pinned = entries(REPO / "requirements.lock")
    installed = {normalised(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    installed.pop("landscape-colorizer")
    installed.pop("pip")
    assert {name: version for name, (version, _) in pinned.items()} == installed
    gpu = entries(REPO / "requirements-gpu.lock")
    shared = set(pinned) & set(gpu)
    assert {n: pinned[n][0] for n in shared} == {n: gpu[n][0] for n in shared}  # the GPU lock moves no other pin
    assert gpu["tensorflow"][0] == pinned["tensorflow-cpu"][0] and "tensorflow-cpu" not in gpu


def mini_lock(path: Path, tamper: str | None) -> Path:
    """The lock's entries for uv, setuptools and one small package (namex), with `tamper`'s hashes
    changed: what a re-uploaded wheel of the same version looks like to the installer."""
    text = (REPO / "requirements.lock").read_text()
    blocks = [block for block in re.split(r"\n(?=\S)", text) if ENTRY.match(block)]
    kept = [b for b in blocks if normalised(ENTRY.match(b)[1]) in ("uv", "setuptools", "namex")]
    assert len(kept) == 3
    if tamper:
        kept = [re.sub(r"sha256:([0-9a-f])", lambda m: "sha256:" + ("0" if m[1] != "0" else "1"), b)
                if normalised(ENTRY.match(b)[1]) == tamper else b for b in kept]
    path.write_text("\n".join(kept) + "\n")
    return path


def install(tmp_path: Path, lock: Path, installer: str) -> subprocess.CompletedProcess:
    """`make install` of a copy of the project into a fresh venv, from `lock`."""
    project = tmp_path / "project"
    shutil.copytree(REPO / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("Makefile", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, project / name)
    return subprocess.run(["make", "install", f"LOCK={lock}", f"INSTALLER={installer}", f"VENV={tmp_path / 'venv'}"],
                          cwd=project, capture_output=True, text=True, timeout=600)


@pytest.mark.e2e
@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_make_install_refuses_a_wheel_whose_hash_does_not_match(tmp_path, installer):
    good = install(tmp_path / "good", mini_lock(tmp_path / "good.lock", None), installer)
    assert good.returncode == 0, good.stdout[-2000:] + good.stderr[-2000:]
    assert (tmp_path / "good/venv/lib").exists() and list((tmp_path / "good/venv").glob("lib/*/site-packages/namex"))

    bad = install(tmp_path / "bad", mini_lock(tmp_path / "bad.lock", "namex"), installer)
    output = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert "namex" in output and re.search(r"(?i)hash mismatch|do not match the hashes", output), output[-3000:]
    assert not list((tmp_path / "bad/venv").glob("lib/*/site-packages/namex"))
