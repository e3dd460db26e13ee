"""The REST service's own settings (environment variables ``AGROSTRESS_API_*``).

The library's settings (data and model folders, sources, decision) stay in
:class:`agrostress.settings.Settings`; the service takes both, as two objects.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "AGROSTRESS_API_"
CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DEFAULT_CLIENT = "default"
"""The client of the single ``AGROSTRESS_API_KEY``."""


class ApiSettings(BaseSettings):
    """Service settings; every field can be set as ``AGROSTRESS_API_<FIELD>``.

    Limits answer 413/422 naming their variable (:meth:`env_name`); see docs/api.md.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    key: SecretStr = Field(
        SecretStr(""), description="require this key in the X-API-Key header (empty: no auth); "
        "its client is called 'default'"
    )
    keys: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict,
        description="one key per client, 'name=key,name=key' or a JSON object: each client "
        "sees only its own analyses and has its own rate limit and queue share",
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
    job_workers: int = Field(
        2, ge=1, le=64, description="analyses run at once per process (fewer when the memory "
        "available at start cannot hold that many jobs of max_job_memory_mb)")
    max_pending_jobs: int = Field(
        64, ge=1, description="queued + running analyses per process before 429"
    )
    max_job_memory_mb: float = Field(
        4_000.0, ge=100, description="largest estimated memory of one analysis (MB) -> 413; "
        "the job workers are chosen so that that many fit in the available memory")
    client_rate_per_min: float = Field(
        60.0, ge=0, description="analyses one client may submit per minute, in bursts of "
        "client_burst (0: no limit) -> 429 rate_limited")
    client_burst: int = Field(10, ge=1, description="submissions one client may make at once")
    client_max_pending: int = Field(
        16, ge=1, description="queued + running analyses of one client before 429")
    client_max_running: int | None = Field(
        None, ge=1, description="analyses of one client running at once (default: every job "
        "worker with one client; one worker fewer when there are several clients)")
    retention_days: float = Field(
        30.0, ge=0, description="finished analyses (row and files) are deleted after this many "
        "days (0: kept)")
    artefacts_max_gb: float = Field(
        20.0, ge=0, description="largest size of the analyses' files (GB): beyond it the oldest "
        "finished analyses are deleted first (0: no limit)")
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
        None, ge=1, le=256, description="torch intra-op threads of the process (default: "
        "torch's; `agrostress serve` sets cores / (server processes x job workers))"
    )

    @field_validator("keys", mode="before")
    @classmethod
    def _split_keys(cls, v: object) -> object:
        """Accept 'name=key,name=key' (env vars) and JSON objects as well as dicts."""
        if isinstance(v, str):
            if v.strip().startswith("{"):
                return json.loads(v)
            pairs = _comma_items(v)
            if any("=" not in p for p in pairs):
                raise ValueError("keys must be 'name=key' pairs separated by commas")
            return dict(p.split("=", 1) for p in pairs)
        return v

    @field_validator("keys")
    @classmethod
    def _check_keys(cls, v: dict[str, SecretStr]) -> dict[str, SecretStr]:
        secrets = [k.get_secret_value() for k in v.values()]
        bad = [name for name in v if not CLIENT_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"client names must match {CLIENT_NAME.pattern}: {bad}")
        if any(not s for s in secrets) or len(set(secrets)) != len(secrets):
            raise ValueError("every client needs its own non-empty key")
        return v

    def client_keys(self) -> dict[str, str]:
        """{client name: key} of every key the service accepts (empty: no auth)."""
        out = {name: k.get_secret_value() for name, k in self.keys.items()}
        if self.key.get_secret_value():
            out.setdefault(DEFAULT_CLIENT, self.key.get_secret_value())
        return out

    def running_per_client(self) -> int:
        """Analyses of one client running at once (see ``client_max_running``)."""
        if self.client_max_running is not None:
            return self.client_max_running
        several = len(self.client_keys()) > 1
        return max(1, self.job_workers - 1) if several else self.job_workers

    @field_validator("model_dirs", "sources", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, v: object) -> object:
        """Accept comma-separated strings (env vars) and JSON lists as well as lists."""
        if isinstance(v, str):
            if v.strip().startswith("["):
                return json.loads(v)
            return _comma_items(v)
        return v

    def serving_torch_threads(self, processes: int = 1) -> int:
        """Torch threads per analysis when ``processes`` server processes each run
        ``job_workers`` analyses at once: the cores shared out, at least one. Small analyses
        answer faster on one thread than on two that contend (docs/api.md, Figures)."""
        import os

        return max(1, (os.cpu_count() or 1) // max(1, processes * self.job_workers))

    @staticmethod
    def env_name(field: str) -> str:
        """The environment variable of ``field`` (``max_fields`` → ``AGROSTRESS_API_MAX_FIELDS``)."""
        return f"{ENV_PREFIX}{field.upper()}"


def _comma_items(text: str) -> list[str]:
    """The non-empty, trimmed items of a comma-separated setting."""
    return [item.strip() for item in text.split(",") if item.strip()]


@lru_cache(maxsize=1)
def get_api_settings() -> ApiSettings:
    """The process-wide service settings (read once)."""
    return ApiSettings()
