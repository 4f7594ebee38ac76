"""Training-set variants for the paper's Table 3: low-quality ("ImageNet-like") and mixed sets.

Zhu et al. (2020, Sec. 4.2) train GMGAN on four sets: an ImageNet subset (many images of low
quality), DF2K (fewer images of high quality), DF2K + OST (plus texture-rich outdoor scenes) and
DIV2K with the 8x dihedral augmentation. None of ImageNet, DF2K or OST can be fetched offline, so
the notebooks build stand-ins from the sets of the data cache:

- :func:`degrade`: one image made "low quality" the way web photos usually are: shrunk (MATLAB
  bicubic, so every pixel holds less scene detail) and JPEG-compressed (8x8 block artefacts,
  ringing, chroma smear). The HR targets of such a set carry the artefacts, so a network trained on
  it learns to reproduce them.
- :func:`make_set`: one flat folder of HR images gathered from several sets, folders or single
  files, each optionally degraded. Pass it as ``train_set`` to the trainer
  (:func:`gmgan.data.prepare_training_set` accepts a folder); it is cached like the other prepared
  sets, under ``derived_dir("prepared")``.

Images are numpy uint8 H x W x 3 (RGB, 0..255), as :func:`gmgan.imageio.read_image` returns them.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from PIL import __version__ as pillow_version
from tqdm.auto import tqdm

from gmgan.cache import derived_dir
from gmgan.data.download import require
from gmgan.data.prepare import build_once
from gmgan.data.registry import DatasetInfo
from gmgan.data.sources import resolve_image_source
from gmgan.imageio import list_images, read_image, write_image
from gmgan.resize import imresize

__all__ = ["IMAGENET_LIKE", "degrade", "make_set", "set_sources"]

#: The degradation of the notebooks' "ImageNet-like" set: half the size, then JPEG quality 50.
#: ImageNet photos are web JPEGs of about 400 x 350 pixels, shrunk from larger originals; the level
#: here is a choice that makes the artefacts plain at a glance, not a measured match to ImageNet.
IMAGENET_LIKE: dict[str, float | int] = {"downscale": 2.0, "jpeg_quality": 50}

PathLike = str | os.PathLike


def degrade(img: np.ndarray, *, downscale: float = 2.0,
            jpeg_quality: int | None = 50) -> np.ndarray:
    """A low-quality copy of an 8-bit image: shrink by ``downscale``, then a JPEG round trip.

    Args:
        img: numpy uint8 H x W x 3 (RGB) or H x W (grey), values 0..255.
        downscale: shrink factor >= 1 (1: keep the size). The image is resized with MATLAB-exact
            bicubic (:func:`gmgan.imresize`, antialiased) to ``ceil(H / downscale) x
            ceil(W / downscale)``.
        jpeg_quality: libjpeg quality 1..100 of the round trip (Pillow, 4:2:0 chroma for colour),
            or None for no compression.

    Returns:
        numpy uint8 array, same number of channels, the new size. Deterministic: the same image and
        arguments give the same pixels (for one Pillow / libjpeg build).
    """
    _check_image(img)
    downscale, jpeg_quality = _check_params(downscale, jpeg_quality)
    out = img
    if downscale != 1.0:
        out = imresize(out, 1.0 / downscale)
    if jpeg_quality is not None:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(out)).save(buf, format="JPEG", quality=jpeg_quality)
        buf.seek(0)
        with Image.open(buf) as decoded:
            out = np.asarray(decoded).reshape(out.shape)
    return np.ascontiguousarray(out)


def set_sources(sources: Sequence[PathLike]) -> list[tuple[Path, str]]:
    """The image files behind ``sources`` and the output stem each gets in :func:`make_set`.

    Args:
        sources: each a registered set name (``"T91"``, ``"BSDS200"``, ``"samples"``, ...;
            fetched on first use), a folder of images (sub-folders included), or a single image
            file; a name wins over a file or folder of that name in the working directory
            (:func:`gmgan.data.resolve_image_source`).

    Returns:
        ``[(file, stem), ...]`` in the order given (each folder sorted by path); the stem is
        ``<label>_<file stem>`` with label the set name, or the folder's name (a file's parent
        folder's name), so that images of different sets never collide.

    Raises:
        ValueError: no sources, or two files that would get the same stem.
        FileNotFoundError: a source that is neither a known set, a folder nor an image file.
    """
    if isinstance(sources, (str, os.PathLike)) or not sources:
        raise ValueError(f"make_set: sources must be a non-empty list of set names, folders or "
                         f"files, got {sources!r}")
    out: list[tuple[Path, str]] = []
    seen: dict[str, Path] = {}
    for source in sources:
        try:
            found = resolve_image_source(source, allow_file=True)
        except ValueError as exc:
            raise ValueError(f"make_set: {exc}") from None
        if isinstance(found, DatasetInfo):
            root = require(found)
            files, label = list_images(root, recursive=True), str(source)
        else:
            # a folder's own name, or a file's folder's: also for ".", "..", "x.png"
            root = found.parent if found.is_file() else found
            files = [found] if found.is_file() else list_images(root, recursive=True)
            label = Path(os.path.abspath(root)).name
        for f in files:
            stem = "_".join([label, *f.relative_to(root).with_suffix("").parts])
            if stem in seen:
                raise ValueError(f"make_set: {f} and {seen[stem]} would both be written as "
                                 f"{stem}.png")
            seen[stem] = f
            out.append((f, stem))
    return out


def make_set(sources: Sequence[PathLike], *, name: str, downscale: float = 1.0,
             jpeg_quality: int | None = None, min_side: int = 1, dst: PathLike | None = None,
             progress: bool = False) -> Path:
    """Gather images from several sets into one folder of PNG files, optionally degraded.

    Args:
        sources: set names, folders or image files (see :func:`set_sources`).
        name: a short name for the folder (letters, digits, ``_ . + -``), e.g. ``"imagenet-like"``.
        downscale, jpeg_quality: the degradation of every image (:func:`degrade`); the defaults
            (1, None) copy the pixels unchanged (as RGB uint8 PNG).
        min_side: leave out images whose (degraded) height or width is below this many pixels,
            e.g. the training patch size, which such images could not fill. They are listed under
            ``skipped`` in the folder's ``.gmgan-prepared.json``.
        dst: the output folder; default ``derived_dir("prepared")/<name>-<hash>/<name>``, the hash
            taken over the output names of the images and the parameters (the same on every
            machine), so that the trainer's LR images land
            beside it (``.../<name>+x4``, see :func:`gmgan.data.prepare_training_set`).
        progress: show a tqdm bar.

    Returns:
        the folder, holding ``<stem>.png`` for every source image that is kept (stems from
        :func:`set_sources`).
        Built once: a second call with the same sources (names, sizes, mtimes) and parameters
        returns at once; it is built under a temporary name and renamed, under a file lock.

    Raises:
        ValueError: a bad name or parameter, or no usable source (see :func:`set_sources`).
    """
    if not isinstance(name, str) or re.fullmatch(r"[\w.+-]+", name) is None:
        raise ValueError(f"make_set: name must be a folder name (letters, digits, _ . + -), "
                         f"got {name!r}")
    downscale, jpeg_quality = _check_params(downscale, jpeg_quality)
    if isinstance(min_side, bool) or not isinstance(min_side, (int, np.integer)) or min_side < 1:
        raise ValueError(f"make_set: min_side must be an integer >= 1, got {min_side!r}")
    files = set_sources(sources)
    fingerprint = [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f, _ in files]
    params = {"downscale": downscale, "jpeg_quality": jpeg_quality, "min_side": int(min_side),
              "pillow": pillow_version}
    if dst is None:
        # One folder per (sources, parameters); its last part is ``name``, which is what the trainer
        # shows (run folders are named after the training set's folder). The digest takes the
        # images' output names, not their absolute paths, so that the folder, and the configuration
        # of a model trained on it (gmgan.experiments.config_key), is the same on every machine.
        what = "\n".join([*(stem for _, stem in files), f"{downscale:g} {jpeg_quality} {min_side}"])
        digest = hashlib.sha1(what.encode()).hexdigest()[:8]
        dst = derived_dir("prepared") / f"{name}-{digest}" / name
    dst = Path(dst)

    def produce(out: Path):
        outputs, skipped = [], []
        for path, stem in tqdm(files, desc=name, unit="image", disable=not progress):
            img = read_image(path)
            if downscale != 1.0 or jpeg_quality is not None:
                img = degrade(img, downscale=downscale, jpeg_quality=jpeg_quality)
            if min(img.shape[:2]) < min_side:
                size = f"{img.shape[1]}x{img.shape[0]}"
                skipped.append([path.name, f"{size} is below min_side {min_side}"])
                continue
            write_image(out / f"{stem}.png", img)
            outputs.append(f"{stem}.png")
        if not outputs:
            raise ValueError(f"make_set: every image of {name!r} is smaller than min_side "
                             f"{min_side}")
        return outputs, skipped

    # cached, locked and invalidated exactly like the trainer's own prepared sets
    build_once(dst, step="make_set", params=params, source=name, sources=fingerprint, produce=produce)
    return dst


# --------------------------------------------------------------------------- checks


def _check_image(img: np.ndarray) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        got = img.dtype if isinstance(img, np.ndarray) else type(img).__name__
        raise TypeError(f"degrade: expected a numpy uint8 image (0..255), got {got}")
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(f"degrade: expected an H x W or H x W x 3 image, got shape {img.shape}")


def _check_params(downscale: float, jpeg_quality: int | None) -> tuple[float, int | None]:
    try:
        factor = float(downscale)
    except (TypeError, ValueError):
        raise ValueError(f"degrade: downscale must be a number >= 1, got {downscale!r}") from None
    if not np.isfinite(factor) or factor < 1.0:
        raise ValueError(f"degrade: downscale must be a number >= 1 (1: keep the size), "
                         f"got {downscale!r}")
    if jpeg_quality is not None:
        if (isinstance(jpeg_quality, bool) or not isinstance(jpeg_quality, (int, np.integer))
                or not 1 <= jpeg_quality <= 100):
            raise ValueError(f"degrade: jpeg_quality must be an integer in 1..100 or None, "
                             f"got {jpeg_quality!r}")
        jpeg_quality = int(jpeg_quality)
    return factor, jpeg_quality
