"""Model files: checkpoints, the model registry, the released SHHA/SHHB, downloads and provenance."""
