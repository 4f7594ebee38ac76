"""The book's figure style: :func:`book_style` and the column it draws for.

:func:`book_style` is the one place the look of the book's figures is set: every notebook calls it
in its import cell (fonts of at least 9 points at the size the book shows them, figures as wide as
the text column, high-resolution ``retina`` PNGs on a white background that stays readable in dark
mode).
"""
from __future__ import annotations

from typing import Any

__all__ = ["BOOK_RC", "COLUMN_WIDTH", "MIN_PANEL_WIDTH", "book_style"]

#: Width of the book's text column in inches at 96 dpi (720 CSS pixels; the column is about 780).
#: A figure this wide is shown at its natural size, so a 9-point label reads as 9 points.
COLUMN_WIDTH = 7.5
#: The narrowest panel :func:`show_images` draws, in inches (about 210 CSS pixels).
MIN_PANEL_WIDTH = 2.2

#: matplotlib settings of every figure in the book (applied by :func:`book_style`). Sizes in points.
BOOK_RC: dict[str, Any] = {
    "figure.figsize": (COLUMN_WIDTH, 3.4),
    "figure.dpi": 96,                  # 1 inch = 96 CSS pixels: the figure is drawn at its real size
    "figure.facecolor": "white",       # opaque: black labels stay readable on the dark theme
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.5,
    "image.interpolation": "nearest",  # image pixels stay sharp squares
}


def book_style() -> None:
    """Set the book's figure style: :data:`BOOK_RC` and high-resolution (``retina``) inline PNGs.

    Call it once in a notebook's import cell, after the imports. Figures are then drawn
    :data:`COLUMN_WIDTH` inches wide by default with labels of 9 to 11 points, stored at twice their
    display resolution, and shown by the book at their natural size. Outside IPython only the
    matplotlib settings change.
    """
    import matplotlib
    import matplotlib.pyplot  # noqa: F401  (activates IPython's inline backend, which sets its own rc first)

    matplotlib.rcParams.update(BOOK_RC)
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # plain Python: nothing is displayed inline
        return
    if get_ipython() is not None:
        set_matplotlib_formats("retina")
