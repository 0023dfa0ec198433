"""Files on disk: atomic writes and process checks, image and video reading, sealed cache folders."""
