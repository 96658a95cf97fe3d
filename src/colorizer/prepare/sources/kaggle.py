"""The real target dataset, fetched from Kaggle with kagglehub.

kagglehub downloads public datasets anonymously and picks up credentials from
KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json when present. This module
never reads, prints or stores those credentials itself.
"""

from __future__ import annotations

from pathlib import Path

from colorizer.prepare.sources.errors import SourceUnavailable

DATASET = "utkarshsaxenadn/landscape-recognition-image-dataset-12k-images"
PAGE = f"https://www.kaggle.com/datasets/{DATASET}"


def offline_help(reason: str) -> str:
    return (
        f"Could not download the Kaggle dataset {DATASET} ({reason}). To use a local copy instead, "
        f"download the archive from {PAGE} on a machine with internet access (the 'Download' button, "
        "or `kaggle datasets download -d " + DATASET + "`), copy the .zip or its unpacked folder to this "
        "machine, and point the pipeline at it, e.g. `dvc exp run -S data.source=/data/landscapes.zip` "
        "or set data.source in params.yaml; folders named 'Training Data'/'Validation Data'/'Testing "
        "Data' (or train/val/test) are recognised."
    )


def download(handle: str = DATASET) -> Path:
    """Download (or reuse kagglehub's cache of) the dataset; returns its local folder."""
    try:
        import kagglehub
    except ImportError:
        raise SourceUnavailable(offline_help("the kagglehub package is not installed")) from None
    try:
        return Path(kagglehub.dataset_download(handle))
    except Exception as err:  # kagglehub raises many kinds (HTTP, DNS, auth, timeout)
        # Only the error's class goes into the message: its text may echo request headers.
        raise SourceUnavailable(offline_help(type(err).__name__)) from None
