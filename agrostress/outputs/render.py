"""PNG renderings (matplotlib, Agg backend): each figure carries its own title, legend, units
and reading hint, so it can be understood without the docs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from agrostress.cube import NODATA  # noqa: E402
from agrostress.outputs.cog import CLASS_COLOURS, NODATA_COLOUR, hex_rgba, map_codes  # noqa: E402

DPI = 120
PRETTY = {"healthy": "healthy", "nitrogen_deficiency": "nitrogen deficiency",
          "yellow_rust": "yellow rust"}


def pretty(name: str | None) -> str:
    return "—" if name is None else PRETTY.get(name, str(name).replace("_", " "))


def _nice_length(target: float) -> float:
    """1, 2 or 5 × 10^k just below ``target``."""
    if target <= 0:
        return 1.0
    k = 10 ** math.floor(math.log10(target))
    for m in (5, 2, 1):
        if m * k <= target:
            return m * k
    return k


def _extent(result: Any) -> tuple[float, float, float, float]:
    t = result.transform
    ny, nx = result.classes.shape[-2:]
    return t.c, t.c + t.a * nx, t.f + t.e * ny, t.f


def _date_ticks(ax: Any, dates: Sequence[str], axis: str = "x", every: int | None = None) -> None:
    import pandas as pd

    n = len(dates)
    step = every or max(1, n // 7)
    idx = list(range(0, n, step))
    labels = [pd.Timestamp(dates[i]).strftime("%d %b") for i in idx]
    if axis == "x":
        ax.set_xticks(idx)
        ax.set_xticklabels(labels, rotation=45, ha="right")
    else:
        ax.set_yticks(idx)
        ax.set_yticklabels(labels)


def stress_map_png(path: str | Path, result: Any, *, title: str | None = None) -> Path:
    """The class map with field outlines and ids, a legend with areas, a scale bar, a title."""
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    path = Path(path)
    names = result.class_names
    classes = np.asarray(result.classes.values)
    meta = result.meta
    codes = map_codes(names)
    rgba = np.zeros((*classes.shape, 4), dtype=np.uint8)
    rgba[...] = hex_rgba(NODATA_COLOUR)
    for k, n in codes.items():
        rgba[classes == k] = hex_rgba(CLASS_COLOURS.get(n, "#7f7f7f"))
    extent = _extent(result)
    ny, nx = classes.shape
    findex = None if result.field_index is None else np.asarray(result.field_index.values)
    if findex is not None and result.fields:  # outside the fields: paler (not the product's aim)
        rgba[findex == 0, 3] = 90
    fig, ax = plt.subplots(figsize=(8.0, 7.0), dpi=DPI)
    ax.set_facecolor("white")
    ax.imshow(rgba, extent=extent, interpolation="nearest", origin="upper")
    if findex is not None and result.fields:
        n_fields = len(result.fields)
        xs = np.linspace(extent[0], extent[1], nx, endpoint=False) + (extent[1] - extent[0]) / nx / 2
        ys = np.linspace(extent[3], extent[2], ny, endpoint=False) - (extent[3] - extent[2]) / ny / 2
        if n_fields <= 300:
            for i in range(1, n_fields + 1):
                m = findex == i
                if not m.any():
                    continue
                ax.contour(xs, ys, m.astype(float), levels=[0.5], colors="black", linewidths=0.9)
                if n_fields <= 60:
                    r, c = np.nonzero(m)
                    k = np.argmin((r - r.mean()) ** 2 + (c - c.mean()) ** 2)
                    ax.text(xs[c[k]], ys[r[k]], str(result.fields[i - 1].field_id),
                            ha="center", va="center", fontsize=8, weight="bold",
                            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                  "alpha": 0.75})
    ha = result.totals.get("hectares", {})
    total = max(ha.get("total", 0.0), 1e-12)
    handles = [
        Patch(facecolor=CLASS_COLOURS.get(n, "#7f7f7f"), edgecolor="black", linewidth=0.4,
              label=f"{pretty(n)}: {ha.get(n, 0):.1f} ha ({100 * ha.get(n, 0) / total:.0f} %)")
        for n in codes.values()
    ]
    handles.append(Patch(facecolor=NODATA_COLOUR, edgecolor="black", linewidth=0.4,
                         label=f"no data / insufficient: {ha.get('nodata', 0):.1f} ha"))
    if findex is not None and result.fields:
        handles.append(Patch(facecolor="none", edgecolor="black", label="field outline (id)"))
        handles.append(Patch(facecolor=CLASS_COLOURS.get(names[0], "#7f7f7f"), alpha=0.35,
                             edgecolor="none", label="pale: outside the fields"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9,
              title="class per pixel (area in scene)", title_fontsize=9, frameon=False)
    width = abs(extent[1] - extent[0])
    geographic = bool(meta.get("geographic"))
    metres_per_unit = 1.0
    if geographic:
        metres_per_unit = 111_320.0 * math.cos(math.radians((extent[2] + extent[3]) / 2))
    length_m = _nice_length(width * metres_per_unit / 4)
    label = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    bar = AnchoredSizeBar(ax.transData, length_m / metres_per_unit, label, "lower right",
                          pad=0.4, color="black", frameon=True, size_vertical=width / 150)
    bar.patch.set_alpha(0.8)
    ax.add_artist(bar)
    ax.annotate("N", xy=(0.04, 0.95), xytext=(0.04, 0.83), xycoords="axes fraction",
                ha="center", va="center", fontsize=11, weight="bold",
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.5})
    ax.ticklabel_format(useOffset=False, style="plain")
    crs_label = f"EPSG:{meta['epsg']}" if meta.get("epsg") else meta.get("crs_name", "")
    ax.set_xlabel(f"easting ({crs_label})")
    ax.set_ylabel("northing")
    ax.tick_params(labelsize=8)
    card = result.model_card
    ax.set_title(
        title or "Wheat stress map: yellow rust vs nitrogen deficiency", fontsize=12,
        weight="bold", loc="left",
    )
    ax.text(
        0.0, -0.13,
        f"Sentinel-2 L2A, {meta.get('observations')} dates {meta.get('first_date')} … "
        f"{meta.get('last_date')}; model {card.get('name')} v{card.get('version')} "
        f"({card.get('architecture')}), grid DOY {meta.get('grid')}.\nGrey = not enough clear "
        "observations to decide. Field areas and calls: summary.json.",
        transform=ax.transAxes, fontsize=7.5, color="#444444", va="top",
    )
    fig.savefig(path, bbox_inches="tight", pad_inches=0.15)
    plt.close(fig)
    return path


def _heatmap_panel(ax: Any, h: np.ndarray, dates: Sequence[str], features: Sequence[str],
                   vmax: float, title: str) -> Any:
    im = ax.imshow(np.asarray(h).T, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                   interpolation="nearest")
    ax.set_yticks(range(len(features)))
    ax.set_yticklabels(features, fontsize=8)
    _date_ticks(ax, dates)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(title, fontsize=9)
    return im


def attribution_png(path: str | Path, attributions: Any, *, per: str = "classes",
                    max_panels: int = 24) -> Path:
    """Heatmaps (features × dates) per predicted class (``per="classes"``) or per field."""
    path = Path(path)
    dates, feats = attributions.dates, attributions.features
    if per == "classes":
        panels = []
        for n, v in attributions.classes.items():
            where = f"{v['fields']} field(s) called {pretty(n)}, " if v.get("fields") else ""
            panels.append((f"toward {pretty(n)}: {where}{v['pixels']} explained px", v["heatmap"]))
    else:
        panels = []
        for f in attributions.fields[:max_panels]:
            truth = f" (true: {pretty(f['true_label'])})" if f.get("true_label") else ""
            panels.append((f"field {f['field_id']}: {pretty(f['target'])}{truth}, {f['pixels']} px",
                           f["heatmap"]))
    n = max(1, len(panels))
    cols = 1 if per == "classes" else min(3, n)
    rows = math.ceil(n / cols)
    height = 2.7 * rows + 1.3
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols if cols > 1 else 9, height),
                             dpi=DPI, squeeze=False)
    fig.subplots_adjust(left=0.08 if cols > 1 else 0.1, right=0.88, top=1 - 1.0 / height,
                        bottom=0.6 / height, hspace=0.75, wspace=0.3)
    vmax = max([float(np.abs(h).max()) for _, h in panels] + [1e-9])
    im = None
    for ax, (title, h) in zip(axes.flat, panels, strict=False):
        im = _heatmap_panel(ax, h, dates, feats, vmax, title)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if not panels:
        axes.flat[0].text(0.5, 0.5, "no pixel could be explained", ha="center", va="center")
    method = {"ig": "Integrated Gradients", "saliency": "Saliency (|gradient|)",
              "gradientshap": "GradientShap", "occlusion": "Occlusion (time windows)"}.get(
        attributions.method, attributions.method)
    target = "each field's call" if per == "fields" else "the class named in each panel"
    fig.suptitle(
        f"Which dates and features drove the call: {method}, mean over explained pixels\n"
        f"red = pushes the probability of {target} up, blue = down "
        "(compared with the training-mean series)",
        fontsize=10,
    )
    if im is not None:
        cb = fig.colorbar(im, cax=fig.add_axes((0.9, 0.2, 0.015, 0.6)))
        cb.set_label("attribution (Δ probability)", fontsize=8)
    fig.savefig(path)
    plt.close(fig)
    return path


def trajectories_png(path: str | Path, result: Any, *, max_fields: int = 30) -> Path | None:
    """Per-field NDVI / PSRI / LCC series (coloured by call) against the healthy reference."""
    traj = result.trajectories
    if not traj:
        return None
    path = Path(path)
    feats, dates = traj["features"], traj["dates"]
    ref_name = traj.get("reference_class", "healthy")
    ref = traj["references"].get(ref_name)
    rows_by_id = {str(r.field_id): r for r in result.fields}
    fig, axes = plt.subplots(len(feats), 1, figsize=(9, 2.7 * len(feats) + 1), dpi=DPI,
                             sharex=True, squeeze=False)
    t = np.arange(len(dates))
    for j, feat in enumerate(feats):
        ax = axes[j, 0]
        if ref and ref.get("mean"):
            m = np.asarray(ref["mean"][feat])
            ax.plot(t, m, color="black", lw=2.4, ls="--", zorder=5)
            if ref.get("std"):
                s = np.asarray(ref["std"][feat])
                ax.fill_between(t, m - s, m + s, color="black", alpha=0.08, lw=0)
        shown = 0
        for fid, series in traj["fields"].items():
            if series is None or shown >= max_fields:
                continue
            row = rows_by_id.get(fid)
            call = None if row is None else row.call or row.leading_class
            colour = CLASS_COLOURS.get(call, "#7f7f7f")
            ax.plot(t, series[feat], color=colour, lw=1.1, alpha=0.9)
            ax.annotate(fid, (t[-1], series[feat][-1]), xytext=(3, 0), textcoords="offset points",
                        fontsize=6.5, color=colour, va="center")
            shown += 1
        ax.set_ylabel(feat)
        ax.grid(alpha=0.3)
    _date_ticks(axes[-1, 0], dates)
    handles = [plt.Line2D([], [], color=CLASS_COLOURS.get(n, "#7f7f7f"), lw=1.5,
                          label=f"field called {pretty(n)}") for n in result.class_names]
    src = ref["source"] if ref else "none available"
    handles.append(plt.Line2D([], [], color="black", lw=2.4, ls="--",
                              label=f"healthy reference ± 1 sd ({src})"))
    axes[0, 0].legend(handles=handles, fontsize=7.5, loc="best", ncol=2)
    fig.suptitle(
        "Field trajectories against healthy wheat: NDVI (greenness), PSRI (senescence / "
        "pigment loss, up = worse),\nLCC (leaf chlorophyll, µg/cm²); mean over each field's "
        "valid pixels on the model's temporal grid (line labels: field ids)",
        fontsize=9.5,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def drawable_timelines(result: Any) -> list[Any]:
    """The fields' time lines with something to draw (more than one date)."""
    return [t for t in (result.timelines or []) if len(t.dates) > 1]


def timeline_png(path: str | Path, result: Any, *, max_fields: int = 24) -> Path | None:
    """Per field: the class probabilities on every past date up to the as-of date, the call
    of each date as a coloured strip, and the date since which the current call holds."""
    timelines = drawable_timelines(result)[:max_fields]
    if not timelines:
        return None
    path = Path(path)
    names = result.class_names
    ncol = min(4, len(timelines))
    nrow = math.ceil(len(timelines) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 2.5 * nrow + 1.2), dpi=DPI,
                             squeeze=False, sharey=True)
    for ax in axes.ravel()[len(timelines):]:
        ax.set_visible(False)
    for ax, tl in zip(axes.ravel(), timelines, strict=False):
        t = np.arange(len(tl.dates))
        for n in names:
            ax.plot(t, tl.probabilities[n], color=CLASS_COLOURS.get(n, "#7f7f7f"), lw=1.6)
        for k, call in enumerate(tl.calls):
            ax.axvspan(k - 0.5, k + 0.5, ymin=0, ymax=0.06,
                       color=CLASS_COLOURS.get(call, NODATA_COLOUR), lw=0)
        if tl.call_since is not None:
            ax.axvline(tl.dates.index(tl.call_since), color="black", ls=":", lw=1)
        ax.set_ylim(0, 1)
        ax.set_title(f"field {tl.field_id}: {pretty(tl.calls[-1])}"
                     + (f" since {tl.call_since}" if tl.call_since else ""), fontsize=8.5)
        ax.grid(alpha=0.3)
        _date_ticks(ax, tl.dates, every=max(1, len(tl.dates) // 5))
        ax.tick_params(labelsize=7)
    handles = [plt.Line2D([], [], color=CLASS_COLOURS.get(n, "#7f7f7f"), lw=1.6,
                          label=f"p({pretty(n)})") for n in names]
    handles += [Patch(color=CLASS_COLOURS[o], label=f"call: {pretty(o)}")
                for o in ("uncertain", "too_early")]
    handles.append(plt.Line2D([], [], color="black", ls=":", lw=1, label="current call since"))
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=7.5)
    season = result.meta.get("season") or {}
    fig.suptitle(
        f"Call time line as of {season.get('as_of', '?')}: mean class probability of each "
        "field on every past date (later acquisitions masked), the call of each date as the "
        "strip at the bottom", fontsize=9.5)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    fig.savefig(path)
    plt.close(fig)
    return path


def histogram_png(path: str | Path, result: Any) -> Path:
    """Distribution of each class probability and of the confidence over valid pixels."""
    path = Path(path)
    names = result.class_names
    p = np.asarray(result.probabilities.values)
    classes = np.asarray(result.classes.values)
    valid = classes != NODATA
    bins = np.linspace(0, 1, 26)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4), dpi=DPI)
    for k, n in enumerate(names):
        a1.hist(p[k][valid], bins=bins, histtype="step", lw=1.8,
                color=CLASS_COLOURS.get(n, "#7f7f7f"), label=f"p({pretty(n)})")
    a1.set_xlabel("class probability")
    a1.set_ylabel("pixels")
    a1.set_title("Probability of each class, all valid pixels", fontsize=10)
    a1.legend(fontsize=8)
    conf = np.asarray(result.confidence.values)
    stacks = [conf[valid & (classes == k)] for k in range(len(names))]
    a2.hist(stacks, bins=np.linspace(1 / len(names), 1, 21), stacked=True,
            color=[CLASS_COLOURS.get(n, "#7f7f7f") for n in names],
            label=[pretty(n) for n in names])
    a2.set_xlabel("confidence (probability of the predicted class)")
    a2.set_title("Confidence by predicted class", fontsize=10)
    a2.legend(fontsize=8, title="predicted", title_fontsize=8)
    fig.suptitle(
        f"{int(valid.sum())} valid pixels; {int((~valid).sum())} without enough clear "
        "observations are left out. Low confidence = the model hesitates.",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def evidence_png(path: str | Path, result: Any) -> Path | None:
    """Quicklook of the two evidence maps (see ``evidence.tif``)."""
    att = result.attributions
    if not att:
        return None
    path = Path(path)
    extent = _extent(result)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), dpi=DPI)
    panels = [
        (att.evidence, "Evidence for the predicted class\n(p_call(x) − p_call(baseline))",
         "viridis", None),
        (att.evidence_rust_vs_n, "Yellow rust vs nitrogen deficiency\n(red = rust, "
         "blue = N deficiency)", "RdBu_r", "sym"),
    ]
    for ax, (img, title, cmap, sym) in zip(axes, panels, strict=True):
        a = np.asarray(img)
        vmax = float(np.nanmax(np.abs(a))) if np.isfinite(a).any() else 1.0
        kw = {"vmin": -vmax, "vmax": vmax} if sym else {}
        cmap_obj = plt.get_cmap(cmap).with_extremes(bad=NODATA_COLOUR)
        im = ax.imshow(a, extent=extent, cmap=cmap_obj, interpolation="nearest", **kw)
        ax.set_title(title, fontsize=9)
        ax.ticklabel_format(useOffset=False, style="plain")
        ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=ax, shrink=0.8, label="Δ probability")
    fig.suptitle("Where the evidence is (total Integrated-Gradients attribution per pixel; grey "
                 "= no data)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


__all__ = [
    "attribution_png",
    "evidence_png",
    "histogram_png",
    "pretty",
    "stress_map_png",
    "trajectories_png",
]
