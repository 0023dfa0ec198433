"""SASNet Studio core: model, data, formats, training, inference and the ``sasnet`` command.

This package never imports Qt (checked by a test and by import-linter contracts in pyproject).
"""
__version__ = "0.1.0"
