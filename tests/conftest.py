"""Shared fixtures: the repo's params with overrides, tiny images, the real photo sample."""

from __future__ import annotations

import copy
import io
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from colorizer.config import params_from_dict

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


TINY = {
    "data": {"image_size": 32, "synthetic_per_class": 10, "synthetic_size": 48},
    "shard": {"num_shards": 2},
    "model": {"width": 8},
    "train": {"epochs": 2, "batch_size": 8, "shuffle_buffer": 32, "sample_every": 1},
    "metrics": {"samples": 4},
}


@pytest.fixture
def make_params(tmp_path):
    """Params from the repo's params.yaml with overrides, all paths inside tmp_path."""

    def build(overrides: dict | None = None):
        raw = merge(repo_params_dict(), TINY)
        raw["paths"] = {key: str(tmp_path / value) for key, value in raw["paths"].items()}
        return params_from_dict(merge(raw, overrides or {}))

    return build


@pytest.fixture
def shared_photos() -> Path:
    """The real photo sample beside the repo. In CI it must be there."""
    if not SHARED_PHOTOS.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI run without the real photo sample at {SHARED_PHOTOS}")
        pytest.skip(f"real photo sample not found at {SHARED_PHOTOS} (only present beside the project checkout)")
    return SHARED_PHOTOS


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
