"""MATLAB-exact bicubic resizing (``imresize(img, scale, 'bicubic')``) and ``modcrop``.

The x4 LR images of the SR benchmarks were made by MATLAB's ``imresize`` on uint8 images. This
module reproduces it bit for bit (checked on the 19 Set5 + Set14 images):

* the kernel is Keys' cubic with a = -0.5, 4 taps wide;
* when shrinking with antialiasing the kernel is stretched by 1/scale (16 taps for x1/4) and its
  height is scaled by ``scale`` so it still sums to one;
* output pixel x (counting from 1) samples the input at u = x / scale + 0.5 (1 - 1/scale);
* each output pixel's weights are divided by their sum;
* indices outside the image are mirrored (symmetric padding: ... 2 1 | 1 2 3 ... n | n n-1 ...);
  some older MATLAB releases clamped them to the edge pixel instead, which matches none of the 19;
* the axis with the smaller scale factor is resized first (the height axis on a tie);
* for uint8 input each pass is rounded half up and clipped to 0..255, the first one included.

Each axis is one matrix product with a precomputed dense (out x in) weight matrix, cached by
(in size, out size, scale, antialiasing). The matrices are mostly zeros (16 non-zeros a row at x1/4),
but one BLAS product beats gathering the taps for image sizes up to a few thousand pixels, on CPUs
and GPUs alike, and autograd handles it for free. Inputs can be numpy arrays (H x W or H x W x C,
uint8 or float) or torch tensors (..., H, W) on any device; float tensors stay differentiable.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["cubic", "imresize", "modcrop", "resize_weights"]

Image = np.ndarray | torch.Tensor

# Keys' cubic kernel is non-zero on (-2, 2).
_KERNEL_WIDTH = 4.0


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5, as in MATLAB's ``imresize`` (float64 in, out)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    outer = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return inner + outer


@functools.lru_cache(maxsize=128)
def _contributions(in_len: int, out_len: int, scale: float,
                   antialiasing: bool) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's ``contributions``: per-output-pixel weights and 0-based input indices, (out, taps)."""
    if scale < 1 and antialiasing:
        # A wider, lower kernel: a low-pass filter at the output's Nyquist frequency.
        def kernel(t):
            return scale * cubic(scale * t)
        width = _KERNEL_WIDTH / scale
    else:
        kernel, width = cubic, _KERNEL_WIDTH
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)           # position in input coordinates, 1-based
    left = np.floor(u - width / 2.0)
    taps = math.ceil(width) + 2                     # one spare tap on each side
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # Symmetric padding: 1..n, n..1 repeated; map 1-based indices into it, then to 0-based.
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    # Drop tap columns that are zero for every output pixel (as MATLAB does).
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


@functools.lru_cache(maxsize=128)
def resize_weights(in_len: int, out_len: int, scale: float, antialiasing: bool = True) -> np.ndarray:
    """The (out_len x in_len) float64 matrix M with resized = M @ signal along one axis.

    Built from MATLAB's per-pixel weights; mirrored taps that land on the same input pixel add up.
    Cached; treat the returned array as read-only.
    """
    weights, indices = _contributions(in_len, out_len, scale, antialiasing)
    matrix = np.zeros((out_len, in_len), dtype=np.float64)
    rows = np.repeat(np.arange(out_len), weights.shape[1])
    np.add.at(matrix, (rows, indices.ravel()), weights.ravel())
    matrix.setflags(write=False)
    return matrix


@functools.lru_cache(maxsize=256)
def _torch_weights(in_len: int, out_len: int, scale: float, antialiasing: bool,
                   dtype: torch.dtype, device: str) -> torch.Tensor:
    return torch.tensor(resize_weights(in_len, out_len, scale, antialiasing), dtype=dtype, device=device)


def _plan(height: int, width: int, scale: float | Sequence[float] | None,
          size: Sequence[int] | None) -> list[tuple[int, int, int, float]]:
    """(axis, in, out, scale) per axis, in MATLAB's order: smaller scale first, height on a tie."""
    if (scale is None) == (size is None):
        raise ValueError("imresize: give exactly one of scale (a number) or size (out_height, out_width)")
    if size is not None:
        if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
            raise ValueError(f"imresize: size must be two positive integers (height, width), got {size}")
        out_h, out_w = int(size[0]), int(size[1])
        scales = (out_h / height, out_w / width)
    else:
        scales = tuple(scale) if isinstance(scale, (tuple, list)) else (scale, scale)
        if len(scales) != 2 or not all(isinstance(s, (int, float)) and s > 0 and math.isfinite(s)
                                       for s in scales):
            raise ValueError(f"imresize: scale must be a positive number (or two), got {scale!r}")
        scales = (float(scales[0]), float(scales[1]))
        out_h, out_w = math.ceil(scales[0] * height), math.ceil(scales[1] * width)
    steps = [(0, height, out_h, scales[0]), (1, width, out_w, scales[1])]
    return sorted(steps, key=lambda step: step[3])  # stable: the height axis first on a tie


@functools.lru_cache(maxsize=128)
def _exact_in_float32(in_len: int, out_len: int, scale: float, antialiasing: bool) -> bool:
    """Whether a uint8 pass with these weights is computed exactly in float32.

    True when every weight is a multiple of 2**-14 (dyadic; so for x4, x2, x1/2, x1/4): then every
    product and partial sum with pixels 0..255 is a multiple of 2**-14 below 2**9 in magnitude
    (the weights' absolute row sums are < 2), which float32's 24-bit significand holds exactly. The
    result then equals MATLAB's double-precision one, ties at .5 included. Otherwise use float64.
    """
    m = resize_weights(in_len, out_len, scale, antialiasing)
    scaled = np.ldexp(m, 14)
    return bool(np.all(scaled == np.round(scaled)) and np.abs(m).sum(axis=1).max() < 2.0)


def _resize_tensor(x: torch.Tensor, steps, antialiasing: bool, quantize: bool) -> torch.Tensor:
    """Apply the per-axis matrices to a tensor (..., H, W).

    quantize=False: float in, same float dtype out. quantize=True: x holds integers 0..255 (any float
    dtype); each pass runs in float32 where that is exact, else float64, and is rounded like MATLAB.
    """
    for axis, n_in, n_out, s in steps:
        if n_in == n_out and s == 1:
            continue  # the cubic kernel at integer offsets is the identity
        if quantize:
            # On GPUs float32 matmuls may run as TF32 (a user setting), so only the CPU takes the shortcut.
            exact32 = x.device.type == "cpu" and _exact_in_float32(n_in, n_out, s, antialiasing)
            x = x.to(torch.float32 if exact32 else torch.float64)
        m = _torch_weights(n_in, n_out, s, antialiasing, x.dtype, str(x.device))
        x = torch.matmul(m, x) if axis == 0 else torch.matmul(x, m.T)
        if quantize:
            # MATLAB casts each pass to uint8: round half away from zero, saturate.
            x = torch.floor(x + 0.5).clamp_(0, 255)
    return x


def imresize(img: Image, scale: float | Sequence[float] | None = None, *,
             size: Sequence[int] | None = None, antialiasing: bool = True) -> Image:
    """Bicubic resize identical to MATLAB's ``imresize(img, scale, 'bicubic')``.

    Args:
        img: numpy H x W or H x W x C (uint8, or float of any range), or a torch tensor (..., H, W)
            (e.g. NCHW or CHW), float or uint8, on any device.
        scale: a positive factor for both axes (e.g. 1/4 or 4), or (scale_h, scale_w). The output
            size is ceil(scale * input size), as in MATLAB.
        size: instead of ``scale``, the output (height, width); the scales are then out / in.
        antialiasing: stretch the kernel when shrinking (MATLAB's default, True).

    Returns:
        The resized image, same type, layout and dtype as ``img``. uint8 input gives uint8 output
        bit-exact with MATLAB (each pass rounded half up and clipped; computed in float64, or on the
        CPU in float32 when the weights make that exact, as for x4, x2, x1/2 and x1/4). Float
        input is neither rounded nor clipped: numpy float64 is computed in float64, other numpy
        floats in float32; float tensors are computed in float32 (float64 stays float64) even
        under autocast, are returned in their own dtype, and stay differentiable.
    """
    if isinstance(img, torch.Tensor):
        return _imresize_tensor(img, scale, size, antialiasing)
    if not isinstance(img, np.ndarray):
        raise TypeError(f"imresize: expected a numpy array or torch tensor, got {type(img).__name__}")
    if img.ndim not in (2, 3):
        raise ValueError(f"imresize: expected a numpy image H x W or H x W x C, got shape {img.shape}")
    is_uint8 = img.dtype == np.uint8
    if not is_uint8 and not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"imresize: numpy images must be uint8 or float, got dtype {img.dtype}")
    steps = _plan(img.shape[0], img.shape[1], scale, size)
    work = np.float32 if is_uint8 or img.dtype != np.float64 else np.float64
    # Channels-last H x W x C becomes C x H x W so that both passes are plain matrix products.
    x = torch.from_numpy(img.astype(work))  # a copy, so read-only arrays are fine
    x = x.permute(2, 0, 1) if img.ndim == 3 else x
    y = _resize_tensor(x, steps, antialiasing, quantize=is_uint8)
    y = y.permute(1, 2, 0) if img.ndim == 3 else y
    return np.ascontiguousarray(y.numpy()).astype(img.dtype)


def _imresize_tensor(x: torch.Tensor, scale, size, antialiasing: bool) -> torch.Tensor:
    if x.ndim < 2:
        raise ValueError(f"imresize: expected a tensor (..., H, W), got shape {tuple(x.shape)}")
    steps = _plan(x.shape[-2], x.shape[-1], scale, size)
    if x.dtype == torch.uint8:
        y = _resize_tensor(x.to(torch.float32), steps, antialiasing, quantize=True)
        return y.to(torch.uint8)
    if not x.is_floating_point():
        raise TypeError(f"imresize: tensors must be float or uint8, got dtype {x.dtype}")
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    # Autocast would run the matrix products in half precision; the weights need float32.
    with torch.autocast(device_type=x.device.type, enabled=False):
        y = _resize_tensor(x.to(work), steps, antialiasing, quantize=False)
    return y.to(x.dtype)


def modcrop(img: Image, scale: int) -> Image:
    """Crop the bottom rows and right columns so that height and width are multiples of ``scale``.

    Args:
        img: numpy H x W or H x W x C, or a torch tensor (..., H, W).
        scale: a positive integer (4 for x4 super-resolution).

    Returns:
        A view of ``img`` with shape (H - H % scale, W - W % scale) in place of (H, W).
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"modcrop: scale must be a positive integer, got {scale!r}")
    if isinstance(img, torch.Tensor):
        if img.ndim < 2:
            raise ValueError(f"modcrop: expected a tensor (..., H, W), got shape {tuple(img.shape)}")
        h, w = img.shape[-2:]
        return img[..., : h - h % scale, : w - w % scale]
    img = np.asarray(img)
    if img.ndim not in (2, 3):
        raise ValueError(f"modcrop: expected a numpy image H x W or H x W x C, got shape {img.shape}")
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]
