"""Writing an analysis to files (see :mod:`agrostress.outputs`)."""

from __future__ import annotations

from pathlib import Path

from agrostress.analysis.result import AnalysisResult


def write_outputs(result: AnalysisResult, out_dir: str | Path, *,
                  overwrite: bool = True, plots: bool = True) -> dict[str, Path]:
    """Write every artefact of ``result`` into ``out_dir`` atomically; {name: path}.

    All files are produced in a temporary sibling folder that replaces ``out_dir`` at the end,
    so a failure leaves nothing behind. An existing ``out_dir`` is replaced only when it is
    empty or an earlier AgroStress output folder (``overwrite``); any other folder is refused.
    ``plots=False`` skips the optional PNGs (trajectories, histogram, per-field heatmaps).
    """
    from agrostress.outputs import write_all

    return write_all(result, Path(out_dir), overwrite=overwrite, plots=plots)
