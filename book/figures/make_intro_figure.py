"""Draw the figure of book/intro.md: book/figures/intro_comparison.png.

    GMGAN_DATA=/path/to/data python book/figures/make_intro_figure.py [--image BSD100/108005]

One test image enlarged four times by bicubic interpolation, by the PSNR-oriented teaching model and
by the teaching GMGAN (the shipped models ``psnr-s0`` and ``gmgan-s0``, loaded with
:func:`gmgan.experiments.teaching_run`), beside the original. Every panel shows the same crop at
the same scale and is titled with the PSNR (dB, Y channel, 4-pixel border) and the GMSD of the
whole image, as the notebooks measure them. The PNG is committed, so the book's build needs neither
torch nor gmgan; rerun this script when the shipped models change (it prints the numbers it drew).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import gmgan  # noqa: E402
from gmgan import metrics, viz  # noqa: E402
from gmgan.data import load_benchmark  # noqa: E402
from gmgan.experiments import load_run_generator, teaching_run  # noqa: E402
from gmgan.threads import torch_threads  # noqa: E402

OUT = Path(__file__).with_name("intro_comparison.png")


def panels(set_name: str, image_name: str, seed: int = 0) -> dict[str, tuple]:
    """{title: (whole image uint8 HxWx3, PSNR dB or None, GMSD or None)} for the four methods."""
    item = next((im for im in load_benchmark(set_name) if im.name == image_name), None)
    if item is None:
        raise SystemExit(f"make_intro_figure: {set_name} has no image {image_name!r}")
    gan = teaching_run("gmgan", seed=seed)          # the shipped model; its parent is the PSNR model
    with torch_threads(1):                          # one thread: the same pixels on any CPU
        images = {"bicubic x4": gmgan.imresize(item.lr, 4),
                  "PSNR model": gmgan.upscale(load_run_generator(gan.parent), item.lr),
                  "GMGAN": gmgan.upscale(load_run_generator(gan), item.lr)}
    out = {name: (sr, metrics.psnr(sr, item.hr), metrics.gmsd(sr, item.hr)) for name, sr in images.items()}
    out["original"] = (item.hr, None, None)
    return out


def draw(views: dict[str, tuple], top: int, left: int, side: int):
    """One row of crops, COLUMN_WIDTH wide, each titled with its scores."""
    viz.book_style()
    fig, axes = plt.subplots(1, len(views), figsize=(viz.COLUMN_WIDTH, viz.COLUMN_WIDTH / len(views) + 0.55))
    for ax, (name, (img, psnr, gmsd)) in zip(axes, views.items()):
        ax.imshow(img[top:top + side, left:left + side], interpolation="nearest")
        ax.set_title(name if psnr is None else f"{name}\n{psnr:.2f} dB, GMSD {gmsd:.3f}")
        ax.axis("off")
    fig.tight_layout(pad=0.2, w_pad=0.4)
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="BSD100/108005", help="SET/NAME of a benchmark image")
    parser.add_argument("--crop", default="100,290,128", help="top,left,side of the crop in HR pixels")
    parser.add_argument("--seed", type=int, default=0, help="which shipped seed")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    set_name, image_name = args.image.split("/")
    top, left, side = (int(v) for v in args.crop.split(","))
    views = panels(set_name, image_name, args.seed)
    for name, (_, psnr, gmsd) in views.items():
        if psnr is not None:
            print(f"{name}: {psnr:.2f} dB, GMSD {gmsd:.4f} ({set_name} {image_name}, whole image)")
    fig = draw(views, top, left, side)
    # twice the display resolution, like viz.book_style's retina figures; "tight" keeps the titles
    fig.savefig(args.out, dpi=2 * fig.dpi, bbox_inches="tight", pad_inches=0.04)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
