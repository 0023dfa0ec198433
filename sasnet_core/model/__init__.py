"""The SASNet network: the VGG16-bn encoder, the decoder, density and confidence heads, the
released checkpoints' layout, and inference-only transforms of a trained model (``fast_forward``)."""
