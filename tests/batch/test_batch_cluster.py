"""Real Dask processes on 127.0.0.1: a worker killed mid-run, and a scheduler by address."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
import typer
from typer.testing import CliRunner

from agrostress.batch import Manifest, run_batch
from agrostress.batch.manifest import MANIFEST_NAME
from tests.batch.batch_helpers import END, START

HERE = Path(__file__).resolve().parent
pytestmark = [pytest.mark.network, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent.parent), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    return env


def test_worker_killed_mid_run_loses_no_tile(
    tmp_path: Path, region_scene: dict, tiny_model_dir: Path, files_settings, single_pass
) -> None:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        preload=["tests.batch.batch_helpers"],  # registers the 'slowfiles' source in the workers
    )
    client = Client(cluster)
    first_done = threading.Event()
    result: dict = {}

    def on_progress(p) -> None:
        if p.stage == "tile" and p.done >= 1:
            first_done.set()

    def work() -> None:
        try:
            result["manifest"] = run_batch(
                region_scene["region"], START, END, "slowfiles", tmp_path / "out", tiny_model_dir,
                tile_size=16, client=client, settings=files_settings, retries=0,
                progress=on_progress,
            )  # fmt: skip
        except BaseException as e:  # reported below
            result["error"] = e

    try:
        thread = threading.Thread(target=work)
        thread.start()
        assert first_done.wait(240), "no tile finished"
        busy = [addr for addr, keys in client.processing().items() if keys]
        pids = client.run(os.getpid)
        assert busy, "no worker had a tile to lose"
        victim = busy[0]
        os.kill(pids[victim], signal.SIGKILL)
        thread.join(300)
        assert not thread.is_alive()
        from agrostress.batch.task import model_loads

        loads = client.run(model_loads)  # the model is loaded once per worker process
        assert loads and all(n <= 1 for n in loads.values())
    finally:
        client.close()
        cluster.close()
    assert "error" not in result, result.get("error")
    m: Manifest = result["manifest"]
    assert m.complete and m.counts()["done"] == len(m.tiles) >= 5
    assert m.runs[-1]["failed"] == 0  # retries=0: the lost tiles were recomputed by Dask
    with rasterio.open(tmp_path / "out" / "stress_map.tif") as src:
        np.testing.assert_array_equal(src.read(1), single_pass["classes"])


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """``dask scheduler`` + ``dask worker`` started as separate processes, by address."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    local = ["--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]
    scheduler = ["-m", "distributed.cli.dask_scheduler", "--port", str(port), *local]
    worker = ["-m", "distributed.cli.dask_worker", address, "--nworkers", "1", "--nthreads", "1"]
    worker += local
    procs = [
        subprocess.Popen(
            [sys.executable, *args],
            env=_env(),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for args in (scheduler, worker)
    ]
    try:
        from distributed import Client

        deadline = time.monotonic() + 120
        while True:
            try:
                with Client(address, timeout="5s") as c:
                    c.wait_for_workers(1, timeout=90)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


def test_cli_against_a_separately_started_scheduler(
    dask_cluster: str, region_scene: dict, tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    from agrostress.commands import batch as batch_cmd
    from agrostress.settings import get_settings

    app = typer.Typer()
    batch_cmd.register(app)
    app.command("noop")(lambda: None)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "batch",
            "--region",
            str(region_scene["region"]),
            "--start",
            START,
            "--end",
            END,
            "--source",
            "files",
            "--input",
            str(region_scene["folder"]),
            "--out",
            str(out),
            "--model",
            str(tiny_model_dir),
            "--tile-size",
            "24",
            "--scheduler",
            dask_cluster,
        ],  # fmt: skip
    )
    get_settings.cache_clear()
    assert res.exit_code == 0, res.output
    m = Manifest.load(out / MANIFEST_NAME)
    assert m.complete and len(m.tiles) == 4
    assert m.runs[-1]["scheduler"] == dask_cluster and m.runs[-1]["workers"] == 1
    # the tiles were computed in the worker process, not here
    assert all(not r.worker.endswith(f":{os.getpid()}") for r in m.tiles.values())
