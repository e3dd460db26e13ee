"""Helpers shared by the ingestion tests."""

from __future__ import annotations

from typing import Any

from agrostress.settings import Settings
from tests.ingest.stub_sentinelhub import CLIENT_ID, CLIENT_SECRET, StubSentinelHub


def make_settings(**kwargs: Any) -> Settings:
    """Settings independent of the developer's environment / .env file."""
    base: dict[str, Any] = {"sh_client_id": "", "sh_client_secret": "", "sh_config_profile": None}
    base.update(kwargs)
    return Settings(_env_file=None, **base)


def sh_settings(stub: StubSentinelHub, **kwargs: Any) -> Settings:
    """Settings pointing sentinelhub-py at the stub, with fast retries."""
    values: dict[str, Any] = {
        "sh_client_id": CLIENT_ID,
        "sh_client_secret": CLIENT_SECRET,
        "sh_base_url": stub.base_url,
        "sh_token_url": stub.token_url,
        "sh_max_attempts": 3,
        "sh_retry_sleep_s": 0.01,
        "sh_rate_limit_retries": 5,
        "sh_rate_limit_wait_s": 0.01,
        "sh_timeout_s": 5.0,
        "sh_max_threads": 2,
    }
    values.update(kwargs)
    return make_settings(**values)
