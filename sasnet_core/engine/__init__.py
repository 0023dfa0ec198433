"""Counting with a trained model: inputs, device/backend/precision choice and defaults, the
torch and OpenVINO backends, int8, tiling, reading ahead, the counting stream and its results,
uncertainty and head points from a density map."""
