"""Crowd data sets: layout readers and detection, Qt-free and torch-free (the torch ``TrainCrops``
that cuts training crops from them is ``training.crops``)."""
from sasnet_core.datasets.detect import LAYOUTS, detect_layout, open_dataset
from sasnet_core.datasets.layouts import Dataset, Sample

__all__ = ["LAYOUTS", "Dataset", "Sample", "detect_layout", "open_dataset"]
