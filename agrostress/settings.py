"""One settings object for the whole product (environment variables ``AGROSTRESS_*``).

Nothing else in the code base reads the environment: interfaces build a :class:`Settings`
and pass what they need down.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Product-wide settings; every field can be set as ``AGROSTRESS_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="AGROSTRESS_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("agrostress-data"), description="where artefacts and caches live")
    model_dir: Path = Field(REPO_ROOT / "models" / "ffdnn", description="default model checkpoint")
    cache_dir: Path = Field(Path("agrostress-data/cache"), description="ingestion cache")
    scl_drop: tuple[int, ...] = Field(
        (0, 1, 3, 8, 9, 10, 11), description="SCL classes masked as invalid"
    )
    cloud_dilation_px: int = Field(1, ge=0, le=20, description="dilate cloud/shadow by N pixels")
    # decision (agrostress.decision): class priors and abstention, for every interface
    priors: str = Field(
        "default",
        description="class priors: 'default' (healthy 0.70, nitrogen_deficiency 0.20, "
        "yellow_rust 0.10), 'training' (the balanced training prior) or "
        "'healthy=…,nitrogen_deficiency=…,yellow_rust=…'",
    )
    min_confidence: float = Field(
        0.6, ge=0.0, lt=1.0, description="below this probability a pixel or field is 'uncertain'"
    )
    max_ood: float = Field(
        1.0, gt=0.0, description="out-of-distribution score above which a pixel is 'uncertain'"
    )

    # ------------------------------------------------------------------ ingestion (agrostress.ingest)
    # Sentinel Hub / Copernicus Data Space: ``sh_profile="cdse"`` switches base and token URLs;
    # explicit ``sh_base_url`` / ``sh_token_url`` win over the profile. Credentials are also read
    # from sentinelhub-py's own SH_CLIENT_ID / SH_CLIENT_SECRET variables.
    sh_profile: Literal["sentinelhub", "cdse"] = Field(
        "sentinelhub", description="service profile: 'sentinelhub' or 'cdse' (Copernicus Data Space)"
    )
    sh_client_id: str = Field(
        "",
        validation_alias=AliasChoices("AGROSTRESS_SH_CLIENT_ID", "SH_CLIENT_ID", "sh_client_id"),
        description="OAuth client id",
    )
    sh_client_secret: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("AGROSTRESS_SH_CLIENT_SECRET", "SH_CLIENT_SECRET", "sh_client_secret"),
        description="OAuth client secret",
    )
    sh_base_url: str | None = Field(None, description="service base URL (default: from profile)")
    sh_token_url: str | None = Field(None, description="OAuth token URL (default: from profile)")
    sh_config_profile: str | None = Field(
        None, description="read defaults from this profile of sentinelhub-py's config.toml"
    )
    sh_max_px: int = Field(2500, ge=16, le=2500, description="Process API tile size limit (px)")
    sh_max_threads: int = Field(4, ge=1, le=32, description="parallel Process API requests")
    sh_max_attempts: int = Field(4, ge=1, le=20, description="attempts on 5xx / timeouts / corrupt")
    sh_retry_sleep_s: float = Field(2.0, ge=0, description="first back-off sleep (x3 each retry)")
    sh_rate_limit_retries: int = Field(
        10, ge=1, le=1000, description="requests answered 429 before giving up"
    )
    sh_rate_limit_wait_s: float = Field(
        5.0, ge=0, description="wait after a 429 without a Retry-After header"
    )
    sh_timeout_s: float = Field(120.0, gt=0, description="HTTP timeout per request")
    stac_url: str = Field(
        "https://earth-search.aws.element84.com/v1",
        description="STAC API or static catalog (URL or path to catalog.json)",
    )
    stac_collection: str = Field("sentinel-2-l2a", description="STAC collection id")
    files_dir: Path | None = Field(None, description="folder of GeoTIFFs for --source files")
    ingest_max_area_km2: float = Field(
        100.0, gt=0, description="largest AOI accepted by one ingest call (km2)"
    )
    ingest_max_cloud_cover: float = Field(
        100.0, ge=0, le=100, description="skip acquisitions with a larger scene cloud cover (%)"
    )
    ingest_offset_check: bool = Field(
        True, description="sanity-check the L2A BOA offset decision against the pixel values"
    )

    # ------------------------------------------------------------------ REST API (api/, issue 8)
    # Read by ``api.app.create_app``; see docs/api.md. Limits answer 413/422 naming the limit.
    api_key: SecretStr = Field(
        SecretStr(""), description="require this key in the X-API-Key header (empty: no auth)"
    )
    api_database_url: str | None = Field(
        None, description="SQLAlchemy URL (default: sqlite:///<data_dir>/agrostress.db)"
    )
    api_model_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="extra checkpoints served besides model_dir (comma-separated paths)",
    )
    api_sources: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["sentinelhub", "stac", "files", "simulated"],
        description="sources the API accepts (comma-separated)",
    )
    api_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="CORS allowed origins (comma-separated; empty: no CORS)"
    )
    api_max_body_bytes: int = Field(
        2_000_000, ge=1_000, description="largest request body (bytes) -> 413"
    )
    api_max_vertices: int = Field(
        20_000, ge=4, description="most polygon vertices in one request -> 413"
    )
    api_max_fields: int = Field(200, ge=1, description="most fields in one request -> 413")
    api_max_area_ha: float = Field(
        5_000.0, gt=0, description="largest total field area (ha) -> 413"
    )
    api_max_extent_ha: float = Field(
        10_000.0, gt=0, description="largest bounding box of the fields' pixel grid (ha) -> 413"
    )
    api_max_date_span_days: int = Field(
        400, ge=1, description="longest start..end period (days) -> 422"
    )
    api_sync_max_ha: float = Field(
        500.0, ge=0, description="grids up to this extent (ha) are answered synchronously"
    )
    api_sync_timeout_s: float = Field(
        120.0, gt=0, description="a synchronous request still running then answers 202"
    )
    api_job_workers: int = Field(2, ge=1, le=64, description="analyses run at once per process")
    api_max_pending_jobs: int = Field(
        64, ge=1, description="queued + running analyses per process before 429"
    )
    api_job_heartbeat_s: float = Field(
        5.0, gt=0, description="job heartbeat; jobs silent for 3 beats are taken over"
    )
    api_resume_jobs: bool = Field(
        True, description="resume jobs interrupted by a restart (else mark them failed)"
    )
    api_job_max_attempts: int = Field(
        2, ge=1, le=10, description="runs of one job (restarts included) before it fails"
    )
    api_use_cache: bool = Field(True, description="fetch cubes through the ingestion cache")
    api_reference_buffer_m: float = Field(
        0.0, ge=0.0, le=5_000.0,
        description="for requests with fewer than 3 fields: fetch this buffer (m) around them "
        "and judge the fields against its wheat (0: the model's built-in reference)",
    )
    api_plots: bool = Field(
        True, description="also render the optional PNGs (trajectories, histogram, per field)"
    )
    api_torch_threads: int | None = Field(
        None, ge=1, le=256, description="torch intra-op threads (default: torch's)"
    )

    @field_validator("api_model_dirs", "api_sources", "api_cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, v: object) -> object:
        """Accept comma-separated strings (env vars) as well as lists."""
        if isinstance(v, str):
            v = v.strip()
            if v.startswith("["):
                import json

                return json.loads(v)
            return [item.strip() for item in v.split(",") if item.strip()]
        return v


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
