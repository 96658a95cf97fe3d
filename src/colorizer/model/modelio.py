"""Loading model files that may come from someone else, without running their code."""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras

# The package's own layers, registered by importing them: a model file names them, not their code.
import colorizer.model.batchnorm  # noqa: F401  BatchNormalization (fused while training)
import colorizer.model.losses  # noqa: F401  AnnealedMean, the classification head's decoder


class UnsafeModel(ValueError):
    """The model file would execute embedded code (a Lambda layer, pickled Python) to load."""


class BadModelFile(ValueError):
    """Not a loadable `.keras` file (random bytes, truncated, a zip without the model in it)."""


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
    if not path.is_file():
        raise BadModelFile(f"{path}: not a file")
    # Keras reports any non-zip as "File not found"; say what is wrong instead.
    if not zipfile.is_zipfile(path):
        raise BadModelFile(f"{path}: not a readable .keras model file (not a zip archive: truncated or not a model)")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except ValueError as err:
        if "lambda" in str(err).lower() or "safe_mode" in str(err):
            raise UnsafeModel(f"{path}: refused, the model embeds Python code (Lambda layer): {err}") from None
        raise BadModelFile(_unreadable(path, err)) from None
    except Exception as err:  # noqa: BLE001  Keras raises zipfile, KeyError, OSError, h5py... errors for bad files
        raise BadModelFile(_unreadable(path, err)) from None


def _unreadable(path: Path, err: Exception) -> str:
    first_line = (str(err).strip().splitlines() or [""])[0][:200]
    return f"{path}: not a readable .keras model file ({type(err).__name__}: {first_line})"
