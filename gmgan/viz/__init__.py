"""Pictures for the notebooks: the book's figure style, before/after sliders, parameter sweeps and
a few plotting helpers.

:func:`book_style` is the one place the look of the book's figures is set: every notebook calls it in
its import cell (fonts of at least 9 points at the size the book shows them, figures as wide as the
text column, high-resolution ``retina`` PNGs on a white background that stays readable in dark mode).

The centre piece is :func:`compare`, a before/after slider between super-resolved images and their
ground truth, and :func:`sweep`, a slider over a parameter that redraws a picture. Each displays as
ONE output that carries two views, and the reader's front end picks one:

- a **static** view, self-contained HTML and JavaScript (images as base64 PNG data URIs, no kernel,
  no CDN): the book shows this one (``nb_mime_priority_overrides`` in ``_config.yml`` drops the
  widget view for HTML). :func:`compare`'s: drag the divider (or use the range input's arrow keys),
  pick the image and the two sides with buttons, zoom with the zoom buttons or a double-click;
  :func:`sweep`'s: pick a choice with buttons, move the range input through precomputed frames;
- a **live** ipywidgets view, which JupyterLab and Colab prefer in a running kernel: for
  :func:`compare` dropdowns for the image and the two sides, sliders for the split, the zoom and its
  centre, and the metrics of the region on screen, recomputed by :mod:`gmgan.metrics` whenever the
  view changes; for :func:`sweep` the picture is recomputed for any level of a finer slider.

The static view's metrics are those of the whole image (with the usual border shave); the live view's
are those of the visible region. Plot helpers (:func:`show_images`, :func:`diff_map`,
:func:`show_diff`, :func:`plot_curves`, :func:`plot_pilots`, :func:`show_gms_map`,
:func:`colorize`) return matplotlib
figures or images; :func:`markdown_table` returns a table for display.

The modules, one topic each: :mod:`~gmgan.viz.style` (the figure style), :mod:`~gmgan.viz.compare`
and :mod:`~gmgan.viz.sweep` (the two sliders), :mod:`~gmgan.viz.output` (one output with two views,
the HTML, CSS and JavaScript of the static views in ``assets/``), :mod:`~gmgan.viz.images` (image
conversion and regions) and :mod:`~gmgan.viz.plots` (matplotlib helpers, Markdown tables).
matplotlib and ipywidgets are imported only when a function needs them, so ``import gmgan.viz`` is
cheap. Only notebooks import this package; the rest of gmgan never does.
"""
from gmgan.viz.compare import BeforeAfter, compare
from gmgan.viz.images import Region, display_scale, png_data_uri, to_uint8, view_region
from gmgan.viz.plots import (colorize, diff_map, markdown_table, plot_curves, plot_pilots,
                             show_diff, show_gms_map, show_images)
from gmgan.viz.style import BOOK_RC, COLUMN_WIDTH, MIN_PANEL_WIDTH, book_style
from gmgan.viz.sweep import Sweep, sweep

__all__ = [
    "BOOK_RC",
    "COLUMN_WIDTH",
    "MIN_PANEL_WIDTH",
    "BeforeAfter",
    "Region",
    "Sweep",
    "book_style",
    "colorize",
    "compare",
    "diff_map",
    "display_scale",
    "markdown_table",
    "plot_curves",
    "plot_pilots",
    "png_data_uri",
    "show_diff",
    "show_gms_map",
    "show_images",
    "sweep",
    "to_uint8",
    "view_region",
]
