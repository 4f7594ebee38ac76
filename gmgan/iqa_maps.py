"""Looking inside image-quality measures: gradient and GMS maps, controlled distortions, VGG19
feature maps, and optimising an image under a loss. The analysis pieces behind the notebooks on the
GMSD quality loss and the perceptual loss; training never needs them.

- :func:`gradient_magnitude`, :func:`gms_map`: the intermediate maps of GMSD (Xue et al., 2014),
  computed exactly as :func:`gmgan.losses.gmsd` computes them, so that
  ``gms_map(x, y).flatten(1).std(dim=1)`` is ``gmsd(x, y, reduction="none")``.
- :func:`distort`, :func:`encode_jpeg`, :func:`match_psnr`: deterministic blur / noise / JPEG /
  shift / colour-cast versions of an 8-bit image, and the level that gives a chosen PSNR.
- :func:`vgg_features`: the activations of several VGG19 layers of a
  :class:`gmgan.losses.PerceptualLoss` network in one pass, before or after their ReLU.
- :func:`optimise_towards`: gradient descent on the pixels of an image towards a target under any
  loss, recording PSNR and GMSD along the way (:class:`OptimisationHistory`).

Images are numpy uint8 H x W x 3 / H x W (as read from files) or torch float NCHW in [0, 1], RGB.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from torch import Tensor, nn

# GMSD's maps are defined beside the loss (gmgan.losses), so that they are the loss's own
# intermediate values; they are re-exported here with the other analysis tools.
from gmgan.losses import VGG19_LAYERS, gms_map, gradient_magnitude
from gmgan.metrics import gmsd, psnr

__all__ = [
    "DISTORTIONS",
    "OptimisationHistory",
    "distort",
    "encode_jpeg",
    "gms_map",
    "gradient_magnitude",
    "match_psnr",
    "optimise_towards",
    "vgg_features",
]

# ---------------------------------------------------------------------------------------------------
# Distortions of 8-bit images
# ---------------------------------------------------------------------------------------------------

#: The kinds :func:`distort` knows and the meaning and unit of their ``level``.
DISTORTIONS: dict[str, str] = {
    "blur": "Gaussian blur; level = standard deviation of the kernel in pixels (> 0)",
    "noise": "additive white Gaussian noise; level = its standard deviation in grey levels of 0..255",
    "jpeg": "JPEG compression (Pillow/libjpeg, 4:2:0 chroma for colour); level = quality 1..100",
    "shift": "content moved right by level whole pixels (>= 0); the left edge column is repeated",
    "colour": "colour cast: level grey levels added to red and subtracted from blue (any sign)",
}


def _check_uint8(img: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        got = img.dtype if isinstance(img, np.ndarray) else type(img).__name__
        raise TypeError(f"{name}: expected a numpy uint8 image (0..255), got {got}")
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(f"{name}: expected an H x W or H x W x 3 image, got shape {img.shape}")
    return img


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """Round half up and clip, as an 8-bit image file would store the values."""
    return np.clip(np.floor(a + 0.5), 0, 255).astype(np.uint8)


def encode_jpeg(img: np.ndarray, quality: int) -> bytes:
    """JPEG-encode an 8-bit image in memory with Pillow (libjpeg's standard tables scaled by quality).

    Args:
        img: numpy uint8 H x W x 3 (RGB, stored with 4:2:0 chroma subsampling, Pillow's default)
            or H x W (grey).
        quality: libjpeg quality, an integer 1..100.

    Returns:
        the JPEG file's bytes. Deterministic: the same image and quality give the same bytes.
    """
    _check_uint8(img, "encode_jpeg")
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ValueError(f"encode_jpeg: quality must be an integer in 1..100, got {quality!r}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def _gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    # Blur along height and width only (sigma 0 on the colour axis); mirror borders, 4-sigma support.
    sigmas = (sigma, sigma) + (0.0,) * (img.ndim - 2)
    return gaussian_filter(img.astype(np.float64), sigmas, mode="reflect", truncate=4.0)


def distort(img: np.ndarray, kind: str, level: float, *, seed: int = 0) -> np.ndarray:
    """A distorted copy of an 8-bit image, deterministically (see :data:`DISTORTIONS`).

    Args:
        img: numpy uint8 H x W x 3 (RGB) or H x W (grey), values 0..255.
        kind: ``"blur"``, ``"noise"``, ``"jpeg"``, ``"shift"`` or ``"colour"``.
        level: strength, in the unit :data:`DISTORTIONS` gives for ``kind`` (blur sigma in pixels,
            noise sigma in grey levels, JPEG quality 1..100, shift in pixels, colour offset in levels).
        seed: seed of the noise (``numpy.random.default_rng(seed)``); other kinds ignore it.

    Returns:
        numpy uint8 array of the input's shape: the result rounded half up and clipped to 0..255,
        as it would be stored in an 8-bit file. The same arguments always give the same image.
    """
    _check_uint8(img, "distort")
    if kind not in DISTORTIONS:
        raise ValueError(f"distort: unknown kind {kind!r}; choose one of {', '.join(DISTORTIONS)}")
    if not np.isfinite(level):
        raise ValueError(f"distort: level must be a finite number, got {level!r}")
    if kind == "blur":
        if level <= 0:
            raise ValueError(f"distort: blur sigma must be > 0 pixels, got {level}")
        return _to_uint8(_gaussian_blur(img, float(level)))
    if kind == "noise":
        if level < 0:
            raise ValueError(f"distort: noise sigma must be >= 0 grey levels, got {level}")
        noise = np.random.default_rng(seed).standard_normal(img.shape)
        return _to_uint8(img.astype(np.float64) + float(level) * noise)
    if kind == "jpeg":
        if float(level) != int(level):
            raise ValueError(f"distort: JPEG quality must be a whole number in 1..100, got {level}")
        decoded = np.asarray(Image.open(io.BytesIO(encode_jpeg(img, int(level)))))
        return decoded.reshape(img.shape)
    if kind == "shift":
        if level < 0 or float(level) != int(level):
            raise ValueError(f"distort: shift must be a whole number of pixels >= 0, got {level}")
        k = min(int(level), img.shape[1])
        out = np.empty_like(img)
        out[:, k:] = img[:, : img.shape[1] - k]
        out[:, :k] = img[:, :1]  # repeat the edge column instead of wrapping around
        return out
    # colour cast
    if img.ndim != 3:
        raise ValueError(f"distort: a colour cast needs an RGB image (H x W x 3), got shape {img.shape}")
    offset = np.array([float(level), 0.0, -float(level)])
    return _to_uint8(img.astype(np.float64) + offset)


# Search ranges of the continuous kinds for match_psnr: (low, high) level.
_PSNR_SEARCH = {"blur": (0.05, 30.0), "noise": (0.01, 128.0)}


def match_psnr(
    hr: np.ndarray, kind: str, target_db: float, *, seed: int = 0, crop_border: int = 4, tol_db: float = 0.01
) -> tuple[float, np.ndarray]:
    """The level of a distortion that brings ``hr`` to a chosen PSNR, and the distorted image.

    PSNR is :func:`gmgan.metrics.psnr` (Y channel of BT.601 YCbCr, ``crop_border`` pixels cut).
    Blur and noise levels are found by bisection (PSNR falls as they grow) until within ``tol_db``.
    A colour cast changes 8-bit pixels only by whole grey levels, so its level is a whole number
    (bisection over 0..255, the nearer of the last two kept); JPEG qualities are whole numbers
    too, and PSNR is not monotonic in them, so every quality 1..100 is tried and the nearest kept.

    Args:
        hr: numpy uint8 H x W x 3 (or H x W) reference image.
        kind: ``"blur"``, ``"noise"``, ``"jpeg"`` or ``"colour"`` (a 1-pixel shift has one PSNR).
        target_db: the PSNR to reach, in dB.
        seed: noise seed, passed to :func:`distort`.
        crop_border: border cut before measuring PSNR.
        tol_db: stop bisection when |PSNR - target| < tol_db.

    Returns:
        (level, distorted uint8 image). For JPEG and colour the PSNR may miss the target by more
        than ``tol_db`` (the nearest whole level); check it with :func:`gmgan.metrics.psnr`.

    Raises:
        ValueError: unknown / unsupported kind, or a target no level in the search range reaches.
    """
    def score(level: float) -> tuple[float, np.ndarray]:
        out = distort(hr, kind, level, seed=seed)
        return psnr(out, hr, crop_border=crop_border), out

    if kind == "jpeg":
        best = min((abs(score(q)[0] - target_db), q) for q in range(1, 101))[1]
        return float(best), distort(hr, kind, best)
    if kind == "colour":
        lo, hi = 0, 255
        if score(hi)[0] > target_db:
            raise ValueError(f"match_psnr: even a colour cast of 255 levels stays above {target_db} dB")
        while hi - lo > 1:  # invariant: PSNR(lo) > target >= PSNR(hi)
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if score(mid)[0] > target_db else (lo, mid)
        best = min((abs(score(v)[0] - target_db), v) for v in (lo, hi))[1]
        return float(best), distort(hr, kind, best)
    if kind not in _PSNR_SEARCH:
        raise ValueError(f"match_psnr: kind must be one of jpeg, colour, {', '.join(_PSNR_SEARCH)}; got {kind!r}")
    lo, hi = _PSNR_SEARCH[kind]
    p_lo, p_hi = score(lo)[0], score(hi)[0]
    if not p_hi <= target_db <= p_lo:
        raise ValueError(f"match_psnr: {kind} reaches PSNR {p_hi:.2f}..{p_lo:.2f} dB for levels "
                         f"{lo}..{hi}, not {target_db} dB")
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        p, out = score(mid)
        if abs(p - target_db) < tol_db:
            return mid, out
        lo, hi = (mid, hi) if p > target_db else (lo, mid)
    return mid, out  # 8-bit rounding can make PSNR step over the target; the nearest found


# ---------------------------------------------------------------------------------------------------
# VGG19 features of a PerceptualLoss network
# ---------------------------------------------------------------------------------------------------


def vgg_features(
    net: nn.Module, x: Tensor, layers: Sequence[str], *, before_activation: bool = True
) -> dict[str, Tensor]:
    """Activations of several VGG19 layers of a :class:`gmgan.losses.PerceptualLoss` in one pass.

    Forward hooks on ``net.features`` catch each layer's output while ``net.extract(x)`` runs, so
    the input normalisation is the loss's own. torchvision's ReLUs work in place, so a conv output
    is copied before its ReLU overwrites it.

    Args:
        net: a :class:`~gmgan.losses.PerceptualLoss` (anything with ``features`` (the VGG19
            ``features`` Sequential, possibly truncated) and ``extract(x)``).
        x: float (N, 3, H, W) RGB in [0, 1].
        layers: conv names of :data:`gmgan.losses.VGG19_LAYERS`, e.g. ``["conv1_2", "conv5_4"]``.
        before_activation: the conv output (True, as ESRGAN and the paper's l_P) or the output of
            the ReLU after it (False, as SRGAN).

    Returns:
        ``{layer: float tensor (N, C_l, H_l, W_l)}`` (C_l = 64, 128, 256, 512, 512 for blocks 1..5,
        H_l = H / 2^(block - 1)), detached.

    Raises:
        ValueError: an unknown layer, or one the (truncated) network does not reach; build the loss
            with ``layer="conv5_4", before_activation=False`` to reach every layer.
    """
    features = net.features
    positions = {}
    for name in layers:
        if name not in VGG19_LAYERS:
            raise ValueError(f"vgg_features: unknown layer {name!r}; choose from {', '.join(VGG19_LAYERS)}")
        idx = VGG19_LAYERS[name] + (0 if before_activation else 1)
        if idx >= len(features):
            raise ValueError(f"vgg_features: {name} {'before' if before_activation else 'after'} activation "
                             f"is module {idx}, but the network stops at module {len(features) - 1}; "
                             "build it with PerceptualLoss(layer='conv5_4', before_activation=False)")
        positions[idx] = name
    out: dict[str, Tensor] = {}

    def hook(idx: int) -> Callable:
        def keep(_module, _inputs, output):
            out[positions[idx]] = output.detach().clone()
        return keep

    handles = [features[idx].register_forward_hook(hook(idx)) for idx in positions]
    try:
        with torch.no_grad():
            net.extract(x)
    finally:
        for h in handles:
            h.remove()
    return {name: out[name] for name in layers}


# ---------------------------------------------------------------------------------------------------
# Optimising an image under a loss
# ---------------------------------------------------------------------------------------------------


@dataclass
class OptimisationHistory:
    """What :func:`optimise_towards` recorded.

    ``steps[i]`` is the number of updates made when ``loss[i]``, ``psnr[i]`` (dB, Y channel, see
    :func:`gmgan.metrics.psnr`) and ``gmsd[i]`` (unitless, :func:`gmgan.metrics.gmsd`) were measured;
    step 0 is the start image. ``final`` is the last image, float (N, 3, H, W) in [0, 1];
    ``snapshots`` maps a step to the image after that many updates (those asked for).
    """

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    gmsd: list[float] = field(default_factory=list)
    final: Tensor | None = None
    snapshots: dict[int, Tensor] = field(default_factory=dict)


def optimise_towards(
    target: Tensor,
    start: Tensor,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    steps: int = 100,
    lr: float = 1e-2,
    *,
    record_every: int = 1,
    snapshots: Iterable[int] = (),
    crop_border: int = 4,
) -> OptimisationHistory:
    """Move the pixels of ``start`` towards ``target`` by minimising ``loss_fn(image, target)``.

    Adam (default betas) updates the pixels directly; after each update they are clipped to [0, 1]
    so the image stays valid. Adam scales each pixel's step to about ``lr`` whatever the loss's
    scale, so different losses can be compared with one learning rate. The path is measured with
    PSNR and GMSD against ``target``, whatever the loss.

    Args:
        target: float (N, 3, H, W) RGB in [0, 1], the reference (e.g. the HR image); not changed.
        start: float tensor of the same shape, the initial image (e.g. bicubic upsampling of LR).
        loss_fn: ``(image, target) -> scalar`` differentiable loss, e.g. ``gmgan.losses.mse_loss``
            or ``gmgan.losses.QualityLoss()``.
        steps: number of updates.
        lr: Adam learning rate, in intensity units ([0, 1] scale) per step.
        record_every: measure every this many steps (and always at 0 and at ``steps``).
        snapshots: steps after which to keep a copy of the image.
        crop_border: border cut for PSNR (4 by the x4 SR custom; 0 for small crops).

    Returns:
        an :class:`OptimisationHistory`. Deterministic for the same inputs on the same machine.
    """
    if not isinstance(target, Tensor) or not isinstance(start, Tensor) or target.shape != start.shape:
        raise ValueError("optimise_towards: target and start must be tensors of one shape, got "
                         f"{getattr(target, 'shape', type(target).__name__)} and "
                         f"{getattr(start, 'shape', type(start).__name__)}")
    if steps < 0 or record_every < 1:
        raise ValueError(f"optimise_towards: need steps >= 0 and record_every >= 1, got {steps}, {record_every}")
    target = target.detach()
    image = start.detach().clone().clamp_(0.0, 1.0).requires_grad_(True)
    optimiser = torch.optim.Adam([image], lr=lr)
    keep = set(snapshots)
    history = OptimisationHistory()
    for step in range(steps + 1):
        loss = loss_fn(image, target)
        if step % record_every == 0 or step == steps:
            with torch.no_grad():
                history.steps.append(step)
                history.loss.append(float(loss))
                history.psnr.append(float(psnr(image, target, crop_border=crop_border).mean()))
                history.gmsd.append(float(gmsd(image, target).mean()))
        if step in keep:
            history.snapshots[step] = image.detach().clone()
        if step == steps:
            break
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            image.clamp_(0.0, 1.0)
    history.final = image.detach().clone()
    return history
