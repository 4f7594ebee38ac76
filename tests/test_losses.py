"""Tests of gmgan.losses against outside references: piq and pyiqa (GMSD), torchvision (VGG19),
finite differences, and closed forms (WGAN-GP)."""

from __future__ import annotations

import io
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image, ImageFilter
from torch import nn

from gmgan import losses, online, pretrained
from gmgan.errors import CheckpointError
from gmgan.losses import (
    GMSD_C,
    VGG19_LAYERS,
    GMGANLoss,
    PerceptualLoss,
    QualityLoss,
    critic_loss,
    generator_loss,
    gmsd,
    gradient_penalty,
    mse_loss,
)
from gmgan.pretrained import WeightsUnavailable

piq = pytest.importorskip("piq")


def _to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB/L image -> float (1, C, H, W) in [0, 1]."""
    a = np.asarray(img, dtype=np.float32) / 255.0
    a = a[..., None] if a.ndim == 2 else a
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous()


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert(img.mode)


def _textured(n: int = 2, c: int = 3, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g)


# --------------------------------------------------------------------------------------------------
# GMSD against piq and pyiqa on real distorted pairs
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def distorted_pairs(data_dir: Path) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, distorted, reference) for Set5 + Set14 HR: Gaussian blur, Gaussian noise and JPEG at
    quality 10, 20 or 30 (in turn), 57 pairs.

    Each image is cropped to its top-left 128x128 or so, keeping the parity of its sides, so that
    the test stays fast while Set14's odd sizes (comic 250x361, ppt3 529x656, zebra 586x391) still
    exercise the padding of odd rows/columns.
    """
    files = sorted((data_dir / "benchmark" / "Set5" / "HR").glob("*.png"))
    files += sorted((data_dir / "benchmark" / "Set14" / "HR").glob("*.png"))
    assert len(files) == 19, files
    noise = torch.Generator().manual_seed(0)
    pairs = []
    for i, f in enumerate(files):
        img = Image.open(f).convert("RGB")
        w, h = img.size
        img = img.crop((0, 0, min(w, 128 + w % 2), min(h, 128 + h % 2)))
        ref = _to_tensor(img)
        pairs.append((f"{f.stem}/blur", _to_tensor(img.filter(ImageFilter.GaussianBlur(2))), ref))
        noisy = (ref + 0.05 * torch.randn(ref.shape, generator=noise)).clamp(0, 1)
        pairs.append((f"{f.stem}/noise", noisy, ref))
        q = (10, 20, 30)[i % 3]
        pairs.append((f"{f.stem}/jpeg{q}", _to_tensor(_jpeg(img, q)), ref))
    return pairs


def _even(t: torch.Tensor) -> torch.Tensor:
    h, w = t.shape[-2:]
    return t[..., : h // 2 * 2, : w // 2 * 2]


def test_gmsd_matches_piq_on_distorted_pairs(distorted_pairs):
    diffs = {}
    for name, x, y in distorted_pairs:
        ours, ref = gmsd(x, y).item(), piq.gmsd(x, y).item()
        assert 0.005 < ref < 0.4, (name, ref)  # real distortions, so the check is not on zeros
        diffs[name] = abs(ours - ref)
    worst = max(diffs, key=diffs.get)
    print(f"\nGMSD vs piq: max |diff| {diffs[worst]:.2e} ({worst}) over {len(diffs)} pairs")
    assert diffs[worst] < 1e-4


def test_gmsd_rounded_matches_pyiqa_on_distorted_pairs(distorted_pairs):
    pyiqa = pytest.importorskip("pyiqa")
    metric = pyiqa.create_metric("gmsd", device="cpu")
    diffs, unrounded = {}, []
    for name, x, y in distorted_pairs:
        # pyiqa drops an odd last row/column where MATLAB and piq pad it: compare on even crops.
        x, y = _even(x), _even(y)
        ref = metric(x, y).item()
        diffs[name] = abs(gmsd(x, y, round_luminance=True).item() - ref)
        unrounded.append(abs(gmsd(x, y).item() - ref))
    worst = max(diffs, key=diffs.get)
    print(
        f"\nGMSD(round_luminance) vs pyiqa: max |diff| {diffs[worst]:.2e} ({worst}); "
        f"without rounding: {max(unrounded):.2e}"
    )
    assert diffs[worst] < 1e-4
    # Rounding does matter: without it we would be about as far from pyiqa as piq is.
    assert max(unrounded) > 1e-4


def test_gmsd_grey_input_matches_piq(data_dir):
    img = Image.open(data_dir / "benchmark" / "Set14" / "HR" / "bridge.png")
    assert img.mode == "L"
    y = _to_tensor(img)
    x = _to_tensor(_jpeg(img, 15))
    assert y.shape[1] == 1
    assert abs(gmsd(x, y).item() - piq.gmsd(x, y).item()) < 1e-4


@pytest.mark.parametrize("size", [(31, 40), (40, 31), (33, 35), (6, 7)])
def test_gmsd_odd_sizes_pad_like_piq(size):
    x, y = _textured(2, 3, *size, seed=1), _textured(2, 3, *size, seed=2)
    ours = gmsd(x, y, reduction="none")
    ref = piq.gmsd(x, y, reduction="none")
    n = ((size[0] + 1) // 2) * ((size[1] + 1) // 2)  # pixels of the downsampled GMS map
    # piq's std divides by N, ours (MATLAB std2) by N - 1
    torch.testing.assert_close(ours, ref * (n / (n - 1)) ** 0.5, rtol=1e-5, atol=1e-6)


def test_gmsd_reductions_shapes_and_identity():
    x, y = _textured(4, 3, 24, 20, seed=3), _textured(4, 3, 24, 20, seed=4)
    per_image = gmsd(x, y, reduction="none")
    assert per_image.shape == (4,) and per_image.dtype == torch.float32
    torch.testing.assert_close(gmsd(x, y), per_image.mean())
    torch.testing.assert_close(gmsd(x, y, reduction="sum"), per_image.sum())
    assert gmsd(x, y, channelwise=True, reduction="none").shape == (4, 3)
    assert gmsd(y, y).item() == 0.0
    assert gmsd(y, y, channelwise=True).item() == 0.0


def test_channelwise_and_quality_loss_match_piq_per_channel():
    # piq on a one-channel image skips the luminance step: the outside reference for one channel.
    x, y = _textured(3, 3, 40, 36, seed=5), _textured(3, 3, 40, 36, seed=6)
    y = 0.5 * y + 0.5 * F.avg_pool2d(
        x, 3, stride=1, padding=1
    )  # correlated, GMSD away from its max
    n = 20 * 18
    ref = torch.stack(
        [piq.gmsd(x[:, c : c + 1], y[:, c : c + 1], reduction="none") for c in range(3)], dim=1
    )
    ref = ref * (n / (n - 1)) ** 0.5
    torch.testing.assert_close(
        gmsd(x, y, channelwise=True, reduction="none"), ref, rtol=1e-5, atol=1e-6
    )
    torch.testing.assert_close(QualityLoss()(x, y), ref.sum(dim=1).mean(), rtol=1e-5, atol=1e-6)


def test_gmsd_bad_input_errors():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="same shape"):
        gmsd(x, torch.rand(1, 3, 8, 6))
    with pytest.raises(ValueError, match="3 \\(RGB\\) or 1 \\(grey\\)"):
        gmsd(torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match="NCHW"):
        gmsd(x[0], x[0])
    with pytest.raises(TypeError, match="float"):
        gmsd((x * 255).byte(), (x * 255).byte())
    with pytest.raises(ValueError, match="reduction"):
        gmsd(x, x, reduction="max")
    with pytest.raises(ValueError, match="3x3"):
        gmsd(x[..., :2, :], x[..., :2, :])


# --------------------------------------------------------------------------------------------------
# GMSD gradients
# --------------------------------------------------------------------------------------------------


def _grad(fn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    fn(x, y).backward()
    return x.grad


@pytest.mark.parametrize("case", ["flat_pair", "identical", "flat_vs_textured"])
def test_piq_gives_nan_gradients_where_ours_are_finite(case):
    tex = _textured(2, 3, 16, 16, seed=7)
    flat = torch.full_like(tex, 0.5)
    x, y = {"flat_pair": (flat, flat), "identical": (tex, tex), "flat_vs_textured": (flat, tex)}[
        case
    ]
    if case != "flat_vs_textured":  # where piq breaks: sqrt(0) in |grad| and std of a constant map
        assert torch.isnan(_grad(piq.gmsd, x, y)).any()
    for fn in (gmsd, QualityLoss(), lambda a, b: gmsd(a, b, round_luminance=True)):
        g = _grad(fn, x, y)
        assert torch.isfinite(g).all()
    if case != "flat_vs_textured":  # a minimum: the gradient is zero, not just finite
        assert _grad(QualityLoss(), x, y).abs().max() == 0


def test_gmsd_gradient_matches_finite_differences():
    # float64 stays float64, so autograd can be checked against central differences.
    x = _textured(1, 1, 9, 8, seed=8).double().requires_grad_(True)
    y = _textured(1, 1, 9, 8, seed=9).double()
    assert torch.autograd.gradcheck(lambda a: gmsd(a, y), (x,), eps=1e-6, atol=1e-6)
    xr = _textured(1, 3, 8, 8, seed=10).double().requires_grad_(True)
    yr = _textured(1, 3, 8, 8, seed=11).double()
    assert torch.autograd.gradcheck(lambda a: QualityLoss()(a, yr), (xr,), eps=1e-6, atol=1e-6)


def test_gmsd_gradient_matches_piq_on_textured_images():
    x, y = _textured(2, 3, 32, 32, seed=12), _textured(2, 3, 32, 32, seed=13)
    n = 16 * 16
    ref = _grad(lambda a, b: piq.gmsd(a, b) * (n / (n - 1)) ** 0.5, x, y)
    torch.testing.assert_close(_grad(gmsd, x, y), ref, rtol=1e-4, atol=1e-7)


def test_gmsd_runs_in_float32_under_autocast():
    x, y = _textured(2, 3, 32, 32, seed=14), _textured(2, 3, 32, 32, seed=15)
    expected = gmsd(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = gmsd(x, y)
        got_bf16_input = QualityLoss()(x.bfloat16(), y.bfloat16())
    assert got.dtype == torch.float32 and got_bf16_input.dtype == torch.float32
    torch.testing.assert_close(got, expected)


# --------------------------------------------------------------------------------------------------
# PerceptualLoss
# --------------------------------------------------------------------------------------------------


def _torchvision_vgg19_features(state: dict[str, torch.Tensor]) -> nn.Sequential:
    """torchvision's own vgg19().features with the given weights (classifier never allocated)."""
    with torch.device("meta"):
        net = torchvision.models.vgg19(weights=None)
    features = net.features.to_empty(device="cpu")
    missing = features.load_state_dict(state, strict=False).missing_keys
    assert all(int(k.split(".")[0]) > max(int(k.split(".")[0]) for k in state) for k in missing)
    return features.eval()


@pytest.fixture(scope="module")
def random_vgg_conv5_4() -> PerceptualLoss:
    with pytest.warns(UserWarning, match="random"):
        return PerceptualLoss("conv5_4", weights=None)


@pytest.fixture(scope="module")
def small_vgg() -> PerceptualLoss:
    with pytest.warns(UserWarning):
        return PerceptualLoss("conv2_2", weights=None)


def test_layer_table_matches_torchvision():
    # Name torchvision's conv layers the usual way: conv<block>_<i>, blocks split by max-pooling.
    with torch.device("meta"):
        feats = torchvision.models.vgg19(weights=None).features
    names, block, conv = {}, 1, 0
    for i, layer in enumerate(feats):
        if isinstance(layer, nn.Conv2d):
            conv += 1
            names[f"conv{block}_{conv}"] = i
            assert isinstance(feats[i + 1], nn.ReLU)
        elif isinstance(layer, nn.MaxPool2d):
            block, conv = block + 1, 0
    assert names == VGG19_LAYERS
    assert len(names) == 16


def test_truncation_frozen_eval(random_vgg_conv5_4):
    loss = random_vgg_conv5_4
    assert len(loss.features) == 35 and isinstance(loss.features[-1], nn.Conv2d)
    assert sum(isinstance(m, nn.Conv2d) for m in loss.features) == 16
    assert all(not p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.training and not any(m.training for m in loss.modules())
    with pytest.warns(UserWarning):
        after_relu = PerceptualLoss("conv1_2", before_activation=False, weights=None)
    assert len(after_relu.features) == 4 and isinstance(after_relu.features[-1], nn.ReLU)
    with pytest.raises(ValueError, match="conv5_4"):
        PerceptualLoss("conv5_5", weights=None)


_NORMALIZE = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


@pytest.mark.parametrize("fmt", ["full.pth", "features.pth", "features.safetensors"])
def test_weights_file_round_trip_matches_torchvision(fmt, random_vgg_conv5_4, small_vgg, tmp_path):
    """Saved weights load back and give the features of torchvision's own vgg19 with those weights.

    The layout of torchvision's checkpoint ('features.<i>.weight' + classifier) is checked at
    conv5_4; the features-only layouts at conv2_2, which is cheaper.
    """
    from safetensors.torch import save_file

    source, layer, n_layers = (
        (random_vgg_conv5_4, "conv5_4", 35) if fmt == "full.pth" else (small_vgg, "conv2_2", 8)
    )
    state = {k: v.clone() for k, v in source.features.state_dict().items()}
    if fmt == "full.pth":
        full = {f"features.{k}": v for k, v in state.items()}
        full["classifier.6.bias"] = torch.zeros(
            1000
        )  # the rest of a full vgg19 state dict is ignored
        torch.save(full, tmp_path / fmt)
    elif fmt == "features.pth":
        torch.save(state, tmp_path / fmt)
    else:
        save_file(state, str(tmp_path / fmt))

    x, y = _textured(2, 3, 32, 32, seed=16), _textured(2, 3, 32, 32, seed=17)
    ref_net = _torchvision_vgg19_features(state)[:n_layers]
    normalize = torchvision.transforms.Normalize(**_NORMALIZE)
    loaded = PerceptualLoss(layer, weights=tmp_path / fmt)
    with torch.no_grad():
        fx, fy = ref_net(normalize(x)), ref_net(normalize(y))
        torch.testing.assert_close(loaded.extract(x), fx, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(loaded(x, y), F.mse_loss(fx, fy), rtol=1e-5, atol=1e-8)


def test_weights_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        PerceptualLoss("conv1_2", weights=tmp_path / "nowhere.pth")
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="other.pth.*missing 0.weight"):
        PerceptualLoss("conv1_2", weights=tmp_path / "other.pth")
    torch.save(
        {
            "0.weight": torch.zeros(64, 3, 5, 5),
            "0.bias": torch.zeros(64),
            "2.weight": torch.zeros(64, 64, 3, 3),
            "2.bias": torch.zeros(64),
        },
        tmp_path / "shape.pth",
    )
    with pytest.raises(CheckpointError, match="shape.pth"):
        PerceptualLoss("conv1_2", weights=tmp_path / "shape.pth")
    # callers that catch ValueError (as before the one CheckpointError) still catch these
    with pytest.raises(ValueError, match="shape.pth"):
        PerceptualLoss("conv1_2", weights=tmp_path / "shape.pth")


@pytest.fixture
def no_download(monkeypatch):
    """Every way torch or gmgan could download (or probe the network), recorded, and failing
    with a URLError as on a machine without network."""
    attempts = []

    def offline(name):
        def attempt(*args, **kwargs):
            attempts.append(name)
            raise urllib.error.URLError("no network")
        return attempt

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline("download_url_to_file"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline("load_state_dict_from_url"))
    monkeypatch.setattr(online, "_endpoint", offline("network probe"))
    online.clear_cache()
    return attempts


def test_imagenet_with_gmgan_offline_never_downloads(tmp_path, monkeypatch, no_download):
    """GMGAN_OFFLINE=1: PerceptualLoss(weights='imagenet') refuses at once, without a download
    or a network probe, and says what is missing (the weights used to be fetched through
    torch.hub whatever GMGAN_OFFLINE said)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("GMGAN_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable) as info:
        PerceptualLoss(weights="imagenet")
    assert no_download == []
    msg = str(info.value)
    expected = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert str(expected) in msg
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in msg
    assert "GMGAN_OFFLINE is set" in msg
    assert "PerceptualLoss(weights='/path/to/vgg19-dcbb9e9d.pth')" in msg


def test_imagenet_download_failure_names_file_url_and_fix(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("GMGAN_OFFLINE", raising=False)
    monkeypatch.setattr(pretrained, "network_available", lambda url: True)
    with pytest.raises(RuntimeError) as info:
        PerceptualLoss(weights="imagenet")
    assert no_download == ["download_url_to_file"]
    msg = str(info.value)
    expected = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert str(expected) in msg
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in msg
    assert "weights=" in msg and "no network" in msg
    assert not expected.exists()


def test_imagenet_uses_torch_hub_cache(small_vgg, tmp_path, monkeypatch):
    # A file already in the torch hub cache is what 'imagenet' loads (no network needed).
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    state = {f"features.{k}": v for k, v in small_vgg.features.state_dict().items()}
    torch.save(state, cache / "vgg19-dcbb9e9d.pth")
    loaded = PerceptualLoss("conv2_2", weights="imagenet")
    for k, v in small_vgg.features.state_dict().items():
        assert torch.equal(loaded.features.state_dict()[k], v)


def test_perceptual_gradient_reaches_sr_only(small_vgg):
    sr = _textured(2, 3, 16, 16, seed=18).requires_grad_(True)
    hr = _textured(2, 3, 16, 16, seed=19)
    small_vgg(sr, hr).backward()
    assert torch.isfinite(sr.grad).all() and sr.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------------------
# WGAN-GP
# --------------------------------------------------------------------------------------------------


def test_critic_and_generator_losses():
    d_real = torch.tensor([1.0, 3.0])
    d_fake = torch.tensor([[-2.0], [0.0]])
    assert critic_loss(d_real, d_fake).item() == pytest.approx(-1.0 - 2.0)
    assert generator_loss(d_fake).item() == pytest.approx(1.0)
    assert generator_loss(d_fake.half()).dtype == torch.float32


def _linear_critic(shape=(3, 4, 5), seed=20) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(shape)), 1))


def test_gradient_penalty_linear_critic_closed_form():
    critic = _linear_critic()
    real, fake = _textured(4, 3, 4, 5, seed=21), _textured(4, 3, 4, 5, seed=22)
    w = critic[1].weight.detach()
    expected = 10.0 * (w.norm() - 1) ** 2
    gp = gradient_penalty(critic, real, fake)
    torch.testing.assert_close(gp, expected)
    # BasicSR-style norm per pixel over channels would give another number.
    per_pixel = 10.0 * ((w.view(3, 4, 5).norm(dim=0) - 1) ** 2).mean()
    assert abs(per_pixel - expected) > 0.1 * expected
    # create_graph: the penalty backpropagates into the critic:
    # d/dw lam (|w| - 1)^2 = 2 lam (|w| - 1) w / |w|
    gp.backward()
    torch.testing.assert_close(critic[1].weight.grad, 2 * 10.0 * (w.norm() - 1) * w / w.norm())


def test_gradient_penalty_quadratic_critic_per_sample_alpha():
    # D(x) = 0.5 * sum(x^2) has gradient x_hat, so ||grad||_i = ||x_hat_i||.
    seen = []

    def critic(x):
        seen.append(x.detach().clone())
        return 0.5 * x.square().flatten(1).sum(1)

    real = torch.ones(5, 2, 3, 3)
    fake = torch.zeros(5, 2, 3, 3)
    gp = gradient_penalty(critic, real, fake, lam=2.0, generator=torch.Generator().manual_seed(7))
    alpha = torch.rand((5, 1, 1, 1), generator=torch.Generator().manual_seed(7))
    x_hat = seen[0]
    torch.testing.assert_close(
        x_hat, alpha.expand_as(x_hat)
    )  # alpha*1 + (1-alpha)*0, one per sample
    assert len(torch.unique(alpha)) == 5
    expected = 2.0 * ((alpha.flatten() * 18**0.5 - 1) ** 2).mean()
    torch.testing.assert_close(gp, expected)


def test_gradient_penalty_under_autocast():
    torch.manual_seed(23)
    critic = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 8 * 8, 1)
    )
    real, fake = _textured(2, 3, 8, 8, seed=24), _textured(2, 3, 8, 8, seed=25)
    ref = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    assert got.dtype == torch.float32 and torch.isfinite(got)
    torch.testing.assert_close(got, ref, rtol=5e-2, atol=1e-3)
    got.backward()
    assert all(torch.isfinite(critic[i].weight.grad).all() for i in (0, 3))


def _quiet_critic(k: float = 1e-3) -> nn.Module:
    """gmgan's SRGAN-style critic (num_feat 8, 32 x 32 patches) with its scores times ``k``: a
    critic whose scores are still small, as early in training. The backward pass of the
    penalty's inner gradient then carries values of about k * 1e-4 and below, under fp16's
    smallest normal number (6.1e-5): without loss scaling they flush to zero."""
    from gmgan.nets import Discriminator

    torch.manual_seed(31)
    net = Discriminator(3, num_feat=8, input_size=32)

    class Quiet(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x).float() * k

    return Quiet()


def _penalty_and_grads(critic, real, fake, *, fp16: bool, scaler=None):
    """The penalty and its gradient with respect to the critic's weights (unscaled), as the
    trainer computes them: under autocast, and backward on the scaled loss when fp16."""
    critic.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.float16, enabled=fp16):
        gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0),
                              scaler=scaler)
    outer = scaler.get_scale() if scaler is not None else 1.0
    (gp * outer).backward()
    # (the last bias gets no gradient: it does not change the gradient with respect to x)
    grads = torch.cat([p.grad.flatten() / outer for p in critic.parameters() if p.grad is not None])
    return gp.detach(), grads


def test_gradient_penalty_fp16_with_grad_scaler_matches_fp32():
    """PyTorch's AMP recipe for gradient penalties: the inner gradient is taken of the scaled
    scores and unscaled before the norm. fp16 then gives fp32's penalty and fp32's gradient for
    the critic (within 1e-4 and 2 %); without the scaler fp16's inner gradient flushes to zero
    and the critic's gradient is lost (the check below that this test can fail)."""
    critic = _quiet_critic()
    real, fake = _textured(4, 3, 32, 32, seed=32), _textured(4, 3, 32, 32, seed=33)
    ref_gp, ref_grads = _penalty_and_grads(critic, real, fake, fp16=False)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)  # GradScaler's default start
    gp, grads = _penalty_and_grads(critic, real, fake, fp16=True, scaler=scaler)
    assert gp.dtype == torch.float32 and torch.isfinite(gp)
    torch.testing.assert_close(gp, ref_gp, rtol=1e-4, atol=0)
    error = ((grads - ref_grads).norm() / ref_grads.norm()).item()
    assert error < 0.02, error
    # Without the scaling (what gmgan did before): the inner gradient underflows in fp16.
    _, unscaled = _penalty_and_grads(critic, real, fake, fp16=True)
    assert ((unscaled - ref_grads).norm() / ref_grads.norm()).item() > 0.5


@pytest.mark.parametrize("scale", [2.0**4, 2.0**10, 2.0**16, 2.0**24])
def test_gradient_penalty_undoes_any_scale(scale):
    """The scale is taken out again before the norm: the linear critic's closed form holds for
    any GradScaler scale, also one far beyond fp16's range (the inner scale is capped at
    GP_MAX_INNER_SCALE, so GradScaler's initial 2**16 does not overflow fp16 at once)."""
    critic = _linear_critic()
    real, fake = _textured(4, 3, 4, 5, seed=21), _textured(4, 3, 4, 5, seed=22)
    w = critic[1].weight.detach()
    scaler = torch.amp.GradScaler("cpu", init_scale=scale)
    gp = gradient_penalty(critic, real, fake, scaler=scaler)
    torch.testing.assert_close(gp, 10.0 * (w.norm() - 1) ** 2)
    with torch.autocast("cpu", dtype=torch.float16):
        gp16 = gradient_penalty(critic, real, fake, scaler=scaler)
    assert torch.isfinite(gp16)
    torch.testing.assert_close(gp16, 10.0 * (w.norm() - 1) ** 2, rtol=2e-3, atol=0)
    # A disabled scaler (amp="none" / "bf16") changes nothing.
    off = torch.amp.GradScaler("cpu", init_scale=scale, enabled=False)
    torch.testing.assert_close(gradient_penalty(critic, real, fake, scaler=off), gp)


def test_gradient_penalty_overflow_is_left_to_grad_scaler():
    """An inner gradient that overflows fp16 even at the capped scale gives an infinite penalty,
    as in PyTorch's recipe: GradScaler then skips the critic's step and lowers its scale, and the
    next penalty is finite."""
    critic = _quiet_critic(k=1e3)  # loud scores: k * 2**14 is beyond fp16's 65504
    real, fake = _textured(2, 3, 32, 32, seed=34), _textured(2, 3, 32, 32, seed=35)
    opt = torch.optim.SGD(critic.parameters(), lr=1.0)
    before = [p.detach().clone() for p in critic.parameters()]
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**14)
    for _ in range(20):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.float16):
            gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0),
                                  scaler=scaler)
        if torch.isfinite(gp):
            break
        scaler.scale(gp).backward()
        scaler.step(opt)  # skipped: the gradients are not finite
        scaler.update()  # halves the scale
        assert all(torch.equal(p, b) for p, b in zip(critic.parameters(), before))
    assert scaler.get_scale() < 2.0**14 and torch.isfinite(gp)


# --------------------------------------------------------------------------------------------------
# GMGANLoss
# --------------------------------------------------------------------------------------------------


class _Spy(nn.Module):
    """Wraps a callable and counts calls."""

    def __init__(self, fn):
        super().__init__()
        self.fn, self.calls = fn, 0

    def forward(self, *args):
        self.calls += 1
        return self.fn(*args)


@pytest.fixture
def batch():
    sr = _textured(2, 3, 16, 16, seed=26).requires_grad_(True)
    hr = _textured(2, 3, 16, 16, seed=27)
    return sr, hr


def test_generator_total_is_weighted_sum(small_vgg, batch):
    sr, hr = batch
    critic = _linear_critic((3, 16, 16), seed=28)
    loss = GMGANLoss(perceptual=small_vgg)
    total, terms = loss.generator(sr, hr, critic)
    expected = (
        1e-2 * F.mse_loss(sr, hr)
        + 1.0 * small_vgg(sr, hr)
        + 1.0 * QualityLoss()(sr, hr)
        + 5e-3 * -critic(sr).mean()
    )
    torch.testing.assert_close(total, expected)
    assert set(terms) == {"mse", "perceptual", "quality", "adversarial", "total"}
    assert all(not t.requires_grad and t.dim() == 0 for t in terms.values())
    torch.testing.assert_close(terms["mse"], mse_loss(sr, hr).detach())
    torch.testing.assert_close(
        terms["quality"], gmsd(sr, hr, channelwise=True, reduction="none").sum(1).mean().detach()
    )
    torch.testing.assert_close(loss(sr, hr, critic)[0], total)  # forward = generator
    total.backward()
    assert torch.isfinite(sr.grad).all()


def test_zero_weights_skip_computation(small_vgg, batch, monkeypatch):
    sr, hr = batch
    perceptual = _Spy(small_vgg)
    critic = _Spy(_linear_critic((3, 16, 16), seed=29))
    quality_calls = []
    original = QualityLoss.forward
    monkeypatch.setattr(
        QualityLoss, "forward", lambda self, a, b: quality_calls.append(1) or original(self, a, b)
    )

    _, terms = GMGANLoss(beta=0.0, gamma=0.0, delta=0.0, perceptual=perceptual).generator(
        sr, hr, critic
    )
    assert set(terms) == {"mse", "total"}
    assert perceptual.calls == 0 and critic.calls == 0 and not quality_calls

    total, terms = GMGANLoss(alpha=0.0, perceptual=perceptual).generator(
        sr, hr
    )  # no critic: no l_GA
    assert (
        set(terms) == {"perceptual", "quality", "total"} and perceptual.calls == 1 and quality_calls
    )
    torch.testing.assert_close(total, terms["perceptual"] + terms["quality"])

    # beta = 0 or perceptual=False builds no VGG at all (here it would need the offline weights)
    monkeypatch.setattr(losses, "PerceptualLoss", lambda *a, **k: pytest.fail("VGG built"))
    assert GMGANLoss(beta=0.0).perceptual is None
    assert GMGANLoss(perceptual=False).perceptual is None


def test_generator_grads_finite_on_flat_images(small_vgg):
    sr = torch.full((2, 3, 16, 16), 0.3, requires_grad=True)
    hr = torch.full((2, 3, 16, 16), 0.3)
    total, _ = GMGANLoss(perceptual=small_vgg).generator(sr, hr, _linear_critic((3, 16, 16)))
    total.backward()
    assert torch.isfinite(sr.grad).all()


def test_critic_objective(batch):
    sr, hr = batch
    critic = _linear_critic((3, 16, 16), seed=30)
    loss = GMGANLoss(lam=10.0, delta=5e-3, perceptual=False)
    total, terms = loss.critic(critic, sr, hr, generator=torch.Generator().manual_seed(3))
    gp = gradient_penalty(critic, hr, sr, lam=10.0, generator=torch.Generator().manual_seed(3))
    w = critic[1].weight.detach()
    torch.testing.assert_close(
        gp, 10.0 * (w.norm() - 1) ** 2
    )  # linear critic: alpha does not matter
    wasserstein = critic(hr).mean() - critic(sr).mean()
    torch.testing.assert_close(terms["wasserstein"], wasserstein.detach())
    torch.testing.assert_close(terms["gp"], gp.detach())
    torch.testing.assert_close(total, 5e-3 * (-wasserstein + gp))
    total.backward()
    assert sr.grad is None  # sr is detached: the critic step does not reach the generator
    assert torch.isfinite(critic[1].weight.grad).all()
    # The trainer's GradScaler reaches the penalty (its scale is undone there: same terms).
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    _, scaled = loss.critic(critic, sr, hr, generator=torch.Generator().manual_seed(3), scaler=scaler)
    torch.testing.assert_close(scaled, terms)


@pytest.mark.parametrize("norm", ["none", "layer"])
def test_batched_critic_gives_the_separate_forwards_losses_and_gradients(norm):
    """HR and SR scored as one batch: the same l_D, terms and critic gradient as
    separate forwards, to fp32 rounding (a nonlinear conv critic)."""
    batched = "pair"
    from gmgan.nets import Discriminator

    torch.manual_seed(31)
    critic = Discriminator(3, num_feat=8, input_size=32, norm=norm)
    hr, sr = torch.rand(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(32))
    loss = GMGANLoss(lam=10.0, delta=5e-3, perceptual=False)

    def step(mode):
        critic.zero_grad(set_to_none=True)
        total, terms = loss.critic(
            critic, sr, hr, generator=torch.Generator().manual_seed(3), batched=mode
        )
        total.backward()
        return terms, [p.grad.clone() for p in critic.parameters()]

    ref_terms, ref_grads = step("none")
    terms, grads = step(batched)
    assert ref_terms["gp"] > 0 and ref_terms["wasserstein"] != 0
    torch.testing.assert_close(terms, ref_terms, rtol=1e-5, atol=1e-9)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4 * r.abs().max().item())


def test_batched_critic_refuses_batch_norm():
    from gmgan.nets import Discriminator

    with pytest.warns(UserWarning):
        critic = Discriminator(3, num_feat=8, input_size=32, norm="batch")
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match="batch norm"):
        GMGANLoss(perceptual=False).critic(critic, x, x, batched="pair")
    with pytest.raises(ValueError, match="batched"):
        GMGANLoss(perceptual=False).critic(critic, x, x, batched="yes")


def test_gmgan_loss_rejects_ambiguous_and_empty():
    with pytest.raises(TypeError):
        GMGANLoss(perceptual=True)
    with pytest.raises(ValueError, match="switched off"):
        GMGANLoss(alpha=0, beta=0, gamma=0).generator(
            torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
        )


def test_constant_is_xue_t():
    assert GMSD_C == pytest.approx(170 / 255**2)
