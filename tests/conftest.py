"""Shared fixtures: the repo's params with overrides, tiny images, the real photo sample."""

from __future__ import annotations

import atexit
import contextlib
import copy
import dataclasses
import functools
import io
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from colorizer.core.config import ModelParams, params_from_dict

REPO = Path(__file__).resolve().parents[1]
SHARED_PHOTOS = REPO.parent / "shared" / "data" / "landscapes"


def repo_params_dict() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def merge(base: dict, overrides: dict) -> dict:
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def repo_model(**overrides) -> ModelParams:
    """params.yaml's model section, the network the pipeline trains, with overrides (tests
    shrink `width` for speed and vary one option at a time)."""
    return dataclasses.replace(params_from_dict(repo_params_dict()).model, **overrides)


@pytest.fixture
def model_config():
    """`repo_model`: params.yaml's network, with overrides."""
    return repo_model


TINY = {
    "data": {"image_size": 32, "synthetic_per_class": 10, "synthetic_size": 48},
    "shard": {"num_shards": 2},
    "model": {"width": 8},
    "train": {"epochs": 2, "batch_size": 8, "shuffle_buffer": 32, "sample_every": 1},
    "metrics": {"samples": 4},
}


def tiny_params(root: Path, overrides: dict | None = None):
    """The repo's params.yaml made tiny, with overrides, every path inside `root`.

    The params are validated as params.yaml would be (paths relative to the repo);
    only then are the paths moved under `root`, which params.yaml itself may not do.
    """
    params = params_from_dict(merge(merge(repo_params_dict(), TINY), overrides or {}))
    moved = {f.name: str(root / getattr(params.paths, f.name)) for f in dataclasses.fields(params.paths)}
    return dataclasses.replace(params, paths=dataclasses.replace(params.paths, **moved))


@pytest.fixture
def make_params(tmp_path):
    return lambda overrides=None: tiny_params(tmp_path, overrides)


def prepare(folder: Path, overrides: dict | None = None):
    """download -> resize -> shard in-process on tiny params; returns the params."""
    from colorizer.prepare.download import download
    from colorizer.prepare.resize import resize
    from colorizer.prepare.shard import shard

    params = tiny_params(folder, overrides)
    paths = params.paths
    download(params, out=Path(paths.raw), root=folder)
    resize(params.data, raw=Path(paths.raw), out=Path(paths.resized), report_path=Path(paths.data_report))
    shard(resized=Path(paths.resized), out=Path(paths.shards), num_shards=params.shard.num_shards, seed=params.data.seed)
    return params


@pytest.fixture(autouse=True)
def restored_globals(monkeypatch):
    """Process-wide state a test may change, restored after it. Loading an MLflow model in-process
    puts its packaged code (a partial copy of the package) first on sys.path, which process pools
    spawned by later tests would import; reading images sets PIL's pixel cap, which a tiny cap
    left in place turns into a DecompressionBombError in a later test's text drawing."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """Tiny synthetic shards, prepared once per test session (read-only for tests)."""
    return prepare(tmp_path_factory.mktemp("tiny-data"))


# Fixtures that train a model: a test that needs one is marked slow (left out of `make test-fast`).
TRAINING_FIXTURES = {"train_params", "trained", "trained_run", "trained_model", "uninterrupted"}


def pytest_collection_modifyitems(items):
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    _heaviest_modules_first(items)


def _heaviest_modules_first(items) -> None:
    """Modules ordered by their count of e2e and slow tests, most first, each kept whole and in
    order. `make test` hands whole modules to its workers in this order (`--dist loadscope`), so
    the long ones start early and the quick ones fill in at the end instead of one worker
    finishing a long module alone."""
    def module(item) -> str:
        return item.nodeid.split("::")[0]

    heavy: dict[str, int] = {}
    for item in items:
        costly = item.get_closest_marker("e2e") or item.get_closest_marker("slow")
        heavy[module(item)] = heavy.get(module(item), 0) + bool(costly)
    items.sort(key=lambda item: -heavy[module(item)])  # stable: each module stays contiguous


@functools.cache
def _empty_store() -> Path:
    """An empty MLflow SQLite store, its tables created once per session (a second each)."""
    import mlflow

    folder = tempfile.mkdtemp(prefix="empty-store-")
    atexit.register(shutil.rmtree, folder, True)
    path = Path(folder) / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments(max_results=1)
    return path


def new_store(root: Path) -> str:
    """The URI of a new, empty store `root`/mlflow.db, as MLflow would create it."""
    store = Path(root) / "mlflow.db"
    store.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_empty_store(), store)
    return f"sqlite:///{store}"


@pytest.fixture
def train_params(tmp_path, tiny_data, monkeypatch):
    """Params whose outputs go to tmp_path, reading the session's tiny shards, logging to a tmp store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", new_store(tmp_path))

    return lambda overrides=None: tiny_params(tmp_path, overrides)


@pytest.fixture
def shared_photos() -> Path:
    """The real photo sample beside the repo. In CI it must be there."""
    if not SHARED_PHOTOS.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI run without the real photo sample at {SHARED_PHOTOS}")
        pytest.skip(f"real photo sample not found at {SHARED_PHOTOS} (only present beside the project checkout)")
    return SHARED_PHOTOS


def read_resized_split(resized: Path, split: str) -> tuple[np.ndarray, list[dict]]:
    """(pixels, rows with file and class) of the images kept in one split of data/resized, in
    index order; the array's rows of images left out are checked to be zeros."""
    from colorizer.data.resized import read_index

    rows = read_index(resized, split)
    array = np.load(resized / f"{split}.npy")
    kept = [r["row"] for r in rows]
    assert kept == sorted(set(kept)) and (not kept or kept[-1] < len(array)), f"{split}.csv: bad rows {kept}"
    assert not np.delete(array, kept, axis=0).any(), f"{split}.npy: a row of an image left out is not blank"
    return array[kept], rows


@contextlib.contextmanager
def tracking_store(root: Path):
    """MLFLOW_TRACKING_URI set to a SQLite store in `root` for the block (module-scoped
    fixtures cannot use monkeypatch), restored afterwards."""
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = new_store(root)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def image_bytes(pixels: np.ndarray, fmt: str = "JPEG", **save_args) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **save_args)
    return buffer.getvalue()


def colour_image(seed: int, size: int = 40, colour=(40, 120, 200)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.array(colour, np.float32)
    noise = rng.normal(0, 25, (size, size, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def write_image_tree(root: Path, layout: dict[str, int], size: int = 40) -> None:
    """layout: {"Training Data/forest": 5, ...} -> that many distinct JPEGs per folder."""
    for i, (folder, count) in enumerate(sorted(layout.items())):
        for j in range(count):
            path = root / folder / f"img_{j:03d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(image_bytes(colour_image(1000 * i + j, size)))
