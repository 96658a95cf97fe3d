"""The `colorize` command on photos of every size, mode and format."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import colour_image, repo_model
from PIL import Image
from project import BIN, stage_env

from colorizer.app.colorize import main
from colorizer.model.inference import colorize_batch
from colorizer.model.network import build_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.keras"
    # Untrained, from scratch: its colours stay mild. An untrained decoder over the pretrained
    # backbone's features paints colours far outside sRGB, whose clipping moves the lightness
    # that the resolution test checks.
    config = repo_model(width=8, prior_correction=0.0, output_stride=2, backbone="none")
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


# ----------------------------------------------------------------- outputs never lost or overwritten


def write_photo(path, seed: int, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(colour_image(seed, 48)).convert("L").resize(size).save(path)
    return path


def test_equal_names_from_two_folders_get_distinct_outputs(model_file, tmp_path, capsys):
    a = write_photo(tmp_path / "a/x.jpg", seed=1, size=(40, 30))
    b = write_photo(tmp_path / "b/x.jpg", seed=2, size=(30, 40))
    out = tmp_path / "o"
    assert main([str(a), str(b), "--model", str(model_file), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["x.png", "x_1.png"]
    assert Image.open(out / "x.png").size == (40, 30) and Image.open(out / "x_1.png").size == (30, 40)
    err = capsys.readouterr().err
    assert "2 of 2 photos written" in err and f"{b} -> {out / 'x_1.png'}" in err


def test_same_stem_in_one_folder_keeps_both_and_keeps_subfolders(model_file, tmp_path):
    album = tmp_path / "album"
    write_photo(album / "trip/x.jpg", seed=1, size=(40, 30))
    write_photo(album / "trip/x.png", seed=2, size=(30, 40))
    out = tmp_path / "o"
    assert main([str(album), "--model", str(model_file), "--out", str(out), "--compare"]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["trip/x.png", "trip/x_1.png", "trip/x_1_compare.png", "trip/x_compare.png"]
    assert Image.open(out / "trip/x.png").size == (40, 30)  # sorted input order: x.jpg first
    assert Image.open(out / "trip/x_1.png").size == (30, 40)


def test_an_input_is_never_overwritten(model_file, tmp_path, capsys):
    album = tmp_path / "album"
    photo = write_photo(album / "photo.png", seed=3)
    before = photo.read_bytes()
    for extra in ([], ["--overwrite"]):
        assert main([str(album), "--model", str(model_file), "--out", str(album), *extra]) == 2
        assert photo.read_bytes() == before
        assert f"{photo} is one of the input photos" in capsys.readouterr().err


def test_existing_outputs_need_overwrite(model_file, tmp_path, capsys):
    photo = write_photo(tmp_path / "in/x.jpg", seed=4)
    out = tmp_path / "o"
    (out).mkdir()
    (out / "x.png").write_bytes(b"earlier result")
    assert main([str(photo), "--model", str(model_file), "--out", str(out)]) == 2
    assert (out / "x.png").read_bytes() == b"earlier result"
    err = capsys.readouterr().err
    assert f"{out / 'x.png'} already exist" in err and "--overwrite" in err
    assert main([str(photo), "--model", str(model_file), "--out", str(out), "--overwrite"]) == 0
    assert Image.open(out / "x.png").size == (40, 30)


def test_overwrite_never_replaces_a_photo_beside_the_inputs_even_through_a_link(model_file, tmp_path, capsys):
    album = tmp_path / "album"
    photo = write_photo(album / "x.jpg", seed=6)
    sibling = write_photo(album / "x.png", seed=7)  # not an input: only x.jpg is given
    before = sibling.read_bytes()
    (tmp_path / "link").symlink_to(album)
    for out in (tmp_path / "link", album):
        assert main([str(photo), "--model", str(model_file), "--out", str(out), "--overwrite"]) == 2
        assert sibling.read_bytes() == before
        assert "exists in a folder of input photos" in capsys.readouterr().err
    # A new file there is no one's photo: writing beside the inputs stays allowed.
    sibling.unlink()
    assert main([str(photo), "--model", str(model_file), "--out", str(tmp_path / "link")]) == 0


def test_overwrite_never_replaces_a_photo_beside_the_inputs_through_a_bind_mount(model_file, tmp_path, capsys):
    """A bind mount shows the input folder under another path that no link resolves: the files
    themselves (device, inode) are compared, not their names."""
    album = tmp_path / "album"
    photo = write_photo(album / "x.jpg", seed=6)
    sibling = write_photo(album / "x.png", seed=7)
    before = sibling.read_bytes()
    view = tmp_path / "view"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(album), str(view)], capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot bind-mount here ({mounted.stderr.strip() or 'mount failed'}; it needs root)")
    try:
        assert main([str(photo), "--model", str(model_file), "--out", str(view), "--overwrite"]) == 2
        assert sibling.read_bytes() == before
        assert "exists in a folder of input photos" in capsys.readouterr().err
        assert main([str(view / "x.jpg"), "--model", str(model_file), "--out", str(album), "--overwrite"]) == 2
        assert sibling.read_bytes() == before
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def test_a_full_disk_is_one_line_and_leaves_only_whole_photos(model_file, tmp_path, capsys):
    out = tmp_path / "small"
    out.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(out)], capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip() or 'mount failed'}; it needs root)")
    try:
        photos = [write_photo(tmp_path / "in" / f"{k}.jpg", seed=k, size=(160, 120)) for k in range(12)]
        assert main([*map(str, photos), "--model", str(model_file), "--out", str(out), "--compare"]) == 1
        err = capsys.readouterr().err
        ours = [line for line in err.splitlines() if line.startswith("colorize:")]
        assert "Traceback" not in err and len(ours) == 1 and "no space left on device writing" in ours[0], err[-2000:]
        written = sorted(out.iterdir())
        assert all(not path.name.startswith(".") for path in written)  # no partial file left
        for path in written:
            Image.open(path).load()  # every file there is a whole PNG
    finally:
        subprocess.run(["umount", "-l", str(out)], check=False)


def test_out_naming_a_file_and_an_unknown_mlflow_model_are_one_line(model_file, tmp_path, capsys, monkeypatch):
    photo = write_photo(tmp_path / "x.jpg", seed=8)
    (tmp_path / "taken").write_text("a file")
    assert main([str(photo), "--model", str(model_file), "--out", str(tmp_path / "taken")]) == 2
    assert "--out " in capsys.readouterr().err
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main([str(photo), "--model", "runs:/0123456789abcdef/model", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    ours = [line for line in err.splitlines() if line.startswith("colorize:")]  # (MLflow logs its store's set-up)
    assert "Traceback" not in err and len(ours) == 1 and "--model runs:/0123456789abcdef/model: not found" in ours[0]


def test_the_pixel_limit_is_named_as_the_option_that_sets_it(model_file, tmp_path, capsys):
    photo = write_photo(tmp_path / "x.jpg", seed=9)
    assert main([str(photo), "--model", str(model_file), "--out", str(tmp_path / "o"), "--max-pixels", "100"]) == 1
    err = capsys.readouterr().err
    assert "--max-pixels" in err and "data.max_pixels" not in err


@pytest.mark.parametrize("option", [["--batch-size", "-1"], ["--batch-size", "0"], ["--max-pixels", "0"],
                                    ["--batch-size", "two"]])
def test_bad_options_are_refused_by_the_parser(model_file, tmp_path, option, capsys):
    photo = write_photo(tmp_path / "x.jpg", seed=5)
    with pytest.raises(SystemExit) as exit_:
        main([str(photo), "--model", str(model_file), "--out", str(tmp_path / "o"), *option])
    assert exit_.value.code == 2
    assert option[0] in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_fifo_and_device_links_are_refused_not_read(model_file, tmp_path):
    album = tmp_path / "album"
    write_photo(album / "good.jpg", seed=6)
    os.mkfifo(album / "pipe.png")
    (album / "zero.png").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "given.jpg")
    try:
        result = subprocess.run(
            [str(BIN / "colorize"), str(album), str(tmp_path / "given.jpg"), "--model", str(model_file),
             "--out", str(tmp_path / "o")], env=stage_env(), capture_output=True, text=True, timeout=180,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("colorize blocked reading a FIFO or device")
    assert result.returncode == 1, result.stderr
    assert "1 of 4 photos written" in result.stderr
    assert "pipe.png: not a regular file (a FIFO" in result.stderr
    assert "zero.png: not a regular file (a character device" in result.stderr
    assert "given.jpg: not a regular file (a FIFO" in result.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["good.png"]


# ----------------------------------------------------------------- malformed model files


def bad_model_files(folder, good):
    folder.mkdir()
    (folder / "random.keras").write_bytes(np.random.default_rng(0).bytes(4096))
    with zipfile.ZipFile(folder / "noconfig.keras", "w") as archive:
        archive.writestr("metadata.json", "{}")
    data = good.read_bytes()
    (folder / "truncated.keras").write_bytes(data[: len(data) // 2])
    return sorted(folder.iterdir())


def test_malformed_model_files_get_one_clear_line(model_file, tmp_path, capsys):
    from colorizer.model.modelio import BadModelFile, load_model

    photo = write_photo(tmp_path / "x.jpg", seed=7)
    for bad in bad_model_files(tmp_path / "models", model_file):
        with pytest.raises(BadModelFile, match=rf"{bad}: not a readable \.keras model file"):
            load_model(bad)
        assert main([str(photo), "--model", str(bad), "--out", str(tmp_path / "o")]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines == [f"colorize: {bad}: " + lines[0].split(f"{bad}: ", 1)[1]] and "not a readable" in lines[0]
    assert not (tmp_path / "o").exists()


def test_malformed_model_from_the_console_has_no_traceback(model_file, tmp_path):
    photo = write_photo(tmp_path / "x.jpg", seed=8)
    bad = bad_model_files(tmp_path / "models", model_file)[-1]  # truncated.keras
    result = subprocess.run([str(BIN / "colorize"), str(photo), "--model", str(bad), "--out", str(tmp_path / "o")],
                            env=stage_env(), capture_output=True, text=True, timeout=180)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"colorize: {bad}: not a readable .keras model file" in result.stderr


# ----------------------------------------------------------------- the output has colour


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory, tiny_data):
    """A tiny model trained on the session's tiny synthetic set, as the pipeline trains (~15 s).

    mse loss: on 30 training photos, the classification loss paints vivid but wrong hues
    for many epochs (measured: ab error 46 against gray's 30), while mse learns each
    scene's colours first, which is what this test is about. 25 epochs: with the lowres
    decoder of the compute cut (the default) this tiny network learns more slowly (measured:
    ab error 28.1 after 15 epochs, 23.5 after 19, 18.4 after 25, against gray's 26.9).
    """
    from conftest import new_store, tiny_params

    from colorizer.training.train import train

    root = tmp_path_factory.mktemp("trained")
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", new_store(root))
    try:
        params = tiny_params(root, {"train": {"epochs": 25, "loss": "mse"}})
        train(params, shards=Path(tiny_data.paths.shards), root=root)
    finally:
        patch.undo()
    return Path(params.paths.model)


def test_colorized_photos_have_colour_closer_to_the_truth_than_gray(trained_model, tiny_data, tmp_path):
    """Known photos (one training photo per class): gray in, colour out, compared in LAB ab."""
    from colorizer.data.lab import rgb_to_lab
    from colorizer.data.raw import read_manifest

    raw = Path(tiny_data.paths.raw)
    rows = {r["class"]: r for r in read_manifest(raw) if r["split"] == "train"}  # the last per class
    album = tmp_path / "gray"
    album.mkdir()
    truths = {}
    for label, row in sorted(rows.items()):
        truths[label] = np.asarray(Image.open(raw / row["file"]).convert("RGB"))
        Image.fromarray(truths[label]).convert("L").save(album / f"{label}.png")
    out = tmp_path / "o"
    assert main([str(album), "--model", str(trained_model), "--out", str(out)]) == 0

    chroma, error, gray_error = [], [], []
    for label, truth in truths.items():
        colorized = np.asarray(Image.open(out / f"{label}.png").convert("RGB"))
        assert colorized.shape == truth.shape
        ab_out, ab_truth = rgb_to_lab(colorized)[..., 1:], rgb_to_lab(truth)[..., 1:]
        chroma.append(np.linalg.norm(ab_out, axis=-1).mean())
        error.append(np.linalg.norm(ab_out - ab_truth, axis=-1).mean())
        gray_error.append(np.linalg.norm(ab_truth, axis=-1).mean())  # gray is ab = 0
    chroma, error, gray_error = (float(np.mean(v)) for v in (chroma, error, gray_error))
    print(f"mean chroma {chroma:.1f}, ab error {error:.1f}, gray's {gray_error:.1f}")
    assert chroma > 10, f"output is nearly gray (mean chroma {chroma:.1f})"
    assert error < gray_error, f"ab error {error:.1f} is no closer to the truth than gray's {gray_error:.1f}"


# ----------------------------------------------------------------- Ctrl-C and outputs that cannot be written

# Ctrl-C landing exactly when `colorize` first imports `module` (numpy: the console script's
# own imports; keras: loading the model), made exact by raising KeyboardInterrupt from the import.
INTERRUPTED_AT_IMPORT = """
import builtins, sys

module = sys.argv.pop(1)
real_import = builtins.__import__

def interrupted(name, *args, **kwargs):
    if name.split(".")[0] == module and module not in sys.modules:
        raise KeyboardInterrupt
    return real_import(name, *args, **kwargs)

builtins.__import__ = interrupted
from colorizer.app.colorize import main
sys.exit(main())
"""


@pytest.mark.parametrize("module", ["numpy", "keras"])
def test_ctrl_c_before_or_while_loading_the_model_is_one_line(model_file, tmp_path, module):
    photo = write_photo(tmp_path / "x.jpg", seed=10)
    result = subprocess.run([str(BIN / "python"), "-c", INTERRUPTED_AT_IMPORT, module, str(photo),
                             "--model", str(model_file), "--out", str(tmp_path / "o")],
                            env=stage_env(), capture_output=True, text=True, timeout=180)
    assert result.returncode == 130, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == ["colorize: stopped (Ctrl-C); run it again"]
    assert not (tmp_path / "o").exists()


def test_a_file_where_an_output_folder_goes_is_refused_before_any_work(model_file, tmp_path, capsys):
    album = tmp_path / "album"
    write_photo(album / "a.jpg", seed=11)
    write_photo(album / "sub/x.jpg", seed=12)
    out = tmp_path / "o2"
    out.mkdir()
    (out / "sub").write_text("a file of the user's")
    assert main([str(album), "--model", str(model_file), "--out", str(out), "--overwrite"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"colorize: {out / 'sub'} is a file, where the folder of output {out / 'sub/x.png'} goes")
    assert sorted(p.name for p in out.iterdir()) == ["sub"]  # nothing written, not even a.png


def test_a_folder_where_an_output_goes_is_refused_even_with_overwrite(model_file, tmp_path, capsys):
    photo = write_photo(tmp_path / "in/x.jpg", seed=13)
    out = tmp_path / "o"
    (out / "x.png").mkdir(parents=True)
    assert main([str(photo), "--model", str(model_file), "--out", str(out), "--overwrite"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"colorize: {out / 'x.png'} is a folder, where this output goes")
    assert (out / "x.png").is_dir() and not list((out / "x.png").iterdir())


def test_an_output_that_cannot_be_written_is_one_line_naming_it(model_file, tmp_path, capsys, monkeypatch):
    """A read-only place, for one (as root, a chmod would not stop the write: it is simulated)."""
    import contextlib
    import errno

    from colorizer.core import atomic

    photos = [write_photo(tmp_path / "in" / f"{k}.jpg", seed=k) for k in range(3)]
    out = tmp_path / "o"
    real_output_file = atomic.output_file

    @contextlib.contextmanager
    def read_only_after_the_first(path, mode="w"):
        if Path(path).name != "0.png":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        with real_output_file(path, mode) as handle:
            yield handle

    monkeypatch.setattr(atomic, "output_file", read_only_after_the_first)
    assert main([*map(str, photos), "--model", str(model_file), "--out", str(out), "--batch-size", "1"]) == 1
    err = capsys.readouterr().err
    ours = [line for line in err.splitlines() if line.startswith("colorize:")]
    assert "Traceback" not in err and ours == [
        f"colorize: cannot write {out / '1.png'}: {os.strerror(errno.EROFS)} (the photos written before it are whole)"]
    assert sorted(p.name for p in out.iterdir()) == ["0.png"]
