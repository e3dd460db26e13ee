"""A job's progress, written to its row, and the shutdown signal raised inside the job."""

from __future__ import annotations

import threading
import time

from api.db import Store


class JobInterrupted(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside a job when the process shuts down; the job is handed over, not failed."""


class JobProgress:
    """Maps fetch/analyse progress to 0..1, writes it (throttled), and checks for shutdown."""

    FETCH, ANALYSE = (0.02, 0.45), (0.45, 0.95)
    MIN_INTERVAL_S = 0.5

    def __init__(self, store: Store, owner: str, stopping: threading.Event, analysis_id: str):
        self.store, self.owner, self.stopping, self.id = store, owner, stopping, analysis_id
        self.last_write, self.last_stage = 0.0, ""

    def set(self, stage: str, value: float, *, force: bool = False) -> None:
        """Record ``stage`` at ``value`` (0..1); raises :class:`JobInterrupted` on shutdown."""
        if self.stopping.is_set():
            raise JobInterrupted(self.id)
        now = time.monotonic()
        if force or stage != self.last_stage or now - self.last_write > self.MIN_INTERVAL_S:
            self.last_write, self.last_stage = now, stage
            self.store.update(
                self.id,
                owner=self.owner,
                stage=stage[:32],
                progress=round(min(max(value, 0.0), 1.0), 4),
            )

    @staticmethod
    def _scaled(span: tuple[float, float], done: int, total: int) -> float:
        frac = done / total if total else 1.0
        return span[0] + (span[1] - span[0]) * min(max(frac, 0.0), 1.0)

    def fetch(self, stage: str, done: int, total: int) -> None:
        """The ingestion's progress callback (``ProgressCallback``)."""
        self.set(str(stage or "fetch"), self._scaled(self.FETCH, done, total))

    def analyse(self, done: int, total: int) -> None:
        """The analysis's progress callback (tiles done of total)."""
        self.set("analyse", self._scaled(self.ANALYSE, done, total))
