"""HR/LR pairs of the x4 super-resolution benchmarks (Set5, Set14, BSD100, Urban100).

The data cache holds ``benchmark/<Set>/HR/*.png`` and either ``LR_bicubic/X4`` (Set5, Set14:
made by MATLAB ``imresize``, bit-exact with :func:`gmgan.imresize`) or ``LR_bicubic_selfexsr/X4``
(BSD100, Urban100: SelfExSR's files, bicubic but *not* bit-exact with MATLAB; up to ~10 levels
off on ~1% of pixels). ``lr="dataset"`` uses the files, as published results do; ``lr="matlab"``
makes every LR image with MATLAB-exact bicubic so that all four sets are degraded the same way.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from gmgan.cache import data_dir, derived_dir
from gmgan.data.download import require
from gmgan.data.layout import locate
from gmgan.data.registry import get_info
from gmgan.imageio import list_images, read_image, write_image
from gmgan.resize import imresize, modcrop
from gmgan.threads import torch_threads

__all__ = ["BENCHMARK_SETS", "BenchmarkImage", "benchmark_dir", "load_benchmark"]

BENCHMARK_SETS = ("Set5", "Set14", "BSD100", "Urban100")


@dataclass
class BenchmarkImage:
    """One test image: ``name`` (file stem), ``hr`` and ``lr`` as numpy uint8 arrays.

    ``hr`` is H x W x 3 with H, W multiples of the scale (cropped at the bottom / right, like the
    LR files were made); ``lr`` is H/scale x W/scale x 3. Single-channel files (Set14 ``bridge``)
    stay H x W and h x w: whether to treat them as Y or as grey RGB is the evaluator's choice
    (it changes Set14 PSNR by 0.1 dB, see the data README).
    """

    name: str
    hr: np.ndarray
    lr: np.ndarray


def _canonical(name: str) -> str:
    for known in BENCHMARK_SETS:
        if name.lower() == known.lower():
            return known
    return name


def benchmark_dir(name: str) -> Path:
    """The folder of a test set (``<cache>/benchmark/<name>``, holding ``HR/`` and the LR folders).

    Looks in the data cache and, when that is read-only, where downloads went instead
    (:func:`gmgan.data.layout.locate`). A registered set that is missing is downloaded on first
    use where the network allows (:func:`gmgan.data.download.require`, which says so in one line);
    otherwise a clear error names GMGAN_DATA and ``gmgan data fetch NAME``.
    """
    name = _canonical(name)
    hr = locate(name) if _registered(name) else None
    if hr is None and (data_dir() / "benchmark" / name / "HR").is_dir():
        hr = data_dir() / "benchmark" / name / "HR"  # a partial copy that the registry does not count
    if hr is None:
        if not _registered(name):
            raise FileNotFoundError(
                f"benchmark set {name!r} not found in the data cache (GMGAN_DATA={data_dir()}) and not a "
                f"registered set that `gmgan data fetch {name}` could download. Known sets: "
                f"{', '.join(BENCHMARK_SETS)}.")
        hr = require(get_info(name))
    return hr.parent


def _registered(name: str) -> bool:
    try:
        get_info(name)
        return True
    except KeyError:
        return False


def _lr_files(folder: Path, scale: int) -> dict[str, Path]:
    """LR files by the stem of their HR image (``babyx4.png`` and ``baby.png`` both -> ``baby``)."""
    out = {}
    for p in list_images(folder):
        stem = p.stem[:-len(f"x{scale}")] if p.stem.endswith(f"x{scale}") else p.stem
        out[stem] = p
    return out


def _matlab_lr(name: str, hr_files: list[Path], scale: int) -> dict[str, Path]:
    """LR files made from the modcropped HR with MATLAB-exact bicubic, cached one by one under
    ``derived_dir("benchmark", name, "LR_matlab", "X<scale>")``. ``index.json`` there records the
    size and mtime of each HR file, so a changed HR image is resized again; only the images asked
    for are made (``limit`` stays cheap)."""
    out_dir = derived_dir("benchmark", name, "LR_matlab", f"X{scale}")
    index_path = out_dir / "index.json"
    with FileLock(str(out_dir / ".lock")), torch_threads(1):
        try:
            index = json.loads(index_path.read_text())
        except (OSError, ValueError):
            index = {}
        changed = False
        for path in hr_files:
            st = path.stat()
            key = [path.name, st.st_size, st.st_mtime_ns]
            target = out_dir / f"{path.stem}.png"
            if index.get(path.stem) != key or not target.is_file():
                hr = modcrop(read_image(path, keep_grey=True), scale)
                write_image(target, imresize(hr, 1 / scale))
                index[path.stem] = key
                changed = True
        if changed:
            tmp = index_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(index, indent=1))
            os.replace(tmp, index_path)
    return {p.stem: out_dir / f"{p.stem}.png" for p in hr_files}


def load_benchmark(name: str, *, scale: int = 4, limit: int | None = None,
                   lr: str = "dataset") -> list[BenchmarkImage]:
    """Load a benchmark set as a list of :class:`BenchmarkImage` (numpy uint8), sorted by name.

    ``name``: one of :data:`BENCHMARK_SETS` (any case) or another folder under
    ``<GMGAN_DATA>/benchmark``. HR is cropped to multiples of ``scale``. ``lr``:

    - ``"dataset"``: the set's own LR files: ``LR_bicubic/X<scale>`` (MATLAB-made) when present,
      else ``LR_bicubic_selfexsr/X<scale>`` (SelfExSR's, not MATLAB-exact);
    - ``"matlab"``: MATLAB-exact bicubic LR: ``LR_bicubic/X<scale>`` when present, else made from
      HR with :func:`gmgan.imresize` and cached under ``derived_dir("benchmark")``.

    ``limit`` keeps the first N images. Grey images are kept single-channel (H x W), see
    :class:`BenchmarkImage`. A missing registered set is downloaded on first use where the network
    allows; otherwise ``FileNotFoundError`` names GMGAN_DATA and ``gmgan data fetch NAME``; an LR file that does not match its HR raises ``ValueError``.
    """
    if lr not in ("dataset", "matlab"):
        raise ValueError(f"lr must be 'dataset' or 'matlab', got {lr!r}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    name = _canonical(name)
    root = benchmark_dir(name)
    hr_files = sorted(list_images(root / "HR"))
    if limit is not None:
        hr_files = hr_files[:limit]
    matlab_dir = root / "LR_bicubic" / f"X{scale}"
    if matlab_dir.is_dir():
        lr_dir = matlab_dir
        lr_by_stem = _lr_files(lr_dir, scale)
    elif lr == "matlab":
        lr_by_stem = _matlab_lr(name, hr_files, scale)
        lr_dir = derived_dir("benchmark", name, "LR_matlab", f"X{scale}")
    else:
        lr_dir = root / "LR_bicubic_selfexsr" / f"X{scale}"
        if not lr_dir.is_dir():
            raise FileNotFoundError(f"{name}: no LR folder for x{scale} ({matlab_dir} or "
                                    f"{lr_dir}); use lr='matlab' to make one from HR")
        lr_by_stem = _lr_files(lr_dir, scale)

    images = []
    for path in hr_files:
        if path.stem not in lr_by_stem:
            raise FileNotFoundError(f"{path}: no LR image for it in {lr_dir}")
        hr = modcrop(read_image(path, keep_grey=True), scale)
        low = read_image(lr_by_stem[path.stem], keep_grey=True)
        want = (hr.shape[0] // scale, hr.shape[1] // scale)
        if low.shape[:2] != want or low.ndim != hr.ndim:
            raise ValueError(f"{lr_by_stem[path.stem]}: shape {low.shape} does not match HR "
                             f"{path.name} {hr.shape} / {scale}")
        images.append(BenchmarkImage(path.stem, hr, low))
    return images
