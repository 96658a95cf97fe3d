"""Any tensorflow-datasets image dataset (`data.source: tfds:<name>[/<config>]`).

The dataset is prepared by TFDS (downloaded once into its data dir, or read from
there offline), then exported as PNG files (lossless) into a folder laid out the
way FolderSource reads, so splitting and capping work the same for every source.
"""

from __future__ import annotations

import io
import math
import os
from collections import Counter
from pathlib import Path

from PIL import Image

from colorizer.data.layout import NO_SPLIT_SHARES, split_of
from colorizer.prepare.sources.errors import SourceUnavailable

PREFIX = "tfds:"


def export(spec: str, destination: Path, max_per_class: int | None) -> list[dict]:
    """Write the dataset's images under `destination`; returns the splits it left out."""
    import tensorflow_datasets as tfds

    name = spec[len(PREFIX) :].strip()
    builder = _prepared_builder(tfds, name)
    features = builder.info.features
    if "image" not in features:
        raise ValueError(f"data.source: TFDS dataset {name} has no 'image' feature (has: {', '.join(features)})")
    label_names = features["label"].int2str if "label" in features else None
    splits = {s: split_of(s) for s in builder.info.splits}
    used = {s: ours for s, ours in splits.items() if ours}
    if not used:
        raise ValueError(f"data.source: TFDS dataset {name} has no train/validation/test split: {list(splits)}")
    # A dataset with only a training split is carved 64:16:20 later, like a folder without splits.
    only_train = set(used.values()) == {"train"}
    # When capping, the carving can take at most 1 - 0.64 of a split away: export just enough.
    per_class = None if max_per_class is None else math.ceil(max_per_class / NO_SPLIT_SHARES["train"]) + 1
    for tfds_split, ours in used.items():
        folder = destination if only_train else destination / ours
        _export_split(builder.as_dataset(split=tfds_split, shuffle_files=False), folder, label_names, per_class)
    return [{"file": f"tfds split {s}", "reason": "not a train/validation/test split"} for s in splits if not splits[s]]


def _prepared_builder(tfds, name: str):
    try:
        # TFDS_DATA_DIR, when set, is where prepared datasets live (e.g. copied from another machine).
        builder = tfds.builder(name, data_dir=os.environ.get("TFDS_DATA_DIR"))
        builder.download_and_prepare()
        return builder
    except Exception as err:  # DatasetNotFoundError, network errors, missing extras...
        raise SourceUnavailable(
            f"Could not prepare the TFDS dataset {name!r} ({type(err).__name__}: {str(err)[:200]}). "
            "Check the name at https://www.tensorflow.org/datasets/catalog. To work offline, run "
            f"`tfds build {name}` on a machine with internet access, copy its data dir "
            "(~/tensorflow_datasets) here and set TFDS_DATA_DIR to it, or export the images to a "
            "folder and set data.source to that folder."
        ) from None


def _export_split(dataset, folder: Path, label_names, per_class: int | None) -> None:
    written = Counter()
    for index, example in enumerate(dataset.as_numpy_iterator()):
        label = label_names(int(example["label"])).replace("/", "_") if label_names else "all"
        if per_class is not None and written[label] >= per_class:
            continue
        pixels = example["image"]
        if pixels.ndim == 3 and pixels.shape[-1] == 1:
            pixels = pixels[..., 0]
        target = folder / label / f"{index:07d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        target.write_bytes(buffer.getvalue())
        written[label] += 1
