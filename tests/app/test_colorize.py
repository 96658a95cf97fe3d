"""The `colorize` command on photos of every size, mode and format."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from conftest import colour_image
from PIL import Image
from project import BIN, stage_env

from colorizer.app.colorize import main
from colorizer.core.config import ModelParams
from colorizer.model.inference import colorize_batch
from colorizer.model.network import build_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.keras"
    config = ModelParams(arch="hybrid", width=8, skips=True, norm="batch", backbone="none", temperature=0.38, prior_correction=0.0,
                         output_stride=2)
    build_model(config, 32).save(path)
    return path


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "album"
    (folder / "trip").mkdir(parents=True)
    colour = Image.fromarray(colour_image(1, 64))
    colour.resize((90, 60)).save(folder / "wide colour.jpg", quality=92)
    colour.convert("L").resize((45, 70)).save(folder / "trip/old.PNG")
    colour.convert("L").save(folder / "trip/scan.tiff")
    colour.save(folder / "trip/web.webp")
    (folder / "trip/notes.txt").write_text("not a photo")
    return folder


def test_output_keeps_the_original_resolution_and_detail(model_file):
    from colorizer.model.modelio import load_model

    model = load_model(model_file)
    gray = np.repeat(np.asarray(Image.fromarray(colour_image(2, 80)).convert("L"))[..., None], 3, axis=-1)
    [colorized] = colorize_batch(model, [gray[:50]])
    assert colorized.shape == (50, 80, 3)
    # Full-resolution lightness survives: the gray version of the output is the input.
    back = np.asarray(Image.fromarray(colorized).convert("L"), np.int16)
    assert np.abs(back - gray[:50, :, 0]).mean() < 3


def test_folder_batches_report_unreadable_files_and_exit_code(model_file, photos, tmp_path, capsys):
    out = tmp_path / "out"
    code = main([str(photos), "--model", str(model_file), "--out", str(out), "--batch-size", "2", "--compare"])
    assert code == 1  # one file was not a photo
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["trip/old.png", "trip/old_compare.png", "trip/scan.png", "trip/scan_compare.png",
                       "trip/web.png", "trip/web_compare.png", "wide colour.png", "wide colour_compare.png"]
    assert Image.open(out / "wide colour.png").size == (90, 60)
    assert Image.open(out / "trip/old.png").size == (45, 70)
    # compare: gray | colorized | original for colour input, gray | colorized for gray input
    assert Image.open(out / "wide colour_compare.png").size == (270, 60)
    assert Image.open(out / "trip/old_compare.png").size == (90, 70)
    err = capsys.readouterr().err
    assert "4 of 5 photos written" in err and "notes.txt" in err and "not an image" in err


def test_all_good_exits_zero_and_bad_model_is_explained(model_file, photos, tmp_path):
    single = photos / "trip/old.PNG"
    assert main([str(single), "--model", str(model_file), "--out", str(tmp_path / "o")]) == 0
    assert main([str(single), "--model", str(tmp_path / "missing.keras")]) == 2


def test_console_script_is_installed(model_file, photos, tmp_path):
    result = subprocess.run(
        [str(BIN / "colorize"), str(photos / "trip/scan.tiff"), "--model", str(model_file), "--out", str(tmp_path)],
        env=stage_env(), capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "scan.png").is_file()
    assert "\r" not in result.stderr  # captured output: plain progress lines, no carriage returns


def test_info_prints_the_model_card_beside_the_model(tmp_path, capsys):
    model = tmp_path / "models" / "model.keras"
    model.parent.mkdir()
    assert main(["--info", "--model", str(model)]) == 2  # evaluate has not written one yet
    assert "no model card" in capsys.readouterr().err
    (model.parent / "model_card.md").write_text("# Landscape colorizer\n\n**Known limits:** street scenes\n")
    assert main(["--info", "--model", str(model)]) == 0
    assert "**Known limits:** street scenes" in capsys.readouterr().out
