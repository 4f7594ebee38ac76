"""Tests of gmgan.iqa_maps against outside references: piq's GMSD, scipy's Prewitt filter, closed
forms (a ramp's gradient, a blurred edge's spread, the noise's spread), libjpeg's standard
quantisation tables, torchvision's VGG19, and gmgan.metrics.psnr for the PSNR search."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from scipy import ndimage

from gmgan import iqa_maps as M
from gmgan import losses, metrics
from gmgan.imageio import image_to_tensor
from gmgan.resize import imresize

piq = pytest.importorskip("piq")


def _rand(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def bird(data_dir):
    """Set5 bird: HR (288 x 288 x 3 uint8) and its MATLAB-bicubic x4 upsampling of the LR file."""
    from gmgan.data import load_benchmark

    (img,) = [b for b in load_benchmark("Set5") if b.name == "bird"]
    return img.hr, imresize(img.lr, 4)


# --------------------------------------------------------------------------------------------------
# GMSD's maps
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("crop", [(slice(None), slice(None)), (slice(3, 104), slice(10, 87))], ids=["full", "odd"])
def test_gms_map_pooled_by_std_is_gmsd_and_piq(bird, crop):
    hr, sr = bird
    y, x = image_to_tensor(hr[crop]), image_to_tensor(sr[crop])
    g = M.gms_map(x, y)
    h, w = y.shape[-2:]
    assert g.shape == (1, 1, (h + 1) // 2, (w + 1) // 2)
    assert 0.0 < g.min() and g.max() <= 1.0 + 1e-6
    n = g[0].numel()
    ours = g.flatten(1).std(dim=1)
    torch.testing.assert_close(ours, losses.gmsd(x, y, reduction="none"), atol=1e-6, rtol=0)
    # piq pools with std over N, Xue's std2 over N - 1
    ref = piq.gmsd(x, y, reduction="none") * (n / (n - 1)) ** 0.5
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    assert ours.item() > 0.05  # a real distortion, not a trivially identical pair


def test_channelwise_maps_sum_to_quality_loss(bird):
    hr, sr = bird
    y, x = image_to_tensor(hr[:96, :96]), image_to_tensor(sr[:96, :96])
    g = M.gms_map(x, y, channelwise=True)
    assert g.shape == (1, 3, 48, 48)
    ref = sum(piq.gmsd(x[:, c:c + 1], y[:, c:c + 1]) for c in range(3)) * (g[0, 0].numel() / (g[0, 0].numel() - 1)) ** 0.5
    torch.testing.assert_close(g.flatten(2).std(dim=2).sum(), losses.QualityLoss()(x, y), atol=1e-6, rtol=0)
    torch.testing.assert_close(g.flatten(2).std(dim=2).sum(), ref, atol=3e-5, rtol=0)


def test_gradient_magnitude_matches_scipy_prewitt():
    img = _rand((1, 1, 30, 42), seed=1).double()
    a = img[0, 0].numpy()
    half = a.reshape(15, 2, 21, 2).mean(axis=(1, 3))  # 2x2 average, downsample by 2
    gx = ndimage.prewitt(half, axis=1, mode="constant") / 3.0
    gy = ndimage.prewitt(half, axis=0, mode="constant") / 3.0
    np.testing.assert_allclose(M.gradient_magnitude(img)[0, 0].numpy(), np.hypot(gx, gy), atol=1e-7)


def test_gradient_magnitude_of_a_ramp_closed_form():
    # I = a * column: after 2x2 averaging the slope is 2a per pixel; Prewitt/3 spans 2 pixels -> 4a.
    a = 0.01
    ramp = (a * torch.arange(40, dtype=torch.float64)).expand(1, 1, 24, 40)
    m = M.gradient_magnitude(ramp)[0, 0, 1:-1, 1:-1]  # interior (zero padding bends the border)
    torch.testing.assert_close(m, torch.full_like(m, 4 * a), atol=1e-7, rtol=0)
    # the luminance of a grey RGB image is the grey image itself
    torch.testing.assert_close(M.gradient_magnitude(ramp.expand(1, 3, 24, 40)), M.gradient_magnitude(ramp))


def test_maps_reject_bad_input():
    with pytest.raises(ValueError, match="same shape|one shape"):
        M.gms_map(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 10))
    with pytest.raises(ValueError, match="channels"):
        M.gradient_magnitude(torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match="float tensor"):
        M.gradient_magnitude(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


# --------------------------------------------------------------------------------------------------
# Distortions
# --------------------------------------------------------------------------------------------------

# JPEG standard (ITU T.81) Annex K, table K.1: luminance quantisation, in natural (row-major) order.
_ANNEX_K1 = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])


def _ijg_table(quality: int) -> np.ndarray:
    """libjpeg's (IJG) scaling of the Annex K table for a quality setting (jcparam.c's rule)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((_ANNEX_K1 * scale + 50) // 100, 1, 255)


@pytest.mark.parametrize("quality", [10, 50, 90])
def test_jpeg_uses_the_requested_quality(quality):
    img = (_rand((48, 64, 3), seed=2).numpy() * 255).astype(np.uint8)
    data = M.encode_jpeg(img, quality)
    decoded = Image.open(io.BytesIO(data))
    # Pillow (>= 8) reports the stored table in natural order
    np.testing.assert_array_equal(np.asarray(list(decoded.quantization[0])), _ijg_table(quality))
    np.testing.assert_array_equal(M.distort(img, "jpeg", quality), np.asarray(decoded.convert("RGB")))
    assert not np.array_equal(M.distort(img, "jpeg", quality), M.distort(img, "jpeg", quality + 5))


def test_noise_has_the_requested_sigma_and_is_deterministic():
    img = np.full((256, 256, 3), 128, np.uint8)
    for sigma in (2.0, 10.0):
        out = M.distort(img, "noise", sigma, seed=3)
        diff = out.astype(np.float64) - 128.0
        # rounding to integers adds the variance of a uniform error, 1/12
        assert abs(diff.std() - np.sqrt(sigma**2 + 1 / 12)) < 0.02 * sigma
        assert abs(diff.mean()) < 0.05 * sigma
        np.testing.assert_array_equal(out, M.distort(img, "noise", sigma, seed=3))
    assert not np.array_equal(M.distort(img, "noise", 5, seed=1), M.distort(img, "noise", 5, seed=2))


def test_blur_spreads_an_edge_by_sigma():
    # A blurred step edge is the Gaussian's integral; its derivative (the line spread) has variance
    # sigma^2 (plus 1/12 from sampling the step at pixel centres).
    edge = np.zeros((16, 64), np.uint8)
    edge[:, 32:] = 255
    for sigma in (1.0, 2.5):
        out = M.distort(edge, "blur", sigma)
        np.testing.assert_array_equal(out, M.distort(edge, "blur", sigma))
        spread = np.diff(out[8].astype(np.float64))
        spread /= spread.sum()
        x = np.arange(spread.size)
        mean = (x * spread).sum()
        var = ((x - mean) ** 2 * spread).sum()
        assert abs(np.sqrt(var - 1 / 12) - sigma) < 0.05 * sigma


def test_shift_and_colour_cast():
    img = (_rand((20, 30, 3), seed=4).numpy() * 200 + 20).astype(np.uint8)
    s = M.distort(img, "shift", 2)
    np.testing.assert_array_equal(s[:, 2:], img[:, :-2])
    np.testing.assert_array_equal(s[:, :2], img[:, :1].repeat(2, axis=1))
    c = M.distort(img, "colour", 15).astype(int)
    np.testing.assert_array_equal(c - img, np.broadcast_to([15, 0, -15], img.shape))


def test_distort_rejects_bad_input():
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(TypeError, match="uint8"):
        M.distort(img.astype(np.float32), "blur", 1.0)
    with pytest.raises(ValueError, match="unknown kind"):
        M.distort(img, "sharpen", 1.0)
    with pytest.raises(ValueError, match="quality"):
        M.distort(img, "jpeg", 0)
    with pytest.raises(ValueError, match="sigma"):
        M.distort(img, "blur", 0.0)


def test_match_psnr_hits_the_target(bird):
    hr = bird[0][:96, :96]
    for kind in ("blur", "noise"):
        level, out = M.match_psnr(hr, kind, 30.0)
        assert abs(metrics.psnr(out, hr) - 30.0) < 0.01, kind
        np.testing.assert_array_equal(out, M.distort(hr, kind, level))
    for kind, top in (("jpeg", 100), ("colour", 255)):  # whole levels: the nearest one
        v, out = M.match_psnr(hr, kind, 30.0)
        assert v == int(v)
        np.testing.assert_array_equal(out, M.distort(hr, kind, v))
        miss = abs(metrics.psnr(out, hr) - 30.0)
        for other in (v - 1, v + 1):
            if 1 <= other <= top:
                assert miss <= abs(metrics.psnr(M.distort(hr, kind, other), hr) - 30.0), (kind, v, other)


# --------------------------------------------------------------------------------------------------
# VGG19 features
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_vgg():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return losses.PerceptualLoss("conv3_4", before_activation=False, weights=None)


def test_vgg_features_match_torchvision(random_vgg):
    x = _rand((2, 3, 32, 32), seed=5)
    with torch.device("meta"):
        ref_net = torchvision.models.vgg19(weights=None).features[:18]
    ref_net = ref_net.to_empty(device="cpu")
    ref_net.load_state_dict(random_vgg.features.state_dict())
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        ref_pre = ref_net[:8]((x - mean) / std)  # conv2_2 output, before its ReLU
    pre = M.vgg_features(random_vgg, x, ["conv2_2", "conv3_4"])
    post = M.vgg_features(random_vgg, x, ["conv2_2"], before_activation=False)
    assert pre["conv2_2"].shape == (2, 128, 16, 16) and pre["conv3_4"].shape == (2, 256, 8, 8)
    torch.testing.assert_close(pre["conv2_2"], ref_pre, atol=1e-5, rtol=1e-5)
    assert (pre["conv2_2"] < 0).any()  # really before the (in-place) ReLU
    torch.testing.assert_close(post["conv2_2"], ref_pre.clamp_min(0), atol=1e-5, rtol=1e-5)


def test_vgg_features_errors(random_vgg):
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="unknown layer"):
        M.vgg_features(random_vgg, x, ["conv9_9"])
    with pytest.raises(ValueError, match="stops at module"):
        M.vgg_features(random_vgg, x, ["conv5_4"])


# --------------------------------------------------------------------------------------------------
# Optimisation
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss_fn", [losses.mse_loss, losses.QualityLoss()], ids=["mse", "quality"])
def test_optimise_towards_lowers_the_loss(loss_fn):
    target, start = _rand((1, 3, 32, 32), seed=6), _rand((1, 3, 32, 32), seed=7)
    h = M.optimise_towards(target, start, loss_fn, steps=20, lr=0.02, record_every=5, snapshots=[10], crop_border=0)
    assert h.steps == [0, 5, 10, 15, 20]
    assert len(h.loss) == len(h.psnr) == len(h.gmsd) == 5
    assert h.loss[-1] < 0.7 * h.loss[0]
    assert h.gmsd[-1] < h.gmsd[0]
    assert float(loss_fn(start, target)) == pytest.approx(h.loss[0])
    assert float(loss_fn(h.final, target)) == pytest.approx(h.loss[-1], rel=1e-5)
    assert h.final.min() >= 0 and h.final.max() <= 1 and set(h.snapshots) == {10}
    assert not start.requires_grad  # the start image is left alone


def test_optimise_towards_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        M.optimise_towards(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9), losses.mse_loss, steps=1)
