"""Images as the sliders and plots take them: conversion to uint8, PNG data URIs, regions.

Every function takes numpy uint8 HxW / HxWx3 (0..255), numpy float in [0, 1], or torch float
tensors 3xHxW / 1x3xHxW in [0, 1] through :func:`to_uint8`, and never resamples.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DISPLAY_SIDE", "Region", "as_rgb", "centre_crop", "display_scale", "png_data_uri",
           "to_uint8", "view_region"]

#: Small images are drawn enlarged (whole multiples, sharp pixels) up to this size in CSS pixels.
DISPLAY_SIDE = 512

def to_uint8(img: Any, name: str = "image") -> np.ndarray:
    """Bring an image into numpy uint8 form, HxW (grey) or HxWx3 (RGB), without resampling.

    Accepts numpy uint8 HxW / HxWx1 / HxWx3 (values 0..255, returned as is, HxWx1 squeezed to HxW),
    numpy float HxW / HxWx3 in [0, 1], and torch float tensors 3xHxW / 1x3xHxW / HxW in [0, 1]
    (rounded to the nearest level). ``name`` appears in error messages.
    """
    if hasattr(img, "detach") and hasattr(img, "cpu"):  # a torch tensor, without importing torch
        arr = img.detach().cpu().numpy()
        if arr.ndim == 4:
            if arr.shape[0] != 1:
                raise ValueError(f"{name}: a batch of {arr.shape[0]} images; pass one image (1x3xHxW)")
            arr = arr[0]
        if arr.ndim == 3:
            if arr.shape[0] not in (1, 3):
                raise ValueError(f"{name}: tensor of shape {tuple(img.shape)} is not CxHxW with C in (1, 3)")
            arr = np.moveaxis(arr, 0, -1)
    else:
        arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3):
        raise ValueError(f"{name}: shape {arr.shape} is not HxW or HxWx3")
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and (np.nanmin(arr) < -1e-6 or np.nanmax(arr) > 1 + 1e-6):
            raise ValueError(f"{name}: float image with values outside [0, 1] "
                             f"(min {np.nanmin(arr):.3g}, max {np.nanmax(arr):.3g})")
        return np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
    raise ValueError(f"{name}: dtype {arr.dtype} is neither uint8 nor float in [0, 1]")


def as_rgb(img: np.ndarray) -> np.ndarray:
    """HxW grey or HxWx3 uint8 -> HxWx3 uint8 (grey repeated), for display only."""
    return np.repeat(img[..., None], 3, axis=-1) if img.ndim == 2 else img


def png_data_uri(img: np.ndarray) -> str:
    """Encode a uint8 HxW / HxWx3 image as a ``data:image/png;base64,...`` URI (lossless, deterministic)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass(frozen=True)
class Region:
    """A rectangle of pixels: rows ``top:top+height``, columns ``left:left+width``."""

    top: int
    left: int
    height: int
    width: int

    def slice(self, img: np.ndarray) -> np.ndarray:
        """The part of ``img`` (HxW or HxWxC) inside the rectangle."""
        return img[self.top:self.top + self.height, self.left:self.left + self.width]


def view_region(shape: tuple[int, int], zoom: float, cx: float, cy: float) -> Region:
    """The region a view shows: ``1/zoom`` of each side, centred on (cx, cy) (fractions of the width and
    height), pushed back inside the image at the borders."""
    height, width = shape
    h = max(1, round(height / zoom))
    w = max(1, round(width / zoom))
    top = round(cy * height - h / 2)
    left = round(cx * width - w / 2)
    return Region(min(max(top, 0), height - h), min(max(left, 0), width - w), h, w)


def display_scale(shape: tuple[int, int]) -> int:
    """Whole factor by which an image of ``shape`` (H, W) is drawn: the largest that keeps its longer
    side within :data:`DISPLAY_SIDE` (512) pixels, at least 1."""
    return max(1, DISPLAY_SIDE // max(shape))


def centre_crop(img: np.ndarray, side: int) -> np.ndarray:
    """The centre ``side`` x ``side`` pixels of ``img`` (HxW or HxWxC; less where it is smaller)."""
    h, w = img.shape[:2]
    ch, cw = min(h, side), min(w, side)
    top, left = (h - ch) // 2, (w - cw) // 2
    return img[top:top + ch, left:left + cw]
