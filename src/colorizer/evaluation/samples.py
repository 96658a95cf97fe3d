"""Sample colorization grids on a fixed set of photos: gray | predicted | truth.

The same photos are used every epoch, every run and every experiment (the first
images of each class by file name, taken round-robin across classes): validation
photos for training's per-epoch grids, test photos for evaluate's grid. So grids
from different runs can be compared by eye in MLflow and `dvc plots diff`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from colorizer.data.lab import AB_SCALE, lab_to_rgb, normalise_l
from colorizer.model.network import ab_of

HEADER = 18


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
    """One row per photo: gray | each of `predictions` (name -> ab, LAB units) | truth,
    with column headers (`title` added to the prediction columns')."""
    columns = {"gray": np.zeros_like(samples.ab), **predictions, "truth": samples.ab}
    rows = [np.concatenate([lab_to_rgb(np.concatenate([samples.lightness[i], ab[i]], -1)) for ab in columns.values()],
                           axis=1) for i in range(len(samples.labels))]
    body = Image.fromarray((np.concatenate(rows, axis=0) * 255 + 0.5).astype(np.uint8))
    size = samples.lightness.shape[2]
    canvas = Image.new("RGB", (body.width, body.height + HEADER), "white")
    canvas.paste(body, (0, HEADER))
    draw = ImageDraw.Draw(canvas)
    for i, name in enumerate(columns):
        label = f"{name} {title}" if title and name in predictions else name
        draw.text((i * size + 4, 3), label, fill="black")
    for i, label in enumerate(samples.labels):
        draw.text((4, HEADER + i * size + 2), label, fill="white", stroke_width=1, stroke_fill="black")
    return canvas


def _text(value) -> str:
    value = value.numpy() if hasattr(value, "numpy") else value
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
