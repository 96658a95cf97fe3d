"""Stage `download` on every kind of source, up to the network boundary."""

import zipfile
from collections import Counter
from pathlib import Path

import pytest
from conftest import colour_image, image_bytes, read_resized_split, write_image_tree

from colorizer.data.raw import read_manifest
from colorizer.prepare.download import download
from colorizer.prepare.sources import kaggle
from colorizer.prepare.sources.errors import SourceUnavailable


def run(make_params, tmp_path, source, **data):
    params = make_params({"data": {"source": str(source), **data}})
    out = Path(params.paths.raw)
    return download(params, out=out, root=tmp_path), out


def split_counts(raw):
    return Counter(row["split"] for row in read_manifest(raw))


def test_synthetic_source(make_params, tmp_path):
    report, raw = run(make_params, tmp_path, "synthetic")
    assert report["images"] == {"train": 30, "val": 10, "test": 10}  # 5 classes x (6, 2, 2)
    assert report["classes"] == ["coast", "desert", "forest", "glacier", "mountains"]
    rows = read_manifest(raw)
    assert all((raw / row["file"]).is_file() for row in rows)
    assert set(rows[0]) >= {"file", "class", "split", "size", "sha256"}
    first = (raw / "manifest.csv").read_bytes()
    download(make_params({"data": {"source": "synthetic"}}), out=raw, root=tmp_path)
    assert (raw / "manifest.csv").read_bytes() == first  # deterministic


def test_kaggle_layout_folder_with_junk(make_params, tmp_path):
    src = tmp_path / "kaggle-copy" / "Landscape Classification"  # a wrapper folder, as Kaggle zips have
    write_image_tree(src, {"Training Data/Coast": 5, "Training Data/Forest": 5, "Validation Data/Coast": 2,
                           "Validation Data/Forest": 2, "Testing Data/Coast": 2, "Testing Data/Forest": 2})
    (src / "Training Data/Coast/notes.txt").write_text("not an image")
    (src / "Training Data/Coast/.DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    report, raw = run(make_params, tmp_path, tmp_path / "kaggle-copy")
    assert report["images"] == {"train": 10, "val": 4, "test": 4}
    assert report["classes"] == ["Coast", "Forest"]
    reasons = {Path(s["file"]).name: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"notes.txt", ".DS_Store"}
    assert all("not an image" in r for r in reasons.values())


def test_train_and_test_only_carves_validation(make_params, tmp_path):
    write_image_tree(tmp_path / "src", {"train/a": 10, "train/b": 10, "test/a": 3, "test/b": 3})
    _, raw = run(make_params, tmp_path, tmp_path / "src")
    assert split_counts(raw) == {"train": 16, "val": 4, "test": 6}


def test_class_folders_only_split_64_16_20(make_params, tmp_path):
    write_image_tree(tmp_path / "src", {"sea": 25, "snow": 25})
    _, raw = run(make_params, tmp_path, tmp_path / "src")
    assert split_counts(raw) == {"train": 32, "val": 8, "test": 10}


def test_max_per_class_caps_each_split(make_params, tmp_path):
    write_image_tree(tmp_path / "src", {"train/a": 10, "val/a": 5, "test/a": 5})
    _, raw = run(make_params, tmp_path, tmp_path / "src", max_per_class=3)
    assert split_counts(raw) == {"train": 3, "val": 3, "test": 3}


def test_duplicates_across_splits_are_kept_once_and_reported(make_params, tmp_path):
    write_image_tree(tmp_path / "src", {"train/a": 4, "val/a": 2, "test/a": 2})
    leaked = (tmp_path / "src/train/a/img_000.jpg").read_bytes()
    (tmp_path / "src/test/a/copy.jpg").write_bytes(leaked)
    report, raw = run(make_params, tmp_path, tmp_path / "src")
    assert report["images"]["test"] == 2
    assert report["duplicates"] == [
        {"file": "test/a/copy.jpg", "stage": "download", "reason": "exact duplicate of train/a/img_000.jpg"}
    ]
    assert not (raw / "test/a/copy.jpg").exists()


def test_zip_source(make_params, tmp_path):
    write_image_tree(tmp_path / "src", {"train/a": 4, "val/a": 2, "test/a": 2})
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((tmp_path / "src").rglob("*.jpg")):
            zf.write(path, Path("photos") / path.relative_to(tmp_path / "src"))
        zf.writestr("../../escape.jpg", image_bytes(colour_image(9)))
    report, raw = run(make_params, tmp_path, archive)
    assert report["images"] == {"train": 4, "val": 2, "test": 2}
    assert [s["file"] for s in report["skipped"]] == ["../../escape.jpg"]
    assert "zip-slip" in report["skipped"][0]["reason"]
    assert not (tmp_path.parent / "escape.jpg").exists()
    assert not list(tmp_path.glob("**/source-*"))  # the temporary extraction is gone


@pytest.mark.parametrize("source, message", [("no/such/folder", "does not exist"), ("params.txt", "not a .zip")])
def test_bad_source_paths_are_named(make_params, tmp_path, source, message):
    (tmp_path / "params.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=message):
        run(make_params, tmp_path, tmp_path / source)


def test_folder_without_images_fails(make_params, tmp_path):
    (tmp_path / "src/train/a").mkdir(parents=True)
    (tmp_path / "src/train/a/readme.txt").write_text("nothing here")
    with pytest.raises(ValueError, match="no usable images"):
        run(make_params, tmp_path, tmp_path / "src")
    assert not Path(make_params().paths.raw).exists()  # nothing half-written


def test_kaggle_unreachable_explains_the_offline_route(make_params, tmp_path, monkeypatch):
    import kagglehub

    def offline(handle, *args, **kwargs):
        assert handle == kaggle.DATASET
        raise ConnectionError("Failed to resolve www.kaggle.com")

    monkeypatch.setattr(kagglehub, "dataset_download", offline)
    with pytest.raises(SourceUnavailable) as err:
        run(make_params, tmp_path, "kaggle")
    message = str(err.value)
    assert "ConnectionError" in message and "data.source" in message and ".zip" in message


def test_kaggle_download_is_read_like_a_folder(make_params, tmp_path, monkeypatch):
    import kagglehub

    cache = tmp_path / "kagglehub-cache"
    write_image_tree(cache / "Landscape Classification", {"Training Data/Desert": 5, "Testing Data/Desert": 2})
    monkeypatch.setattr(kagglehub, "dataset_download", lambda handle, *a, **k: str(cache))
    report, _ = run(make_params, tmp_path, "kaggle")
    assert report["images"] == {"train": 4, "val": 1, "test": 2}
    assert report["source"] == f"kaggle:{kaggle.DATASET}"


def test_tfds_source(make_params, tmp_path, monkeypatch):
    """A real TFDS dataset, prepared locally by TFDS itself (no network)."""
    import numpy as np
    import tensorflow_datasets as tfds

    class TinyScenes(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = {"image": tfds.features.Image(shape=(None, None, 3)),
                        "label": tfds.features.ClassLabel(names=["lake", "dune/sand"])}
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(20), "test": self._generate_examples(6),
                    "unlabelled": self._generate_examples(2)}

        def _generate_examples(self, n):
            rng = np.random.default_rng(n)
            for i in range(n):
                yield i, {"image": rng.integers(0, 255, (20, 24, 3), dtype=np.uint8), "label": i % 2}

    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    report, raw = run(make_params, tmp_path, "tfds:tiny_scenes")
    # train + test present: validation carved 80:20 from train per class
    assert report["images"] == {"train": 16, "val": 4, "test": 6}
    assert report["classes"] == ["dune_sand", "lake"]
    assert all(row["format"] == "PNG" for row in read_manifest(raw))
    assert report["skipped"] == [
        {"file": "tfds split unlabelled", "stage": "download", "reason": "not a train/validation/test split"}
    ]


def test_tfds_unknown_dataset_says_how_to_work_offline(make_params, tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    with pytest.raises(SourceUnavailable, match="TFDS_DATA_DIR"):
        run(make_params, tmp_path, "tfds:no_such_dataset_here")


def test_two_folders_of_one_split_keep_equal_names_apart(make_params, tmp_path):
    """`train/` and `Training Data/` both hold img_000.jpg .. img_011.jpg, different photos."""
    from colorizer.prepare.resize import resize

    write_image_tree(tmp_path / "src", {"train/a": 12, "Training Data/a": 12, "val/a": 2, "test/a": 2})
    params = make_params({"data": {"source": str(tmp_path / "src")}})
    raw, resized = Path(params.paths.raw), Path(params.paths.resized)
    report = download(params, out=raw, root=tmp_path)
    resize(params.data, raw=raw, out=resized, report_path=Path(params.paths.data_report))

    assert report["images"] == {"train": 24, "val": 2, "test": 2}
    assert report["skipped"] == [] and report["duplicates"] == []
    rows = read_manifest(raw)
    on_disk = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file()
                     and p.name not in ("manifest.csv", "report.json"))
    assert sorted(r["file"] for r in rows) == on_disk  # manifest rows == files on disk
    assert "train/a/Training Data__img_000.jpg" in on_disk and "train/a/train__img_000.jpg" in on_disk
    for split in ("train", "val", "test"):  # == rows of the resized arrays, each photo once
        pixels, index = read_resized_split(resized, split)
        assert sorted(r["file"] for r in index) == sorted(r["file"] for r in rows if r["split"] == split)
        assert len({row.tobytes() for row in pixels}) == len(pixels)


def test_two_files_on_one_raw_path_are_refused_naming_both(make_params, tmp_path):
    # Nested class sub-folders are flattened with "__": x/y.jpg and x__y.jpg meet on one name.
    write_image_tree(tmp_path / "src", {"train/a": 2, "val/a": 2, "test/a": 2})
    (tmp_path / "src/train/a/x").mkdir()
    (tmp_path / "src/train/a/x/y.jpg").write_bytes(image_bytes(colour_image(7)))
    (tmp_path / "src/train/a/x__y.jpg").write_bytes(image_bytes(colour_image(8)))
    with pytest.raises(ValueError, match=r"train/a/x/y\.jpg.*train/a/x__y\.jpg.*train/a/x__y\.jpg|"
                                         r"train/a/x__y\.jpg.*train/a/x/y\.jpg.*train/a/x__y\.jpg"):
        run(make_params, tmp_path, tmp_path / "src")
    assert not Path(make_params().paths.raw).exists()
