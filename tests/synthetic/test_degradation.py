"""gmgan.synthetic.degradation: the periodic MATLAB bicubic x1/4 against gmgan.imresize
and its frequency response against the FFT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gmgan import synthetic as S
from gmgan.synthetic.degradation import _padded_imresize


def test_downscale_is_matlab_imresize_of_the_periodic_image():
    rng = np.random.default_rng(0)
    hr = rng.random((32, 32, 3))
    via_imresize = _padded_imresize(hr)
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


