"""Scoring colour: the metrics (Keras and NumPy), sample grids, the stage `evaluate`
(test split next to the gray baseline) and the end-of-run summary."""
