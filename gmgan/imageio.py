"""Reading and writing image files, and moving images between numpy and torch.

Everything that enters gmgan from disk goes through :func:`read_image`, which always returns
``uint8`` RGB (``H x W x 3``), whatever the file holds: grey, grey + alpha, RGBA, palette,
1-bit, CMYK, 16-bit grey or 48/64-bit colour. Each kind of conversion is announced once per
process with an :class:`ImageConversionWarning`, so a folder of 800 grey images gives one
warning, not 800. Files that cannot be decoded (empty, truncated, corrupt, not an image) raise
:class:`ImageReadError`, whose message names the file and the reason.

Conventions (see ARCHITECTURE.md): numpy images are ``uint8`` ``H x W`` or ``H x W x C``;
torch images are float32 ``N x C x H x W`` in ``[0, 1]``, RGB.

Choices made here, and why:

- **Alpha is dropped**, not composited: the colour channels of an RGBA file are the picture;
  compositing on black would darken every half-transparent pixel, which is a change of content.
- **16 bit to 8 bit rounds**: ``v8 = round(v16 * 255 / 65535)``, so ``v16 = 257 * v8`` maps back
  to ``v8`` exactly. PIL decodes 48-bit RGB PNG/TIFF by keeping the high byte (truncation), so
  those files are read with OpenCV instead, which returns the full 16-bit values.
- **Truncated files are errors.** PIL can be told to pad truncated files with black
  (``ImageFile.LOAD_TRUNCATED_IMAGES``); some libraries switch that on globally. It is switched
  off while a file is decoded here, because a half-black training image is worse than an error.
- **EXIF orientation is applied** (as image viewers and OpenCV do), so a portrait photo is read
  upright; this is reported as a conversion.
"""
from __future__ import annotations

import os
import struct
import sys
import uuid
import warnings
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageConversionWarning",
    "ImageReadError",
    "alpha_channel",
    "as_rgb",
    "image_to_tensor",
    "list_images",
    "read_image",
    "tensor_to_image",
    "write_image",
]

PathLike = Union[str, os.PathLike]

#: File name suffixes (lower case) that :func:`list_images` treats as images.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# PIL format names for writing, by suffix.
_WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF",
                  ".tiff": "TIFF", ".webp": "WEBP"}


class ImageReadError(ValueError):
    """An image file (or array) that cannot be turned into an RGB image.

    ``str(error)`` names the file and the reason; both are also kept as ``.path`` and ``.reason``.
    """

    def __init__(self, path: PathLike | str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")


class ImageConversionWarning(UserWarning):
    """An image was converted to 8-bit RGB (grey, alpha, palette, 16 bit, CMYK, ...)."""


# Conversion kinds already announced in this process (a "once" registry keyed by kind, so the
# warning does not depend on Python's per-call-site warning filters).
_WARNED: set[str] = set()


def _warn_once(kind: str, name: str) -> None:
    """Warn about conversion ``kind`` the first time it happens in this process."""
    if kind in _WARNED:
        return
    _WARNED.add(kind)
    # Point the warning at the first caller outside this module.
    level, frame = 1, sys._getframe(0)
    while frame is not None and frame.f_code.co_filename == __file__:
        level, frame = level + 1, frame.f_back
    warnings.warn(f"{kind} (first seen in {name}; later images of this kind are converted "
                  f"silently)", ImageConversionWarning, stacklevel=level)


def _reset_conversion_warnings() -> None:
    """Forget which conversions were announced (for tests)."""
    _WARNED.clear()


# ---------------------------------------------------------------------------------------------
# numpy-level conversion
# ---------------------------------------------------------------------------------------------

def _to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    """uint8 as is; uint16 scaled with rounding; bool to {0, 255}; anything else is an error."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        _warn_once("16-bit image scaled to 8 bit (round(v * 255 / 65535))", name)
        # Integer round-half-up of v * 255 / 65535; uint32 holds 65535 * 255 + 32767.
        return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if arr.dtype == np.bool_:
        _warn_once("1-bit image mapped to 0/255", name)
        return arr.astype(np.uint8) * 255
    raise ImageReadError(name, f"unsupported pixel type {arr.dtype} (expected uint8, uint16 or bool)")


def as_rgb(array: np.ndarray, *, name: str = "<array>") -> np.ndarray:
    """Convert a decoded image array to uint8 RGB ``H x W x 3``.

    Args:
        array: ``H x W`` (grey), ``H x W x 1`` (grey), ``H x W x 2`` (grey + alpha),
            ``H x W x 3`` (RGB) or ``H x W x 4`` (RGBA); dtype uint8, uint16 (scaled to 8 bit with
            rounding) or bool (0/255).
        name: what to call the image in warnings and errors (usually its file name).

    Returns:
        A uint8 array ``H x W x 3``. Grey is repeated into three channels; alpha is dropped.

    Raises:
        ImageReadError (a ValueError): 0 or 5+ channels, an empty image, a wrong number of
        dimensions or an unsupported dtype; the message names ``name``.
    """
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ImageReadError(name, f"expected an H x W or H x W x C array, got shape {arr.shape}")
    h, w, c = arr.shape
    if h == 0 or w == 0:
        raise ImageReadError(name, f"image has no pixels (shape {arr.shape})")
    if c == 0 or c > 4:
        raise ImageReadError(name, f"{c} channels; only 1 (grey), 2 (grey + alpha), 3 (RGB) "
                                   f"or 4 (RGBA) can be converted to RGB")
    arr = _to_uint8(arr, name)
    if c == 2:
        _warn_once("grey + alpha converted to RGB (alpha dropped)", name)
        arr = arr[:, :, :1]
    elif c == 4:
        _warn_once("RGBA converted to RGB (alpha dropped, not composited)", name)
        arr = arr[:, :, :3]
    if arr.shape[2] == 1:
        _warn_once("grey image converted to RGB (R = G = B)", name)
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr)


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------

def _png_header(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's IHDR chunk, or None if this is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _is_deep_colour(im: Image.Image, path: Path) -> bool:
    """True for 16-bit-per-sample colour files, which PIL would truncate to 8 bit."""
    if im.format == "PNG":
        header = _png_header(path)
        # colour types 2 (RGB), 4 (grey + alpha) and 6 (RGBA); 16-bit grey (type 0) PIL reads as I;16.
        return header is not None and header[0] == 16 and header[1] in (2, 4, 6)
    if im.format == "TIFF":
        bits = im.tag_v2.get(258)  # BitsPerSample
        bits = bits if isinstance(bits, tuple) else (bits,)
        return im.mode in ("RGB", "RGBA", "LA") and any((b or 0) > 8 for b in bits)
    return False


def _read_deep_colour(path: Path) -> np.ndarray:
    """Read a 16-bit colour file with OpenCV; returns uint16 H x W x C in RGB(A) order."""
    # Deferred: OpenCV is needed only for these files, its import took 55-140 ms
    # and 24 MB beside torch, and a broken install (e.g. the non-headless wheel
    # without libGL) must not stop every other image from being read.
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImageReadError(path, "16-bit colour image; PIL would truncate it to 8 bit and "
                                   "OpenCV is not installed (pip install opencv-python-headless)"
                             ) from exc
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageReadError(path, "OpenCV could not decode this 16-bit colour image")
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = arr[:, :, [2, 1, 0, 3][: arr.shape[2]]]  # BGR(A) -> RGB(A)
    return arr


def _pil_to_array(im: Image.Image, name: str) -> np.ndarray:
    """Bring a decoded PIL image to a mode numpy can hold, announcing conversions."""
    mode = im.mode
    if mode in ("RGB", "L", "LA", "RGBA"):
        return np.asarray(im)
    if mode == "1":
        return np.asarray(im)  # bool; _to_uint8 maps it to 0/255
    if mode in ("P", "PA"):
        _warn_once("palette image converted to RGB", name)
        has_alpha = mode == "PA" or "transparency" in im.info
        return np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
    if mode == "CMYK":
        _warn_once("CMYK converted to RGB (PIL's conversion, ICC profile ignored)", name)
        return np.asarray(im.convert("RGB"))
    if mode in ("YCbCr", "HSV", "RGBX", "RGBa", "La"):
        _warn_once(f"{mode} converted to RGB", name)
        return np.asarray(im.convert("RGB"))
    if mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16)
    if mode == "I":
        # 32-bit integer mode: PIL uses it for 16-bit grey from some formats. Values beyond
        # 16 bit have no agreed meaning, so refuse them rather than guess a scale.
        arr = np.asarray(im)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ImageReadError(name, f"32-bit integer image with values {arr.min()}..{arr.max()}"
                                       " (only 0..65535 can be scaled to 8 bit)")
        return arr.astype(np.uint16)
    raise ImageReadError(name, f"unsupported image mode {mode!r} (e.g. floating-point images)")


def _tiff_channels(path: Path) -> int | None:
    """SamplesPerPixel of a classic TIFF's first image (tag 277, default 1), from the header
    alone; None when the file is no classic TIFF or the header cannot be read. Used to say why PIL
    could not open a TIFF: PIL decodes 1 to 4 channels only, a TIFF may hold any number."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if head[:4] not in (b"II*\0", b"MM\0*"):
                return None
            order = "<" if head[:2] == b"II" else ">"
            f.seek(struct.unpack(order + "I", head[4:])[0])
            (entries,) = struct.unpack(order + "H", f.read(2))
            for _ in range(entries):
                tag, kind, _count, value = struct.unpack(order + "HHI4s", f.read(12))
                if tag == 277:  # SamplesPerPixel, a SHORT (kind 3) or LONG (kind 4)
                    fmt, size = ("H", 2) if kind == 3 else ("I", 4)
                    return struct.unpack(order + fmt, value[:size])[0]
            return 1
    except (OSError, struct.error):
        return None


def alpha_channel(im: Image.Image) -> np.ndarray | None:
    """The transparency of a decoded PIL image as uint8 ``H x W`` (255 = opaque), or
    None when it has none.

    Covers an alpha channel (RGBA, LA, PA) and the transparency that palette, grey and
    RGB PNG/GIF files keep outside their pixels (``tRNS``: PIL's
    ``info["transparency"]``).
    """
    if im.mode in ("RGBA", "LA", "PA"):
        return np.asarray(im.getchannel("A"))
    if im.mode in ("P", "L", "RGB") and "transparency" in im.info:
        return np.asarray(im.convert("RGBA").getchannel("A"))
    return None


def read_image(path: PathLike, *, keep_grey: bool = False) -> np.ndarray:
    """Read an image file as uint8 RGB.

    Args:
        path: a PNG, JPEG, BMP, TIFF or WebP file (anything PIL can decode).
        keep_grey: if true, a single-channel file (grey, 1-bit, 16-bit grey, grey + alpha) is
            returned as ``H x W`` instead of being repeated into three channels.

    Returns:
        ``numpy.uint8`` array ``H x W x 3`` (RGB, values 0..255), or ``H x W`` when
        ``keep_grey`` is set and the file has one colour channel. The first frame of a
        multi-frame file (an animated GIF / PNG / WebP, a multi-page TIFF) is used,
        with a warning. See the module docstring for the conversions (alpha dropped,
        16 bit rounded to 8 bit, EXIF orientation applied); each kind is warned about once per
        process with :class:`ImageConversionWarning`.

    Raises:
        FileNotFoundError: the file does not exist.
        ImageReadError: empty, truncated, corrupt or not an image; the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {path}")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")
    name = str(path)

    old_truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # see module docstring: truncation is an error
    try:
        with Image.open(path) as im:
            im.load()
            frames = getattr(im, "n_frames", 1)
            if frames > 1:  # an animation or a multi-page file: say what is left out
                _warn_once("animated / multi-frame image: only its first frame is read",
                           f"{name}, {frames} frames")
            if _is_deep_colour(im, path):
                arr = _read_deep_colour(path)
            else:
                orientation = im.getexif().get(0x0112, 1)  # EXIF Orientation
                if orientation not in (None, 1):
                    _warn_once("EXIF orientation applied (image rotated/flipped upright)", name)
                    im = ImageOps.exif_transpose(im)
                arr = _pil_to_array(im, name)
    except ImageReadError:
        raise
    except UnidentifiedImageError as exc:
        channels = _tiff_channels(path)
        if channels is not None and not 1 <= channels <= 4:
            raise ImageReadError(path, f"a TIFF with {channels} channels; only 1 (grey), 2 (grey + "
                                       f"alpha), 3 (RGB) or 4 (RGBA) can be read") from exc
        raise ImageReadError(path, "not a recognised image format") from exc
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, f"too many pixels ({exc})") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        # PIL reports truncated/corrupt data as OSError ("image file is truncated", "broken
        # data stream"), SyntaxError (bad PNG chunk/CRC), or ValueError/EOFError.
        raise ImageReadError(path, f"corrupt or truncated file ({type(exc).__name__}: {exc})") from exc
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old_truncated

    if keep_grey and (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 2)):
        grey = arr if arr.ndim == 2 else arr[:, :, 0]
        if arr.ndim == 3:
            _warn_once("grey + alpha read as grey (alpha dropped)", name)
        return np.ascontiguousarray(_to_uint8(grey, name))
    return as_rgb(arr, name=name)


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------

def _to_uint8_image(img: np.ndarray, name: str) -> np.ndarray:
    """uint8 as is; float in [0, 1] rounded (half up) and clipped; anything else is an error."""
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ValueError(f"cannot write {name}: expected H x W, H x W x 1, H x W x 3 or "
                         f"H x W x 4, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if np.isnan(arr).any():
            raise ValueError(f"cannot write {name}: the image contains NaN")
        return np.floor(np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise ValueError(f"cannot write {name}: dtype {arr.dtype} (expected uint8 0..255 or float 0..1)")


def write_image(path: PathLike, img: np.ndarray, *, quality: int = 95) -> Path:
    """Write an image file atomically; the format follows the suffix.

    Args:
        path: destination; the suffix picks the format (``.png``, ``.jpg``/``.jpeg``, ``.bmp``,
            ``.tif``/``.tiff``, ``.webp``). Parent folders are created.
        img: ``uint8`` (0..255) or float (0..1, clipped, rounded half up, i.e. like MATLAB's
            ``im2uint8``) array ``H x W``, ``H x W x 1``, ``H x W x 3`` (RGB) or ``H x W x 4`` (RGBA).
        quality: JPEG/WebP quality (1..100); PNG, BMP and TIFF are lossless; WebP is written
            lossless as well.

    Returns:
        ``path`` as a :class:`~pathlib.Path`. The file is written to a temporary name in the same
        folder and moved into place with ``os.replace``, so readers never see half a file.
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot write {path}: unknown image suffix {path.suffix!r} "
                         f"(use one of {', '.join(sorted(_WRITE_FORMATS))})")
    if isinstance(img, torch.Tensor):
        raise TypeError(f"cannot write {path}: got a torch tensor; convert it with tensor_to_image()")
    arr = _to_uint8_image(img, str(path))
    if fmt == "JPEG" and arr.ndim == 3 and arr.shape[2] == 4:
        raise ValueError(f"cannot write {path}: JPEG has no alpha channel; pass H x W x 3")
    options = {"JPEG": {"quality": quality}, "WEBP": {"lossless": True, "quality": quality}}.get(fmt, {})

    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique hidden name in the same folder (os.replace is atomic only within a file system);
    # open(..., "x") keeps the usual umask permissions, unlike tempfile.mkstemp's 0600.
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "xb") as f:
            Image.fromarray(arr).save(f, format=fmt, **options)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# ---------------------------------------------------------------------------------------------
# numpy <-> torch
# ---------------------------------------------------------------------------------------------

def image_to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 image array to a float tensor in [0, 1].

    Args:
        img: ``numpy.uint8`` array ``H x W x C`` (C = 1, 3 or 4) or ``H x W``.

    Returns:
        float32 tensor ``1 x C x H x W`` (``1 x 1 x H x W`` for ``H x W`` input), values
        ``img / 255``.
    """
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise ValueError(f"image_to_tensor expects uint8 (0..255), got {arr.dtype}; "
                         f"read files with read_image()")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"image_to_tensor expects H x W or H x W x C, got shape {arr.shape}")
    # A new float32 array (IEEE division, as torch's): never a view of ``img``, so a
    # read-only image (a cached benchmark image) gives a tensor without torch's warning.
    # numpy on purpose: a torch op on a training patch is big enough for torch's thread
    # pool, and with ``num_workers=0`` on a busy CPU that made each patch ~100x slower.
    out = np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32)
    out /= np.float32(255.0)
    return torch.from_numpy(out).unsqueeze(0)


def tensor_to_image(t: torch.Tensor) -> np.ndarray:
    """Float tensor in [0, 1] to a uint8 image array.

    Args:
        t: float tensor ``C x H x W`` or ``1 x C x H x W`` (any device, gradients ignored).
            Values outside [0, 1] are clipped.

    Returns:
        ``numpy.uint8`` array ``H x W x C``, ``round(255 * t)`` with halves rounded up
        (as MATLAB's ``im2uint8``).
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"tensor_to_image expects a torch.Tensor, got {type(t).__name__}")
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ValueError(f"tensor_to_image expects a batch of one image, got shape "
                             f"{tuple(t.shape)}; index the batch first (t[i])")
        t = t[0]
    if t.ndim != 3:
        raise ValueError(f"tensor_to_image expects C x H x W or 1 x C x H x W, got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise ValueError(f"tensor_to_image expects a float tensor in [0, 1], got {t.dtype}")
    t = t.detach().to("cpu", torch.float32)
    if torch.isnan(t).any():
        raise ValueError("tensor_to_image: the tensor contains NaN")
    out = torch.floor(t.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8)
    return np.ascontiguousarray(out.permute(1, 2, 0).numpy())


# ---------------------------------------------------------------------------------------------
# folders
# ---------------------------------------------------------------------------------------------

def list_images(folder: PathLike, recursive: bool = False) -> list[Path]:
    """The image files in a folder, sorted by path.

    Args:
        folder: a folder.
        recursive: also look in sub-folders.

    Returns:
        Paths of files whose suffix (case-insensitive) is in :data:`IMAGE_EXTENSIONS`, sorted.
        Hidden files (name starting with ``.``, e.g. macOS ``._x.png`` resource forks) are skipped.

    Raises:
        FileNotFoundError: the folder does not exist. NotADirectoryError: it is a file.
        ValueError: it holds no image files.
    """
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"image folder not found: {folder}")
    if not folder.is_dir():
        raise NotADirectoryError(f"not a folder: {folder}")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(p for p in candidates
                   if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
                   and p.is_file())
    if not files:
        hint = "" if recursive else " (sub-folders were not searched; use recursive=True)"
        raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {folder}{hint}")
    return files
