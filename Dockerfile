# AgroStress application image: the `agrostress` CLI, the REST API and Dask workers.
#   docker build -t agrostress .
#   docker compose up -d          (API + PostgreSQL + Dask scheduler + 2 workers, see docs/batch.md)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The CPU build of torch first (the default index would pull the multi-GB CUDA build).
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY agrostress ./agrostress
COPY api ./api
COPY pipelines ./pipelines
# psycopg: the API's PostgreSQL driver; bokeh: the Dask dashboard (scheduler, port 8787).
RUN pip install . "psycopg[binary]>=3.1" "bokeh>=3.1"

# Shipped model checkpoints (AGROSTRESS_MODEL_DIR points at the default one).
COPY models ./models

RUN useradd --create-home --uid 1000 agrostress \
    && mkdir -p /data \
    && chown agrostress:agrostress /data
USER agrostress

ENV AGROSTRESS_DATA_DIR=/data \
    AGROSTRESS_CACHE_DIR=/data/cache \
    AGROSTRESS_MODEL_DIR=/app/models/ffdnn

EXPOSE 8000
CMD ["agrostress", "serve", "--host", "0.0.0.0", "--port", "8000"]
