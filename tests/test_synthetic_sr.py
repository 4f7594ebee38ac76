"""gmgan.synthetic_sr: the degradation against gmgan.imresize, the texture against its
spectrum, the closed-form Wiener estimate, MSE and W2 against dense linear algebra and
sampled fields."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from gmgan import synthetic_sr as S
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


def test_downscale_is_matlab_imresize_of_the_periodic_image():
    rng = np.random.default_rng(0)
    hr = rng.random((32, 32, 3))
    via_imresize = S._padded_imresize(hr)
    np.testing.assert_allclose(
        np.moveaxis(S.downscale(np.moveaxis(hr, 2, 0)), 0, 2), via_imresize, atol=1e-13
    )
    p = S.downscale_matrix(32)
    # Every LR pixel uses the same weights, shifted by 4: the operator commutes with
    # 4-px shifts.
    for i in range(8):
        np.testing.assert_array_equal(p[i], np.roll(p[0], 4 * i))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    # Tensors: the same numbers, differentiable.
    x = torch.tensor(np.moveaxis(hr, 2, 0)[None], requires_grad=True)
    y = S.downscale(x)
    np.testing.assert_allclose(
        np.moveaxis(y.detach().numpy()[0], 0, 2), via_imresize, atol=1e-12
    )
    y.sum().backward()
    assert x.grad is not None
    with pytest.raises(ValueError, match="multiple of 4"):
        S.downscale_matrix(30)


def test_each_lr_frequency_sees_its_16_aliases_through_the_frequency_response():
    n = 32
    t = np.random.default_rng(1).standard_normal((n, n))
    y = np.fft.fft2(S.downscale(t))
    predicted = S.alias_groups(S.frequency_response(n) * np.fft.fft2(t)) / 16
    np.testing.assert_allclose(y, predicted, atol=1e-12)


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


def test_task_images_are_seeded_and_consistent():
    task = S.SyntheticSRTask(size=32, spectrum=SPECTRUM, seed=3)
    a, b = task.batch("test", [0, 1]), task.batch("test", [0, 1])
    torch.testing.assert_close(a.hr, b.hr)
    assert not torch.equal(a.hr, task.batch("train", [0, 1]).hr)
    assert (
        a.hr.shape == (2, 3, 32, 32)
        and a.lr.shape == (2, 3, 8, 8)
        and a.texture.shape == (2, 1, 32, 32)
    )
    torch.testing.assert_close(a.hr, a.structure + a.texture)
    torch.testing.assert_close(a.lr, S.downscale(a.hr.double()).float())
    # Structure: a few constant colours in [0.25, 0.75] with hard edges.
    assert 0.25 <= a.structure.min() and a.structure.max() <= 0.75
    assert len(torch.unique(a.structure[0].reshape(3, -1), dim=1).T) <= 1 + 4 + 3
    with pytest.raises(ValueError, match="split"):
        task.batch("val", [0])


def test_training_stream_patches_are_consistent_and_seeded():
    task = S.SyntheticSRTask(size=32, spectrum=SPECTRUM)
    stream = S.TrainingStream(task, batch_size=3, patch=16, pool=4, seed=1)
    lr, hr = next(stream)
    assert (
        lr.shape == (3, 3, 4, 4)
        and hr.shape == (3, 3, 16, 16)
        and lr.dtype == torch.float32
    )
    again = S.TrainingStream(task, batch_size=3, patch=16, pool=4, seed=1)
    torch.testing.assert_close(next(again)[1], hr)
    with pytest.raises(ValueError, match="patch"):
        S.TrainingStream(task, patch=18)


def test_small_generator_starts_near_bicubic_and_trains():
    torch.manual_seed(0)
    task = S.SyntheticSRTask(size=32, spectrum=SPECTRUM)
    stream = S.TrainingStream(task, batch_size=2, patch=16, pool=2)
    generator = S.small_generator(num_feat=8, num_block=1, num_grow=8, seed=0)
    lr, _ = next(stream)
    with torch.no_grad():
        start = generator(lr)
    assert (start - S.imresize(lr, 4)).abs().max() < 0.1
    log = S.train_sr(generator, stream, 2, threads=1)
    assert len(log) == 2 and np.isfinite(log[-1]["mse"])
    critic = S.small_critic(16, num_feat=4)
    log = S.train_sr(
        generator,
        stream,
        2,
        mse=0.1,
        quality=1.0,
        adversarial=0.1,
        critic=critic,
        threads=1,
    )
    assert {"mse", "quality", "adversarial", "wasserstein"} <= log[-1].keys()
    with pytest.raises(ValueError, match="critic"):
        S.train_sr(generator, stream, 1, adversarial=1.0)


def test_edge_gms_scores_edges_not_texture():
    task = S.SyntheticSRTask(size=32, spectrum=SPECTRUM, seed=1)
    batch = task.batch("test", [0, 1])
    perfect = S.edge_gms(batch.hr, batch.hr, batch.structure)
    torch.testing.assert_close(perfect["gmsm"], torch.ones(2))
    assert torch.all(perfect["pixels"] > 0)
    # Blurring the edges lowers the similarity there; the texture alone barely does.
    blurred = S.imresize(S.imresize(batch.hr, 0.25), 4.0)
    no_texture = batch.structure + 0.0 * batch.texture
    assert torch.all(
        S.edge_gms(blurred, batch.hr, batch.structure)["gmsm"]
        < S.edge_gms(no_texture, batch.hr, batch.structure)["gmsm"]
    )


def test_spectral_w2_is_zero_for_the_right_spectrum_and_below_exact_w2_for_wiener():
    n = 32
    fields = S.sample_texture(SPECTRUM, n, np.random.default_rng(5), count=400)
    assert S.spectral_w2(fields, SPECTRUM) < 0.1 * SPECTRUM.std
    # Zero estimate: the whole texture's std away.
    assert S.spectral_w2(np.zeros((2, n, n)), SPECTRUM) == pytest.approx(SPECTRUM.std)
    bounds = S.texture_bounds(SPECTRUM, n)
    wiener = S.wiener_texture(S.downscale(fields), SPECTRUM)
    closed = np.sqrt(
        np.mean((np.sqrt(SPECTRUM.on_grid(n)) - np.sqrt(bounds.spectrum_mmse)) ** 2)
    )
    assert S.spectral_w2(torch.from_numpy(wiener), SPECTRUM) == pytest.approx(
        closed, rel=0.05
    )
    assert closed < bounds.w2


def test_noise_head_makes_a_stochastic_generator_that_starts_near_its_parent():
    parent = S.small_generator(num_feat=8, num_block=1, num_grow=8, seed=0)
    child = S.with_noise_head(parent, channels=4, seed=1)
    assert parent.noise_head is None and child.noise_head is not None
    lr = torch.rand(2, 3, 4, 4)
    with torch.no_grad():
        base, a, b = parent(lr), child(lr), child(lr)
    assert not torch.equal(a, b)  # fresh noise at every call
    assert (a - base).abs().max() < 0.1  # the head starts small
    torch.testing.assert_close(
        parent.body.conv_first.weight, child.body.conv_first.weight
    )
    with pytest.raises(ValueError, match="noise_channels"):
        S.BicubicResidualSR(parent.body, noise_channels=1)
