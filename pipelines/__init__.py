"""Recipes: scripts that use the library end to end (``python -m pipelines.train_default``)."""
