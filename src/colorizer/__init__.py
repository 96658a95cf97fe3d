"""Landscape colorizer: a DVC + MLflow workflow that teaches a Keras model to colorize grayscale photos.

The package is layered; each folder imports only from the folders before it:

    core        params, paths of the user's repository, atomic outputs, pools, progress
    data        what the stages exchange: the formats of data/raw, data/resized and the
                shards, LAB colour, safe image decoding, the tf.data pipelines
    prepare     the stages download, resize and shard, and the image sources
    model       the networks, losses, safe model loading, whole-photo inference
    tracking    MLflow: the run tracker and the served (pyfunc) model
    evaluation  metrics, sample grids, the stage evaluate, the end-of-run summary
    training    the stage train: the loop, devices, checkpoints
    app         the `colorize` command

`prepare` and `model` are siblings (neither imports the other), as are `training` and
`app`. tests/test_layers.py enforces the order, and tests/test_dvc_deps.py that every
stage's `dvc.yaml` deps cover all the code it runs.
"""
