"""The degradation of the synthetic task: MATLAB bicubic x1/4 with periodic borders.

LR = MATLAB's bicubic x1/4 (:func:`gmgan.imresize`, antialiased, Keys a = -0.5) of HR,
in float (not rounded to uint8), with **wrap-around** borders instead of MATLAB's
mirrored ones: :func:`downscale` is ``imresize`` of the periodically padded image,
cropped back, which every LR pixel's 18 taps see as the same weights as MATLAB's
interior pixels. The operator is then linear and commutes with cyclic shifts by 4
pixels, so it is diagonal per group of 16 aliased frequencies in the Fourier domain
(:func:`frequency_response`, :func:`alias_groups`): what makes the MMSE estimate of
:mod:`gmgan.synthetic.texture` exact.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from gmgan.resize import imresize, resize_weights

__all__ = [
    "SCALE",
    "alias_groups",
    "downscale",
    "downscale_matrix",
    "frequency_response",
]

SCALE = 4
# Wrap-around padding before the MATLAB resize, in HR pixels: the x1/4 kernel spans 16
# HR pixels plus a spare tap on each side, so 16 covers it with room; a multiple of 4
# keeps the LR grid.
_PAD = 16


# --------------------------------------------------------------------------------------
# The degradation: MATLAB bicubic x1/4 with periodic borders
# --------------------------------------------------------------------------------------


def _check_size(n: int) -> None:
    if not isinstance(n, (int, np.integer)) or n < 2 * SCALE or n % SCALE:
        raise ValueError(
            f"image side must be a multiple of {SCALE} of at least {2 * SCALE}, "
            f"got {n!r}"
        )


@functools.lru_cache(maxsize=16)
def downscale_matrix(n: int) -> np.ndarray:
    """The (n/4, n) float64 matrix P of the periodic MATLAB bicubic x1/4 along one axis.

    Built from :func:`gmgan.resize.resize_weights` on the signal extended periodically
    by 16 pixels each side, its taps folded back modulo n: LR = P @ HR @ P.T for one
    channel. Every row is the first one shifted by 4 (checked in the tests). Read-only,
    cached.
    """
    _check_size(n)
    m = n // SCALE
    big = resize_weights(n + 2 * _PAD, m + 2 * _PAD // SCALE, 1.0 / SCALE, True)
    rows = big[_PAD // SCALE : _PAD // SCALE + m]
    matrix = np.zeros((m, n))
    np.add.at(matrix, (slice(None), (np.arange(n + 2 * _PAD) - _PAD) % n), rows)
    matrix.setflags(write=False)
    return matrix


def downscale(hr: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """LR of a periodic HR image: MATLAB bicubic x1/4 with wrap-around borders, in
    float.

    Equal to ``imresize(np.pad(hr, 16, mode="wrap"), 1/4)`` cropped by 4 LR pixels each
    side.

    Args:
        hr: numpy float (..., n, n) or a float tensor (..., n, n) (e.g. NCHW), n a
            multiple of 4; any range (not clipped or rounded).

    Returns:
        (..., n/4, n/4) of the input's type (numpy float64; tensors in their own
        dtype and device, differentiable).
    """
    n = hr.shape[-1]
    if hr.shape[-2] != n:
        raise ValueError(
            f"downscale: expected square images (..., n, n), got {tuple(hr.shape)}"
        )
    matrix = downscale_matrix(n)
    if isinstance(hr, torch.Tensor):
        if not hr.is_floating_point():
            raise TypeError(f"downscale: expected a float tensor, got {hr.dtype}")
        p = torch.tensor(matrix, dtype=hr.dtype, device=hr.device)
        return p @ hr @ p.T
    return matrix @ np.asarray(hr, dtype=np.float64) @ matrix.T


def _padded_imresize(hr: np.ndarray) -> np.ndarray:
    """The same LR through gmgan.imresize itself (H x W x C float): used by the
    tests."""
    pad = ((_PAD, _PAD), (_PAD, _PAD)) + ((0, 0),) * (hr.ndim - 2)
    lr = imresize(np.pad(np.asarray(hr, np.float64), pad, mode="wrap"), 1.0 / SCALE)
    crop = _PAD // SCALE
    return lr[crop:-crop, crop:-crop]


@functools.lru_cache(maxsize=16)
def frequency_response(n: int) -> np.ndarray:
    """H(k) of the 2-D operator for the n x n HR FFT bins (numpy.fft order), complex128
    (n, n).

    With X = fft2(t) and Y = fft2(downscale(t)): Y(l) = (1/16) sum over k = l mod n/4 of
    H(k) X(k). H(k) = h(ky) h(kx), h(k) = sum_u P[0, u] exp(+2 pi i k u / n). Read-only,
    cached.
    """
    row = downscale_matrix(n)[0]
    h = n * np.fft.ifft(row)  # sum_u row[u] exp(+2 pi i k u / n)
    response = h[:, None] * h[None, :]
    response.setflags(write=False)
    return response


def alias_groups(values: np.ndarray) -> np.ndarray:
    """Sum an (..., n, n) array of HR-bin values over each group of 16 aliased
    frequencies.

    Bin k = j (n/4) + l along each axis (numpy.fft order) lands on LR bin l: returns
    (..., n/4, n/4).
    """
    n = values.shape[-1]
    m = n // SCALE
    grouped = values.reshape(values.shape[:-2] + (SCALE, m, SCALE, m))
    return grouped.sum(axis=(-4, -2))


def _tile_groups(values: np.ndarray) -> np.ndarray:
    """(..., m, m) LR-bin values repeated onto the (..., 4m, 4m) HR bins of their
    groups."""
    return np.tile(values, (1,) * (values.ndim - 2) + (SCALE, SCALE))

