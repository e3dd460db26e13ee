"""The models the service serves, loaded once at start-up (never per request).

A request names a model by id (the card's name; ``name@version`` when two cards share a name);
ids come from the cards, so no file path is ever built from request input.
"""

from __future__ import annotations

import copy
import logging
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agrostress.models import CheckpointError, LoadedModel, load

LOGGER = logging.getLogger("agrostress.api")


@dataclass
class ServedModel:
    """A loaded checkpoint and its replicas: each analysis leases one for its inference, so
    analyses of different clients run side by side instead of queueing on one lock."""

    id: str
    model: LoadedModel
    path: Path
    default: bool = False
    _replicas: queue.Queue[LoadedModel] | None = field(default=None, repr=False)

    def provision(self, n: int) -> None:
        """Keep ``n`` replicas (the loaded model and ``n - 1`` in-memory copies: no reload)."""
        pool: queue.Queue[LoadedModel] = queue.Queue()
        pool.put(self.model)
        for _ in range(max(1, n) - 1):
            pool.put(copy.deepcopy(self.model))
        self._replicas = pool

    @contextmanager
    def lease(self) -> Iterator[LoadedModel]:
        """A replica for one analysis (waits while all are leased)."""
        if self._replicas is None:
            self.provision(1)
        assert self._replicas is not None
        replica = self._replicas.get()
        try:
            yield replica
        finally:
            self._replicas.put(replica)

    @property
    def card(self) -> Any:
        return self.model.card

    def ref(self) -> dict[str, str]:
        return {"id": self.id, "name": str(self.card.name), "version": str(self.card.version)}

    def info(self) -> dict[str, Any]:
        c = self.card
        return {
            "id": self.id,
            "name": str(c.name),
            "version": str(c.version),
            "architecture": str(c.architecture),
            "default": self.default,
            "class_names": list(c.class_names),
            "feature_spec": list(c.feature_spec),
            "grid": str(c.grid),
            "metrics": dict(c.metrics or {}),
            "created": str(c.created or ""),
            "training_data_hash": (c.training or {}).get("data_hash"),
        }


@dataclass
class ModelRegistry:
    """Served models by id, the default one, and load errors (reported by /readyz)."""

    models: dict[str, ServedModel] = field(default_factory=dict)
    default_id: str | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, default_dir: Path, extra_dirs: list[Path] | tuple[Path, ...] = ()) -> ModelRegistry:
        reg = cls()
        for i, path in enumerate([Path(default_dir), *map(Path, extra_dirs)]):
            try:
                loaded = load(path)
            except (CheckpointError, OSError, ValueError) as e:
                LOGGER.error("cannot load model %s: %s", path, e)
                reg.errors[str(path)] = str(e)
                continue
            reg.add(loaded, path, default=(i == 0))
        return reg

    def add(self, loaded: LoadedModel, path: Path, *, default: bool = False) -> ServedModel:
        mid = str(loaded.card.name)
        if mid in self.models:
            mid = f"{loaded.card.name}@{loaded.card.version}"
        if mid in self.models:
            LOGGER.warning("model %s at %s is served already; skipped", mid, path)
            return self.models[mid]
        served = ServedModel(mid, loaded, Path(path), default=default)
        self.models[mid] = served
        if default:
            self.default_id = mid
        LOGGER.info("serving model %s (v%s) from %s", mid, loaded.card.version, path)
        return served

    def get(self, model_id: str | None) -> ServedModel | None:
        if model_id is None:
            return self.models.get(self.default_id) if self.default_id else None
        return self.models.get(model_id)
