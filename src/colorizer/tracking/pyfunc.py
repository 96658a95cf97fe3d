"""The trained colorizer as an MLflow model: `mlflow.pyfunc.load_model` and `mlflow models serve`.

Request and response carry images as base64 strings in a column `image`:

    {"dataframe_records": [{"image": "<base64 of a JPEG/PNG/...>"}]}
 -> {"predictions": [{"image": "<base64 of the colorized PNG>"}]}

The image may be any size, mode and common format; the answer has the same size.
This file is logged as "model code" (MLflow's models-from-code), so nothing is
pickled; the layers of the package it runs travel with the model (`code_paths`)
and the Keras file is loaded in safe mode.
"""

from __future__ import annotations

import base64
import io

import mlflow
import numpy as np
import pandas as pd
from PIL import Image

ARTIFACT = "keras_model"
COLUMN = "image"
# The layers of the package this model runs, packaged with it (train's dvc.yaml deps cover them).
SERVED_PACKAGES = ("core", "data", "model", "tracking")


class ColorizerModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        from colorizer.model.modelio import load_model

        self.model = load_model(context.artifacts[ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from colorizer.data.images import DEFAULT_MAX_PIXELS, decode_rgb
        from colorizer.model.inference import colorize_batch

        photos = [np.asarray(decode_rgb(base64.b64decode(text), DEFAULT_MAX_PIXELS)) for text in model_input[COLUMN]]
        colorized = colorize_batch(self.model, photos) if photos else []
        return pd.DataFrame({COLUMN: [encode_png(pixels) for pixels in colorized]})


def encode_png(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


mlflow.models.set_model(ColorizerModel())
