"""Writing an analysis to files (see :mod:`agrostress.outputs`)."""

from __future__ import annotations

from pathlib import Path

from agrostress.analysis.result import AnalysisResult


def write_outputs(result: AnalysisResult, out_dir: str | Path, *,
                  overwrite: bool = True, plots: bool = True,
                  renders: bool = True) -> dict[str, Path]:
    """Write every artefact of ``result`` into ``out_dir`` atomically; {name: path}.

    All files are produced in a temporary sibling folder that replaces ``out_dir`` at the end,
    so a failure leaves nothing behind. An existing ``out_dir`` is replaced only when it is
    empty or an earlier AgroStress output folder (``overwrite``); any other folder is refused.
    ``plots=False`` skips the optional PNGs (trajectories, histogram, per-field heatmaps);
    ``renders=False`` every PNG (:func:`render_outputs` draws them afterwards).
    """
    from agrostress.outputs import write_all

    return write_all(result, Path(out_dir), overwrite=overwrite, plots=plots, renders=renders)


def render_outputs(result: AnalysisResult, out_dir: str | Path, *,
                   plots: bool = True) -> list[str]:
    """Draw the PNGs of ``result`` into the output folder ``out_dir`` written by
    :func:`write_outputs` with ``renders=False`` (each file appears atomically); the names
    of the artefacts drawn."""
    from agrostress.outputs import ARTEFACTS, render_pngs

    return [ARTEFACTS[n] for n in render_pngs(result, Path(out_dir), plots=plots)]


def pending_renders(result: AnalysisResult, *, plots: bool = True) -> list[str]:
    """The file names :func:`render_outputs` will try to draw for ``result``."""
    from agrostress.outputs import ARTEFACTS, png_artefacts

    return [ARTEFACTS[n] for n in png_artefacts(result, plots=plots)]
