"""Orchestration pipelines: ingestion, training recipe, Dask region batch."""
