"""`colorize`: the trained model on your own black-and-white photos, at full resolution.

    colorize PHOTO_OR_FOLDER... [--model PATH_OR_MLFLOW_URI] [--out DIR] [--compare]
    colorize --info [--model PATH]     # the model card: data, params, test results, limits

Any size, mode and common format (JPEG, PNG, TIFF, WebP, ...) is accepted;
colour photos are converted to gray first (see `model/inference.py` for how).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from colorizer.core.progress import Progress
from colorizer.data.images import DEFAULT_MAX_PIXELS, BadImage, decode_rgb
from colorizer.model.inference import colorize_batch

DEFAULT_MODEL = "models/model.keras"
# Channels that differ by more than this (in 0..255) anywhere make a photo "colour".
_COLOUR_SPREAD = 2


@dataclass
class Photo:
    path: Path
    rgb: np.ndarray  # (H, W, 3) uint8, upright

    @property
    def has_colour(self) -> bool:
        channels = self.rgb.astype(np.int16)
        return int(np.max(channels.max(axis=-1) - channels.min(axis=-1))) > _COLOUR_SPREAD


def comparison(photo: Photo, colorized: np.ndarray) -> Image.Image:
    """gray | colorized | original (when the input had colour), side by side."""
    gray = np.asarray(Image.fromarray(photo.rgb).convert("L").convert("RGB"))
    panels = [gray, colorized] + ([photo.rgb] if photo.has_colour else [])
    return Image.fromarray(np.concatenate(panels, axis=1))


def find_inputs(arguments: list[str]) -> list[tuple[Path, Path]]:
    """(file, output path relative to --out) for each file given or found under a folder."""
    found = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
                found.append((file, file.relative_to(path).with_suffix(".png")))
        else:
            found.append((path, Path(path.name).with_suffix(".png")))
    return found


def load_colorizer(spec: str):
    """A `.keras` path, or an MLflow URI (`runs:/<id>/model`, `models:/<name>/<version>`)."""
    from colorizer.model.modelio import load_model

    if "://" in spec or spec.startswith(("runs:/", "models:/")):
        import mlflow

        mlflow.set_tracking_uri(_project_store())
        local = Path(mlflow.artifacts.download_artifacts(spec))
        candidates = sorted(local.rglob("*.keras")) if local.is_dir() else [local]
        if not candidates:
            raise FileNotFoundError(f"--model {spec}: no .keras file in the MLflow model")
        return load_model(candidates[0])
    return load_model(spec)


def _project_store() -> str | None:
    """MLFLOW_TRACKING_URI, else this repository's store when run inside it, else MLflow's default."""
    from colorizer.core.config import ParamError, load_params
    from colorizer.core.workspace import repo_root
    from colorizer.tracking.tracker import tracking_uri

    try:
        return tracking_uri(load_params().mlflow, repo_root())
    except ParamError:
        return os.environ.get("MLFLOW_TRACKING_URI")


def print_model_card(model: str) -> int:
    """The card evaluate writes beside the model (tracking/model_card.py)."""
    from colorizer.tracking.model_card import card_path

    path = card_path(model)
    if not path.is_file():
        print(f"colorize: no model card at {path} (evaluate writes it: dvc repro evaluate)", file=sys.stderr)
        return 2
    print(path.read_text(), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.info:
        return print_model_card(args.model)
    if not args.inputs:
        _parser().error("give photos or folders to colorize (or --info)")
    inputs = find_inputs(args.inputs)
    if not inputs:
        print("colorize: no input files found", file=sys.stderr)
        return 2
    try:
        model = load_colorizer(args.model)
    except (FileNotFoundError, ValueError) as err:
        print(f"colorize: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    failures = _run(model, inputs, out, args)
    done = len(inputs) - len(failures)
    print(f"colorize: {done} of {len(inputs)} photos written to {out}/", file=sys.stderr)
    for path, reason in failures:
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    return 1 if failures else 0


def _run(model, inputs, out: Path, args) -> list[tuple[Path, str]]:
    failures = []
    progress = Progress("colorize", total=len(inputs), unit="photos")
    for start in range(0, len(inputs), args.batch_size):
        batch = []
        for path, target in inputs[start : start + args.batch_size]:
            try:
                batch.append((Photo(path, np.asarray(decode_rgb(path.read_bytes(), args.max_pixels))), target))
            except (BadImage, OSError) as err:
                failures.append((path, str(err)))
        if batch:
            for (photo, target), colorized in zip(batch, colorize_batch(model, [p.rgb for p, _ in batch])):
                _write(out / target, Image.fromarray(colorized))
                if args.compare:
                    _write(out / target.with_name(target.stem + "_compare.png"), comparison(photo, colorized))
        progress.advance(len(inputs[start : start + args.batch_size]))
    progress.done()
    return failures


def _write(path: Path, image: Image.Image) -> None:
    from colorizer.core import atomic

    with atomic.output_file(path, "wb") as handle:
        image.save(handle, format="PNG")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="colorize", description="Colorize black-and-white photos with a trained landscape colorizer."
    )
    parser.add_argument("inputs", nargs="*", metavar="PHOTO_OR_FOLDER", help="image files or folders of them")
    parser.add_argument("--info", action="store_true",
                        help="print the model card (data, params, test results, limits) of --model and exit")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f".keras file or MLflow model URI such as runs:/<run id>/model (default {DEFAULT_MODEL})")
    parser.add_argument("--out", default="colorized", help="output folder (default ./colorized)")
    parser.add_argument("--compare", action="store_true",
                        help="also write <name>_compare.png: gray | colorized | original (for colour inputs)")
    parser.add_argument("--batch-size", type=int, default=8, help="photos per model call (default 8)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="refuse larger images (decompression bombs)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
