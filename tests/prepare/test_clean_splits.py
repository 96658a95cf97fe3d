"""Stage `resize` keeps validation and test clean: near duplicates of earlier splits'
photos and colourless photos are left out and reported, without gaps in the arrays."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import prepare, read_resized_split
from PIL import Image

from colorizer.data.images import decode_rgb, difference_hash
from colorizer.data.resized import read_meta
from colorizer.data.shards import read_meta as read_shard_meta
from colorizer.prepare.resize import HASH_MIN_DECODE, resize

DEFAULT_BITS = 4  # params.yaml data.near_duplicate_bits


def resized_copy(data: bytes, scale: float = 0.8, quality: int = 70) -> bytes:
    """What a re-upload does to a photo: smaller (150 -> 120 px) and re-encoded."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def grayscale_jpeg(data: bytes) -> bytes:
    """A real photo converted to gray and stored as an RGB JPEG, as such files come."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("L").convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def photos(shared: Path, split_folder: str, label: str = "forest") -> list[Path]:
    return sorted((shared / split_folder / label).glob("*.jpg"))


@pytest.fixture
def leaky_source(tmp_path, shared_photos) -> Path:
    """Real photos in a Kaggle layout, with a re-encoded copy of a training photo in test
    and a grayscale photo in train."""
    train, val, test = (photos(shared_photos, f) for f in ("Training Data", "Validation Data", "Testing Data"))
    src = tmp_path / "src"
    files = {
        **{f"Training Data/forest/{p.name}": p.read_bytes() for p in train[:3]},
        "Training Data/forest/gray.jpg": grayscale_jpeg(train[3].read_bytes()),
        **{f"Validation Data/forest/{p.name}": p.read_bytes() for p in val[:2]},
        f"Testing Data/forest/{test[0].name}": test[0].read_bytes(),  # an ordinary, different photo
        "Testing Data/forest/copy.jpg": resized_copy(train[0].read_bytes()),
    }
    for name, data in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    return src


def test_near_duplicate_and_colourless_photos_are_left_out_and_reported(tmp_path, leaky_source, shared_photos):
    params = prepare(tmp_path / "project", {"data": {"source": str(leaky_source)}})
    report = json.loads(Path(params.paths.data_report).read_text())
    original = photos(shared_photos, "Training Data")[0].name

    near = [d for d in report["duplicates"] if d["stage"] == "resize"]
    assert len(near) == 1 and near[0]["file"] == "test/forest/copy.jpg"
    assert near[0]["reason"].startswith(f"near duplicate of train/forest/{original} (")
    assert near[0]["reason"].endswith(" bits)")
    skipped = {s["file"]: s for s in report["skipped"]}
    assert set(skipped) == {"train/forest/gray.jpg"}
    assert skipped["train/forest/gray.jpg"]["reason"].startswith("colourless: mean channel spread 0.")
    assert skipped["train/forest/gray.jpg"]["stage"] == "resize"

    assert report["near_duplicates"] == {"train": 0, "val": 0, "test": 1}
    assert report["colourless"] == {"train": 1, "val": 0, "test": 0}
    assert report["images"] == {"train": 3, "val": 2, "test": 1}  # the different test photo is kept
    assert report["duplicates_count"] == 1 and report["skipped_count"] == 1

    # Index, meta and shards agree on what is left; rows of images left out are blank.
    resized = Path(params.paths.resized)
    for split, count in report["images"].items():
        _, rows = read_resized_split(resized, split)  # checks the rows left out are zeros
        assert len(rows) == count
    _, test_rows = read_resized_split(resized, "test")
    assert [r["file"] for r in test_rows] == [f"test/forest/{photos(shared_photos, 'Testing Data')[0].name}"]
    assert read_meta(resized)["images"] == report["images"]
    shard_meta = read_shard_meta(Path(params.paths.shards))
    assert {s: info["examples"] for s, info in shard_meta["splits"].items()} == report["images"]


def test_zero_turns_both_checks_off(tmp_path, leaky_source):
    params = prepare(tmp_path / "project", {"data": {"source": str(leaky_source)}})
    data = dataclasses.replace(params.data, near_duplicate_bits=0, min_colour_spread=0.0)
    report = resize(data, raw=Path(params.paths.raw), out=tmp_path / "off", report_path=tmp_path / "off.json")
    assert report["images"] == {"train": 4, "val": 2, "test": 2}
    assert report["near_duplicates"] == {"train": 0, "val": 0, "test": 0}
    assert report["colourless"] == {"train": 0, "val": 0, "test": 0}


def test_hash_survives_resizing_and_reencoding_of_real_photos(shared_photos):
    """Resized (150 -> 120 px), JPEG-70 copies stay within the default bits; distinct photos do not.
    Hashed as resize does, on the photo decoded for the smallest image size."""

    def dhash(data: bytes) -> int:
        return difference_hash(decode_rgb(data, 10**8, target=HASH_MIN_DECODE))

    originals = [p.read_bytes() for p in photos(shared_photos, "Training Data", "glacier")[:16]]
    hashes = np.array([dhash(d) for d in originals], np.uint64)
    copies = np.array([dhash(resized_copy(d)) for d in originals], np.uint64)
    assert np.bitwise_count(hashes ^ copies).max() <= DEFAULT_BITS
    between = np.bitwise_count(hashes[:, None] ^ hashes[None, :])[np.triu_indices(len(hashes), 1)]
    assert between.min() > DEFAULT_BITS


def test_a_split_with_every_image_left_out_is_a_clear_error(tmp_path, shared_photos):
    from colorizer.core.errors import UserError

    src = tmp_path / "src"
    train, val = photos(shared_photos, "Training Data"), photos(shared_photos, "Validation Data")
    files = {**{f"Training Data/forest/{p.name}": p.read_bytes() for p in train[:3]},
             **{f"Validation Data/forest/{p.name}": grayscale_jpeg(p.read_bytes()) for p in val[:2]},
             **{f"Testing Data/forest/{p.name}": p.read_bytes() for p in photos(shared_photos, "Testing Data")[:2]}}
    for name, data in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    # Stopped by resize, the stage whose filters emptied it, with the reasons; nothing written.
    with pytest.raises(UserError, match=r"^the val split has no images left of its 2: 0 unreadable, 2 colourless"):
        prepare(tmp_path / "project", {"data": {"source": str(src)}})
    assert not (tmp_path / "project" / "data" / "resized").exists()
