"""Head-point annotations: the file format, the store of a person's corrections, the foreign
formats (read and export), density maps from points, and how points are shown."""
