"""The AgroStress REST service (FastAPI)."""
