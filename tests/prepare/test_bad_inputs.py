"""A corpus of everything users point the workflow at, good and bad, through download + resize.

Each case is either handled correctly or left out with its reason in the data
report; nothing disappears silently.
"""

from __future__ import annotations

import io
import json
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import colour_image, image_bytes, read_resized_split
from PIL import Image

from colorizer.prepare.download import download
from colorizer.prepare.resize import resize
from colorizer.prepare.sources.archive import ArchiveError, extract_zip


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims width x height pixels (a bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def encoded(image: Image.Image, fmt: str, **args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **args)
    return buffer.getvalue()


def build_corpus(root: Path) -> dict[str, str]:
    """Writes the corpus; returns {file: expected reason fragment} for the files that must be left out."""
    good = Image.fromarray(colour_image(1, 48))
    train, val, test = root / "Training Data", root / "Validation Data", root / "Testing Data"
    files = {
        train / "Forest/plain.jpg": image_bytes(colour_image(2, 48)),
        train / "Forest/UPPER CASE.JPG": image_bytes(colour_image(3, 48)),
        train / "Forest/Ünïcödé name with spaces.jpg": image_bytes(colour_image(4, 48)),
        train / "Forest/gray.png": encoded(good.convert("L"), "PNG"),
        train / "Forest/palette.gif": encoded(good.convert("P"), "GIF"),
        train / "Forest/cmyk.jpg": encoded(good.convert("CMYK"), "JPEG"),
        train / "Forest/alpha.png": encoded(good.convert("RGBA"), "PNG"),
        train / "Forest/sixteen-bit.png": encoded(Image.fromarray(np.full((48, 48), 40000, np.uint16)), "PNG"),
        train / "Forest/lying.png": image_bytes(colour_image(5, 48)),  # JPEG bytes, .png name
        train / "Forest/rotated.jpg": image_bytes(colour_image(6, 48, (200, 40, 40))),
        # Left out, each for its reason:
        train / "Forest/zero.jpg": b"",
        train / "Forest/notes.txt": b"field notes\n",
        train / "Forest/.DS_Store": b"\x00\x00\x00\x01Bud1" + b"\x00" * 64,
        train / "Forest/Thumbs.db": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64,
        train / "Forest/garbage.jpg": b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4,
        train / "Forest/truncated.jpg": image_bytes(colour_image(7, 64))[:700],
        train / "Forest/one-pixel.png": image_bytes(colour_image(8, 1), "PNG"),
        train / "Forest/thin.png": image_bytes(np.zeros((2, 300, 3), np.uint8), "PNG"),
        train / "Forest/bomb.png": png_claiming(100_000, 100_000),
        train / "Glacier/ice.jpg": image_bytes(colour_image(9, 48, (220, 235, 245))),
        val / "Forest/val.jpg": image_bytes(colour_image(10, 48)),
        test / "Forest/test.jpg": image_bytes(colour_image(11, 48)),
        test / "Forest/leaked.jpg": image_bytes(colour_image(2, 48)),  # same bytes as plain.jpg
        test / "Glacier/ice-test.jpg": image_bytes(colour_image(12, 48, (220, 235, 245))),
    }
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (train / "Empty").mkdir()
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 counter-clockwise to display
    tall = np.zeros((60, 30, 3), np.uint8)
    tall[:30] = (255, 0, 0)
    (train / "Forest/rotated.jpg").write_bytes(image_bytes(tall, "JPEG", exif=exif))
    return {
        "zero.jpg": "empty file", "notes.txt": "not an image", ".DS_Store": "not an image",
        "Thumbs.db": "not an image", "garbage.jpg": "", "truncated.jpg": "cannot decode",
        "one-pixel.png": "too small", "thin.png": "too small", "bomb.png": "decompression bomb",
    }


@pytest.fixture
def corpus_run(make_params, tmp_path):
    expected = build_corpus(tmp_path / "messy")
    # min_colour_spread 0: the gray modes here must decode, not be skipped as colourless
    # (test_clean_splits.py covers that).
    params = make_params({"data": {"source": str(tmp_path / "messy"), "max_pixels": 50_000_000,
                                   "min_colour_spread": 0}})
    download(params, out=Path(params.paths.raw), root=tmp_path)
    report = resize(params.data, raw=Path(params.paths.raw), out=Path(params.paths.resized),
                    report_path=Path(params.paths.data_report))
    return params, report, expected


def test_every_bad_file_is_listed_with_its_reason(corpus_run):
    params, report, expected = corpus_run
    skipped = {Path(s["file"]).name: s for s in report["skipped"]}
    assert set(skipped) == set(expected)
    for name, fragment in expected.items():
        assert fragment in skipped[name]["reason"], (name, skipped[name])
    assert skipped["truncated.jpg"]["stage"] == "resize"  # a valid header: only decoding finds it
    assert skipped["bomb.png"]["stage"] == "download"
    assert report["skipped_count"] == len(expected)
    on_disk = json.loads(Path(params.paths.data_report).read_text())
    assert on_disk["skipped_count"] == len(expected)


def test_usable_images_survive_in_every_mode_and_name(corpus_run):
    params, report, _ = corpus_run
    _, rows = read_resized_split(Path(params.paths.resized), "train")
    kept = {Path(r["file"]).name for r in rows}
    assert {"UPPER CASE.JPG", "Ünïcödé name with spaces.jpg", "gray.png", "palette.gif", "cmyk.jpg",
            "alpha.png", "sixteen-bit.png", "lying.png", "rotated.jpg", "plain.jpg", "ice.jpg"} == kept
    assert report["images"] == {"train": 11, "val": 1, "test": 2}


def test_rotated_photo_is_upright_and_16_bit_is_scaled(corpus_run):
    params, _, _ = corpus_run
    pixels, rows = read_resized_split(Path(params.paths.resized), "train")
    index = {Path(r["file"]).name: i for i, r in enumerate(rows)}
    rotated = pixels[index["rotated.jpg"]].astype(int)
    # Red was the top half of a tall image shown rotated 90 degrees CCW: red ends up on the left.
    assert rotated[:, :8, 0].mean() > 150 and rotated[:, -8:, 0].mean() < 80
    sixteen = pixels[index["sixteen-bit.png"]]
    assert abs(int(sixteen.mean()) - round(40000 / 257)) <= 2  # not clipped to 255


def test_duplicates_empty_folders_and_missing_classes_are_reported(corpus_run):
    _, report, _ = corpus_run
    assert [d["file"] for d in report["duplicates"]] == ["test/Forest/leaked.jpg"]
    warnings = {w["file"]: w["reason"] for w in report["warnings"]}
    assert warnings["Training Data/Empty"] == "empty class folder"
    assert "no images in the val split" in warnings["val/Glacier"]


def test_a_source_with_only_bad_files_fails(make_params, tmp_path):
    (tmp_path / "bad/a").mkdir(parents=True)
    (tmp_path / "bad/a/x.jpg").write_bytes(b"")
    params = make_params({"data": {"source": str(tmp_path / "bad")}})
    with pytest.raises(ValueError, match="no usable images"):
        download(params, out=Path(params.paths.raw), root=tmp_path)


# ---------------------------------------------------------------- archives


def zip_with(entries: dict[str, bytes], symlinks: dict[str, str] = {}) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in symlinks.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buffer.getvalue()


def test_malicious_archive_entries_are_refused_and_reported(tmp_path):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(zip_with(
        {"ok/a/x.jpg": b"1", "../../outside.jpg": b"2", "/etc/abs.jpg": b"3", "ok/../../up.jpg": b"4"},
        symlinks={"ok/a/link.jpg": "/etc/passwd"},
    ))
    refused = extract_zip(archive, tmp_path / "out", max_bytes=10_000)
    reasons = {r["file"]: r["reason"] for r in refused}
    assert set(reasons) == {"../../outside.jpg", "/etc/abs.jpg", "ok/../../up.jpg", "ok/a/link.jpg"}
    assert "zip-slip" in reasons["../../outside.jpg"] and "absolute" in reasons["/etc/abs.jpg"]
    assert "symbolic link" in reasons["ok/a/link.jpg"]
    assert [p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file()] == [
        "ok/a/x.jpg"
    ]
    assert not (tmp_path.parent / "outside.jpg").exists() and not (tmp_path / "up.jpg").exists()


def test_zip_bomb_is_refused_without_leaving_files(tmp_path):
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(zip_with({"a/b/zeros.jpg": b"\0" * 5_000_000}))
    assert archive.stat().st_size < 20_000
    with pytest.raises(ArchiveError, match="data.max_archive_gib"):
        extract_zip(archive, tmp_path / "out", max_bytes=1_000_000)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_not_a_zip_is_named(tmp_path):
    archive = tmp_path / "photos.zip"
    archive.write_bytes(b"PK\x03\x04 but not really")
    with pytest.raises(ArchiveError, match="photos.zip"):
        extract_zip(archive, tmp_path / "out", max_bytes=1000)
