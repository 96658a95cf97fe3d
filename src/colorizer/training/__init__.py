"""The stage `train`: the training loop (`train.py`), devices and distribution
strategies (`distribute.py`) and per-epoch resume state (`checkpoint.py`)."""
