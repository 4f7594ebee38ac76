"""gmgan.color against scikit-image, piq, pyiqa and MATLAB's documented rgb2ycbcr constants."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr as sk_rgb2ycbcr
from skimage.color import ycbcr2rgb as sk_ycbcr2rgb

from gmgan.color import luminance, rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb


@pytest.fixture(scope="module")
def rgb_uint8() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(17, 23, 3), dtype=np.uint8)
    img[0, 0], img[0, 1], img[0, 2] = (0, 0, 0), (255, 255, 255), (255, 0, 0)
    return img


def _nchw(img: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    return torch.from_numpy(img.astype(np.float64) / 255.0).permute(2, 0, 1)[None].to(dtype)


def test_matlab_constants_on_known_colours():
    # MATLAB: rgb2ycbcr of black, white and pure red (double input, times 255).
    colours = np.array([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]])
    ycc = rgb_to_ycbcr(colours)
    np.testing.assert_allclose(ycc[0, 0], [16, 128, 128], atol=1e-12)
    np.testing.assert_allclose(ycc[0, 1], [235, 128, 128], atol=1e-12)
    np.testing.assert_allclose(ycc[0, 2], [16 + 65.481, 128 - 37.797, 128 + 112], atol=1e-12)


def test_numpy_matches_skimage(rgb_uint8):
    expected = sk_rgb2ycbcr(rgb_uint8)  # skimage: uint8 -> [0, 1] -> Y in [16, 235]
    np.testing.assert_allclose(rgb_to_ycbcr(rgb_uint8), expected, atol=1e-10)
    np.testing.assert_allclose(rgb_to_ycbcr(rgb_uint8.astype(np.float32) / 255), expected, atol=1e-4)
    np.testing.assert_allclose(rgb_to_y(rgb_uint8), expected[..., 0], atol=1e-10)
    np.testing.assert_allclose(ycbcr_to_rgb(expected), sk_ycbcr2rgb(expected), atol=1e-10)


def test_round_trip_numpy_and_torch(rgb_uint8):
    back = ycbcr_to_rgb(rgb_to_ycbcr(rgb_uint8))
    np.testing.assert_allclose(back, rgb_uint8 / 255.0, atol=1e-12)
    x = _nchw(rgb_uint8)
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(x)).numpy(), x.numpy(), atol=1e-12)


def test_torch_is_numpy_divided_by_255(rgb_uint8):
    x = _nchw(rgb_uint8).expand(2, -1, -1, -1)
    y = rgb_to_y(x)
    assert y.shape == (2, 1, 17, 23) and y.dtype == torch.float64
    np.testing.assert_allclose(y[1, 0].numpy(), rgb_to_y(rgb_uint8) / 255.0, atol=1e-12)
    ycc = rgb_to_ycbcr(x[0])  # CHW works too
    np.testing.assert_allclose(ycc.permute(1, 2, 0).numpy(), rgb_to_ycbcr(rgb_uint8) / 255.0, atol=1e-12)
    assert rgb_to_y(x.float()).dtype == torch.float32


def test_peak_option(rgb_uint8):
    np.testing.assert_allclose(rgb_to_y(rgb_uint8, peak=1.0), rgb_to_y(rgb_uint8) / 255.0, atol=1e-12)
    x = _nchw(rgb_uint8)
    np.testing.assert_allclose(rgb_to_y(x, peak=255.0)[0, 0].numpy(), rgb_to_y(rgb_uint8), atol=1e-10)
    ycc = rgb_to_ycbcr(x, peak=255.0)
    np.testing.assert_allclose(ycbcr_to_rgb(ycc, peak=255.0).numpy(), x.numpy(), atol=1e-12)


def test_luminance_matches_piq_and_pyiqa_yiq(rgb_uint8):
    piq = pytest.importorskip("piq")
    from pyiqa.utils.color_util import rgb2yiq

    x = _nchw(rgb_uint8, torch.float32)
    ours = luminance(x)
    assert ours.shape == (1, 1, 17, 23)
    torch.testing.assert_close(ours, piq.functional.rgb2yiq(x)[:, :1], atol=1e-6, rtol=0)
    torch.testing.assert_close(ours, rgb2yiq(x)[:, :1], atol=1e-6, rtol=0)
    # numpy keeps the input's scale: uint8 gives 0..255
    np.testing.assert_allclose(luminance(rgb_uint8), ours[0, 0].double().numpy() * 255, atol=1e-4)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="H x W x 3"):
        rgb_to_y(np.zeros((4, 4), np.uint8))
    with pytest.raises(TypeError, match="dtype"):
        rgb_to_ycbcr(np.zeros((4, 4, 3), np.int32))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, H, W\)"):
        rgb_to_y(torch.zeros(1, 4, 4, 3))
    with pytest.raises(TypeError, match="float tensor"):
        luminance(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
