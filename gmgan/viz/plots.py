"""Plot helpers for the notebooks (matplotlib figures and images) and Markdown tables.

:func:`show_images`, :func:`show_diff`, :func:`plot_curves` and :func:`show_gms_map` return
matplotlib figures drawn in the book's column (:mod:`gmgan.viz.style`); :func:`diff_map` and
:func:`colorize` return images; :func:`markdown_table` a table that the book renders and nbval
compares as text. matplotlib is imported only when a function needs it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gmgan.config import TrainConfig
from gmgan.viz.images import to_uint8
from gmgan.viz.style import COLUMN_WIDTH, MIN_PANEL_WIDTH

__all__ = ["colorize", "diff_map", "markdown_table", "plot_curves", "show_diff", "show_gms_map",
           "show_images"]


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def show_images(images: Sequence[Any], titles: Sequence[str] | None = None, *, ncols: int | None = None,
                size: float | None = None, suptitle: str = ""):
    """Show images side by side, at the same scale, without interpolation, in readable panels.

    The figure is at most :data:`COLUMN_WIDTH` inches wide (the book's column), and no panel is
    narrower than :data:`MIN_PANEL_WIDTH` inches (about 210 CSS pixels): more images than fit in a
    row wrap onto further rows, so thumbnails stay large enough to see.

    Args:
        images: images as accepted by :func:`to_uint8` (uint8 HxW / HxWx3, float in [0, 1],
            torch 3xHxW / 1x3xHxW in [0, 1]); grey images are drawn in grey.
        titles: one title per image (may hold line breaks), or None.
        ncols: the most images per row (default: as many as fit, at most 3 in the column).
        size: the most height of a row in inches (default: panels fill the column's width).
        suptitle: a title over the whole figure.

    Returns:
        the matplotlib Figure (in a notebook assign it, ``fig = ...``, so that it is drawn once).
    """
    arrays = [to_uint8(img, f"images[{i}]") for i, img in enumerate(images)]
    if not arrays:
        raise ValueError("show_images() needs at least one image")
    if titles is not None and len(titles) != len(arrays):
        raise ValueError(f"{len(titles)} titles for {len(arrays)} images")
    if ncols is not None and ncols < 1:
        raise ValueError(f"ncols must be >= 1, not {ncols}")
    fit = max(1, int(COLUMN_WIDTH // MIN_PANEL_WIDTH))   # panels of the smallest width in a row
    ncols = min(ncols or len(arrays), len(arrays), fit)
    nrows = -(-len(arrays) // ncols)
    aspect = max(a.shape[1] / a.shape[0] for a in arrays)   # width / height of the widest image
    panel_w = COLUMN_WIDTH / ncols
    if size is not None:
        panel_w = min(panel_w, max(size * aspect, MIN_PANEL_WIDTH))
    lines = max(str(t).count("\n") + 1 for t in titles) if titles is not None else 0
    title_h = 0.2 * lines + (0.1 if lines else 0.0)      # inches of title text above each panel
    plt = _pyplot()
    height = nrows * (panel_w / aspect + title_h) + (0.35 if suptitle else 0.0)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(ncols * panel_w, height))
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, arr) in enumerate(zip(axes.flat, arrays)):
        ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i])
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout(pad=0.3)
    return fig


def colorize(values: Any, *, vmin: float = 0.0, vmax: float = 1.0, cmap: str = "viridis") -> np.ndarray:
    """A map of numbers as an RGB image through a matplotlib colour map (e.g. a GMS map in a slider).

    Args:
        values: HxW numbers (numpy or torch; 1x1xHxW and 1xHxW are squeezed).
        vmin, vmax: the values drawn with the first and the last colour (clipped outside).
        cmap: a matplotlib colour map name.

    Returns:
        uint8 HxWx3.
    """
    from matplotlib import colormaps

    arr = values.detach().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)
    arr = np.asarray(arr, dtype=np.float64).squeeze()
    if arr.ndim != 2:
        raise ValueError(f"colorize: expected an HxW map, got shape {np.shape(values)}")
    if not vmax > vmin:
        raise ValueError(f"colorize: vmax ({vmax}) must be larger than vmin ({vmin})")
    rgba = colormaps[cmap](np.clip((arr - vmin) / (vmax - vmin), 0.0, 1.0), bytes=True)
    return np.ascontiguousarray(rgba[..., :3])


def diff_map(a: Any, b: Any) -> np.ndarray:
    """Per-pixel absolute difference of two images, in grey levels (0..255).

    Args:
        a, b: images as accepted by :func:`to_uint8`, same height and width (and channels).

    Returns:
        float64 HxW: the largest absolute difference over the channels at each pixel.

    Raises:
        ValueError: when the shapes differ (both shapes named).
    """
    x, y = to_uint8(a, "a"), to_uint8(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"diff_map: shapes differ, a is {x.shape} and b is {y.shape}")
    d = np.abs(x.astype(np.int16) - y.astype(np.int16)).astype(np.float64)
    return d.max(axis=-1) if d.ndim == 3 else d


def _map_axes(shape: tuple[int, ...], ax):
    """``(figure, axes)`` for drawing an H x W map with a colour bar: ``ax``'s own figure, or a new
    figure about 4 inches on its longer side (plus room for the colour bar)."""
    if ax is not None:
        return ax.figure, ax
    h, w = shape[:2]
    return _pyplot().subplots(figsize=(3.6 * w / max(h, w) + 1.2, 3.6 * h / max(h, w) + 0.5))


def show_diff(a: Any, b: Any, *, title: str = "", vmax: float | None = None, ax=None, cmap: str = "magma"):
    """Draw :func:`diff_map` of two images with a colour bar in grey levels.

    Args:
        a, b: images of the same shape (see :func:`to_uint8`).
        title: axes title; the number of differing pixels and the largest difference are appended.
        vmax: top of the colour scale (default: the largest difference, at least 1).
        ax: draw into these axes (a new figure otherwise).
        cmap: matplotlib colour map.

    Returns:
        the matplotlib Figure.
    """
    d = diff_map(a, b)
    fig, ax = _map_axes(d.shape, ax)
    im = ax.imshow(d, cmap=cmap, vmin=0, vmax=vmax if vmax is not None else max(float(d.max()), 1.0),
                   interpolation="nearest")
    ax.axis("off")
    n = int((d > 0).sum())
    stats = f"{n} of {d.size} pixels differ ({100.0 * n / d.size:.2f}%), max {int(d.max())}"
    ax.set_title(f"{title}\n{stats}" if title else stats)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="|difference| (grey levels)")
    return fig


def plot_curves(curves: Mapping[str, Sequence[float]] | Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                xlabel: str = "iteration", ylabel: str = "", title: str = "", logy: bool = False,
                smooth: int = 1, ax=None):
    """Plot loss or metric curves.

    Args:
        curves: ``{label: values}`` (x = 0, 1, 2, ...) or ``{label: (x, values)}``.
        xlabel, ylabel, title: axis labels and title.
        logy: logarithmic y axis (for losses).
        smooth: width of a moving average (1 = raw values); the raw curve is drawn faintly behind.
        ax: draw into these axes (a new figure otherwise).

    Returns:
        the matplotlib Figure.
    """
    if smooth < 1:
        raise ValueError(f"smooth must be >= 1, not {smooth}")
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 3.4))
    else:
        fig = ax.figure
    for label, curve in curves.items():
        if isinstance(curve, tuple) and len(curve) == 2:
            x, y = np.asarray(curve[0], dtype=float), np.asarray(curve[1], dtype=float)
        else:
            y = np.asarray(curve, dtype=float)
            x = np.arange(len(y), dtype=float)
        if x.shape != y.shape:
            raise ValueError(f"curve {label!r}: {x.size} x values for {y.size} y values")
        if smooth > 1 and y.size >= smooth:
            line, = ax.plot(x, y, alpha=0.25)
            kernel = np.ones(smooth) / smooth
            ax.plot(x[smooth - 1:], np.convolve(y, kernel, mode="valid"), color=line.get_color(), label=label)
        else:
            ax.plot(x, y, label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def show_gms_map(gms: Any, *, title: str = "GMS map", ax=None, cmap: str = "viridis"):
    """Draw a gradient-magnitude-similarity map (values in [0, 1], 1 = identical local structure).

    Args:
        gms: the GMS map, numpy or torch, HxW (or 1x1xHxW / 1xHxW, squeezed), floats in [0, 1].
        title: axes title; GMSM (the mean) and GMSD (the standard deviation, N - 1) are appended.
        ax: draw into these axes (a new figure otherwise).
        cmap: matplotlib colour map.

    Returns:
        the matplotlib Figure.
    """
    arr = gms.detach().cpu().numpy() if hasattr(gms, "detach") else np.asarray(gms)
    arr = np.asarray(arr, dtype=np.float64).squeeze()
    if arr.ndim != 2:
        raise ValueError(f"show_gms_map: expected an HxW map, got shape {np.shape(gms)}")
    fig, ax = _map_axes(arr.shape, ax)
    im = ax.imshow(arr, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.axis("off")
    std = arr.std(ddof=1) if arr.size > 1 else 0.0
    ax.set_title(f"{title}\nGMSM {arr.mean():.4f}, GMSD {std:.4f}")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="GMS")
    return fig


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]], *, caption: str = ""):
    """A table as ``IPython.display.Markdown``: rendered as a table both in a live notebook and in
    the book, and compared as text by nbval.

    Args:
        header: the column titles.
        rows: one sequence of cells per row (anything; ``str()`` of each is written as it is, so
            format numbers before, e.g. ``f"{psnr:.2f}"``).
        caption: an optional paragraph above the table (Markdown).
    """
    from IPython.display import Markdown

    lines = ["| " + " | ".join(str(c) for c in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return Markdown((f"{caption}\n\n" if caption else "") + "\n".join(lines))


#: Colours of :func:`plot_pilots`' series: phase 1 (the PSNR model) and each adversarial weight.
_PILOT_COLOURS = {None: "black", TrainConfig.delta: "C0", 0.02: "C1", 0.1: "C3"}


def plot_pilots(pilots: Sequence[Mapping[str, Any]], *, annotate_delta: float = 0.1):
    """The pilots of a phase-2 recipe (:func:`gmgan.teaching_scores.load_pilots`) on two
    perception-distortion planes: PSNR on Set5 (dB) against the HF ratio (median over the
    BSD100 images, up = sharper) and against NIQE (mean, left = more natural).

    One line per (adversarial weight delta, moving average or raw generator), in the order of
    the updates: circles the moving average, triangles the raw ``G``; filled markers were scored
    on all 100 BSD100 images, hollow ones on the first 30. Stars are the shipped models
    (``source`` ``production/...``), one a seed. The updates of the ``annotate_delta`` moving
    average are written beside it. Pilots with a noise head (``noise_head`` in their recipe:
    an output that wrecked colour, NIQE 14) and bicubic are left out of the plot.

    Returns:
        the matplotlib Figure (two axes sharing the PSNR axis).
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 4.4), sharey=True, layout="constrained")
    series: dict[tuple, list[Mapping[str, Any]]] = {}
    shipped = []
    for p in pilots:
        if p["run"] == "bicubic" or p["recipe"].get("noise_head"):
            continue
        gan = p["recipe"].get("phase") == "gan"
        # a recipe names delta only where it left the preset of its time, the paper's delta
        delta = p["recipe"].get("delta", TrainConfig.delta) if gan else None
        raw = p["model"].split("@")[0].endswith("/G")
        if p["source"].startswith("production/"):
            if gan:
                shipped.append((p, raw))
            continue
        series.setdefault((delta, raw), []).append(p)
    for ax, key, label in zip(axes, ("hf_median", "niqe_mean"),
                              ("HF ratio (median over BSD100)", "NIQE (mean over BSD100)")):
        for (delta, raw), points in series.items():
            points = sorted(points, key=lambda p: (p["updates"], p["images"]))
            colour = _PILOT_COLOURS.get(delta, "grey")
            ax.plot([p[key] for p in points], [p["psnr_set5"] for p in points],
                    ":" if raw else "-", color=colour, lw=1)
            for p in points:
                ax.scatter(p[key], p["psnr_set5"], marker="^" if raw else "o", s=30,
                           color=colour, facecolor=colour if p["images"] >= 100 else "white",
                           zorder=3)
                if key == "hf_median" and delta == annotate_delta and not raw:
                    ax.annotate(f"{p['updates']:,}", (p[key], p["psnr_set5"]),
                                textcoords="offset points", xytext=(4, 4), fontsize=8)
        for p, raw in shipped:
            ax.scatter(p[key], p["psnr_set5"], marker="*", s=110, zorder=4, color="C3",
                       facecolor="white" if raw else "C3")
        ax.set(xlabel=label)
        ax.grid(True, alpha=0.3)
    axes[0].set(ylabel="PSNR on Set5 (dB)")
    for delta, colour in _PILOT_COLOURS.items():
        name = "PSNR model" if delta is None else f"delta {delta:g}"
        axes[1].plot([], [], "o-", color=colour, label=name)
    axes[1].plot([], [], "^:", color="grey", label="raw generator")
    if shipped:
        axes[1].scatter([], [], marker="*", s=110, color="C3", label="shipped (EMA; raw hollow)")
    fig.legend(*axes[1].get_legend_handles_labels(), loc="outside lower center", ncol=3,
               fontsize=8)
    return fig
