"""Atomic writes: produce files and folders under a temporary name, then rename."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling path; on success move it onto ``target``.

    Works for files and folders. On error the temporary path is removed and ``target``
    is left untouched, so a reader never sees a half-written result.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists (pass overwrite=True to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    tmp_item = tmp / target.name
    try:
        yield tmp_item
        if not tmp_item.exists():
            raise RuntimeError(f"nothing was written for {target}")
        if target.exists():
            backup = tmp / (target.name + ".old")
            os.replace(target, backup)
        os.replace(tmp_item, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
