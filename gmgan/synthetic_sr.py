"""A synthetic x4 super-resolution task whose MSE-optimal answer is known exactly.

On natural images at CPU scale every effect of the GAN and of l_Q is small and its
"right answer" unknown. Here the HR images are built so that the perception-distortion
trade-off is exact:

    HR = structure + texture        (float RGB in [0, 1], N x 3 x n x n, n = 64)

* **structure**: a background colour and a few shapes with hard (not antialiased) edges,
  each of one RGB colour in [0.25, 0.75]: random convex polygons and straight bars
  (lines 1.5-3 px wide). They are drawn on the torus (a shape crossing the right border
  comes back on the left), so HR is periodic.
* **texture**: a stationary Gaussian random field t, grey (the same t added to R, G and
  B), periodic, with a closed-form power spectrum (:class:`TextureSpectrum`: an
  isotropic Gaussian band around 0.2 cycles per pixel, 95% of its energy above the LR's
  Nyquist frequency 0.125). HR is not clipped: with std 0.08 a pixel leaves [0, 1] only
  beyond 3.1 sigma (at most 9e-4 of the pixels, on the darkest and brightest colours),
  and clipping would make the degradation non-linear.
* **LR** = MATLAB's bicubic x1/4 (:func:`gmgan.imresize`, antialiased, Keys a = -0.5) of
  HR, in float (not rounded to uint8), with **wrap-around** borders instead of MATLAB's
  mirrored ones: :func:`downscale` is ``imresize`` of the periodically padded image,
  cropped back, which every LR pixel's 18 taps see as the same weights as MATLAB's
  interior pixels. The operator is then linear and commutes with cyclic shifts by 4
  pixels, so it is diagonal per group of aliased frequencies in the Fourier domain.

Closed form, for the texture alone (the structure known, "oracle structure"; since
texture and structure are independent, the texture part of any estimator's MSE is at
least this):

* :func:`wiener_texture` is the MMSE estimate E[t | LR of t]. For a circulant Gaussian t
  with spectrum S and the operator A (LR = A t), each LR frequency l sees the 16 HR
  frequencies k = l + (n/4) j, j in {0..3}^2, as Y(l) = (1/16) sum_k H(k) X(k) (numpy's
  FFTs, H the operator's frequency response). The estimate is X_hat(k) = 16 S(k) conj
  H(k) Y(l) / G(l) with G(l) = sum_k S(k) |H(k)|^2: the exact linear MMSE, and for
  Gaussian t the exact MMSE. (Checked in the tests against dense linear algebra, C A^T
  (A C A^T)^-1 y, on a 16 x 16 grid.)
* :func:`texture_bounds` gives its MSE per pixel D* = mean_k (S - S_hat), the estimate's
  spectrum S_hat(k) = S(k)^2 |H(k)|^2 / G(l), its high-frequency energy ratio, and the
  Wasserstein-2 distance between the laws of t and of the estimate. Within a group the
  estimate's covariance is rank one (v v^H, v_k = S(k) conj H(k) / sqrt G(l)) and the
  texture's diagonal, so W2^2 = mean over k of S + S_hat, minus 2/N sum_l sqrt(sum_k
  S(k)^3 |H(k)|^2 / G(l)).
* The perception-distortion bound (Freirich, Michaeli & Meir 2021, "A Theory of the
  Distortion-Perception Tradeoff in Wasserstein Space", NeurIPS; for any source, MSE
  distortion and W2 perception): D(P) = D* + max(W2(p_t, p_t_hat) - P, 0)^2, where
  t_hat is the MMSE estimate. At perfect perception, P = 0, D(0) = D* + W2^2. It is at
  most 2 D*, the MSE of posterior sampling (an independent draw t' from p(t | LR) has
  E|t - t'|^2 = 2 E Var(t | LR) = 2 D* and the law of t; Blau & Michaeli 2018, "The
  Perception-Distortion Tradeoff", CVPR, make the same point).
  :func:`distortion_perception_bound` evaluates D(P).

Units: pixel values on the [0, 1] scale; MSE per pixel and per channel in [0, 1]^2 units
(the texture is the same in R, G, B, so its MSE is the same in each); W2 per pixel, sqrt
of those units; spectra per FFT bin, normalised so that their mean over the n x n bins
is the variance.

Training (small enough for a CPU): :class:`TrainingStream` serves (LR, HR) patches with
fresh texture in every batch; :func:`small_generator` is a small RRDBNet that corrects
bicubic interpolation (:class:`BicubicResidualSR`), :func:`with_noise_head` gives a copy
an HR noise input (a generator that can sample a texture), :func:`small_critic` a small
WGAN-GP critic, and :func:`train_sr` a short loop over :class:`gmgan.losses.GMGANLoss`
(MSE, l_Q, l_GA). Scores: :func:`gmgan.metrics.hf_energy_ratio` for the texture,
:func:`edge_gms` for the edges of the structure, :func:`spectral_w2` as a perception
proxy on the bound's scale.

Everything is seeded: image ``i`` of split ``split`` of a task with seed ``s`` is the
same on every machine (numpy's PCG64 from the key (s, split, i)).
"""

from __future__ import annotations

import copy
import functools
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from gmgan.losses import (
    GMGANLoss,
    critic_loss,
    gms_map,
    gradient_magnitude,
    gradient_penalty,
)
from gmgan.nets import Discriminator, RRDBNet
from gmgan.resize import imresize, resize_weights
from gmgan.threads import torch_threads

__all__ = [
    "SCALE",
    "SPLITS",
    "BicubicResidualSR",
    "SyntheticSRTask",
    "TaskBatch",
    "TextureBounds",
    "TextureSpectrum",
    "TrainingStream",
    "alias_groups",
    "distortion_perception_bound",
    "downscale",
    "downscale_matrix",
    "edge_gms",
    "frequency_response",
    "sample_texture",
    "small_critic",
    "small_generator",
    "spectral_w2",
    "texture_bounds",
    "train_sr",
    "wiener_texture",
    "with_noise_head",
]

SCALE = 4
SPLITS = {"train": 0, "test": 1}
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


# --------------------------------------------------------------------------------------
# The texture: a stationary Gaussian random field with a known spectrum
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextureSpectrum:
    """Isotropic Gaussian band: S(f) proportional to exp(-(|f| - peak)^2 / (2 width^2)).

    Args:
        peak: centre of the band, cycles per pixel (Nyquist 0.5; the LR's Nyquist
            is 0.125).
        width: its standard deviation, cycles per pixel.
        std: the texture's standard deviation per pixel, [0, 1] intensity units.
    """

    peak: float = 0.2
    width: float = 0.06
    std: float = 0.08

    def __post_init__(self) -> None:
        for name in ("peak", "width", "std"):
            value = getattr(self, name)
            if (
                not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(
                    f"TextureSpectrum.{name} must be a finite number >= 0, "
                    f"got {value!r}"
                )
        if self.width == 0:
            raise ValueError("TextureSpectrum.width must be > 0")

    def on_grid(self, n: int) -> np.ndarray:
        """S(k) on the n x n FFT bins (numpy.fft order), float64, mean over the bins =
        std^2.

        A field with this spectrum has E|fft2(t)(k)|^2 = n^2 S(k), the eigenvalues of
        its circulant covariance.
        """
        f = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
        shape = np.exp(-0.5 * ((f - self.peak) / self.width) ** 2)
        return shape * (self.std**2 / shape.mean())


def sample_texture(
    spectrum: TextureSpectrum,
    n: int,
    rng: np.random.Generator,
    count: int | None = None,
) -> np.ndarray:
    """Periodic Gaussian fields with ``spectrum``: ifft2(fft2(white) * sqrt(S)), white ~
    N(0, 1).

    Returns float64 (n, n), or (count, n, n) when ``count`` is given; mean 0, std
    spectrum.std.
    """
    shape = (n, n) if count is None else (count, n, n)
    white = rng.standard_normal(shape)
    return np.real(np.fft.ifft2(np.fft.fft2(white) * np.sqrt(spectrum.on_grid(n))))


def wiener_texture(lr_texture: np.ndarray, spectrum: TextureSpectrum) -> np.ndarray:
    """The MMSE estimate E[t | downscale(t) = lr_texture] of a texture with
    ``spectrum``.

    Args:
        lr_texture: float (..., m, m), the LR of the texture alone (LR minus the LR
            of the known structure, for task images).
        spectrum: the texture's spectrum.

    Returns:
        float64 (..., 4m, 4m), the exact MMSE (Wiener) estimate (see the module
        docstring).
    """
    m = lr_texture.shape[-1]
    n = SCALE * m
    s, h = spectrum.on_grid(n), frequency_response(n)
    power = alias_groups(s * np.abs(h) ** 2)  # G(l)
    gain = np.divide(
        SCALE**2 * s * np.conj(h),
        _tile_groups(power),
        out=np.zeros((n, n), complex),
        where=_tile_groups(power) > 0,
    )
    y = np.fft.fft2(np.asarray(lr_texture, np.float64))
    return np.real(np.fft.ifft2(gain * _tile_groups(y)))


@dataclass(frozen=True)
class TextureBounds:
    """Closed-form quantities of a texture under the x4 degradation (per pixel, [0, 1]
    units).

    Attributes:
        variance: E[t^2], the MSE of answering 0 (the mean) everywhere.
        mmse: D*, the MSE of the Wiener estimate.
        w2: W2 between the laws of t and of the Wiener estimate (per pixel:
            sqrt(W2^2 / N)).
        posterior_sampling_mse: 2 D*, perfect perception by sampling p(t | LR).
        hf_ratio_mmse: the estimate's expected energy above ``cutoff`` x Nyquist
            over the texture's (unwindowed spectra, radial cutoff as
            :func:`gmgan.metrics.hf_energy_ratio`).
        hf_fraction: the fraction of the texture's energy above that cutoff.
        cutoff: the cutoff used, fraction of Nyquist.
        spectrum_mmse: S_hat(k) on the n x n bins, the estimate's spectrum.
    """

    variance: float
    mmse: float
    w2: float
    posterior_sampling_mse: float
    hf_ratio_mmse: float
    hf_fraction: float
    cutoff: float
    spectrum_mmse: np.ndarray = field(repr=False)


def texture_bounds(
    spectrum: TextureSpectrum, n: int, cutoff: float = 0.25
) -> TextureBounds:
    """The closed-form MMSE, W2 and high-frequency figures of ``spectrum`` on n x n
    images."""
    _check_size(n)
    s, h2 = spectrum.on_grid(n), np.abs(frequency_response(n)) ** 2
    power = _tile_groups(alias_groups(s * h2))
    positive = power > 0
    s_hat = np.divide(s**2 * h2, power, out=np.zeros_like(s), where=positive)
    cross = alias_groups(
        np.divide(s**3 * h2, power, out=np.zeros_like(s), where=positive)
    )
    w2_sq = (s.sum() + s_hat.sum() - 2.0 * np.sqrt(cross).sum()) / s.size
    high = (
        np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :]) > cutoff * 0.5
    )
    mmse = float((s - s_hat).mean())
    return TextureBounds(
        variance=float(s.mean()),
        mmse=mmse,
        w2=math.sqrt(max(float(w2_sq), 0.0)),
        posterior_sampling_mse=2.0 * mmse,
        hf_ratio_mmse=float(s_hat[high].sum() / s[high].sum()),
        hf_fraction=float(s[high].sum() / s.sum()),
        cutoff=cutoff,
        spectrum_mmse=s_hat,
    )


def distortion_perception_bound(
    bounds: TextureBounds, perception: np.ndarray | float
) -> np.ndarray | float:
    """D(P) = D* + max(W2 - P, 0)^2 (Freirich et al. 2021): the least MSE per pixel of
    any estimator whose output law is within W2 distance P (per pixel) of the
    texture's."""
    p = np.asarray(perception, dtype=np.float64)
    if np.any(p < 0):
        raise ValueError("perception (a W2 distance) must be >= 0")
    out = bounds.mmse + np.maximum(bounds.w2 - p, 0.0) ** 2
    return float(out) if out.ndim == 0 else out


def spectral_w2(
    textures: np.ndarray | torch.Tensor, spectrum: TextureSpectrum
) -> float:
    """W2 per pixel between stationary Gaussian fields with the textures' mean
    periodogram and with ``spectrum``: sqrt(mean_k (sqrt S(k) - sqrt S_est(k))^2). A
    perception proxy for the distortion-perception plane, on the same scale as
    :attr:`TextureBounds.w2` and the P of :func:`distortion_perception_bound`.

    It sees only the power per frequency, not phases or the correlation between aliased
    frequencies, so it is never above the exact W2 for the Wiener estimate (its value
    there, from S_hat, is smaller than ``bounds.w2``); it is 0 for any field with the
    right spectrum.

    Args:
        textures: (N, n, n) texture estimates, e.g. SR minus the known structure
            averaged over R, G, B ([0, 1] units, any mean: the mean is removed per
            image).
        spectrum: the true texture's spectrum.
    """
    x = (
        textures.detach().cpu().double().numpy()
        if isinstance(textures, torch.Tensor)
        else textures
    )
    x = np.asarray(x, np.float64)
    if x.ndim != 3 or x.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"spectral_w2: expected (N, n, n) textures, got shape {x.shape}"
        )
    n = x.shape[-1]
    x = x - x.mean(axis=(1, 2), keepdims=True)
    estimate = (np.abs(np.fft.fft2(x)) ** 2).mean(axis=0) / n**2
    return float(
        np.sqrt(np.mean((np.sqrt(spectrum.on_grid(n)) - np.sqrt(estimate)) ** 2))
    )


# --------------------------------------------------------------------------------------
# The structure: shapes with hard edges on the torus
# --------------------------------------------------------------------------------------


def _convex_polygon(rng: np.random.Generator, n: int) -> np.ndarray:
    """(V, 2) vertices (y, x) of a random convex polygon, counter-clockwise, 3..6
    vertices."""
    count = int(rng.integers(3, 7))
    centre = rng.uniform(0, n, 2)
    radius = rng.uniform(0.12, 0.3) * n
    angles = np.sort(rng.uniform(0, 2 * np.pi, count))
    stretch = rng.uniform(0.6, 1.0)
    return centre + radius * np.stack(
        [stretch * np.sin(angles), np.cos(angles)], axis=1
    )


def _bar(rng: np.random.Generator, n: int) -> np.ndarray:
    """(4, 2) vertices of a straight bar (a line 1.5..3 px wide, 0.3..0.8 n long)."""
    centre = rng.uniform(0, n, 2)
    angle = rng.uniform(0, np.pi)
    half_len, half_width = 0.5 * rng.uniform(0.3, 0.8) * n, 0.5 * rng.uniform(1.5, 3.0)
    along = np.array([np.sin(angle), np.cos(angle)])
    across = np.array([along[1], -along[0]])
    return centre + np.array(
        [
            s * half_len * along + t * half_width * across
            for s, t in ((-1, -1), (1, -1), (1, 1), (-1, 1))
        ]
    )


def _inside_convex(vertices: np.ndarray, n: int) -> np.ndarray:
    """Boolean (n, n): pixel centres inside the convex polygon, on the torus (hard
    edges)."""
    yy, xx = np.mgrid[0:n, 0:n] + 0.5
    inside = np.zeros((n, n), bool)
    edges = np.roll(vertices, -1, axis=0) - vertices
    for dy in (-n, 0, n):
        for dx in (-n, 0, n):
            py, px = yy + dy, xx + dx
            sides = [
                e[1] * (py - v[0]) - e[0] * (px - v[1]) for v, e in zip(vertices, edges)
            ]
            sides = np.stack(sides)
            inside |= np.all(sides <= 0, axis=0) | np.all(sides >= 0, axis=0)
    return inside


def _structure(
    rng: np.random.Generator, n: int, shapes: tuple[int, int], bars: tuple[int, int]
) -> np.ndarray:
    """(3, n, n) float64: background plus shapes and bars, each one colour in [0.25,
    0.75]."""
    image = np.empty((3, n, n))
    image[:] = rng.uniform(0.25, 0.75, 3)[:, None, None]
    outlines = [
        _convex_polygon(rng, n)
        for _ in range(int(rng.integers(shapes[0], shapes[1] + 1)))
    ]
    outlines += [_bar(rng, n) for _ in range(int(rng.integers(bars[0], bars[1] + 1)))]
    for vertices in outlines:
        mask = _inside_convex(vertices, n)
        image[:, mask] = rng.uniform(0.25, 0.75, 3)[:, None]
    return image


# --------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskBatch:
    """Images of the task, float32 tensors in [0, 1] (HR not clipped, see the module
    docstring).

    hr (N, 3, n, n) = structure + texture (texture broadcast over RGB); lr (N, 3, n/4,
    n/4); structure (N, 3, n, n); texture (N, 1, n, n) (zero mean, not in [0, 1]).
    """

    hr: torch.Tensor
    lr: torch.Tensor
    structure: torch.Tensor
    texture: torch.Tensor

    def __len__(self) -> int:
        return self.hr.shape[0]


@dataclass(frozen=True)
class SyntheticSRTask:
    """The synthetic x4 SR task (module docstring): n x n HR images, seeded.

    Args:
        size: HR side n in pixels (multiple of 4).
        spectrum: the texture's spectrum (:class:`TextureSpectrum`); std 0 gives
            structure only.
        shapes: (min, max) number of convex polygons per image.
        bars: (min, max) number of straight bars per image.
        seed: the task's seed; images are keyed by (seed, split, index).
    """

    size: int = 64
    spectrum: TextureSpectrum = TextureSpectrum()
    shapes: tuple[int, int] = (2, 4)
    bars: tuple[int, int] = (1, 3)
    seed: int = 0

    def __post_init__(self) -> None:
        _check_size(self.size)
        for name in ("shapes", "bars"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(
                    f"SyntheticSRTask.{name} must be (min, max) with 0 <= min <= max, "
                    f"got {getattr(self, name)!r}"
                )

    def _rng(self, split: str, index: int) -> np.random.Generator:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        if index < 0:
            raise ValueError(f"image index must be >= 0, got {index}")
        return np.random.default_rng([self.seed, SPLITS[split], int(index)])

    def image(self, split: str, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image ``index`` of ``split``: (structure (3, n, n), texture (n, n)),
        float64."""
        rng = self._rng(split, index)
        structure = _structure(rng, self.size, self.shapes, self.bars)
        texture = sample_texture(self.spectrum, self.size, rng)
        return structure, texture

    def batch(self, split: str, indices) -> TaskBatch:
        """The images ``indices`` (an iterable of ints) of ``split`` as a
        :class:`TaskBatch`."""
        parts = [self.image(split, int(i)) for i in indices]
        if not parts:
            raise ValueError("batch: no indices given")
        structure = np.stack([p[0] for p in parts])
        texture = np.stack([p[1] for p in parts])[:, None]
        hr = structure + texture
        lr = downscale(hr)
        as_t = functools.partial(torch.as_tensor, dtype=torch.float32)
        return TaskBatch(as_t(hr), as_t(lr), as_t(structure), as_t(texture))

    def bounds(self, cutoff: float = 0.25) -> TextureBounds:
        """:func:`texture_bounds` of this task's texture."""
        return texture_bounds(self.spectrum, self.size, cutoff)


# --------------------------------------------------------------------------------------
# Training data: a pool of structures, fresh texture in every batch
# --------------------------------------------------------------------------------------


class TrainingStream:
    """An endless, seeded stream of (LR, HR) training patches of a
    :class:`SyntheticSRTask`.

    Drawing shapes is the slow part (~10 ms an image), so ``pool`` structures of the
    task's "train" split are drawn once; every batch takes ``batch_size`` of them,
    shifts each cyclically by a random multiple of 4 pixels (the degradation commutes
    with that), adds a fresh texture and crops the top-left ``patch`` x ``patch`` HR
    pixels and the matching LR ones. LR is downscale(structure) + downscale(texture),
    the same as downscale(HR) (it is linear).

    ``next(stream)`` -> (lr (B, 3, patch/4, patch/4), hr (B, 3, patch, patch)), float32.
    """

    def __init__(
        self,
        task: SyntheticSRTask,
        *,
        batch_size: int = 16,
        patch: int = 32,
        pool: int = 128,
        seed: int = 0,
    ) -> None:
        if patch % SCALE or not SCALE <= patch <= task.size:
            raise ValueError(
                f"patch must be a multiple of {SCALE} up to {task.size}, got {patch}"
            )
        self.task, self.batch_size, self.patch = task, batch_size, patch
        self.structure = np.stack([task.image("train", i)[0] for i in range(pool)])
        self.rng = np.random.default_rng([task.seed, 7, seed])

    def __iter__(self) -> TrainingStream:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        n, m, p = self.task.size, self.task.size // SCALE, self.patch
        picks = self.rng.integers(0, len(self.structure), self.batch_size)
        texture = sample_texture(self.task.spectrum, n, self.rng, count=self.batch_size)
        hr = self.structure[picks] + texture[:, None]
        shifts = self.rng.integers(0, m, (self.batch_size, 2))
        hr = np.stack(
            [
                np.roll(img, tuple(SCALE * shift), axis=(1, 2))
                for img, shift in zip(hr, shifts)
            ]
        )
        lr = downscale(hr)
        # The crop's LR pixels see up to 9 HR pixels beyond it: those lie outside the HR
        # patch, as they do for patches cut from any larger training image.
        hr, lr = hr[..., :p, :p], lr[..., : p // SCALE, : p // SCALE]
        return (
            torch.as_tensor(lr, dtype=torch.float32),
            torch.as_tensor(hr, dtype=torch.float32),
        )


# --------------------------------------------------------------------------------------
# Small models and a short training loop
# --------------------------------------------------------------------------------------


class BicubicResidualSR(nn.Module):
    """SR = MATLAB bicubic x4 of LR + an :class:`gmgan.nets.RRDBNet`'s output (the
    residual), optionally + a texture synthesised from noise.

    The RRDBNet's last conv starts near zero, so a fresh model is bicubic interpolation
    and training only has to learn the correction: what makes a few hundred CPU steps
    enough.

    Two optional sources of randomness (drawn from torch's global generator at every
    call):

    * ``noise_channels`` > 0: the RRDBNet also reads that many channels of N(0, 1) noise
      at LR resolution (it has to shape them into fine texture through its two x2
      upsamplings);
    * ``noise_head`` > 0: one channel of N(0, 1) noise at HR resolution goes through a
      small convolutional head (5x5 conv to ``noise_head`` channels, LeakyReLU, 5x5 conv
      to 3), whose output is added: noise injection at full resolution (as StyleGAN's),
      which can learn a stationary texture of any spectrum within its 9x9 reach,
      independent of the LR image.

    Forward: float (N, 3, h, w) in [0, 1] -> (N, 3, 4h, 4w), not clamped.
    """

    def __init__(
        self, body: RRDBNet, noise_channels: int = 0, noise_head: int = 0
    ) -> None:
        super().__init__()
        if body.in_channels != 3 + noise_channels:
            raise ValueError(
                f"BicubicResidualSR: the RRDBNet reads {body.in_channels} channels, "
                f"expected 3 + noise_channels = {3 + noise_channels}"
            )
        self.body, self.noise_channels = body, noise_channels
        self.noise_head = _noise_head(noise_head) if noise_head else None

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        n, _, h, w = lr.shape
        inputs = lr
        if self.noise_channels:
            noise = torch.randn(
                n, self.noise_channels, h, w, dtype=lr.dtype, device=lr.device
            )
            inputs = torch.cat([lr, noise], dim=1)
        out = imresize(lr, SCALE) + self.body(inputs)
        if self.noise_head is not None:
            noise = torch.randn(
                n, 1, SCALE * h, SCALE * w, dtype=lr.dtype, device=lr.device
            )
            out = out + self.noise_head(noise)
        return out


def small_generator(
    num_feat: int = 16,
    num_block: int = 1,
    num_grow: int = 16,
    seed: int = 0,
    noise_channels: int = 0,
    noise_head: int = 0,
) -> BicubicResidualSR:
    """A :class:`BicubicResidualSR` around a small RRDBNet (x4), its weights seeded; the
    last convs are scaled by 0.1 so the start is close to bicubic."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        body = RRDBNet(
            in_channels=3 + noise_channels,
            num_feat=num_feat,
            num_block=num_block,
            num_grow=num_grow,
        )
        model = BicubicResidualSR(body, noise_channels, noise_head)
    with torch.no_grad():
        body.conv_last.weight.mul_(0.1)
        body.conv_last.bias.zero_()
    return model


def _noise_head(channels: int) -> nn.Sequential:
    head = nn.Sequential(
        nn.Conv2d(1, channels, 5, padding=2),
        nn.LeakyReLU(0.2),
        nn.Conv2d(channels, 3, 5, padding=2),
    )
    with torch.no_grad():
        head[-1].weight.mul_(0.1)
        head[-1].bias.zero_()
    return head


def with_noise_head(
    model: BicubicResidualSR, channels: int = 8, seed: int = 0
) -> BicubicResidualSR:
    """A copy of ``model`` with a fresh, seeded HR noise head (see
    :class:`BicubicResidualSR`): how a GAN is started from a PSNR model trained without
    one. The head's last conv starts at 0.1 x PyTorch's default initialisation, so the
    copy starts close to ``model``."""
    out = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out.noise_head = _noise_head(channels)
    return out


def small_critic(patch: int = 32, num_feat: int = 16, seed: int = 0) -> Discriminator:
    """A seeded :class:`gmgan.nets.Discriminator` (no normalisation, WGAN-GP) for patch
    x patch."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Discriminator(num_feat=num_feat, input_size=patch)


def train_sr(
    generator: nn.Module,
    stream: TrainingStream,
    steps: int,
    *,
    mse: float = 1.0,
    quality: float = 0.0,
    adversarial: float = 0.0,
    critic: nn.Module | None = None,
    n_critic: int = 1,
    lr: float = 1e-3,
    lr_critic: float = 1e-3,
    gp: float = 10.0,
    seed: int = 0,
    threads: int | None = None,
) -> list[dict[str, float]]:
    """Train ``generator`` in place on ``stream`` for ``steps`` updates; returns the
    log.

    The generator's loss is :class:`gmgan.losses.GMGANLoss` with alpha = ``mse``, gamma
    = ``quality`` (l_Q, GMSD per channel), delta = ``adversarial`` (l_GA = -E[D(SR)])
    and no perceptual term. With ``adversarial`` > 0 a ``critic`` is trained first at
    every step, ``n_critic`` WGAN-GP updates (E[D(SR)] - E[D(HR)] + ``gp`` x penalty,
    unscaled: Adam does not care about a constant factor). Adam, betas (0.9, 0.999)
    without a critic and (0, 0.9) with one, as the paper's two phases; constant learning
    rates.

    Returns:
        one dict per step: "step", "seconds" (wall-clock since the start) and the loss
        terms ("mse", "quality", "adversarial", "total", and "wasserstein" with a
        critic).
    """
    if adversarial and critic is None:
        raise ValueError("train_sr: adversarial > 0 needs a critic")
    gan = bool(adversarial)
    loss = GMGANLoss(
        alpha=mse, beta=0.0, gamma=quality, delta=adversarial, lam=gp, perceptual=False
    )
    betas = (0.0, 0.9) if gan else (0.9, 0.999)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    opt_d = (
        torch.optim.Adam(critic.parameters(), lr=lr_critic, betas=(0.0, 0.9))
        if gan
        else None
    )
    penalty_rng = torch.Generator().manual_seed(seed)
    log: list[dict[str, float]] = []
    start = time.perf_counter()
    with torch_threads(threads or torch.get_num_threads()):
        generator.train()
        for step in range(1, steps + 1):
            record: dict[str, float] = {}
            if gan:
                for _ in range(n_critic):
                    lr_img, hr = next(stream)
                    with torch.no_grad():
                        sr = generator(lr_img)
                    d_loss = critic_loss(critic(hr), critic(sr))
                    d_total = d_loss + gradient_penalty(
                        critic, hr, sr, lam=gp, generator=penalty_rng
                    )
                    opt_d.zero_grad(set_to_none=True)
                    d_total.backward()
                    opt_d.step()
                record["wasserstein"] = -float(d_loss.detach())
            lr_img, hr = next(stream)
            sr = generator(lr_img)
            if gan:
                for p in critic.parameters():
                    p.requires_grad_(False)
            total, terms = loss.generator(sr, hr, critic if gan else None)
            opt_g.zero_grad(set_to_none=True)
            total.backward()
            opt_g.step()
            if gan:
                for p in critic.parameters():
                    p.requires_grad_(True)
            record.update({k: float(v) for k, v in terms.items()})
            record.update(step=step, seconds=time.perf_counter() - start)
            log.append(record)
    generator.eval()
    return log


# --------------------------------------------------------------------------------------
# Evaluation on the structure
# --------------------------------------------------------------------------------------

#: Gradient magnitude (GMSD's, on the half-resolution luminance, [0, 1] per pixel) above
#: which a pixel of the structure counts as an edge: the weakest edge between two
#: colours in [0.25, 0.75] that differ by 0.1 in luminance gives about 0.1 beside it.
EDGE_THRESHOLD = 0.05


def edge_gms(
    sr: torch.Tensor,
    hr: torch.Tensor,
    structure: torch.Tensor,
    threshold: float = EDGE_THRESHOLD,
) -> dict[str, torch.Tensor]:
    """GMSD's gradient-magnitude similarity (GMS) of SR and HR, pooled over the
    structure's edges.

    The GMS map is :func:`gmgan.losses.gms_map` (luminance, half resolution); the edge
    band is where the structure's own gradient magnitude exceeds ``threshold``: there
    the shapes' edges dominate the texture's gradients, so the pooled values tell how
    well SR reproduces the edges.

    Args:
        sr, hr, structure: float (N, 3, n, n) in [0, 1] (HR and structure of a
            :class:`TaskBatch`).

    Returns:
        {"gmsd": std of GMS over the band (GMSD's pooling), "gmsm": its mean (1 is
        perfect), "pixels": band size}, each a float tensor (N,).
    """
    with torch.no_grad():
        gms = gms_map(sr.float(), hr.float()).flatten(1)
        band = (gradient_magnitude(structure.float()) > threshold).flatten(1)
        out = {"gmsd": [], "gmsm": [], "pixels": []}
        for values, mask in zip(gms, band):
            chosen = values[mask]
            out["gmsd"].append(
                chosen.std() if chosen.numel() > 1 else values.new_tensor(0.0)
            )
            out["gmsm"].append(
                chosen.mean() if chosen.numel() else values.new_tensor(1.0)
            )
            out["pixels"].append(values.new_tensor(float(mask.sum())))
    return {k: torch.stack(v) for k, v in out.items()}
