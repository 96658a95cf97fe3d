"""Loading model files that may come from someone else, without running their code."""

from __future__ import annotations

from pathlib import Path

import keras

import colorizer.model.losses  # noqa: F401  registers AnnealedMean, the classification head's decoder


class UnsafeModel(ValueError):
    """The model file would execute embedded code (a Lambda layer, pickled Python) to load."""


def load_model(path: str | Path) -> keras.Model:
    """Load a `.keras` file in Keras safe mode: architecture and weights only.

    Safe mode refuses to deserialise Lambda layers (arbitrary Python bytecode);
    the colorizer's own models never contain any. Legacy `.h5`/SavedModel
    formats, which can carry pickled code, are refused outright.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {path} not found: train one with `dvc repro train`")
    if path.suffix != ".keras":
        raise UnsafeModel(f"{path}: only .keras model files are loaded (legacy formats can execute code)")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except ValueError as err:
        if "lambda" in str(err).lower() or "safe_mode" in str(err):
            raise UnsafeModel(f"{path}: refused, the model embeds Python code (Lambda layer): {err}") from None
        raise
