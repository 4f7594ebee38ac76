"""Training losses of GMGAN (Zhu et al., 2020): pixel MSE, VGG19 perceptual loss, the GMSD quality
loss and the WGAN-GP adversarial losses, plus :class:`GMGANLoss`, which weights them as the paper
does.

Equation numbers refer to the paper (see ``PAPER.md``):

- eq. (1)  generator loss   l_G = alpha*l_MSE + beta*l_P + gamma*l_Q + delta*l_GA
- eq. (2)  critic loss      l_D = delta*l_DA
- eq. (3)  l_MSE = ||G(LR) - HR||^2                               -> :func:`mse_loss`
- eq. (4)  l_P   = ||phi(G(LR)) - phi(HR)||^2, phi = VGG19        -> :class:`PerceptualLoss`
- eqs. (5)-(8) GMSD: gradient magnitudes (5), GMS map (6), its mean GMSM (7), its std GMSD (8)
                                                                  -> :func:`gmsd`
- eq. (9)  l_Q = GMSD(G(LR), HR), one GMSD per R, G, B channel, summed -> :class:`QualityLoss`
- eq. (10) l_GA  = -E[D(G(LR))]                                   -> :func:`generator_loss`
- eq. (11) l_DA  = E[D(G(LR))] - E[D(HR)] + lambda*E[(||grad D(x_hat)||_2 - 1)^2]
           -> :func:`critic_loss` (first two terms) and :func:`gradient_penalty` (the last)

All images are float NCHW tensors in [0, 1], RGB (or N1HW grey where stated).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable
from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gmgan.color import luminance
from gmgan.pretrained import load_vgg19_features

__all__ = [
    "GMSD_C",
    "GP_MAX_INNER_SCALE",
    "VGG19_LAYERS",
    "GMGANLoss",
    "PerceptualLoss",
    "QualityLoss",
    "critic_loss",
    "generator_loss",
    "gms_map",
    "gmsd",
    "gradient_magnitude",
    "gradient_penalty",
    "mse_loss",
]

WeightsSpec = Union[str, "os.PathLike[str]", None]

# ------------------------------------------------------------------------------------------------
# GMSD (Xue et al., 2014) and the quality loss l_Q
# ------------------------------------------------------------------------------------------------

#: GMSD's stability constant T = 170 for grey levels in [0, 255], rescaled to images in [0, 1].
GMSD_C = 170.0 / 255.0**2

# Luminance of Xue's MATLAB demo (and of piq / pyiqa): the Y of YIQ (BT.601 luma without offset).
# Not the YCbCr Y of PSNR/SSIM (16 + 65.481 R + ...), so it lives here rather than in gmgan.color.
_GMSD_LUMA = (0.299, 0.587, 0.114)

# eps inside the square root of the gradient magnitude, m = sqrt(gx^2 + gy^2 + eps), in units of
# m^2 for [0, 1] images. d sqrt(u)/du = 1 / (2 sqrt(u)) is infinite at u = 0, and flat regions have
# gx = gy = 0 exactly, so without eps the backward pass gives inf * 0 = NaN (what piq does). With
# eps the gradient there is exactly 0. eps = 1e-16 puts a floor of 1e-8 on m: far below anything
# an 8-bit image can show (one grey level is 1/255), so a GMS value moves by at most
# 2e-8 / (2 sqrt(c)) ~ 2e-7, yet float32 keeps eps^2 (1e-32) as a normal number, so the backward
# pass stays finite. (pyiqa adds 1e-12 on the 0..255 scale, i.e. 1.5e-17 here, for the same reason.)
_GMSD_EPS = 1e-16

# Variances at or below this are reported as a std of exactly 0 (with zero gradient): the std of a
# constant GMS map (identical images) would otherwise have d sqrt(var) = 1 / 0 in its backward pass.
_VAR_FLOOR = 1e-20

# The fast path below sums 2x2 blocks (4x the average) and applies the Prewitt stencil without its
# 1/3, so its gradients are 12x the true ones and squared magnitudes are 144x. GMS is a ratio, so
# scaling c and eps by the same 144 gives exactly the same map while saving two multiplications.
_RAW_SCALE = 144.0


def _compute_context(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast off: GMSD's ratios and std need float32 (fp16 loses c = 2.6e-3 next to 1)."""
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except RuntimeError:  # a device type without autocast support
        return contextlib.nullcontext()


def _at_least_float32(t: Tensor) -> Tensor:
    """Half/bfloat16 (e.g. a generator under autocast) -> float32; float64 stays (for gradcheck)."""
    return t if t.dtype == torch.float64 else t.float()


def _check_pair(x: Tensor, y: Tensor, name: str) -> None:
    for label, t in (("x", x), ("y", y)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: {label} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"{name}: {label} must be NCHW (4-D), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name}: {label} must be a float tensor in [0, 1], got {t.dtype}")
    if x.shape != y.shape:
        raise ValueError(
            f"{name}: x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if min(x.shape[-2:]) < 3:  # the half-size GMS map needs >= 2 pixels for a std with N-1
        raise ValueError(f"{name}: images must be at least 3x3 pixels, got {tuple(x.shape[-2:])}")


def _reduce(score: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return score
    if reduction == "mean":
        return score.mean()
    if reduction == "sum":
        return score.sum()
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def _round_levels(v: Tensor) -> Tensor:
    """Round to the 256 levels of an 8-bit image; gradients pass straight through (as pyiqa)."""
    return v + (torch.round(v * 255.0) / 255.0 - v).detach()


def _sum_pool2(z: Tensor) -> Tensor:
    """(B, H, W) -> (B, ceil(H/2), ceil(W/2)): sums of 2x2 blocks.

    MATLAB's ``conv2(Y, ones(2)/4, 'same')`` followed by ``Y(1:2:end, 1:2:end)`` treats pixels
    beyond the image as 0, so on an odd side the last block averages one real row/column with zeros;
    padding one zero row/column first reproduces that (as piq does; pyiqa drops that row instead).
    Two strided adds are ~2x faster on CPU than ``avg_pool2d``, forward and backward.
    """
    h, w = z.shape[-2:]
    if h % 2 or w % 2:
        z = F.pad(z, (0, w % 2, 0, h % 2))
    rows = z[..., 0::2, :] + z[..., 1::2, :]
    return rows[..., 0::2] + rows[..., 1::2]


def _prewitt_sq(d: Tensor) -> Tensor:
    """(B, h, w) -> squared Prewitt gradient magnitude gx^2 + gy^2, unnormalised (3x the true gx).

    The Prewitt kernel is separable: a central difference along one axis times a 3-tap box along
    the other. Zero padding matches MATLAB's ``conv2(..., 'same')``. Slices instead of a conv2d:
    for one-channel images they are faster on CPU, and the sign of the kernel does not matter here.
    """
    d = F.pad(d, (1, 1, 1, 1))
    dx = d[..., :, 2:] - d[..., :, :-2]  # (h+2, w): horizontal central difference
    dy = d[..., 2:, :] - d[..., :-2, :]  # (h, w+2): vertical central difference
    gx = dx[..., :-2, :] + dx[..., 1:-1, :] + dx[..., 2:, :]
    gy = dy[..., :-2] + dy[..., 1:-1] + dy[..., 2:]
    return gx.square() + gy.square()


def _safe_std(v: Tensor) -> Tensor:
    """Unbiased std (N-1, as MATLAB's std2) over the last dim, with a finite gradient at var = 0."""
    var = v.var(dim=-1)  # two-pass (mean first), so no catastrophic cancellation
    safe = var.clamp_min(_VAR_FLOOR)  # sqrt only ever sees >= floor: its derivative stays finite
    return torch.where(var > _VAR_FLOOR, safe.sqrt(), torch.zeros_like(var))


def _gmsd_grey(x: Tensor, y: Tensor) -> Tensor:
    """GMSD of grey images x, y: (B, H, W) in [0, 1] -> (B,). Paper eqs. (5)-(9)."""
    s1 = _prewitt_sq(_sum_pool2(x))  # 144 * m1^2
    s2 = _prewitt_sq(_sum_pool2(y))
    c = _RAW_SCALE * GMSD_C
    eps = _RAW_SCALE * _GMSD_EPS
    # GMS = (2 m1 m2 + c) / (m1^2 + m2^2 + c) with m = sqrt(s + eps); one sqrt of the product
    # instead of two square roots and two squares.
    gms = (2.0 * torch.sqrt((s1 + eps) * (s2 + eps)) + c) / (s1 + s2 + (2.0 * eps + c))
    return _safe_std(gms.flatten(1))


def _gmsd_luminance(x: Tensor) -> Tensor:
    """(N, 3, H, W) RGB -> (N, H, W) Y = 0.299 R + 0.587 G + 0.114 B."""
    w = torch.tensor(_GMSD_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1)


def _grey_planes(img: Tensor, channelwise: bool, name: str) -> Tensor:
    """(N, C, H, W) -> (N, C', H, W) float32/64 planes: the luminance (C' = 1), the grey channel, or
    every channel on its own (``channelwise``)."""
    if not isinstance(img, Tensor) or img.dim() != 4 or not img.is_floating_point():
        got = tuple(img.shape) if isinstance(img, Tensor) else type(img).__name__
        raise ValueError(f"{name}: expected a float tensor (N, C, H, W) in [0, 1], got {got}")
    if min(img.shape[-2:]) < 2:
        raise ValueError(f"{name}: images must be at least 2x2 pixels, got {tuple(img.shape[-2:])}")
    img = img if img.dtype == torch.float64 else img.float()
    if channelwise or img.shape[1] == 1:
        return img
    if img.shape[1] != 3:
        raise ValueError(f"{name}: expected 3 (RGB) or 1 (grey) channels, got {img.shape[1]}; "
                         "use channelwise=True for other channel counts")
    return luminance(img)  # 0.299 R + 0.587 G + 0.114 B, as GMSD


def _raw_sq_magnitude(planes: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, C, ceil(H/2), ceil(W/2)): 144 m^2 (see _RAW_SCALE)."""
    n, c, h, w = planes.shape
    return _prewitt_sq(_sum_pool2(planes.reshape(n * c, h, w))).view(n, c, (h + 1) // 2, (w + 1) // 2)


def gradient_magnitude(img: Tensor, *, channelwise: bool = False) -> Tensor:
    """Prewitt gradient magnitude m of an image as GMSD sees it (Zhu et al. 2020, eq. 6).

    Steps (Xue et al.'s ``GMSD.m``): luminance 0.299 R + 0.587 G + 0.114 B; 2x2 average and
    downsampling by 2 (an odd last row/column averaged with zeros); Prewitt filters h_x (three rows
    of [1, 0, -1], divided by 3) and h_y = h_x^T, zero padding; m = sqrt((I*h_x)^2 + (I*h_y)^2).

    Args:
        img: float tensor (N, 3, H, W) RGB or (N, 1, H, W) grey, values in [0, 1]. H, W >= 2.
        channelwise: skip the luminance step and treat each channel as a grey image (as the
            paper's l_Q does with R, G and B).

    Returns:
        float32 (float64 for float64 input) tensor (N, 1, ceil(H/2), ceil(W/2)), or
        (N, C, ceil(H/2), ceil(W/2)) when ``channelwise``: intensity change per pixel of the
        half-resolution image, on the [0, 1] scale (a sharp step from 0 to 1 gives 1 on the two
        pixels beside it; the zero-padded border sees a step down to 0). Flat regions give 1e-8, a
        floor that keeps the square root differentiable.
    """
    raw = _raw_sq_magnitude(_grey_planes(img, channelwise, "gradient_magnitude"))
    return torch.sqrt(raw / _RAW_SCALE + _GMSD_EPS)


def gms_map(x: Tensor, y: Tensor, *, channelwise: bool = False, c: float = GMSD_C) -> Tensor:
    """Gradient magnitude similarity map, GMS = (2 m_x m_y + c) / (m_x^2 + m_y^2 + c) (eq. 7).

    Pooling it gives the two scores of Xue et al.: its mean is GMSM and its standard deviation
    (N - 1) is GMSD, i.e. ``gms_map(x, y).flatten(1).std(dim=1)`` equals
    ``gmgan.losses.gmsd(x, y, reduction="none")``.

    Args:
        x: distorted / super-resolved images, float (N, 3, H, W) RGB or (N, 1, H, W) grey in [0, 1].
        y: reference images, same shape.
        channelwise: one map per channel instead of one for the luminance.
        c: stability constant, default :data:`gmgan.losses.GMSD_C` = 170 / 255^2 (for [0, 1] images).

    Returns:
        float tensor (N, 1 or C, ceil(H/2), ceil(W/2)), values in (0, 1]; 1 where the local
        gradient magnitudes agree, near 0 where one image has an edge and the other none.
    """
    if not isinstance(x, Tensor) or not isinstance(y, Tensor) or x.shape != y.shape:
        raise ValueError("gms_map: x and y must be tensors of one shape, got "
                         f"{getattr(x, 'shape', type(x).__name__)} and {getattr(y, 'shape', type(y).__name__)}")
    mx = gradient_magnitude(x, channelwise=channelwise)
    my = gradient_magnitude(y, channelwise=channelwise)
    return (2.0 * mx * my + c) / (mx.square() + my.square() + c)


def gmsd(
    x: Tensor,
    y: Tensor,
    *,
    reduction: str = "mean",
    round_luminance: bool = False,
    channelwise: bool = False,
) -> Tensor:
    """Gradient Magnitude Similarity Deviation (Xue et al., 2014), differentiable; lower is better.

    Steps, as in Xue's MATLAB ``GMSD.m``: luminance Y = 0.299 R + 0.587 G + 0.114 B; 2x2 average
    and downsampling by 2 (an odd last row/column is averaged with zeros); Prewitt gradients (kernel
    /3, zero padding); magnitudes m; GMS = (2 m1 m2 + c) / (m1^2 + m2^2 + c) with
    c = 170/255^2 (:data:`GMSD_C`); GMSD = std of the GMS map with N-1 (``std2``; the GMGAN
    paper's eq. 8 writes 1/N, a relative difference of 1/(2N), ~1e-4 for a 64x64 map).

    The boundary handling is piq's (``piq.gmsd``), which is MATLAB's. pyiqa differs in three ways:
    it rounds Y to integer levels (``round_luminance=True`` does the same), it drops an odd last
    row/column instead of padding it, and it has its own tiny eps; piq uses std with N, not N-1.

    Args:
        x: distorted / super-resolved images, float (N, 3, H, W) RGB or (N, 1, H, W) grey,
            in [0, 1].
        y: reference images, same shape. H, W >= 3.
        reduction: ``"none"`` -> per-image scores, ``"mean"`` (default) or ``"sum"`` -> a scalar.
        round_luminance: round the grey plane(s) to the 256 levels of an 8-bit image before
            filtering, with a straight-through gradient (pyiqa's behaviour).
        channelwise: skip the luminance step and treat each channel as a grey image (any C).

    Returns:
        float32 tensor (float64 for float64 input): shape (N,) for ``reduction="none"``, or (N, C)
        when ``channelwise``; a scalar otherwise. Unitless, 0 for identical images, ~0-0.35 in
        practice. Computed with autocast disabled; gradients are finite everywhere (see _GMSD_EPS).
    """
    _check_pair(x, y, "gmsd")
    n, ch, h, w = x.shape
    with _compute_context(x.device):
        x, y = _at_least_float32(x), _at_least_float32(y)
        if channelwise:
            x, y = x.reshape(n * ch, h, w), y.reshape(n * ch, h, w)  # channels folded into batch
        elif ch == 3:
            x, y = _gmsd_luminance(x), _gmsd_luminance(y)
        elif ch == 1:
            x, y = x[:, 0], y[:, 0]
        else:
            raise ValueError(
                f"gmsd: expected 3 (RGB) or 1 (grey) channels, got {ch}; "
                "use channelwise=True to score channels separately"
            )
        if round_luminance:
            x, y = _round_levels(x), _round_levels(y)
        score = _gmsd_grey(x, y)
    if channelwise:
        score = score.view(n, ch)
    return _reduce(score, reduction)


class QualityLoss(nn.Module):
    """The paper's quality loss l_Q (eqs. 5-9): GMSD of each of R, G, B as a grey image, summed.

    Each channel goes through the whole of :func:`gmsd` but the luminance step (the paper's
    "complete calculation of GMSD", so the 2x2 averaging and downsampling stay), i.e.
    ``gmsd(sr, hr, channelwise=True, reduction="none").sum(1).mean()``.

    ``forward(sr, hr)`` takes float (N, C, H, W) tensors in [0, 1] (RGB, C = 3 in the paper) and
    returns a float32 scalar: the per-image sum over channels, averaged over the batch. Range
    [0, ~1] for RGB. Its gradients are finite everywhere, including flat and identical images.
    """

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        return gmsd(sr, hr, channelwise=True, reduction="none").sum(dim=1).mean()


# ------------------------------------------------------------------------------------------------
# Perceptual loss l_P on VGG19 features
# ------------------------------------------------------------------------------------------------

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg19_features_meta() -> nn.Sequential:
    """torchvision's VGG19 ``features``, built on the meta device (no memory, no classifier)."""
    # Deferred: torchvision.models took 2.3-3.1 s to import beside torch (2 busy cores);
    # users of GMSD and WGAN-GP alone (toy2d, iqa_maps' GMS maps) never build a VGG19.
    from torchvision.models import vgg19

    with torch.device("meta"):
        return vgg19(weights=None).features


#: Conv layer names of VGG19 and their index in ``torchvision.models.vgg19().features``
#: (``conv<block>_<i>``; blocks are separated by max-pooling; each conv is followed by a ReLU).
VGG19_LAYERS: dict[str, int] = {
    "conv1_1": 0,
    "conv1_2": 2,
    "conv2_1": 5,
    "conv2_2": 7,
    "conv3_1": 10,
    "conv3_2": 12,
    "conv3_3": 14,
    "conv3_4": 16,
    "conv4_1": 19,
    "conv4_2": 21,
    "conv4_3": 23,
    "conv4_4": 25,
    "conv5_1": 28,
    "conv5_2": 30,
    "conv5_3": 32,
    "conv5_4": 34,
}


def _init_like_torchvision(features: nn.Sequential, seed: int | None = None) -> None:
    """torchvision's VGG initialisation of the conv layers (kaiming normal, fan_out; zero bias),
    drawn from a generator seeded with ``seed`` (None: torch's global generator)."""
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu",
                                    generator=generator)
            nn.init.zeros_(layer.bias)


class PerceptualLoss(nn.Module):
    """The paper's perceptual loss l_P (eq. 4): MSE between VGG19 features of SR and HR.

    Only ``vgg19().features[: index(layer) + 1]`` is kept (conv5_4 before activation: 35 modules).
    Inputs in [0, 1] are normalised with the ImageNet mean and std first. The network is frozen
    (``requires_grad`` False) and always in eval mode, so ``.train()`` on a parent leaves it alone.

    Args:
        layer: a conv name from :data:`VGG19_LAYERS` (``"conv1_2"``, ``"conv2_2"``, ``"conv3_4"``,
            ``"conv4_4"``, ``"conv5_4"`` ...).
        before_activation: True takes the conv output (as ESRGAN), False the ReLU after it (SRGAN).
        weights: ``"imagenet"`` -> torchvision's ``VGG19_Weights.IMAGENET1K_V1`` (torch hub cache,
            downloaded if missing where :func:`gmgan.pretrained.fetch_vgg19` allows,
            never with ``GMGAN_OFFLINE=1``; otherwise
            :class:`gmgan.pretrained.WeightsUnavailable`, a RuntimeError, names the
            file, URL and fixes); a path to a ``.pth`` / ``.safetensors`` state dict of
            torchvision's vgg19 or of its ``features`` (one that does not fit:
            :class:`gmgan.errors.CheckpointError`, a ValueError); None -> random weights
            (a stand-in where ImageNet weights are unavailable; warns). Both kinds of
            file are read by :func:`gmgan.pretrained.load_vgg19_features`.
        seed: with ``weights=None``, the seed of the random weights (None: torch's global
            generator), so that two runs with one seed compare images through the same network.

    ``forward(sr, hr)``: float (N, 3, H, W) RGB in [0, 1] each -> float32 scalar, mean squared
    feature difference (features are unnormalised activations, so the scale depends on the layer).
    """

    def __init__(
        self,
        layer: str = "conv5_4",
        before_activation: bool = True,
        weights: WeightsSpec = "imagenet",
        seed: int | None = None,
    ):
        super().__init__()
        if layer not in VGG19_LAYERS:
            raise ValueError(
                f"unknown VGG19 layer {layer!r}; choose one of {', '.join(VGG19_LAYERS)}"
            )
        last = VGG19_LAYERS[layer] + (0 if before_activation else 1)
        features = _vgg19_features_meta()[: last + 1]
        features.to_empty(device="cpu")  # real (uninitialised) storage; filled just below
        if weights is None:
            warnings.warn(
                "PerceptualLoss(weights=None): random VGG19 weights, a stand-in for the ImageNet "
                "network of the paper's l_P",
                stacklevel=2,
            )
            _init_like_torchvision(features, seed)
        elif isinstance(weights, (str, os.PathLike)):
            load_vgg19_features(features, weights)
        else:
            raise TypeError(
                f"weights must be 'imagenet', a file path or None, got {weights!r}")
        self.layer, self.before_activation = layer, before_activation
        self.features = features.requires_grad_(False)
        self.register_buffer(
            "mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.train(False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Always eval mode: a fixed feature extractor (no dropout/BN state to switch anyway)."""
        return super().train(False)

    def extract(self, x: Tensor) -> Tensor:
        """VGG19 features at ``self.layer``: float (N, 3, H, W) RGB in [0, 1] -> (N, C', H', W')."""
        return self.features((x - self.mean) / self.std)

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        if sr.shape != hr.shape or sr.dim() != 4 or sr.shape[1] != 3:
            raise ValueError(
                f"PerceptualLoss: expected two (N, 3, H, W) tensors of one shape, got "
                f"{tuple(sr.shape)} and {tuple(hr.shape)}"
            )
        f_sr = self.extract(sr)
        # HR needs no graph: a separate pass without grad halves the backward work compared to
        # running both through the net as one batch.
        with torch.set_grad_enabled(torch.is_grad_enabled() and hr.requires_grad):
            f_hr = self.extract(hr)
        return F.mse_loss(f_sr.float(), f_hr.float())


# ------------------------------------------------------------------------------------------------
# Pixel loss and WGAN-GP
# ------------------------------------------------------------------------------------------------


def mse_loss(sr: Tensor, hr: Tensor) -> Tensor:
    """l_MSE (eq. 3): mean squared error over all pixels, in float32.

    sr, hr: float (N, C, H, W) in [0, 1] -> float32 scalar (units: squared intensity, [0, 1]).
    """
    return F.mse_loss(sr.float(), hr.float())


def critic_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """WGAN critic loss without the penalty (eq. 11's first terms): E[D(fake)] - E[D(real)].

    d_real, d_fake: critic outputs (N,) or (N, 1), any float dtype -> float32 scalar (unbounded).
    """
    return d_fake.float().mean() - d_real.float().mean()


def generator_loss(d_fake: Tensor) -> Tensor:
    """WGAN generator loss l_GA (eq. 10): -E[D(fake)]. d_fake: critic outputs -> float32 scalar."""
    return -d_fake.float().mean()


#: The largest factor by which :func:`gradient_penalty` scales the critic's scores before taking
#: the inner gradient under fp16. The first fp16 operation of that backward pass receives the
#: factor itself as its gradient, so GradScaler's initial scale 2**16 would overflow fp16 (largest
#: value 65504) on every run's first critic step; 2**14 leaves a factor 4 of headroom there and
#: still lifts values down to 4e-9 into fp16's normal range (smallest 6.1e-5).
GP_MAX_INNER_SCALE = 2.0**14


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    lam: float = 10.0,
    generator: torch.Generator | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> Tensor:
    """WGAN-GP penalty (Gulrajani et al., 2017; eq. 11): lam * E[(||grad_x D(x_hat)||_2 - 1)^2].

    x_hat = alpha * real + (1 - alpha) * fake with one alpha ~ U[0, 1] per sample, drawn as
    ``torch.rand((N, 1, ..., 1), generator=generator)`` on the generator's device (default: real's).
    The norm runs over all of a sample's dimensions (C*H*W), as in the WGAN-GP paper, not per pixel
    over channels. real and fake are detached: the penalty trains the critic only. The gradient is
    taken with ``create_graph=True`` so the penalty can be backpropagated into the critic, and its
    norm is computed in float32, so the function also works with the critic under autocast.

    fp16 (PyTorch's AMP examples, "Gradient penalty"): pass the GradScaler that scales the
    critic's loss. The inner gradient is then taken of the scores times the scaler's scale
    (capped at :data:`GP_MAX_INNER_SCALE`), so that its backward pass in fp16 does not flush small
    values to zero, and divided by that factor before the norm: the penalty is the unscaled one.
    If the scaled gradient overflows, the penalty is inf; GradScaler then skips the critic's step
    and lowers its scale, as it does for any overflow. A disabled scaler (no fp16) is ignored.

    Args:
        critic: maps (N, C, H, W) -> (N,) or (N, 1) scores.
        real, fake: float (N, C, H, W) tensors of one shape (HR and SR images in [0, 1]).
        lam: penalty weight lambda (10 in the paper).
        generator: optional torch.Generator for alpha (reproducible penalties).
        scaler: the critic's ``torch.amp.GradScaler`` under fp16 autocast, else None.

    Returns:
        float32 scalar >= 0 (inf after an fp16 overflow of the scaled inner gradient).
    """
    if real.shape != fake.shape:
        raise ValueError(
            "gradient_penalty: real and fake shapes differ: "
            f"{tuple(real.shape)} vs {tuple(fake.shape)}"
        )
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    device = generator.device if generator is not None else real.device
    alpha = torch.rand(shape, generator=generator, device=device).to(real.device, real.dtype)
    x_hat = (alpha * real.detach() + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat).float().sum()
    if scaler is not None and scaler.is_enabled():
        # The scale as a tensor on the device (no host sync), capped (see GP_MAX_INNER_SCALE).
        scale = scaler.scale(torch.ones((), device=scores.device)).clamp(max=GP_MAX_INNER_SCALE)
        (grad,) = torch.autograd.grad(scores * scale, x_hat, create_graph=True)
        grad = grad.float() / scale
    else:
        (grad,) = torch.autograd.grad(scores, x_hat, create_graph=True)
    norm = torch.linalg.vector_norm(grad.float().flatten(1), dim=1)
    return lam * (norm - 1.0).square().mean()


def _has_batch_norm(critic: Callable[[Tensor], Tensor]) -> bool:
    """Whether ``critic`` (a module, or a function without modules) holds batch norm."""
    modules = critic.modules() if isinstance(critic, nn.Module) else ()
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in modules)


# ------------------------------------------------------------------------------------------------
# The full objective
# ------------------------------------------------------------------------------------------------


class GMGANLoss(nn.Module):
    """GMGAN's objectives: l_G (eq. 1) for the generator, l_D = delta * l_DA (eq. 2) for the critic.

    Args:
        alpha, beta, gamma, delta: weights of l_MSE, l_P, l_Q and l_GA (paper: 1e-2, 1, 1, 5e-3).
            A term whose weight is 0 is not computed at all (beta = 0 builds no VGG; gamma = 0 is
            the paper's "without l_Q" ablation).
        lam: WGAN-GP weight lambda (10).
        perceptual: the l_P network: an nn.Module called as ``module(sr, hr)``; or a weights spec
            for :class:`PerceptualLoss` (``"imagenet"``, a file path, or None for random weights);
            or False to leave l_P out.

    ``generator(sr, hr, critic=None)`` and ``critic(critic, sr, hr)`` return ``(total, terms)``:
    total a float32 scalar to backpropagate, terms a dict of detached float32 scalars for logging.
    sr, hr: float (N, 3, H, W) RGB in [0, 1].
    """

    def __init__(
        self,
        alpha: float = 1e-2,
        beta: float = 1.0,
        gamma: float = 1.0,
        delta: float = 5e-3,
        lam: float = 10.0,
        perceptual: nn.Module | WeightsSpec | bool = "imagenet",
    ):
        super().__init__()
        self.alpha, self.beta, self.gamma, self.delta, self.lam = alpha, beta, gamma, delta, lam
        if beta == 0 or perceptual is False:
            self.perceptual: nn.Module | None = None
        elif isinstance(perceptual, nn.Module):
            self.perceptual = perceptual
        elif perceptual is True:
            raise TypeError(
                "perceptual=True is ambiguous: pass 'imagenet', a file path, None (random) "
                "or a module"
            )
        else:
            self.perceptual = PerceptualLoss(weights=perceptual)
        self.quality = QualityLoss()

    def generator(
        self, sr: Tensor, hr: Tensor, critic: Callable[[Tensor], Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """l_G = alpha*l_MSE + beta*l_P + gamma*l_Q + delta*l_GA (eq. 1).

        l_GA is skipped when ``critic`` is None (phase 1 / no GAN) or delta is 0. terms holds
        "mse", "perceptual", "quality", "adversarial" (unweighted, those computed) and "total".
        The adversarial term backpropagates into the critic's parameters too: step only the
        generator's optimizer (or freeze the critic) after ``total.backward()``.
        """
        weighted: list[Tensor] = []
        terms: dict[str, Tensor] = {}

        def add(name: str, weight: float, value: Tensor) -> None:
            terms[name] = value.detach()
            weighted.append(weight * value)

        if self.alpha:
            add("mse", self.alpha, mse_loss(sr, hr))
        if self.beta and self.perceptual is not None:
            add("perceptual", self.beta, self.perceptual(sr, hr).float())
        if self.gamma:
            add("quality", self.gamma, self.quality(sr, hr))
        if self.delta and critic is not None:
            add("adversarial", self.delta, generator_loss(critic(sr)))
        if not weighted:
            raise ValueError(
                "GMGANLoss.generator: every term is switched off (all weights 0 / no critic)"
            )
        total = torch.stack(weighted).sum()
        terms["total"] = total.detach()
        return total, terms

    forward = generator

    def critic(
        self,
        critic: Callable[[Tensor], Tensor],
        sr: Tensor,
        hr: Tensor,
        generator: torch.Generator | None = None,
        scaler: torch.amp.GradScaler | None = None,
        batched: str = "none",
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """l_D = delta * (E[D(sr)] - E[D(hr)] + lam*GP) (eqs. 2 and 11); sr is detached here.

        terms: "wasserstein" = E[D(hr)] - E[D(sr)] (the critic's distance estimate), "gp" = the
        weighted penalty lam*E[(||grad||-1)^2] as added, and "total". ``generator`` seeds alpha;
        ``scaler`` is the critic's GradScaler under fp16 (see :func:`gradient_penalty`).

        ``batched``: ``"none"`` scores HR and SR in two critic forwards; ``"pair"``
        in one, of the (2N, C, H, W) batch HR then SR. The same maths (to fp32
        rounding) only for a critic without batch-dependent layers: a ValueError for
        one with batch norm. (The penalty's interpolates keep their own forward:
        joined too, the 3N batch measured slower, as the penalty's input gradient
        then runs over all 3N samples.)
        """
        if batched not in ("none", "pair"):
            raise ValueError(f"batched must be 'none' or 'pair', got {batched!r}")
        sr = sr.detach()
        if batched == "pair":
            if _has_batch_norm(critic):
                raise ValueError(
                    "GMGANLoss.critic(batched='pair'): the critic has batch norm, "
                    "whose statistics would mix HR and SR; use batched='none'"
                )
            if hr.shape != sr.shape:
                raise ValueError(
                    "GMGANLoss.critic: hr and sr shapes differ: "
                    f"{tuple(hr.shape)} vs {tuple(sr.shape)}"
                )
            scores = critic(torch.cat([hr, sr]))
            d_real, d_fake = scores[: hr.shape[0]], scores[hr.shape[0] :]
        else:
            d_real, d_fake = critic(hr), critic(sr)
        wgan = critic_loss(d_real, d_fake)
        gp = gradient_penalty(critic, hr, sr, lam=self.lam, generator=generator, scaler=scaler)
        total = self.delta * (wgan + gp)
        terms = {"wasserstein": (-wgan).detach(), "gp": gp.detach(), "total": total.detach()}
        return total, terms
