"""Who is calling: the client an API key stands for, and each client's submission rate.

With no key configured every request is the one client ``anonymous``: it sees everything and
only the server-wide limits apply.
With keys (``AGROSTRESS_API_KEY`` for the client ``default``, ``AGROSTRESS_API_KEYS`` for named
clients) each request is its key's client: it lists and reads only its own analyses, and its
submissions draw on its own rate limit and queue share.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from dataclasses import dataclass

from api.settings import ApiSettings

ANONYMOUS = "anonymous"
"""The client of every request when the service has no key."""


def identify(api: ApiSettings, presented: str | None) -> str | None:
    """The client whose key is ``presented`` (``anonymous`` without keys), None if none.

    Every configured key is compared, each in constant time, so the answer's timing does not
    tell which key came close.
    """
    keys = api.client_keys()
    if not keys:
        return ANONYMOUS
    if presented is None:
        return None
    given = presented.encode()
    found = None
    for name, key in keys.items():
        if hmac.compare_digest(given, key.encode()):
            found = name
    return found


def owner_filter(api: ApiSettings, client: str) -> str | None:
    """The client whose analyses ``client`` may see (None: all, when there are no keys)."""
    return client if api.client_keys() else None


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per client: ``per_minute`` submissions on average, ``burst`` at once."""

    def __init__(self, per_minute: float, burst: int):
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = time.monotonic
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def take(self, client: str) -> float:
        """Spend one submission of ``client``: 0 when allowed, else the seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            b = self._buckets.setdefault(client, _Bucket(self.burst, now))
            b.tokens = min(self.burst, b.tokens + (now - b.at) * self.rate)
            b.at = now
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return 0.0
            return (1.0 - b.tokens) / self.rate

    @staticmethod
    def retry_after(wait_s: float) -> str:
        """The ``Retry-After`` value (whole seconds, at least 1) of a wait."""
        return str(max(1, math.ceil(wait_s)))
