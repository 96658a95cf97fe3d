"""Sample colorization grids on a fixed set of photos: gray | predicted | truth.

The same photos are used every epoch, every run and every experiment (the first
images of each class by file name, taken round-robin across classes): validation
photos for training's per-epoch grids, test photos for evaluate's grid. So grids
from different runs can be compared by eye in MLflow and `dvc plots diff`.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from colorizer.data.lab import AB_SCALE, lab_to_rgb, normalise_l
from colorizer.model.network import ab_of

HEADER = 18
GAP = 8  # white pixels between blocks


@dataclass
class SampleSet:
    lightness: np.ndarray  # (N, H, W, 1), L in [0, 100]
    ab: np.ndarray  # (N, H, W, 2), true ab
    labels: list[str]
    files: list[str]

    def gray_png(self, index: int) -> bytes:
        """One photo as the grayscale PNG a user would send to the served model."""
        rgb = lab_to_rgb(np.concatenate([self.lightness[index], np.zeros_like(self.ab[index])], axis=-1))
        buffer = io.BytesIO()
        Image.fromarray((rgb * 255 + 0.5).astype(np.uint8)).convert("L").save(buffer, format="PNG")
        return buffer.getvalue()

    def predict(self, model, batch_size: int = 16) -> np.ndarray:
        """Predicted ab in LAB units, (N, H, W, 2), from a training or inference model.

        Calls the model directly rather than `model.predict`, which under a
        multi-worker strategy would wait for the other workers."""
        x = normalise_l(self.lightness)
        chunks = [np.asarray(ab_of(model(x[i : i + batch_size], training=False)))
                  for i in range(0, len(x), batch_size)]
        return np.concatenate(chunks) * AB_SCALE


class Picker:
    """Collects the fixed photos from evaluation batches (with info, in file order)
    as they stream past, so choosing them costs no extra pass over the data."""

    def __init__(self, classes: list[str], count: int):
        self.classes, self.count = classes, count
        self.per_class = -(-count // len(classes))
        self.chosen: dict[int, list] = {}

    def offer(self, batch: dict) -> None:
        for lightness, ab, label, file in zip(batch["L"], batch["ab"], batch["label"], batch["file"]):
            bucket = self.chosen.setdefault(int(label), [])
            if len(bucket) < self.per_class:
                bucket.append((np.array(lightness), np.array(ab), self.classes[int(label)], _text(file)))

    def result(self) -> SampleSet:
        queues = [self.chosen[k] for k in sorted(self.chosen)]
        ordered = [q[i] for i in range(self.per_class) for q in queues if i < len(q)][: self.count]
        if not ordered:
            raise ValueError("no test images to draw samples from")
        lightness, ab, labels, files = zip(*ordered)
        return SampleSet(np.stack(lightness), np.stack(ab), list(labels), list(files))


def pick(batches, classes: list[str], count: int) -> SampleSet:
    picker = Picker(classes, count)
    for batch in batches:
        picker.offer(batch)
    return picker.result()


def grid(samples: SampleSet, predictions: dict[str, np.ndarray], title: str = "") -> Image.Image:
    """Each photo as gray | each of `predictions` (name -> ab, LAB units) | truth, with
    column headers and `title` above. The photos are laid out in as many blocks side by
    side as keeps the grid closest to square: MLflow shows logged images at most 256 px
    on their long side, and a tall 8-row strip leaves each photo a few pixels wide there."""
    columns = {"gray": np.zeros_like(samples.ab), **predictions, "truth": samples.ab}
    cells = [np.concatenate([lab_to_rgb(np.concatenate([samples.lightness[i], ab[i]], -1)) for ab in columns.values()],
                            axis=1) for i in range(len(samples.labels))]
    blocks = _squarest_blocks(len(cells), len(columns))
    per_block = -(-len(cells) // blocks)
    size = samples.lightness.shape[2]
    block_width = size * len(columns)
    top = HEADER * (2 if title else 1)
    canvas = Image.new("RGB", (blocks * block_width + (blocks - 1) * GAP, per_block * size + top), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((4, 3), title, fill="black")
    for i, (cell, label) in enumerate(zip(cells, samples.labels)):
        x, y = (i // per_block) * (block_width + GAP), top + (i % per_block) * size
        canvas.paste(Image.fromarray((cell * 255 + 0.5).astype(np.uint8)), (x, y))
        draw.text((x + 4, y + 2), label, fill="white", stroke_width=1, stroke_fill="black")
    for block in range(blocks):
        for j, name in enumerate(columns):
            draw.text((block * (block_width + GAP) + j * size + 4, top - HEADER + 3), name, fill="black")
    return canvas


def _squarest_blocks(photos: int, columns: int) -> int:
    """How many blocks of rows, side by side, bring the grid's aspect ratio closest to 1."""
    def skew(blocks: int) -> float:
        return abs(math.log(blocks * columns / -(-photos // blocks)))

    return min(range(1, max(photos, 1) + 1), key=skew)


def _text(value) -> str:
    value = value.numpy() if hasattr(value, "numpy") else value
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
