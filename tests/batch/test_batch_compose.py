"""The docker-compose stack and the Dockerfile (validated without a Docker engine)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("api", "scheduler", "worker-1", "worker-2")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_services(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {*APP_SERVICES, "db"}
    for name in APP_SERVICES:
        svc = services[name]
        assert svc["build"] == "." and isinstance(svc["command"], list)
        assert "agrostress-data:/data" in svc["volumes"]
        assert svc["environment"]["AGROSTRESS_MODEL_DIR"] == "/app/models/ffdnn"
    # API on PostgreSQL, started once the database is healthy
    api = services["api"]
    assert api["command"][:2] == ["agrostress", "serve"] and "0.0.0.0" in api["command"]
    assert api["environment"]["AGROSTRESS_API_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@db:5432/" in api["environment"]["AGROSTRESS_API_DATABASE_URL"]
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    db = services["db"]
    assert db["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    # Dask: one scheduler, two single-threaded workers pointing at it
    sched = services["scheduler"]["command"]
    assert sched[:2] == ["dask", "scheduler"] and "8786" in sched
    for name in ("worker-1", "worker-2"):
        cmd = services[name]["command"]
        assert cmd[:3] == ["dask", "worker", "tcp://scheduler:8786"]
        assert cmd[cmd.index("--nthreads") + 1] == "1"
        assert "scheduler" in services[name]["depends_on"]
    # named volumes are declared
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert {"agrostress-data", "pgdata"} <= named & set(compose["volumes"])


def test_compose_interpolations_are_well_formed() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for m in re.finditer(r"\$\{([^}]*)\}", text):
        assert re.fullmatch(r"[A-Z_][A-Z0-9_]*(:?[-?][^}]*)?", m.group(1)), m.group(0)


def test_compose_is_closed_by_default(compose: dict) -> None:
    """No API without a key, no default database password, the API on 127.0.0.1 unless
    asked, the Dask scheduler and dashboard unpublished (the override binds 127.0.0.1)."""
    services = compose["services"]
    api_env = services["api"]["environment"]
    assert api_env["AGROSTRESS_API_KEY"].startswith("${AGROSTRESS_API_KEY:?")
    assert services["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "${POSTGRES_PASSWORD:?" in api_env["AGROSTRESS_API_DATABASE_URL"]
    (port,) = services["api"]["ports"]
    assert port.startswith("${AGROSTRESS_API_BIND:-127.0.0.1}:")
    for name, svc in services.items():
        if name != "api":
            assert "ports" not in svc, name
    text = (ROOT / "docker-compose.yml").read_text()
    assert ":-agrostress}" not in text  # no default password left anywhere
    host = yaml.safe_load((ROOT / "compose.dask-host.yml").read_text())
    assert all(p.startswith("127.0.0.1:") for p in host["services"]["scheduler"]["ports"])
    example = (ROOT / ".env.example").read_text()
    assert "AGROSTRESS_API_KEY=\n" in example and "POSTGRES_PASSWORD=\n" in example


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "download.pytorch.org/whl/cpu" in text and "torch==2.13.0" in text
    assert re.search(r"pip install \.", text) and "psycopg" in text
    for path in ("agrostress", "api", "pipelines", "models"):
        assert f"COPY {path} " in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "tests" in ignored and ".git" in ignored and "models" not in ignored


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="no docker compose plugin here",
)
def test_docker_compose_config_validates() -> None:
    res = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "AGROSTRESS_API_KEY": "k" * 32, "POSTGRES_PASSWORD": "p" * 16},
    )
    assert res.returncode == 0, res.stderr
    closed = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True, text=True, cwd=ROOT,
        env={k: v for k, v in os.environ.items()
             if k not in ("AGROSTRESS_API_KEY", "POSTGRES_PASSWORD")},
    )
    assert closed.returncode != 0 and "AGROSTRESS_API_KEY" in closed.stderr + closed.stdout
