"""Which device inference runs on (``--device`` of ``predict`` and ``batch``)."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """A device that does not exist here (the message says why and what exists)."""


def resolve_device(name: str | torch.device | None) -> torch.device:
    """``cpu`` (default), ``cuda``, ``cuda:N`` or ``mps`` as a device that exists here."""
    if name is None or str(name).strip() == "":
        return torch.device("cpu")
    try:
        dev = torch.device(str(name).strip().lower())
    except RuntimeError as e:
        raise DeviceError(f"unknown device {name!r} (use cpu, cuda, cuda:N or mps)") from e
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r}: no CUDA device here (this torch build or "
                              "machine has none); use --device cpu")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise DeviceError(f"device {name!r}: only {count} CUDA device(s) here")
        return dev
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(f"device {name!r}: no Apple MPS device here; use --device cpu")
        return dev
    raise DeviceError(f"unsupported device {name!r} (use cpu, cuda, cuda:N or mps)")
