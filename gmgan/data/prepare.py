"""Offline preparation of a training set: sub-images, the 8x dihedral set, and LR images.

Each step reads a folder of images and writes a new folder, by default under
``gmgan.cache.derived_dir("prepared")`` because the data cache may be read-only. Steps are cached:
the output folder holds a marker (``.gmgan-prepared.json``) with the step's parameters and the
name, size and mtime of every source file, and a second call with the same inputs does no work.
Changing a parameter gives a different default folder; with an explicit ``dst`` the folder is
rebuilt. A folder is built under a temporary name and renamed when complete, under a file lock,
so an interrupted run or two processes preparing at once never leave a half-made set behind.

Default folders chain readably, e.g. ``prepared/T91-1a2b3c4d/d8+x4/{HR,LR_bicubic/X4}`` for
T91 with the 8x augmentation and x4 LR images.

The trainer calls :func:`prepare_training_set`; the steps are public for notebooks and scripts.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from filelock import FileLock
from PIL import Image
from tqdm.auto import tqdm

from gmgan.cache import derived_dir
from gmgan.data.download import dataset_dir
from gmgan.imageio import ImageReadError, list_images, read_image, write_image
from gmgan.resize import imresize, modcrop
from gmgan.threads import torch_threads

__all__ = ["PreparedSet", "build_once", "dihedral", "DIHEDRAL_NAMES", "extract_subimages", "make_lr",
           "dihedral_augment", "prepare_training_set", "image_size", "crop_starts"]

MARKER = ".gmgan-prepared.json"
_FORMAT = 1  # bump when the layout or the content of a step changes, to invalidate old folders

# Suffixes of the 8 dihedral versions, in the order of ``k`` in :func:`dihedral`.
DIHEDRAL_NAMES = ("r0", "r90", "r180", "r270", "r0_f", "r90_f", "r180_f", "r270_f")


@dataclass(frozen=True)
class PreparedSet:
    """A prepared pair of folders: ``hr_dir/<stem>.png`` and ``lr_dir/<stem>.png``.

    HR images are RGB uint8 with sides that are multiples of the scale; each LR image is exactly
    1/scale of its HR image in both sides. ``count`` is the number of pairs.
    """

    hr_dir: Path
    lr_dir: Path
    count: int


# --------------------------------------------------------------------------- dihedral group


def dihedral(img, k: int):
    """One of the 8 symmetries of the square (the dihedral group D4) applied to an image.

    ``k`` in 0..7: rotate counter-clockwise by ``90 * (k % 4)`` degrees (as ``np.rot90``), then,
    for ``k >= 4``, flip left-right. Names of the 8 results: :data:`DIHEDRAL_NAMES`.

    ``img`` is a numpy array HxW or HxWxC (any dtype; a contiguous copy is returned) or a torch
    tensor ``...xHxW`` (CHW, NCHW; the last two dimensions are the image plane). Shape and dtype
    are kept, except that H and W swap for odd rotations.
    """
    k = int(k)
    if not 0 <= k < 8:
        raise ValueError(f"dihedral index k must be in 0..7, got {k}")
    turns, flip = k % 4, k >= 4
    if isinstance(img, torch.Tensor):
        if img.ndim < 2:
            raise ValueError(f"dihedral needs a tensor ...xHxW, got shape {tuple(img.shape)}")
        out = torch.rot90(img, turns, dims=(-2, -1))
        return torch.flip(out, dims=(-1,)) if flip else out.contiguous()
    arr = np.asarray(img)
    if arr.ndim not in (2, 3):
        raise ValueError(f"dihedral needs an array HxW or HxWxC, got shape {arr.shape}")
    out = np.rot90(arr, turns, axes=(0, 1))
    if flip:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


# --------------------------------------------------------------------------- small helpers


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) in pixels from the file header (PIL; nothing is decoded), as
    :func:`gmgan.imageio.read_image` will return it: an EXIF orientation that turns the image by
    90 degrees swaps the two.

    Raises whatever PIL raises for a file that is not an image (``PIL.UnidentifiedImageError``,
    ``OSError``, ...); callers that scan folders catch it.
    """
    with Image.open(path) as im:
        width, height = im.size
        if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientations with a quarter turn
            width, height = height, width
    return height, width


def _sources(src: Path) -> list[Path]:
    """The image files of a folder and its sub-folders, sorted (as :func:`dataset_dir` accepts
    them); ``list_images`` raises a clear error when the folder is missing or holds no image."""
    return sorted(list_images(src, recursive=True))


def _out_stem(path: Path, root: Path) -> str:
    """Output name stem: the file stem, prefixed by its sub-folders (``cls/a.png`` -> ``cls_a``)."""
    return "_".join(path.relative_to(root).with_suffix("").parts)


def _fingerprint(files: list[Path], root: Path) -> list[list]:
    """Name, size and mtime of every source file: what the cache marker compares."""
    out = []
    for f in files:
        st = f.stat()
        out.append([f.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns])
    return out


def _default_dst(src: Path, tag: str) -> Path:
    """``prepared/<name>-<hash of path>/<tag>``; a folder made by a previous step gets a sibling
    ``<its name>+<tag>`` so that chained steps stay in one readable place."""
    root = derived_dir("prepared").resolve()
    src = src.resolve()
    if src.parent.parent == root:
        return src.parent / f"{src.name}+{tag}"
    digest = hashlib.sha1(str(src).encode()).hexdigest()[:8]
    return root / f"{src.name}-{digest}" / tag


def _check_on_bad(on_bad: str) -> None:
    if on_bad not in ("skip", "error"):
        raise ValueError(f"on_bad must be 'skip' or 'error', got {on_bad!r}")


def _read_or_skip(path: Path, on_bad: str, skipped: list[list[str]]):
    """Decode an RGB uint8 image; on a read error either raise or record it and return None."""
    try:
        return read_image(path)
    except ImageReadError as err:
        if on_bad == "error":
            raise
        skipped.append([path.name, str(err)])
        return None


def _warn_skipped(step: str, src: Path, skipped: list[list[str]], total: int) -> None:
    if skipped:
        first = "; ".join(f"{name} ({why})" for name, why in skipped[:3])
        warnings.warn(f"{step}: skipped {len(skipped)} of {total} files in {src}: {first}"
                      + (" ..." if len(skipped) > 3 else ""), stacklevel=3)


def _valid_marker(dst: Path, record: dict) -> dict | None:
    """The marker of ``dst`` if it was made from the same inputs and its outputs all exist."""
    try:
        old = json.loads((dst / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if any(old.get(key) != record[key] for key in ("format", "step", "params", "sources")):
        return None
    if not all((dst / name).is_file() for name in old.get("outputs", [])):
        return None
    return old


# produce(tmp_dir) -> (output names relative to tmp_dir, [[file name, reason skipped], ...])
Produce = Callable[[Path], tuple[list[str], list[list[str]]]]


def _cached_build(dst: Path, record: dict, produce: Produce) -> dict:
    """Build ``dst`` with ``produce(tmp_dir) -> (outputs, skipped)`` unless a valid marker says it
    is already there. Returns the marker dict (with ``outputs``, ``skipped`` and ``count``)."""
    hit = _valid_marker(dst, record)
    if hit is not None:
        return hit
    dst.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dst.parent / f".{dst.name}.lock")):
        hit = _valid_marker(dst, record)  # another process may have built it while we waited
        if hit is not None:
            return hit
        if dst.exists() and not (dst / MARKER).exists() and any(dst.iterdir()):
            raise FileExistsError(f"{dst} is not empty and was not made by gmgan; "
                                  "choose another dst or empty it")
        tmp = dst.parent / f".{dst.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            with torch_threads(1):  # thousands of small resizes: see gmgan.threads
                outputs, skipped = produce(tmp)
            done = dict(record, outputs=outputs, skipped=skipped, count=len(outputs))
            (tmp / MARKER).write_text(json.dumps(done, indent=1))
            if dst.exists():
                shutil.rmtree(dst)
            os.replace(tmp, dst)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return done


def build_once(dst: Path, *, step: str, params: dict, source: str, sources: list,
               produce: Produce) -> dict:
    """Build the folder ``dst`` once, the way every prepared set here is built.

    ``produce(tmp_dir)`` writes the files into a temporary folder beside ``dst`` and returns
    ``(output names, [[file name, reason skipped], ...])``; the folder is then renamed to ``dst``
    with a marker (``.gmgan-prepared.json``) that records ``step``, ``params``, ``source`` and
    ``sources`` (a JSON-able fingerprint of the inputs, e.g. paths, sizes and mtimes). A later call
    whose step, params and sources equal the marker's, and whose outputs all exist, returns the
    marker at once; otherwise the folder is rebuilt. Builds are serialised by a file lock, so two
    processes never build the same folder at once, and an interrupted build leaves no ``dst``.

    Returns:
        the marker dict (the record plus ``outputs``, ``skipped`` and ``count``).
    Raises:
        FileExistsError: ``dst`` holds files that gmgan did not make.
    """
    record = {"format": _FORMAT, "step": step, "params": params, "source": source, "sources": sources}
    return _cached_build(Path(dst), record, produce)


def _record(step: str, params: dict, src: Path, files: list[Path]) -> dict:
    return {"format": _FORMAT, "step": step, "params": params, "source": str(src),
            "sources": _fingerprint(files, src)}


def _named_sources(files: list[Path], root: Path,
                   skipped: list[list[str]]) -> list[tuple[Path, str]]:
    """(file, output stem) pairs; a file whose stem was already taken is skipped (``a.png`` and
    ``a.bmp`` would otherwise write the same outputs)."""
    seen: set[str] = set()
    out = []
    for f in files:
        stem = _out_stem(f, root)
        if stem in seen:
            skipped.append([f.name, "another file has the same name stem"])
            continue
        seen.add(stem)
        out.append((f, stem))
    return out


# --------------------------------------------------------------------------- sub-images


def crop_starts(length: int, crop_size: int, step: int, thresh_size: int = 0) -> list[int]:
    """Start offsets of the crops along one side of ``length`` pixels, BasicSR's rule.

    Starts are ``0, step, 2*step, ...`` while a whole crop fits; if the pixels left after the last
    of these are more than ``thresh_size``, one more crop is placed flush with the far border
    (start ``length - crop_size``). A side no longer than ``crop_size`` gives a single crop from 0
    of the whole side (BasicSR fails on such images).
    """
    if length <= crop_size:
        return [0]
    starts = list(range(0, length - crop_size + 1, step))
    if length - (starts[-1] + crop_size) > thresh_size:
        starts.append(length - crop_size)
    return starts


def extract_subimages(src: str | os.PathLike, dst: str | os.PathLike | None = None, *,
                      crop_size: int = 480, step: int = 240, thresh_size: int = 0,
                      on_bad: str = "skip", progress: bool = True) -> Path:
    """Cut every image of ``src`` into overlapping ``crop_size`` squares, as BasicSR does for DIV2K.

    Crops start every ``step`` pixels in each direction, plus one flush with the bottom / right
    border when more than ``thresh_size`` pixels would otherwise be left out (:func:`crop_starts`).
    They are numbered row by row from 1 and written as ``<stem>_s001.png``, ``<stem>_s002.png``...
    Loading a 480x480 PNG is much cheaper than decoding a 2K image for one 128x128 patch.

    Images are written as RGB uint8 PNG. Unreadable files are skipped with one warning
    (``on_bad="error"`` raises instead). Returns the output folder (default under
    ``derived_dir("prepared")``); a second call with the same inputs does no work.
    """
    if crop_size < 1 or step < 1 or thresh_size < 0:
        raise ValueError(f"need crop_size >= 1, step >= 1, thresh_size >= 0; got "
                         f"{crop_size}, {step}, {thresh_size}")
    _check_on_bad(on_bad)
    src = Path(src)
    files = _sources(src)
    params = {"crop_size": crop_size, "step": step, "thresh_size": thresh_size}
    tag = f"sub{crop_size}s{step}t{thresh_size}"
    dst = Path(dst) if dst is not None else _default_dst(src, tag)

    def produce(out: Path):
        outputs: list[str] = []
        skipped: list[list[str]] = []
        for path, stem in tqdm(_named_sources(files, src, skipped), desc="sub-images",
                               unit="image", disable=not progress):
            img = _read_or_skip(path, on_bad, skipped)
            if img is None:
                continue
            h, w = img.shape[:2]
            index = 0
            for y in crop_starts(h, crop_size, step, thresh_size):
                for x in crop_starts(w, crop_size, step, thresh_size):
                    index += 1
                    name = f"{stem}_s{index:03d}.png"
                    write_image(out / name, img[y:y + crop_size, x:x + crop_size])
                    outputs.append(name)
        _warn_skipped("extract_subimages", src, skipped, len(files))
        return outputs, skipped

    _cached_build(dst, _record("subimages", params, src, files), produce)
    return dst


# --------------------------------------------------------------------------- 8x dihedral set


def dihedral_augment(src: str | os.PathLike, dst: str | os.PathLike | None = None, *,
                     on_bad: str = "skip", progress: bool = True) -> Path:
    """The paper's offline 8x augmentation: every image in its 8 dihedral versions.

    Writes ``<stem>_r0.png, <stem>_r90.png, <stem>_r180.png, <stem>_r270.png`` (counter-clockwise
    rotations) and the same four with ``_f`` (then flipped left-right), RGB uint8 PNG; see
    :func:`dihedral`. Returns the output folder (default under ``derived_dir("prepared")``);
    a second call with the same inputs does no work.
    """
    _check_on_bad(on_bad)
    src = Path(src)
    files = _sources(src)
    dst = Path(dst) if dst is not None else _default_dst(src, "d8")

    def produce(out: Path):
        outputs: list[str] = []
        skipped: list[list[str]] = []
        for path, stem in tqdm(_named_sources(files, src, skipped), desc="dihedral x8",
                               unit="image", disable=not progress):
            img = _read_or_skip(path, on_bad, skipped)
            if img is None:
                continue
            for k, suffix in enumerate(DIHEDRAL_NAMES):
                name = f"{stem}_{suffix}.png"
                write_image(out / name, dihedral(img, k))
                outputs.append(name)
        _warn_skipped("dihedral_augment", src, skipped, len(files))
        return outputs, skipped

    _cached_build(dst, _record("dihedral8", {}, src, files), produce)
    return dst


# --------------------------------------------------------------------------- LR images


def make_lr(hr_dir: str | os.PathLike, *, scale: int = 4, dst: str | os.PathLike | None = None,
            on_bad: str = "skip", progress: bool = True) -> PreparedSet:
    """Make the LR training images: ``imresize(modcrop(hr, scale), 1/scale)``, MATLAB-exact.

    Writes ``dst/HR/<stem>.png`` (the HR image cropped at the bottom / right to sides that are
    multiples of ``scale``) and ``dst/LR_bicubic/X<scale>/<stem>.png`` (its bicubic downscale,
    uint8, bit-exact with MATLAB ``imresize(hr, 1/scale)``), so LR pixel (y, x) covers HR pixels
    ``[scale*y, scale*(y+1))`` x ``[scale*x, scale*(x+1))``. Both RGB uint8 PNG.

    Images smaller than ``scale`` and unreadable files are skipped with one warning
    (``on_bad="error"`` raises). Returns a :class:`PreparedSet`; a second call does no work.
    """
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    scale = int(scale)
    _check_on_bad(on_bad)
    src = Path(hr_dir)
    files = _sources(src)
    dst = Path(dst) if dst is not None else _default_dst(src, f"x{scale}")
    lr_rel = Path("LR_bicubic") / f"X{scale}"

    def produce(out: Path):
        (out / "HR").mkdir()
        (out / lr_rel).mkdir(parents=True)
        outputs: list[str] = []
        skipped: list[list[str]] = []
        for path, stem in tqdm(_named_sources(files, src, skipped), desc=f"LR x{scale}",
                               unit="image", disable=not progress):
            img = _read_or_skip(path, on_bad, skipped)
            if img is None:
                continue
            if min(img.shape[:2]) < scale:
                skipped.append([path.name, f"smaller than the scale {scale}: {img.shape[:2]}"])
                continue
            hr = modcrop(img, scale)
            lr = imresize(hr, 1 / scale)
            write_image(out / "HR" / f"{stem}.png", hr)
            write_image(out / lr_rel / f"{stem}.png", lr)
            outputs += [f"HR/{stem}.png", f"{lr_rel.as_posix()}/{stem}.png"]
        _warn_skipped("make_lr", src, skipped, len(files))
        return outputs, skipped

    done = _cached_build(dst, _record("lr", {"scale": scale}, src, files), produce)
    return PreparedSet(dst / "HR", dst / lr_rel, len(done["outputs"]) // 2)


# --------------------------------------------------------------------------- the trainer's call


def _large_images(src: Path, crop_size: int) -> bool:
    """True when the median image holds at least (2 * crop_size)^2 pixels (headers only)."""
    areas = []
    for f in _sources(src):
        try:
            h, w = image_size(f)
        except Exception:  # unreadable files are reported by the steps that decode them
            continue
        areas.append(h * w)
    return bool(areas) and float(np.median(areas)) >= (2 * crop_size) ** 2


def prepare_training_set(name_or_path: str | os.PathLike, *, scale: int = 4,
                         subimages: bool | None = None, augment8: bool = False,
                         crop_size: int = 480, step: int = 240,
                         progress: bool = True) -> PreparedSet:
    """Turn a set name (``"T91"``, ``"BSDS200"``, ...) or a folder of HR images into HR/LR folders.

    Steps, each cached under ``derived_dir("prepared")``:

    1. resolve the name with :func:`gmgan.data.download.dataset_dir`;
    2. sub-images (:func:`extract_subimages` with ``crop_size``, ``step``) when ``subimages`` is
       true; ``None`` decides from the headers: only when the median image has at least
       ``(2 * crop_size)^2`` pixels (DIV2K-sized images, not T91 or BSDS200);
    3. the offline 8x dihedral set (:func:`dihedral_augment`) when ``augment8`` is true;
    4. LR images with MATLAB-exact bicubic (:func:`make_lr`).

    Returns ``PreparedSet(hr_dir, lr_dir, count)`` for :class:`gmgan.data.pairs.PatchPairs`.
    """
    src = Path(dataset_dir(name_or_path))
    if subimages is None:
        subimages = _large_images(src, crop_size)
    if subimages:
        src = extract_subimages(src, crop_size=crop_size, step=step, progress=progress)
    if augment8:
        src = dihedral_augment(src, progress=progress)
    return make_lr(src, scale=scale, progress=progress)
