"""gmgan.synthetic.texture: sampled fields against their spectrum, the closed-form
Wiener estimate, its MSE and W2 against dense linear algebra and sampled fields, the
bounds."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from gmgan import synthetic as S
from gmgan.metrics import hf_energy_ratio, radial_power_spectrum

SPECTRUM = S.TextureSpectrum(peak=0.2, width=0.06, std=0.06)


def _dense_operator(n: int) -> np.ndarray:
    """A (m^2, n^2) with vec(P X P^T) = A vec(X) (row-major vec)."""
    p = S.downscale_matrix(n)
    return np.kron(p, p)


def _dense_covariance(spectrum: S.TextureSpectrum, n: int) -> np.ndarray:
    """The texture's (n^2, n^2) covariance, built from the spectrum: F^H diag(S) F."""
    f = np.fft.fft(np.eye(n)) / np.sqrt(n)
    f2 = np.kron(f, f)  # the unitary 2-D DFT on row-major vectors
    return np.real(f2.conj().T @ np.diag(spectrum.on_grid(n).ravel()) @ f2)



def test_texture_periodogram_matches_the_spectrum():
    n, count = 32, 400
    fields = S.sample_texture(SPECTRUM, n, np.random.default_rng(2), count=count)
    assert fields.shape == (count, n, n) and np.isrealobj(fields)
    assert fields.std() == pytest.approx(SPECTRUM.std, rel=0.02)
    periodogram = (np.abs(np.fft.fft2(fields)) ** 2).mean(axis=0) / n**2
    s = SPECTRUM.on_grid(n)
    assert s.mean() == pytest.approx(SPECTRUM.std**2)
    # Each bin's periodogram is exponential (chi^2 with 2 dof; 1 dof on the
    # self-conjugate bins, whose variance is 2 S^2): the mean of 400 has a relative
    # error of 5% (7% there).
    significant = s > 0.05 * s.max()
    rel = periodogram[significant] / s[significant] - 1
    assert np.abs(rel).max() < 0.35 and abs(rel.mean()) < 0.01
    # Radially, through the metrics' own spectrum (no window: the fields are periodic).
    freq, power = radial_power_spectrum(
        torch.from_numpy(0.5 + fields[:64, None].repeat(3, 1)), bins=8, window="none"
    )
    expected = (
        SPECTRUM.std**2
        / np.exp(
            -0.5
            * (
                (
                    np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n)))
                    - SPECTRUM.peak
                )
                / SPECTRUM.width
            )
            ** 2
        ).mean()
    )
    ring_model = expected * np.exp(
        -0.5 * ((freq - SPECTRUM.peak) / SPECTRUM.width) ** 2
    )
    luma = (219.0) ** 2  # grey texture as R = G = B: Y = 16 + 219 v
    ratio = power.mean(axis=0) / (luma * ring_model)
    near_peak = np.abs(freq - SPECTRUM.peak) < SPECTRUM.width
    np.testing.assert_allclose(ratio[near_peak], 1.0, atol=0.1)


def test_wiener_estimate_equals_dense_linear_mmse():
    n = 16
    spectrum = S.TextureSpectrum(peak=0.2, width=0.08, std=0.05)
    a, c = _dense_operator(n), _dense_covariance(spectrum, n)
    t = S.sample_texture(spectrum, n, np.random.default_rng(3))
    y = S.downscale(t)
    dense = c @ a.T @ np.linalg.solve(a @ c @ a.T, y.ravel())
    np.testing.assert_allclose(S.wiener_texture(y, spectrum).ravel(), dense, atol=1e-10)
    # Its MSE and the W2 distance between the laws of t and of the estimate, densely.
    k = a @ c
    cov_hat = k.T @ np.linalg.solve(a @ c @ a.T, k)
    bounds = S.texture_bounds(spectrum, n)
    assert bounds.mmse == pytest.approx(np.trace(c - cov_hat) / n**2, rel=1e-9)
    root = scipy.linalg.sqrtm(c)
    cross = scipy.linalg.sqrtm(root @ cov_hat @ root)
    w2_sq = (np.trace(c) + np.trace(cov_hat) - 2 * np.real(np.trace(cross))) / n**2
    assert bounds.w2 == pytest.approx(np.sqrt(w2_sq), rel=1e-5)


def test_wiener_estimate_mse_on_sampled_fields_matches_the_closed_form():
    n = 32
    bounds = S.texture_bounds(SPECTRUM, n)
    fields = S.sample_texture(SPECTRUM, n, np.random.default_rng(4), count=300)
    estimate = S.wiener_texture(S.downscale(fields), SPECTRUM)
    errors = ((estimate - fields) ** 2).mean(axis=(1, 2))
    # 300 fields of 1024 pixels: the mean is within a few standard errors of D*.
    assert errors.mean() == pytest.approx(
        bounds.mmse, abs=4 * errors.std() / np.sqrt(300)
    )
    # The estimate's high-frequency energy is what the closed form says, and small.
    ratios = hf_energy_ratio(
        torch.from_numpy(0.5 + estimate[:, None].repeat(3, 1)),
        torch.from_numpy(0.5 + fields[:, None].repeat(3, 1)),
        window="none",
    )
    assert bounds.hf_ratio_mmse < 0.15
    assert float(ratios.mean()) == pytest.approx(bounds.hf_ratio_mmse, rel=0.1)


def test_distortion_perception_bound_lies_between_mmse_and_posterior_sampling():
    bounds = S.texture_bounds(SPECTRUM, 64)
    assert 0 < bounds.mmse < bounds.variance
    assert bounds.posterior_sampling_mse == pytest.approx(2 * bounds.mmse)
    at_zero = S.distortion_perception_bound(bounds, 0.0)
    assert bounds.mmse < at_zero <= bounds.posterior_sampling_mse
    curve = S.distortion_perception_bound(bounds, np.linspace(0, 2 * bounds.w2, 9))
    assert np.all(np.diff(curve) <= 0) and curve[-1] == pytest.approx(bounds.mmse)
    with pytest.raises(ValueError):
        S.distortion_perception_bound(bounds, -1.0)




def test_spectral_bound_is_below_the_w2_bound_and_holds_for_sampled_estimators():
    n = 32
    bounds = S.texture_bounds(SPECTRUM, n)
    s, s_hat = SPECTRUM.on_grid(n), bounds.spectrum_mmse
    assert bounds.w2_spectral == pytest.approx(
        np.sqrt(np.mean((np.sqrt(s) - np.sqrt(s_hat)) ** 2))
    )
    assert 0 < bounds.w2_spectral < bounds.w2
    p = np.linspace(0, 0.1, 11)
    spectral = S.distortion_perception_bound(bounds, p, measure="spectral")
    assert np.all(spectral <= S.distortion_perception_bound(bounds, p) + 1e-15)
    # Wiener plus independent noise of the missing power has the spectrum S (P = 0)
    # and the MSE of posterior sampling, 2 D*, above the bound at P = 0.
    fields = S.sample_texture(SPECTRUM, n, np.random.default_rng(6), count=400)
    wiener = S.wiener_texture(S.downscale(fields), SPECTRUM)
    noise = np.real(np.fft.ifft2(
        np.fft.fft2(np.random.default_rng(7).standard_normal(fields.shape))
        * np.sqrt(np.maximum(s - s_hat, 0))
    ))
    at_zero = S.distortion_perception_bound(bounds, 0.0, measure="spectral")
    assert ((wiener + noise - fields) ** 2).mean() == pytest.approx(
        bounds.posterior_sampling_mse, rel=0.05
    )
    assert bounds.mmse < at_zero < bounds.posterior_sampling_mse
    # Filtering the Wiener estimate to the spectrum S, where it has power (the
    # operator's response is 0 at some frequencies): the MSE and P that the closed form
    # gives, and the MSE at or above the bound at that P.
    seen = s_hat > 1e-9 * s_hat.max()
    target = np.where(seen, s, 0.0)
    gain = np.sqrt(np.divide(target, s_hat, out=np.zeros_like(s), where=seen))
    filtered = np.real(np.fft.ifft2(np.fft.fft2(wiener) * gain))
    expected_mse = bounds.mmse + np.mean((np.sqrt(target) - np.sqrt(s_hat)) ** 2)
    expected_p = np.sqrt(np.mean((np.sqrt(s) - np.sqrt(target)) ** 2))
    assert ((filtered - fields) ** 2).mean() == pytest.approx(expected_mse, rel=0.05)
    assert S.spectral_w2(filtered, SPECTRUM) == pytest.approx(expected_p, rel=0.1)
    assert expected_mse >= S.distortion_perception_bound(
        bounds, expected_p, measure="spectral"
    )
    assert S.distortion_perception_bound(
        bounds, bounds.w2_spectral, measure="spectral"
    ) == pytest.approx(bounds.mmse)
    with pytest.raises(ValueError, match="measure"):
        S.distortion_perception_bound(bounds, 0.0, measure="psnr")
