"""The trained colorizer as an MLflow model: `mlflow.pyfunc.load_model` and `mlflow models serve`.

Request and response carry images as base64 strings in a column `image`:

    {"dataframe_records": [{"image": "<base64 of a JPEG/PNG/...>"}]}
 -> {"predictions": [{"image": "<base64 of the colorized PNG>"}]}

The image may be any mode and common format; the answer has the same size. The
pixels per request (all its images together) are capped at `MAX_REQUEST_PIXELS`;
a larger or unreadable request gets HTTP 400 with the reason in its message.
This file is logged as "model code" (MLflow's models-from-code), so nothing is
pickled; the layers of the package it runs travel with the model (`code_paths`)
and the Keras file is loaded in safe mode.
"""

from __future__ import annotations

import base64
import binascii
import io
import os

import mlflow
import numpy as np
import pandas as pd
from PIL import Image

ARTIFACT = "keras_model"
COLUMN = "image"
# The layers of the package this model runs, packaged with it (train's dvc.yaml deps cover them).
SERVED_PACKAGES = ("core", "data", "model", "tracking")
# Pixels per request, all images together; the environment variable overrides it where the
# serving machine is bigger. 16 MP takes any phone photo (12 MP) and keeps a request under
# ~0.4 GB of worker memory (model/inference.py, measured 0.25 GB for 12 MP), so a small
# served machine (2 GB) survives several at once; the unbounded 64 MP took 9.5 GB and 50 s.
MAX_PIXELS_ENV = "COLORIZER_MAX_REQUEST_PIXELS"
DEFAULT_MAX_REQUEST_PIXELS = 16_000_000


class ColorizerModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        from colorizer.model.modelio import load_model

        max_request_pixels()  # a bad limit in the environment stops the server at start, not per request
        self.model = load_model(context.artifacts[ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from colorizer.model.inference import colorize_batch

        photos = decode_request(model_input, max_request_pixels())
        colorized = colorize_batch(self.model, photos) if photos else []
        return pd.DataFrame({COLUMN: [encode_png(pixels) for pixels in colorized]})


def max_request_pixels() -> int:
    text = os.environ.get(MAX_PIXELS_ENV, str(DEFAULT_MAX_REQUEST_PIXELS))
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{MAX_PIXELS_ENV} must be a whole number of pixels >= 1, got {text!r}")
    return value


def decode_request(model_input: pd.DataFrame, budget: int) -> list[np.ndarray]:
    """The request's images as RGB arrays, refused (HTTP 400, with the reason) when unreadable
    or when together they hold more than `budget` pixels; sizes are read from the headers first,
    so nothing large is decoded before it is refused."""
    from colorizer.data.images import DEFAULT_MAX_PIXELS, BadImage, decode_rgb, probe

    if COLUMN not in model_input:
        raise _bad_request(f"the request has no {COLUMN!r} column (base64 images)")
    files, total = [], 0
    for row, text in enumerate(model_input[COLUMN]):
        try:
            data = base64.b64decode(text)
            # The decompression-bomb limit first; the request's own budget, with its own message, below.
            info = probe(data, max(budget, DEFAULT_MAX_PIXELS), limit="the server's image size limit")
        except (binascii.Error, TypeError, ValueError) as err:  # BadImage is a ValueError
            raise _bad_request(f"image {row}: {err if isinstance(err, BadImage) else f'not base64 ({err})'}") from None
        total += info.width * info.height
        if total > budget:
            raise _bad_request(
                f"the request holds more than {budget:,} pixels (image {row} is {info.width}x{info.height}); "
                f"send fewer or smaller images (the server's limit is {MAX_PIXELS_ENV})"
            )
        files.append(data)
    try:
        return [np.asarray(decode_rgb(data, budget, limit=MAX_PIXELS_ENV)) for data in files]
    except BadImage as err:
        raise _bad_request(f"cannot decode an image: {err}") from None


def _bad_request(message: str):
    # The scoring server answers an MlflowException with INVALID_PARAMETER_VALUE as HTTP 400,
    # carrying the message; any other exception becomes a reply without the reason.
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    return MlflowException(f"colorizer: {message}", error_code=INVALID_PARAMETER_VALUE)


def encode_png(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


mlflow.models.set_model(ColorizerModel())
