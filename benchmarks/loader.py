"""Training-data throughput: 128x128 HR patches (with their LR patches) per second.

The loader is :func:`gmgan.data.build_loader` over :class:`gmgan.data.PatchPairs`, as training
uses it. Rates are measured from full images and from sub-images cut out of them, with 0, 2 and 4
worker processes, with the decoded-image cache on (the default) and off (every patch decodes its
image: the regime of a set too large for memory, such as DIV2K). Each measurement comes with two
checks: the LR patch is the MATLAB bicubic downscale of its HR patch (crop alignment), and a batch
is identical whatever the number of workers (the dataset's determinism promise).

    python -m benchmarks.loader Urban100 --workers 0 2     # ad hoc, prints a table
"""
from __future__ import annotations

import argparse
import gc
import itertools
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["LoaderResult", "alignment_error", "loader_rate", "synthetic_image_folder"]


@dataclass
class LoaderResult:
    """patches_per_s: HR patches per second after the first batch; first_batch: for comparisons."""

    patches_per_s: float
    first_batch: tuple[torch.Tensor, torch.Tensor]
    images: int


def _dataset(hr_dir: Path, lr_dir: Path, *, patch: int, scale: int, length: int, cache: bool,
             augment: bool = True):
    from gmgan.data import PatchPairs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skipped small images are reported by the dataset itself
        return PatchPairs(hr_dir, lr_dir, patch_size=patch, scale=scale, seed=0, length=length,
                          cache_images=cache, augment=augment)


def loader_rate(hr_dir: str | Path, lr_dir: str | Path, *, workers: int, cache: bool, patch: int = 128,
                scale: int = 4, batch: int = 16, batches: int = 20) -> LoaderResult:
    """Patches per second through ``build_loader`` with ``workers`` processes.

    The first batch (worker start-up, first decodes) is not timed; ``batches`` more are. Torch runs
    with one thread meanwhile: with workers=0 the main process does the work, and a thread pool
    only adds waiting on a busy CPU (see ``gmgan.data.pairs._to_tensor``).
    """
    from gmgan.data import build_loader
    from gmgan.data.pairs import infinite_batches

    ds = _dataset(Path(hr_dir), Path(lr_dir), patch=patch, scale=scale, length=batch * (batches + 1) * 4,
                  cache=cache)
    loader = build_loader(ds, batch_size=batch, num_workers=workers, seed=0, pin_memory=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        it = infinite_batches(loader)
        first = next(it)
        t0 = time.perf_counter()
        for _ in itertools.islice(it, batches):
            pass
        rate = batch * batches / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
        del it, loader
        gc.collect()  # shut the workers down before the next measurement starts its own
    return LoaderResult(rate, (first[0].clone(), first[1].clone()), len(ds.pairs))


def alignment_error(hr_dir: str | Path, lr_dir: str | Path, *, patch: int = 128, scale: int = 4,
                    n: int = 8) -> int:
    """Max grey-level difference between LR patches and ``imresize(HR patch, 1/scale)``.

    Compared away from the patch border (the bicubic x1/4 kernel reaches 2 LR pixels outside a
    patch, where the patch's mirror padding differs from the image's), without augmentation
    (a rotation changes MATLAB's height-first order, which moves uint8 results by one level).
    0 means the LR patch is exactly the MATLAB downscale of the HR patch it is paired with.
    """
    from gmgan.resize import imresize

    ds = _dataset(Path(hr_dir), Path(lr_dir), patch=patch, scale=scale, length=n, cache=False,
                  augment=False)
    worst = 0
    m = 2 if scale == 4 else 3  # LR pixels whose kernel leaves the patch
    for i in range(n):
        lr, hr = ds[i]
        hr8 = np.rint(hr.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        lr8 = np.rint(lr.permute(1, 2, 0).numpy() * 255).astype(np.int16)
        ref = imresize(hr8, 1 / scale).astype(np.int16)
        worst = max(worst, int(np.abs(ref - lr8)[m:-m, m:-m].max()))
    return worst


def synthetic_image_folder(folder: Path, *, count: int = 6, size: tuple[int, int] = (200, 264),
                           seed: int = 0) -> Path:
    """A small folder of photo-like PNGs (crops of scikit-image's astronaut, with noise).

    For smoke runs and machines without the image sets; written once, reused afterwards.
    """
    from skimage import data as skdata

    from gmgan.imageio import write_image

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.png"))) == count:
        return folder
    base = skdata.astronaut()
    rng = np.random.default_rng(seed)
    h, w = size
    for i in range(count):
        y, x = rng.integers(0, base.shape[0] - h), rng.integers(0, base.shape[1] - w)
        img = base[y:y + h, x:x + w].astype(np.int16) + rng.integers(-4, 5, (h, w, 3))
        write_image(folder / f"synthetic_{i:03d}.png", np.clip(img, 0, 255).astype(np.uint8))
    return folder


def main(argv: list[str] | None = None) -> int:
    """Print patches/s for the named sets (full images and sub-images, each worker count)."""
    from gmgan.data import extract_subimages, make_lr
    from gmgan.data.download import dataset_dir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="*", default=["T91", "BSDS200"], help="set names or folders of HR images")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4])
    ap.add_argument("--crop", type=int, default=480, help="sub-image side (step = crop / 2)")
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args(argv)
    for name in args.sets:
        src = dataset_dir(name)
        sources = {"full": make_lr(src, progress=False),
                   f"sub{args.crop}": make_lr(extract_subimages(src, crop_size=args.crop, step=args.crop // 2,
                                                                progress=False), progress=False)}
        for (label, ps), cache, workers in itertools.product(sources.items(), (True, False), args.workers):
            res = loader_rate(ps.hr_dir, ps.lr_dir, workers=workers, cache=cache, batches=args.batches)
            print(f"{name:10s} {label:8s} cache={cache!s:5s} workers={workers}: {res.patches_per_s:8.1f} "
                  f"patches/s ({res.images} images)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
