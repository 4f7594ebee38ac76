"""Files and folders for ``gmgan sr``: the inputs listed, every output name decided
before the first write, and images read with their alpha channel kept.

:mod:`gmgan.cli` runs the generator (:func:`gmgan.infer.upscale`) on the planned pairs;
the rules here keep a folder run safe: an output never replaces an input, nor (without
``overwrite``) any existing file, and two inputs never write the same output. Failures
are collected as ``(input as given, reason)`` so that one bad file does not stop the
others.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from gmgan.imageio import ImageConversionWarning, alpha_channel, list_images, read_image

__all__ = ["collect_inputs", "plan_outputs", "read_for_sr"]


def collect_inputs(inputs: Sequence[str],
                   failures: list[tuple[str, str]]) -> list[Path]:
    """Files as given and the images of folders (not their sub-folders), in order,
    without duplicates; inputs that are missing or unreadable go to ``failures``."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        try:
            if path.is_dir():
                files.extend(list_images(path))
            elif path.exists():
                files.append(path)
            else:
                failures.append((item, "no such file or folder"))
        except (OSError, ValueError) as err:
            failures.append((item, str(err)))
    seen: set[Path] = set()
    return [f for f in files if not (f.resolve() in seen or seen.add(f.resolve()))]


def read_for_sr(path: Path) -> np.ndarray:
    """An image as numpy uint8 H x W (grey), H x W x 3 (RGB), or H x W x 4 when the file
    has an alpha channel (kept, for the output; :func:`gmgan.imageio.read_image` would
    drop it)."""
    try:
        with Image.open(path) as im:
            alpha = alpha_channel(ImageOps.exif_transpose(im))
    except (OSError, ValueError, SyntaxError, EOFError):  # read_image says what is bad
        alpha = None
    if alpha is None:
        return read_image(path, keep_grey=True)
    with warnings.catch_warnings():  # read_image warns that it drops the alpha
        warnings.filterwarnings("ignore", ".*alpha dropped", ImageConversionWarning)
        img = read_image(path, keep_grey=True)
    if alpha.dtype != np.uint8 or alpha.shape != img.shape[:2]:
        return img
    rgb = np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img
    return np.concatenate([rgb, alpha[:, :, None]], axis=2)


def plan_outputs(files: Sequence[Path], out_dir: Path, scale: int, overwrite: bool,
                 failures: list[tuple[str, str]]) -> list[tuple[Path, Path]]:
    """(input, output) pairs for ``gmgan sr``, decided before anything is written; the
    output of ``x.jpg`` is ``out_dir / "x_x<scale>.png"``.

    An output that is one of the inputs is never written (reading the input later would
    give the other result); an existing file is replaced only with ``overwrite``; of two
    inputs with the same stem the first is kept. Refused inputs go to ``failures`` with
    the reason.
    """
    inputs = {f.resolve() for f in files}
    planned: dict[Path, Path] = {}
    for path in files:
        target = out_dir / f"{path.stem}_x{scale}.png"
        why = None
        if target.resolve() in inputs:
            why = (f"output {target} is one of the inputs; not overwritten (choose "
                   f"another --out-dir)")
        elif target.resolve() in planned:
            why = (f"output {target.name} would overwrite the result of "
                   f"{planned[target.resolve()]}")
        elif (target.exists() or target.is_symlink()) and not overwrite:
            why = (f"output {target} exists; not overwritten (give --overwrite to "
                   f"replace it)")
        if why:
            failures.append((str(path), why))
        else:
            planned[target.resolve()] = path
    return [(path, target) for target, path in planned.items()]
