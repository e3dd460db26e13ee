"""The library's settings (environment variables ``AGROSTRESS_*``).

Nothing else in the library reads the environment: interfaces build a :class:`Settings` and
pass what they need down. The REST service adds its own (``AGROSTRESS_API_*``,
:class:`api.settings.ApiSettings`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Library settings; every field can be set as ``AGROSTRESS_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="AGROSTRESS_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("agrostress-data"), description="where artefacts and caches live")
    model_dir: Path = Field(REPO_ROOT / "models" / "ffdnn", description="default model checkpoint")
    not_wheat_model_dir: Path | None = Field(
        REPO_ROOT / "models" / "not_wheat", description="the built-in not-wheat detector, used "
        "when a request has no parcel layer that says which parcels are wheat (empty: none)")
    cache_dir: Path | None = Field(
        None, description="ingestion cache folder (default: <data_dir>/cache)"
    )
    cache_max_gb: float = Field(
        5.0, ge=0, description="size limit of the ingestion cache in GB (10^9 bytes; least "
        "recently used entries are evicted first); 0 = do not cache"
    )
    cache_tile_px: int = Field(
        32, ge=1, le=4096, description="cached areas are snapped outward to tiles of this many "
        "pixels, so nearby requests share entries (sources whose pixels depend only on location)"
    )
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
    season_complete_doy: float = Field(
        170.0, ge=1, le=366, description="day of year from which the season counts as complete: "
        "before it, calls that are not confident yet are 'too_early' rather than 'uncertain'"
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

    def ingest_cache_dir(self) -> Path:
        """The ingestion cache folder in effect: ``cache_dir``, else ``<data_dir>/cache``."""
        return self.cache_dir if self.cache_dir is not None else self.data_dir / "cache"

    def ingest_cache_max_bytes(self) -> int:
        """``cache_max_gb`` in bytes (0: nothing is cached)."""
        return int(self.cache_max_gb * 1e9)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
