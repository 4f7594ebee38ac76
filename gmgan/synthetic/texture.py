"""The texture of the synthetic task and its exact solutions.

The texture t is a stationary Gaussian random field, grey (the same t added to R, G and
B), periodic, with a closed-form power spectrum (:class:`TextureSpectrum`: an isotropic
Gaussian band around 0.2 cycles per pixel, 95% of its energy above the LR's Nyquist
frequency 0.125).

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
* The same bound holds with the spectral distance of
  :func:`gmgan.synthetic.measures.spectral_w2` as P (``measure="spectral"``), with W2
  replaced by W_s, the spectral distance between the Wiener estimate's spectrum and S:
  for an estimate t' of t from LR (and independent noise), E|t - t'|^2 = D* + E|t_hat -
  t'|^2 (orthogonality), and per Fourier bin E|a - b|^2 >= (sqrt E|a|^2 - sqrt E|b|^2)^2
  (Cauchy-Schwarz), so E|t_hat - t'|^2 >= d(S_hat, S')^2 >= max(W_s - d(S', S), 0)^2
  (the triangle inequality for the L2 distance of square-root spectra). Filtering t_hat
  per bin reaches it where t_hat has power; the operator's response is 0 at some
  frequencies, where no estimate can follow S, so there the bound is not tight. The
  models' perception scores are spectral, so this is the bound the book draws beside
  them.

Units: pixel values on the [0, 1] scale; MSE per pixel and per channel in [0, 1]^2 units
(the texture is the same in R, G, B, so its MSE is the same in each); W2 per pixel, sqrt
of those units; spectra per FFT bin, normalised so that their mean over the n x n bins
is the variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gmgan.synthetic.degradation import (
    SCALE,
    _check_size,
    _tile_groups,
    alias_groups,
    frequency_response,
)

__all__ = [
    "TextureBounds",
    "TextureSpectrum",
    "distortion_perception_bound",
    "sample_texture",
    "texture_bounds",
    "wiener_texture",
]

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
        w2_spectral: W_s, the spectral distance between them (per pixel: sqrt of
            mean_k (sqrt S - sqrt S_hat)^2), at most ``w2``.
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
    w2_spectral: float
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
        w2_spectral=float(np.sqrt(np.mean((np.sqrt(s) - np.sqrt(s_hat)) ** 2))),
        posterior_sampling_mse=2.0 * mmse,
        hf_ratio_mmse=float(s_hat[high].sum() / s[high].sum()),
        hf_fraction=float(s[high].sum() / s.sum()),
        cutoff=cutoff,
        spectrum_mmse=s_hat,
    )


def distortion_perception_bound(
    bounds: TextureBounds,
    perception: np.ndarray | float,
    measure: str = "w2",
) -> np.ndarray | float:
    """D(P) = D* + max(W - P, 0)^2: the least MSE per pixel of any estimator of the
    texture whose output is within distance P (per pixel) of the texture's law.

    ``measure="w2"``: P is the Wasserstein-2 distance of the laws and W =
    ``bounds.w2`` (Freirich et al. 2021); ``"spectral"``: P is the spectral distance of
    :func:`gmgan.synthetic.measures.spectral_w2` and W = ``bounds.w2_spectral`` (module
    docstring). Returns a float for a scalar P, else an array of P's shape.
    """
    if measure not in ("w2", "spectral"):
        raise ValueError(f"measure must be 'w2' or 'spectral', got {measure!r}")
    p = np.asarray(perception, dtype=np.float64)
    if np.any(p < 0) or not np.all(np.isfinite(p)):
        raise ValueError("perception (a W2 distance) must be finite and >= 0")
    w = bounds.w2 if measure == "w2" else bounds.w2_spectral
    out = bounds.mmse + np.maximum(w - p, 0.0) ** 2
    return float(out) if out.ndim == 0 else out
