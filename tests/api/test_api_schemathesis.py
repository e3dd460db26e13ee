"""Schemathesis against the live server's OpenAPI schema: no request may cause a 5xx or a
status code the schema does not document (``AGROSTRESS_FUZZ_EXAMPLES`` per operation: 15 by
default, e.g. 200 for a run of over 1,000 cases; ``AGROSTRESS_FUZZ_REPORT=file.json`` writes
the number of cases sent per operation)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import status_code_conformance  # noqa: E402

from agrostress.settings import Settings  # noqa: E402
from api.app import create_app  # noqa: E402
from api.settings import ApiSettings  # noqa: E402
from tests.api.api_fakes import FakeCore  # noqa: E402
from tests.api.api_helpers import LiveServer  # noqa: E402

pytestmark = [pytest.mark.network, pytest.mark.slow]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    cfg = Settings(_env_file=None, data_dir=tmp / "data", cache_dir=tmp / "cache",
                   model_dir=tiny_model_dir)
    api = ApiSettings(_env_file=None, sources=["simulated"], max_body_bytes=200_000)
    srv = LiveServer(create_app(cfg, api, core=FakeCore().core())).start()
    yield schemathesis.openapi.from_url(f"{srv.url}/openapi.json")
    srv.stop()


schema = schemathesis.pytest.from_fixture("api_schema")
CASES: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_cases() -> Iterator[None]:
    yield
    if report := os.environ.get("AGROSTRESS_FUZZ_REPORT"):
        Path(report).write_text(json.dumps({"total": sum(CASES.values()), **CASES}, indent=1))


@schema.parametrize()
@settings(max_examples=int(os.environ.get("AGROSTRESS_FUZZ_EXAMPLES", "15")), deadline=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Any) -> None:
    CASES[f"{case.method} {case.path}"] += 1
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance], timeout=60)
