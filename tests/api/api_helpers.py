"""Helpers for the REST service tests: a tiny checkpoint, live uvicorn servers, polling."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

FEATURES = ["LAI", "LCC", "NDREI", "MTCI", "S2REP", "REDSI", "PSRI"]
NORM = {
    "features": FEATURES,
    "mean": [2.33, 35.4, 0.57, 2.95, 722.8, 152.1, 0.018],
    "std": [1.11, 9.87, 0.134, 1.29, 4.94, 184.1, 0.041],
    "lo": [0.62, 7.27, 0.21, 0.41, 696.7, -72.4, -0.046],
    "hi": [5.6, 52.1, 0.81, 6.79, 732.3, 1039.2, 0.166],
}


def build_model(out: Path, name: str = "ffdnn-test", version: str = "0.0.1") -> Path:
    """An untrained FFDNN checkpoint (random weights, seed 0): fast to make, loads for real."""
    import torch

    from agrostress.models import ModelCard, create_model, save

    torch.manual_seed(0)
    module = create_model("ffdnn", n_features=7, n_steps=29, n_classes=3)
    card = ModelCard(
        name=name, architecture="ffdnn", config={}, n_features=7, n_steps=29,
        feature_spec=list(FEATURES), grid="60:200:5", normalisation=dict(NORM),
        version=version, metrics={"field": {"overall_accuracy": 0.5}},
    )
    return save(module, card, out)


def build_reference_model(out: Path) -> Path:
    """An untrained FFDNN that judges fields against a wheat reference (random weights; its
    spec carries B04/B08 for the reference gate and a flat built-in reference)."""
    import torch

    from agrostress.models import ModelCard, create_model, save

    feats = [*FEATURES, "B04", "B08"]
    norm = {k: (feats if k == "features" else [*NORM[k], *extra])
            for k, extra in (("features", None), ("mean", [0.05, 0.33]), ("std", [0.03, 0.09]),
                             ("lo", [0.0, 0.1]), ("hi", [0.3, 0.6]))}
    torch.manual_seed(0)
    module = create_model("ffdnn", n_features=len(feats), n_steps=29, n_classes=3,
                          reference=True)
    card = ModelCard(
        name="ffdnn-reference-test", architecture="ffdnn", config={"reference": True},
        n_features=len(feats), n_steps=29, feature_spec=feats, grid="60:200:5",
        normalisation=norm, builtin_reference=[norm["mean"]] * 29,
    )
    return save(module, card, out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """uvicorn serving an app on 127.0.0.1 in a thread (lifespan included)."""

    def __init__(self, app: Any, port: int | None = None):
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on", timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, **{"timeout": 60, **kw})

    @property
    def service(self) -> Any:
        return self.app.state.service


def wait_done(client: httpx.Client, analysis_id: str, timeout: float = 60) -> dict[str, Any]:
    """Poll until the analysis is done or failed."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/analyses/{analysis_id}").json()
        if body["status"] in ("done", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def real_core_available() -> bool:
    """True once agrostress.analysis implements the contract (issue 6)."""
    from api.jobs.core import default_core

    return default_core()[0] is not None
