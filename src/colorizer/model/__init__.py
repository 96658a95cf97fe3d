"""The networks (`network.py`: hybrid and autoencoder), their losses and decoding,
pretrained backbones, safe loading of model files, and colorizing whole photos
with a trained model (`inference.py`). Backend-agnostic Keras 3."""
