"""Crowd data sets: layout readers and detection (Qt-free, torch-free) and, in ``training``,
the torch ``TrainCrops`` data set (imported on demand so reading a data set needs no torch)."""
from sasnet_core.datasets.detect import LAYOUTS, detect_layout, open_dataset
from sasnet_core.datasets.layouts import Dataset, Sample

__all__ = ["LAYOUTS", "Dataset", "Sample", "detect_layout", "open_dataset"]
