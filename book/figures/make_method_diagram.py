"""Draw the method diagram of book/method.md: book/figures/gmgan_overview.svg.

    python book/figures/make_method_diagram.py

Generator, critic, VGG19 and GMSD, and the four losses of GMGAN with their weights, as boxes and
arrows in matplotlib (the book's figure style, gmgan.viz.book_style). The SVG is committed, so the
book's build needs neither matplotlib nor gmgan; rerun this script after changing the drawing.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from gmgan import viz  # noqa: E402

OUT = Path(__file__).with_name("gmgan_overview.svg")

# colours: data (grey), networks that are trained (blue), fixed measures (green), losses (orange)
DATA, TRAINED, FIXED, LOSS = "#e6e6e6", "#c6dbef", "#c7e9c0", "#fdd0a2"


def box(ax, x, y, w, h, text, colour, **kw):
    """A rounded box centred at (x, y) with its text; returns the box's (left, right, bottom, top)."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                fc=colour, ec="#333333", lw=1.0))
    ax.text(x, y, text, ha="center", va="center", **kw)
    return x - w / 2, x + w / 2, y - h / 2, y + h / 2


def arrow(ax, start, end, colour="#333333", **kw):
    ax.annotate("", end, start, arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.0, shrinkA=0, shrinkB=0, **kw))


def main() -> None:
    viz.book_style()
    fig, ax = plt.subplots(figsize=(viz.COLUMN_WIDTH, 4.6))
    ax.set_xlim(0, 10.3)
    ax.set_ylim(0, 6.1)
    ax.axis("off")

    box(ax, 0.7, 4.4, 1.1, 0.8, "LR image\n$I^{LR}$", DATA)
    box(ax, 2.35, 4.4, 1.6, 1.0, "generator $G$\nRRDBNet\n(23 RRDBs)", TRAINED)
    box(ax, 4.1, 4.4, 1.1, 0.8, "SR image\n$G(I^{LR})$", DATA)
    box(ax, 4.1, 1.6, 1.1, 0.8, "HR image\n$I^{HR}$", DATA)
    arrow(ax, (1.25, 4.4), (1.55, 4.4))
    arrow(ax, (3.15, 4.4), (3.55, 4.4))

    rows = [  # (y, measure box text, its colour, loss text, weight)
        (5.45, "pixel difference", FIXED, r"$\ell_{MSE}$", r"$\alpha = 10^{-2}$"),
        (4.05, "VGG19 features\n(conv5_4, before ReLU)", FIXED, r"$\ell_{P}$", r"$\beta = 1$"),
        (2.65, "GMSD of R, G, B\n(Prewitt gradients)", FIXED, r"$\ell_{Q}$", r"$\gamma = 1$"),
        (1.05, "critic $D$\n(SRGAN-style,\nno batch norm)", TRAINED, r"$\ell_{GA} = -\mathbb{E}[D(G(I^{LR}))]$", r"$\delta = 5 \times 10^{-3}$"),
    ]
    for y, text, colour, loss, weight in rows:
        left, right, _, _ = box(ax, 6.45, y, 2.5, 0.95 if "\n" in text else 0.6, text, colour)
        arrow(ax, (4.65, 4.4), (left, y + 0.12), colour="#2b6cb0")   # SR
        arrow(ax, (4.65, 1.6), (left, y - 0.12), colour="#555555")   # HR
        box(ax, 9.2, y, 1.95 if "GA" in loss else 1.1, 0.55, loss, LOSS)
        arrow(ax, (right, y), (9.2 - (0.975 if "GA" in loss else 0.55), y))
        ax.text(9.2, y - 0.45, weight, ha="center", va="top")

    ax.text(0.15, 2.75, "generator loss\n" + r"$\ell_G = \alpha\,\ell_{MSE} + \beta\,\ell_P$" + "\n"
            + r"$\quad + \gamma\,\ell_Q + \delta\,\ell_{GA}$", ha="left", va="center")
    ax.text(0.15, 0.95, "critic loss (WGAN-GP)\n" + r"$\ell_{DA} = \mathbb{E}[D(G(I^{LR}))] - \mathbb{E}[D(I^{HR})]$"
            + "\n" + r"$\quad + \lambda\,\mathbb{E}[(\|\nabla D(\hat I)\|_2 - 1)^2]$", ha="left", va="center")
    ax.text(4.1, 0.75, "arrows from SR: blue\nfrom HR: grey", ha="center", va="center", color="#555555")

    fig.tight_layout(pad=0.2)
    fig.savefig(OUT, format="svg", metadata={"Date": None})   # no date: the file changes only with the drawing
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
