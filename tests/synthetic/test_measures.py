"""gmgan.synthetic.measures: edge and texture scores, the scoring of a model, the
intervals against scipy and against coverage on known distributions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gmgan import stats
from gmgan import synthetic as S
from gmgan.resize import imresize

SPECTRUM = S.TextureSpectrum(peak=0.2, width=0.06, std=0.06)


def test_edge_gms_scores_edges_not_texture():
    task = S.SyntheticSRTask(size=32, spectrum=SPECTRUM, seed=1)
    batch = task.batch("test", [0, 1])
    perfect = S.edge_gms(batch.hr, batch.hr, batch.structure)
    torch.testing.assert_close(perfect["gmsm"], torch.ones(2))
    assert torch.all(perfect["pixels"] > 0)
    # Blurring the edges lowers the similarity there; the texture alone barely does.
    blurred = imresize(imresize(batch.hr, 0.25), 4.0)
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




def test_score_of_hr_itself_is_perfect_and_bicubic_loses_the_texture():
    task = S.SyntheticSRTask(size=32, spectrum=SPECTRUM, seed=2)
    test = task.batch("test", range(4))
    flat = S.SyntheticSRTask(size=32, spectrum=SPECTRUM, shapes=(0, 0), bars=(0, 0))
    perfect = S.score(test.hr, test, SPECTRUM)
    np.testing.assert_allclose(perfect.mse, 0.0)
    np.testing.assert_allclose(perfect.hf, 1.0, rtol=1e-6)
    np.testing.assert_allclose(perfect.edge_gmsm, 1.0, rtol=1e-6)
    assert perfect.hf_texture_only is None and perfect.mse.shape == (4,)
    bicubic = S.score(None, test, SPECTRUM, flat=flat.batch("test", range(2)))
    summary = bicubic.summary()
    assert summary["hf_median"] < 0.05 and summary["hf_texture_only_median"] < 0.05
    assert summary["mse"] > 0.5 * SPECTRUM.std**2
    assert bicubic.spectral_w2 > 0.5 * SPECTRUM.std > perfect.spectral_w2
    with pytest.raises(ValueError, match="shape"):
        S.score(test.lr, test, SPECTRUM)


def test_score_gives_a_stochastic_generator_the_same_noise_every_time():
    task = S.SyntheticSRTask(size=32, spectrum=SPECTRUM)
    test = task.batch("test", range(2))
    model = S.with_noise_head(S.small_generator(num_feat=4, num_grow=4), 4, seed=0)
    a, b = S.score(model, test, SPECTRUM), S.score(model, test, SPECTRUM)
    np.testing.assert_array_equal(a.mse, b.mse)


def test_intervals_are_those_of_gmgan_stats():
    # one implementation, tested in tests/test_stats.py
    assert S.t_interval is stats.t_interval
    assert S.bootstrap_interval is stats.bootstrap_interval
    with pytest.raises(ValueError, match="finite"):
        S.bootstrap_interval([1.0, float("nan")])
