"""MLflow: the tracker that `train` and `evaluate` log through (`tracker.py`), and the
trained model as an MLflow pyfunc model for `mlflow models serve` (`pyfunc.py`)."""
