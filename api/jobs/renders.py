"""PNGs drawn after the answer: on first request, or while the job workers are idle.

Drawing the PNGs costs more than the analysis of a small field (matplotlib: ~1 s against
~0.5 s), and most clients of the API never ask for them. So a job writes the data artefacts,
answers, and leaves its result here; a PNG is drawn when it is first asked for (the request
waits for it) or, when no analysis is queued or running, by a background thread. Results wait
in a bounded list: the oldest not drawn yet are dropped (their PNGs leave the analysis's
artefacts), as are those left when the server stops.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from api.db import Store

LOGGER = logging.getLogger("agrostress.api.jobs")


@dataclass
class _Pending:
    draw: Callable[[Path], list[str]] | None  # draws into the folder, returns what it drew
    names: list[str]  # the artefacts still to draw
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: bool = False


class Renders:
    """Results whose PNGs are still to be drawn (at most ``keep``), and their drawing."""

    def __init__(
        self,
        store: Store,
        folder: Callable[[str], Path],
        idle: Callable[[], bool],
        keep: int = 32,
    ):
        self.store, self._folder, self._idle = store, folder, idle
        self.keep = keep
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="agrostress-renders",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, analysis_id: str, draw: Callable[[Path], list[str]],
            names: list[str]) -> None:
        """Keep the drawing of an analysis's ``names`` (before its row says done): ``draw``
        draws them into a folder and returns those it drew."""
        with self._lock:
            self._pending[analysis_id] = _Pending(draw, list(names))
            dropped = []
            while len(self._pending) > self.keep:
                dropped.append(self._pending.popitem(last=False))
        for old_id, entry in dropped:
            self._finish(old_id, entry, drawn=[])
        self._wake.set()

    def pending_here(self, analysis_id: str) -> bool:
        with self._lock:
            return analysis_id in self._pending

    def draw(self, analysis_id: str) -> None:
        """Draw the PNGs of an analysis now (once, whoever asks first; others wait)."""
        with self._lock:
            entry = self._pending.get(analysis_id)
        if entry is None:
            return
        with entry.lock:
            if entry.done:
                return
            drawn: list[str] = []
            try:
                assert entry.draw is not None
                drawn = list(entry.draw(self._folder(analysis_id)))
            except Exception:  # noqa: BLE001 - the answer stands; the PNGs are left out
                LOGGER.exception("drawing the PNGs of analysis %s failed", analysis_id)
            finally:
                with self._lock:
                    self._pending.pop(analysis_id, None)
                self._finish(analysis_id, entry, drawn)

    def _finish(self, analysis_id: str, entry: _Pending, drawn: list[str]) -> None:
        """Record what was drawn: the PNGs not drawn leave the analysis's artefacts."""
        entry.done = True
        entry.draw = None  # the result it holds can go
        row = self.store.get(analysis_id)
        if row is None or not row.get("result"):
            return
        result = row["result"]
        left_out = set(entry.names) - set(drawn)
        self.store.update(analysis_id, result={
            **result, "rendering": [],
            "artefacts": [n for n in result.get("artefacts", []) if n not in left_out]})

    def _loop(self) -> None:
        """Draw the oldest pending PNGs while no analysis is queued or running."""
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            while not self._stop.is_set() and self._idle():
                with self._lock:
                    oldest = next(iter(self._pending), None)
                if oldest is None:
                    break
                self.draw(oldest)

    def close(self) -> None:
        """Stop drawing; the PNGs not drawn yet are dropped from their analyses."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(30)
        with self._lock:
            left = list(self._pending.items())
            self._pending.clear()
        for analysis_id, entry in left:
            with entry.lock:
                if not entry.done:
                    self._finish(analysis_id, entry, drawn=[])
