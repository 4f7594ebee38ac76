"""Colour conversions: RGB <-> YCbCr (ITU-R BT.601 with MATLAB's constants) and luminance.

The super-resolution literature measures PSNR and SSIM on the Y channel of MATLAB's ``rgb2ycbcr``::

    Y  =  16 + ( 65.481 R + 128.553 G +  24.966 B)
    Cb = 128 + (-37.797 R -  74.203 G + 112.000 B)
    Cr = 128 + (112.000 R -  93.786 G -  18.214 B)

with R, G, B in [0, 1] and Y, Cb, Cr on the 0..255 scale (Y in [16, 235], Cb and Cr in [16, 240]).
The coefficients of Y add up to 219 = 235 - 16, so a grey pixel v in [0, 1] has Y = 16 + 219 v.

Two kinds of input are accepted, following the package convention:

* numpy arrays H x W x 3, channels last: uint8 (0..255) or float (taken to be in [0, 1]).
  YCbCr values come back as float64 on the 0..255 scale, as MATLAB's ``rgb2ycbcr`` gives for double
  input times 255 and as ``skimage.color.rgb2ycbcr`` gives.
* torch tensors (..., 3, H, W), float RGB in [0, 1] (NCHW or CHW). YCbCr values come back on the
  [0, 1] scale, that is divided by 255 (Y in [16/255, 235/255]), in the input's dtype.

``peak`` overrides the scale of the YCbCr side: YCbCr * peak / 255 is returned (or expected).

``luminance`` is the plain weighted grey level 0.299 R + 0.587 G + 0.114 B (no offset, no 219/255
compression). It is what GMSD implementations use: piq takes the Y of ``rgb2yiq`` and pyiqa's
``gmsd`` takes the Y of YIQ too, both with these three weights. (MATLAB's ``rgb2gray``, which
Xue et al.'s GMSD demo applies, uses 0.298936, 0.587043, 0.114021: the same to three decimals.)
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "LUMA_WEIGHTS",
    "YCBCR_MATRIX",
    "YCBCR_OFFSET",
    "luminance",
    "rgb_to_y",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
]

Image = np.ndarray | torch.Tensor

# Rows: Y, Cb, Cr. Columns: R, G, B in [0, 1]. Output on the 0..255 scale (MATLAB rgb2ycbcr).
YCBCR_MATRIX = np.array([[65.481, 128.553, 24.966],
                         [-37.797, -74.203, 112.0],
                         [112.0, -93.786, -18.214]], dtype=np.float64)
YCBCR_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64)
# BT.601 luma weights without the studio-range offset (Y of YIQ, used by GMSD in piq and pyiqa).
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def _numpy_rgb01(img: np.ndarray, name: str = "img") -> np.ndarray:
    """An H x W x 3 numpy RGB image as float64 in [0, 1] (uint8 is divided by 255)."""
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"{name}: expected a numpy RGB image of shape H x W x 3, got shape {img.shape}")
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"{name}: expected uint8 (0..255) or float ([0, 1]) pixels, got dtype {img.dtype}")
    return img.astype(np.float64)


def _check_tensor(x: torch.Tensor, channels: int, name: str = "x") -> None:
    if x.ndim < 3 or x.shape[-3] != channels:
        raise ValueError(f"{name}: expected a tensor of shape (..., {channels}, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a float tensor in [0, 1], got dtype {x.dtype}")


def _tensor_matrix(matrix: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(matrix, dtype=x.dtype, device=x.device)


def _apply_channels(x: torch.Tensor, matrix: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """out[..., i, :, :] = sum_j matrix[i, j] * x[..., j, :, :] + offset[i] for a (..., C, H, W) tensor."""
    return torch.einsum("ij,...jhw->...ihw", matrix, x) + offset[:, None, None]


def rgb_to_ycbcr(img: Image, *, peak: float | None = None) -> Image:
    """RGB to YCbCr, ITU-R BT.601 with MATLAB's ``rgb2ycbcr`` constants (see the module docstring).

    Args:
        img: numpy uint8 / float H x W x 3 (float taken in [0, 1]), or a float tensor (..., 3, H, W)
            in [0, 1].
        peak: scale of the result, YCbCr * peak / 255. Default: 255 for numpy (Y in [16, 235],
            like ``skimage.color.rgb2ycbcr``), 1 for tensors (Y in [16/255, 235/255]).

    Returns:
        numpy float64 H x W x 3, or a tensor (..., 3, H, W) of the input's dtype. Not rounded or clipped.
    """
    if isinstance(img, torch.Tensor):
        _check_tensor(img, 3, "img")
        scale = (1.0 if peak is None else peak) / 255.0
        return _apply_channels(img, _tensor_matrix(YCBCR_MATRIX * scale, img),
                               _tensor_matrix(YCBCR_OFFSET * scale, img))
    rgb = _numpy_rgb01(np.asarray(img))
    scale = (255.0 if peak is None else peak) / 255.0
    return (rgb @ YCBCR_MATRIX.T + YCBCR_OFFSET) * scale


def ycbcr_to_rgb(img: Image, *, peak: float | None = None) -> Image:
    """YCbCr (BT.601, MATLAB constants) back to RGB in [0, 1]; the exact inverse of ``rgb_to_ycbcr``.

    Args:
        img: numpy H x W x 3 (float, or uint8 as MATLAB's uint8 YCbCr) on the scale given by ``peak``,
            or a float tensor (..., 3, H, W).
        peak: scale of the YCbCr input (YCbCr * peak / 255). Default: 255 for numpy, 1 for tensors.

    Returns:
        RGB in [0, 1] (not clipped: out-of-gamut YCbCr gives values outside it): numpy float64
        H x W x 3, or a tensor (..., 3, H, W) of the input's dtype.
    """
    inverse = np.linalg.inv(YCBCR_MATRIX)
    if isinstance(img, torch.Tensor):
        _check_tensor(img, 3, "img")
        scale = 255.0 / (1.0 if peak is None else peak)
        ycc = img * scale - _tensor_matrix(YCBCR_OFFSET, img)[:, None, None]
        return _apply_channels(ycc, _tensor_matrix(inverse, img), img.new_zeros(3))
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"img: expected a numpy YCbCr image of shape H x W x 3, got shape {arr.shape}")
    scale = 255.0 / (255.0 if peak is None else peak)
    return (arr.astype(np.float64) * scale - YCBCR_OFFSET) @ inverse.T


def rgb_to_y(img: Image, *, peak: float | None = None) -> Image:
    """The Y (luma) channel of ``rgb_to_ycbcr``: Y = 16 + 65.481 R + 128.553 G + 24.966 B, R,G,B in [0, 1].

    Args:
        img: numpy uint8 / float H x W x 3 (float taken in [0, 1]), or a float tensor (..., 3, H, W)
            in [0, 1] (NCHW or CHW).
        peak: scale of the result, Y * peak / 255. Default: 255 for numpy (Y in [16, 235]),
            1 for tensors (Y / 255, in [16/255, 235/255]).

    Returns:
        numpy float64 H x W, or a tensor (..., 1, H, W) of the input's dtype (the channel axis is kept,
        so NCHW gives N1HW). Not rounded: MATLAB's uint8 ``rgb2ycbcr`` would round it.
    """
    if isinstance(img, torch.Tensor):
        _check_tensor(img, 3, "img")
        scale = (1.0 if peak is None else peak) / 255.0
        weights = _tensor_matrix(YCBCR_MATRIX[:1] * scale, img)
        return _apply_channels(img, weights, _tensor_matrix(YCBCR_OFFSET[:1] * scale, img))
    rgb = _numpy_rgb01(np.asarray(img))
    scale = (255.0 if peak is None else peak) / 255.0
    return (rgb @ YCBCR_MATRIX[0] + YCBCR_OFFSET[0]) * scale


def luminance(img: Image) -> Image:
    """Grey level 0.299 R + 0.587 G + 0.114 B, on the same scale as the input (no offset).

    This is the luminance GMSD implementations use (the Y of YIQ in piq and pyiqa).

    Args:
        img: numpy H x W x 3 (uint8 or float; the result is float64 on the input's scale, so uint8
            gives 0..255), or a float tensor (..., 3, H, W) (result (..., 1, H, W), same dtype).

    Returns:
        numpy float64 H x W, or a tensor (..., 1, H, W).
    """
    if isinstance(img, torch.Tensor):
        _check_tensor(img, 3, "img")
        return _apply_channels(img, _tensor_matrix(LUMA_WEIGHTS[None], img), img.new_zeros(1))
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"img: expected a numpy RGB image of shape H x W x 3, got shape {arr.shape}")
    return arr.astype(np.float64) @ LUMA_WEIGHTS
