"""`colorize`: the trained model on your own black-and-white photos, at full resolution.

    colorize PHOTO_OR_FOLDER... [--model PATH_OR_MLFLOW_URI] [--out DIR] [--compare]

Any size, mode and common format (JPEG, PNG, TIFF, WebP, ...) is accepted;
colour photos are converted to gray first. The model runs at its training size
on a stretched copy; the predicted ab is upsampled to the photo's own size and
joined with its full-resolution L, so the output keeps every original detail.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from colorizer.images import BadImage, decode_rgb
from colorizer.lab import AB_SCALE, lab_to_rgb, normalise_l, rgb_to_lab
from colorizer.progress import Progress

DEFAULT_MODEL = "models/model.keras"
DEFAULT_MAX_PIXELS = 64_000_000
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


def colorize_batch(model, photos: list[np.ndarray]) -> list[np.ndarray]:
    """Colorize full-resolution RGB (or gray-as-RGB) uint8 photos; returns RGB uint8 of the same sizes."""
    size = int(model.input_shape[1])
    lab = [rgb_to_lab(photo) for photo in photos]
    small = np.stack([_resize_channel(l[..., 0], size, size) for l in lab])[..., None]
    ab_small = np.asarray(model.predict_on_batch(normalise_l(small))) * AB_SCALE
    results = []
    for full, ab in zip(lab, ab_small):
        height, width = full.shape[:2]
        ab_full = np.stack([_resize_channel(ab[..., c], width, height) for c in range(2)], axis=-1)
        rgb = lab_to_rgb(np.concatenate([full[..., :1], ab_full], axis=-1))
        results.append((rgb * 255.0 + 0.5).astype(np.uint8))
    return results


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
    from colorizer.modelio import load_model

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
    from colorizer.config import ParamError, load_params
    from colorizer.tracking import tracking_uri
    from colorizer.workspace import repo_root

    try:
        return tracking_uri(load_params().mlflow, repo_root())
    except ParamError:
        return os.environ.get("MLFLOW_TRACKING_URI")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
    from colorizer import atomic

    with atomic.output_file(path, "wb") as handle:
        image.save(handle, format="PNG")


def _resize_channel(values: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(values.astype(np.float32), mode="F").resize((width, height), Image.BILINEAR))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="colorize", description="Colorize black-and-white photos with a trained landscape colorizer."
    )
    parser.add_argument("inputs", nargs="+", metavar="PHOTO_OR_FOLDER", help="image files or folders of them")
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
