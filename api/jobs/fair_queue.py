"""Queued jobs shared fairly between clients.

A free worker takes the next job of the client with the fewest jobs running (ties: the job
that has waited longest), and never starts more than ``max_running`` jobs of one client at once:
a client that queues many long analyses cannot make another's short one wait behind them all.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter, deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    """Per-client FIFO queues drained round the clients; thread-safe."""

    def __init__(self, max_running: int):
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        self.max_running = max_running
        self._cond = threading.Condition()
        self._waiting: dict[str, deque[tuple[int, T]]] = {}
        self._running: Counter[str] = Counter()
        self._order = itertools.count()
        self._closed = False

    def put(self, client: str, item: T) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the queue is closed")
            self._waiting.setdefault(client, deque()).append((next(self._order), item))
            self._cond.notify_all()

    def take(self) -> tuple[str, T] | None:
        """Block until a job may start (then it counts as running), or None once closed."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                client = self._next_client()
                if client is not None:
                    _, item = self._waiting[client].popleft()
                    if not self._waiting[client]:
                        del self._waiting[client]
                    self._running[client] += 1
                    return client, item
                self._cond.wait()

    def _next_client(self) -> str | None:
        eligible = [(self._running[c], q[0][0], c) for c, q in self._waiting.items()
                    if self._running[c] < self.max_running]
        return min(eligible)[2] if eligible else None

    def done(self, client: str) -> None:
        """A job of ``client`` that :meth:`take` gave out has finished."""
        with self._cond:
            self._running[client] -= 1
            if self._running[client] <= 0:
                del self._running[client]
            self._cond.notify_all()

    def close(self) -> list[T]:
        """Stop handing out jobs; the jobs still waiting, in queue order."""
        with self._cond:
            self._closed = True
            left = sorted(x for q in self._waiting.values() for x in q)
            self._waiting.clear()
            self._cond.notify_all()
        return [item for _, item in left]

    def running(self, client: str) -> int:
        with self._cond:
            return self._running[client]
