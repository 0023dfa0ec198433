"""SASNet Studio core: model, data, formats, training, inference and the ``sasnet`` command.

This package never imports Qt (checked by a test and by import-linter contracts in pyproject).
"""
import os

__version__ = "0.1.0"

# FFmpeg (inside OpenCV) prints its own lines, such as "[mov,mp4,...] moov atom not found", for a
# damaged video before our one-line error that names the file. OpenCV reads this level once, when
# it first uses FFmpeg (reading or writing a video), so it is set before anything can.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
