"""A shard damaged on disk (a disk error, a copy by hand) is named, with how to restore it,
before training or evaluation spends time on it, and if it breaks while they read it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from colorizer.data import shards as shard_format
from colorizer.data import tfrecords


@pytest.fixture
def shards(tmp_path, tiny_data):
    """A writable copy of the session's tiny shards."""
    copy = tmp_path / "shards"
    shutil.copytree(tiny_data.paths.shards, copy)
    return copy


def first_train_file(shards: Path) -> Path:
    return Path(shard_format.split_files(shards, "train")[0][0])


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_whole_shards_check_clean_and_count_their_records(shards):
    files, examples, _ = shard_format.split_files(shards, "train")
    assert sum(tfrecords.check_file(name)[0] for name in files) == examples
    assert all(tfrecords.check_file(name)[1] is None for name in files)
    shard_format.check(shards, ("train", "val", "test"))


@pytest.mark.parametrize("damage, message", [
    (lambda p: flip_byte(p, 2000), "fails its checksum"),
    (lambda p: flip_byte(p, 1), "bad length checksum"),
    (lambda p: p.write_bytes(p.read_bytes()[:-100]), "truncated: record"),
    (lambda p: p.unlink(), "missing"),
])
def test_a_damaged_shard_is_named_with_how_to_restore_it(shards, damage, message):
    path = first_train_file(shards)
    damage(path)
    with pytest.raises(shard_format.CorruptShard) as err:
        shard_format.check(shards, ("train",))
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text
    assert "dvc checkout" in text and "dvc repro -f -s shard" in text


def test_train_refuses_a_damaged_shard_before_training(train_params, shards, tmp_path):
    from colorizer.training.train import train

    flip_byte(first_train_file(shards), 3000)
    with pytest.raises(shard_format.CorruptShard, match="train-00000-of-00002.tfrecord: corrupt"):
        train(train_params(), shards=shards, root=tmp_path)


def test_a_shard_damaged_while_it_is_read_is_named(shards):
    """TensorFlow's own reader fails with `corrupted record at N` and no file name: it is named here."""
    import tensorflow as tf

    path = first_train_file(shards)
    flip_byte(path, 3000)
    with pytest.raises(shard_format.CorruptShard, match=f"{path.name}: corrupt.*dvc checkout"):
        with shard_format.reading(shards, ("train",)):
            for _ in tf.data.TFRecordDataset([str(path)]):
                pass


@pytest.mark.parametrize("damage", [b"{\"splits\": {\"tra", b"\xff\xfe garbage", None])
def test_a_damaged_or_missing_meta_json_is_one_line_saying_how_to_restore_it(shards, damage):
    from colorizer.core.errors import UserError

    meta = shards / shard_format.META
    if damage is None:
        meta.unlink()
    else:
        meta.write_bytes(damage)
    with pytest.raises(UserError) as raised:
        shard_format.split_files(shards, "train")
    message = str(raised.value)
    assert str(meta) in message and "\n" not in message
    assert ("dvc repro shard" in message) if damage is None else ("dvc checkout shard" in message
                                                                    and "dvc repro -f -s shard" in message)


def edit_meta(shards: Path, edit) -> Path:
    path = shards / shard_format.META
    meta = json.loads(path.read_text())
    path.write_text(json.dumps(edit(meta)))
    return path


def without(key: str, inside=lambda meta: meta):
    def edit(meta):
        del inside(meta)[key]
        return meta
    return edit


def with_value(key: str, value):
    return lambda meta: {**meta, key: value}


@pytest.mark.parametrize("edit, problem", [
    (lambda meta: [], "holds a list, not an object"),
    (without("train", inside=lambda meta: meta["splits"]), "the train split is missing"),
    (without("files", inside=lambda meta: meta["splits"]["val"]), "the val split's files are missing"),
    (lambda meta: {**meta, "splits": {**meta["splits"], "test": {"files": ["x"], "examples": "10"}}},
     "the test split's examples is '10'"),
    (with_value("image_size", "32"), "image_size is '32'"),
    (with_value("image_size", 0), "image_size is 0"),
    (without("classes"), "classes is missing"),
    (with_value("ab_histogram", None), "ab_histogram is missing"),
])
def test_meta_json_that_parses_but_lacks_what_is_read_is_one_line(shards, edit, problem):
    path = edit_meta(shards, edit)
    for read in (lambda: shard_format.split_files(shards, "train"), lambda: shard_format.read_meta(shards)):
        with pytest.raises(shard_format.CorruptShard) as raised:
            read()
        message = str(raised.value)
        assert message.startswith(f"{path}: {problem}") and "\n" not in message
        assert "dvc checkout" in message and "dvc repro -f -s shard" in message


def test_an_image_size_the_shards_do_not_have_is_named_before_training(shards):
    path = edit_meta(shards, with_value("image_size", 64))
    with pytest.raises(shard_format.CorruptShard) as raised:
        shard_format.check(shards, ("train",))
    message = str(raised.value)
    assert message.startswith(f"{path}: image_size is 64, but the images in ") and "are 32x32" in message
    assert "dvc repro -f -s shard" in message


@pytest.mark.parametrize("damage, problem", [
    (lambda p: p.write_bytes(p.read_bytes()[:1000]), "not a readable .npy array"),
    (lambda p: p.write_bytes(b""), "not a readable .npy array"),
    (lambda p: p.unlink(), "missing"),
    (lambda p: np.save(p, np.zeros((16, 16))), "not (256, 256) colour counts"),
])
def test_a_damaged_ab_histogram_is_one_line(shards, damage, problem):
    path = shards / shard_format.AB_HISTOGRAM
    assert shard_format.read_ab_histogram(shards).shape == (256, 256)
    damage(path)
    with pytest.raises(shard_format.CorruptShard) as raised:
        shard_format.read_ab_histogram(shards)
    message = str(raised.value)
    assert message.startswith(f"{path}: {problem}") and "\n" not in message
    assert "dvc checkout" in message and "dvc repro -f -s shard" in message
