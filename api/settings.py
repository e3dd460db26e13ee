"""The REST service's own settings (environment variables ``AGROSTRESS_API_*``).

The library's settings (data and model folders, sources, decision) stay in
:class:`agrostress.settings.Settings`; the service takes both, as two objects.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "AGROSTRESS_API_"


class ApiSettings(BaseSettings):
    """Service settings; every field can be set as ``AGROSTRESS_API_<FIELD>``.

    Limits answer 413/422 naming their variable (:meth:`env_name`); see docs/api.md.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    key: SecretStr = Field(
        SecretStr(""), description="require this key in the X-API-Key header (empty: no auth)"
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL (default: sqlite:///<data_dir>/agrostress.db)"
    )
    model_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="extra checkpoints served besides model_dir (comma-separated paths)",
    )
    sources: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["sentinelhub", "stac", "files", "simulated"],
        description="sources the API accepts (comma-separated)",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="CORS allowed origins (comma-separated; empty: no CORS)"
    )
    max_body_bytes: int = Field(
        2_000_000, ge=1_000, description="largest request body (bytes) -> 413"
    )
    max_vertices: int = Field(20_000, ge=4, description="most polygon vertices in one request -> 413")
    max_fields: int = Field(200, ge=1, description="most fields in one request -> 413")
    max_area_ha: float = Field(5_000.0, gt=0, description="largest total field area (ha) -> 413")
    max_extent_ha: float = Field(
        10_000.0, gt=0, description="largest bounding box of the fields' pixel grid (ha) -> 413"
    )
    max_date_span_days: int = Field(
        400, ge=1, description="longest start..end period (days) -> 422"
    )
    sync_max_ha: float = Field(
        500.0, ge=0, description="grids up to this extent (ha) are answered synchronously"
    )
    sync_timeout_s: float = Field(
        120.0, gt=0, description="a synchronous request still running then answers 202"
    )
    job_workers: int = Field(2, ge=1, le=64, description="analyses run at once per process")
    max_pending_jobs: int = Field(
        64, ge=1, description="queued + running analyses per process before 429"
    )
    job_heartbeat_s: float = Field(
        5.0, gt=0, description="job heartbeat; jobs silent for 3 beats are taken over"
    )
    resume_jobs: bool = Field(
        True, description="resume jobs interrupted by a restart (else mark them failed)"
    )
    job_max_attempts: int = Field(
        2, ge=1, le=10, description="runs of one job (restarts included) before it fails"
    )
    use_cache: bool = Field(True, description="fetch cubes through the ingestion cache")
    reference_buffer_m: float = Field(
        0.0, ge=0.0, le=5_000.0,
        description="for requests with fewer than 3 fields: fetch this buffer (m) around them "
        "and judge the fields against its wheat (0: the model's built-in reference)",
    )
    plots: bool = Field(
        True, description="also render the optional PNGs (trajectories, histogram, per field)"
    )
    torch_threads: int | None = Field(
        None, ge=1, le=256, description="torch intra-op threads (default: torch's)"
    )

    @field_validator("model_dirs", "sources", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, v: object) -> object:
        """Accept comma-separated strings (env vars) and JSON lists as well as lists."""
        if isinstance(v, str):
            v = v.strip()
            if v.startswith("["):
                return json.loads(v)
            return [item.strip() for item in v.split(",") if item.strip()]
        return v

    @staticmethod
    def env_name(field: str) -> str:
        """The environment variable of ``field`` (``max_fields`` → ``AGROSTRESS_API_MAX_FIELDS``)."""
        return f"{ENV_PREFIX}{field.upper()}"


@lru_cache(maxsize=1)
def get_api_settings() -> ApiSettings:
    """The process-wide service settings (read once)."""
    return ApiSettings()
