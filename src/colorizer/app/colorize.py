"""`colorize`: the trained model on your own black-and-white photos, at full resolution.

    colorize PHOTO_OR_FOLDER... [--model PATH_OR_MLFLOW_URI] [--out DIR] [--compare] [--overwrite]
    colorize --info [--model PATH]     # the model card: data, params, test results, limits

Any size, mode and common format (JPEG, PNG, TIFF, WebP, ...) is accepted;
colour photos are converted to gray first (see `model/inference.py` for how).

Outputs are PNGs named after the inputs, keeping the folders below a folder
argument (`album/trip/x.jpg` -> `OUT/trip/x.png`). Two inputs that would get the
same output name (`x.jpg` and `x.png`, or `a/x.jpg` and `b/x.jpg`) are kept
apart by a number, in input order: `x.png`, then `x_1.png`, and each renamed
output is printed. Before any work, the command refuses to write over an input,
and over an existing output unless `--overwrite` is given. Only regular files
are read (a FIFO or device is refused, never read), each up to a byte cap.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from colorizer.core.errors import disk_full, report_disk_full
from colorizer.core.files import MIB, read_regular_file
from colorizer.core.progress import Progress

# numpy, PIL and the model code are imported inside `main` (by the functions it calls), never
# when the console script imports this module: a Ctrl-C during those imports is then one line.
if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

DEFAULT_MODEL = "models/model.keras"
# Channels that differ by more than this (in 0..255) anywhere make a photo "colour".
_COLOUR_SPREAD = 2
# No genuine image file is larger than its pixels uncompressed at 16-bit RGBA (8 bytes each),
# plus room for metadata: the byte cap that goes with --max-pixels.
_BYTES_PER_PIXEL_CAP = 8


class Refused(ValueError):
    """The command would lose or overwrite something; nothing has been written."""


class CannotWrite(OSError):
    """An output could not be written (read-only place, no permission, a folder or file in the
    way), for any reason but a full disk; the message names it and the reason."""


@dataclass(frozen=True)
class Output:
    source: Path
    target: Path  # relative to --out
    compare: Path | None  # relative to --out, with --compare


@dataclass
class Photo:
    path: Path
    rgb: np.ndarray  # (H, W, 3) uint8, upright

    @property
    def has_colour(self) -> bool:
        import numpy as np

        channels = self.rgb.astype(np.int16)
        return int(np.max(channels.max(axis=-1) - channels.min(axis=-1))) > _COLOUR_SPREAD


def comparison(photo: Photo, colorized: np.ndarray) -> Image.Image:
    """gray | colorized | original (when the input had colour), side by side."""
    import numpy as np
    from PIL import Image

    gray = np.asarray(Image.fromarray(photo.rgb).convert("L").convert("RGB"))
    panels = [gray, colorized] + ([photo.rgb] if photo.has_colour else [])
    return Image.fromarray(np.concatenate(panels, axis=1))


def find_inputs(arguments: list[str]) -> list[tuple[Path, Path]]:
    """(file, output path relative to --out) for each file given or found under a folder."""
    found = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found += [(file, file.relative_to(path).with_suffix(".png")) for file in _files_under(path)]
        else:
            found.append((path, Path(path.name).with_suffix(".png")))
    return found


def _files_under(folder: Path) -> list[Path]:
    """Every non-folder entry below `folder` (links and FIFOs too: reading refuses them, with
    the reason, rather than skipping them unseen); hidden names are left out."""
    found = []
    for parent, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(parent) / n for n in names if not n.startswith(".")]
    return sorted(found)


def plan_outputs(inputs: list[tuple[Path, Path]], compare: bool) -> list[Output]:
    """Give every input its own output names: a name already taken gets `_1`, `_2`, ... (input order)."""
    taken, plan = set(), []
    for source, target in inputs:
        for number in range(len(inputs) * 2 + 1):
            candidate = target if number == 0 else target.with_name(f"{target.stem}_{number}{target.suffix}")
            names = [candidate] + ([_compare_name(candidate)] if compare else [])
            # Case-insensitive, so outputs stay distinct on macOS and Windows file systems too.
            if not any(str(n).casefold() in taken for n in names):
                break
        taken.update(str(n).casefold() for n in names)
        plan.append(Output(source, candidate, _compare_name(candidate) if compare else None))
    return plan


def _compare_name(target: Path) -> Path:
    return target.with_name(target.stem + "_compare.png")


def check_outputs(plan: list[Output], out: Path, overwrite: bool) -> None:
    """Refuse, before any work, to write over an input, over an existing output without
    --overwrite, or (even with it) over a file in a folder of input photos: there it may be
    a photo of the user's own, whatever way (a link, `..`) --out leads there."""
    if out.exists() and not out.is_dir():
        raise Refused(f"--out {out} is a file, not a folder; name a folder (it is created if missing)")
    sources = {_identity(o.source): o.source for o in plan}
    targets = [out / t for o in plan for t in (o.target, o.compare) if t is not None]
    for target in targets:
        _refuse_anything_in_the_way(target)
    for target in targets:
        if target.exists() and _identity(target) in sources:
            raise Refused(f"{target} is one of the input photos ({sources[_identity(target)]}); "
                          "choose an --out folder that does not hold the inputs")
    existing = [t for t in targets if t.exists() or t.is_symlink()]
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise Refused(f"{existing[0]}{more} already exist(s); pass --overwrite to replace them, or choose another --out")
    input_folders = {_folder_identity(o.source) for o in plan}
    for target in existing:
        if _folder_identity(target) in input_folders:
            raise Refused(f"{target} exists in a folder of input photos ({os.path.realpath(target.parent)}): "
                          "--overwrite replaces earlier outputs, never a photo beside the inputs; choose an "
                          "--out folder apart from them")


def _refuse_anything_in_the_way(target: Path) -> None:
    """A folder where the output file goes, or a file where a folder on its way goes, would
    stop the run half-way (os.replace, mkdir): refused now, before anything is written."""
    if target.is_dir() and not target.is_symlink():
        raise Refused(f"{target} is a folder, where this output goes (--overwrite replaces files, never folders): "
                      "move it away or choose another --out")
    # The nearest part of the path that exists must be a folder (`exists` is False below a file).
    parent = next((p for p in target.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise Refused(f"{parent} is a file, where the folder of output {target} goes: "
                      "move it away or choose another --out")


def _identity(path: Path) -> tuple[int, int]:
    """The file itself (device, inode), not its name: one file reached through a link, a bind
    mount or another case on a case-insensitive file system is still one file."""
    found = os.stat(path)
    return found.st_dev, found.st_ino


def _folder_identity(path: Path) -> tuple[int, int] | None:
    """The folder that holds the file `path` leads to (None for a link into no folder)."""
    try:
        return _identity(Path(os.path.realpath(path)).parent)
    except FileNotFoundError:
        return None


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
    try:
        return _colorize(argv)
    except KeyboardInterrupt:  # before or while loading the model (the run has its own line)
        print("colorize: stopped (Ctrl-C); run it again", file=sys.stderr)
        return 130


def _colorize(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.info:
        return print_model_card(args.model)
    if not args.inputs:
        _parser().error("give photos or folders to colorize (or --info)")
    inputs = find_inputs(args.inputs)
    if not inputs:
        print("colorize: no input files found", file=sys.stderr)
        return 2
    out = Path(args.out)
    plan = plan_outputs(inputs, args.compare)
    try:
        check_outputs(plan, out, args.overwrite)
    except Refused as err:
        print(f"colorize: {err}", file=sys.stderr)
        return 2
    try:
        model = load_colorizer(args.model)
    except (OSError, ValueError) as err:  # a missing, unsafe or malformed model file: one line, no traceback
        print(f"colorize: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001  MLflow's errors for an unknown run or model: one line too
        if type(err).__name__ != "MlflowException":
            raise
        first = (str(err).strip().splitlines() or [""])[0][:300]
        print(f"colorize: --model {args.model}: not found or not readable in the MLflow store ({first})", file=sys.stderr)
        return 2
    _print_renamed(inputs, plan, out)
    try:
        written, failures = _run(model, plan, out, args)
    except CannotWrite as err:
        print(f"colorize: {err} (the photos written before it are whole)", file=sys.stderr)
        return 1
    except OSError as err:
        return report_disk_full("colorize", err, " (the photos written before it are whole)")
    except KeyboardInterrupt:
        print("colorize: stopped; the photos written so far are whole, run it again with --overwrite "
              "to finish", file=sys.stderr)
        return 130
    print(f"colorize: {written} of {len(plan)} photos written to {out}/", file=sys.stderr)
    for path, reason in failures:
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    return 1 if failures else 0


def _print_renamed(inputs, plan: list[Output], out: Path) -> None:
    for (_, wanted), output in zip(inputs, plan):
        if output.target != wanted:
            print(f"colorize: {output.source} -> {out / output.target} ({out / wanted} is another input's output)",
                  file=sys.stderr)


def _run(model, plan: list[Output], out: Path, args) -> tuple[int, list[tuple[Path, str]]]:
    """Returns (photos written, [(input, why it was skipped)])."""
    import numpy as np
    from PIL import Image

    from colorizer.data.images import BadImage, decode_rgb
    from colorizer.model.inference import colorize_batch

    written, failures = 0, []
    max_bytes = args.max_pixels * _BYTES_PER_PIXEL_CAP + MIB
    progress = Progress("colorize", total=len(plan), unit="photos")
    for start in range(0, len(plan), args.batch_size):
        batch = []
        for output in plan[start : start + args.batch_size]:
            try:
                data = read_regular_file(output.source, max_bytes)
                batch.append((Photo(output.source, np.asarray(decode_rgb(data, args.max_pixels, limit="--max-pixels"))), output))
            except (BadImage, OSError) as err:
                failures.append((output.source, str(err)))
        if batch:
            for (photo, output), colorized in zip(batch, colorize_batch(model, [p.rgb for p, _ in batch])):
                _write(out / output.target, Image.fromarray(colorized))
                if output.compare:
                    _write(out / output.compare, comparison(photo, colorized))
                written += 1
        progress.advance(len(plan[start : start + args.batch_size]))
    progress.done()
    return written, failures


def _write(path: Path, image: Image.Image) -> None:
    """Write one PNG whole or not at all; a failure other than a full disk (which keeps its own
    message, with the space left) is CannotWrite naming the output and the system's reason."""
    from colorizer.core import atomic

    try:
        with atomic.output_file(path, "wb") as handle:
            image.save(handle, format="PNG")
    except OSError as err:
        if disk_full(err) is not None:
            raise
        raise CannotWrite(f"cannot write {path}: {err.strerror or err}") from err


def _parser() -> argparse.ArgumentParser:
    from colorizer.data.images import DEFAULT_MAX_PIXELS

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
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs that already exist (inputs are never overwritten)")
    parser.add_argument("--batch-size", type=_positive, default=8, help="photos per model call (default 8)")
    parser.add_argument("--max-pixels", type=_positive, default=DEFAULT_MAX_PIXELS,
                        help=f"refuse larger images (decompression bombs; default {DEFAULT_MAX_PIXELS:,})")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
