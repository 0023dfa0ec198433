"""How good a model is on annotated images: the metrics and the evaluation run."""
