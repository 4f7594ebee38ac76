"""The two networks of GMGAN and the generator's checkpoint formats.

* :class:`RRDBNet` - ESRGAN's generator (Wang et al. 2018): a trunk of Residual-in-Residual Dense
  Blocks at low resolution, then nearest-neighbour upsampling + conv, twice for x4. Its
  ``state_dict()`` keys are exactly BasicSR's, so BasicSR / Real-ESRGAN tools read our weights.
* :class:`Discriminator` - SRGAN's VGG-style critic (Ledig et al. 2017) without the final
  sigmoid, because GMGAN trains it as a WGAN-GP critic that outputs an unbounded score
  (defined in :mod:`gmgan.critic`, re-exported here).
* :func:`count_parameters` - parameters per part of a network (e.g. the RRDB trunk's share).
* :func:`load_generator` / :func:`convert_state_dict` / :func:`save_generator` - read the public
  ESRGAN weights in all three published key layouts (BasicSR, original ESRGAN, "old arch"), from
  ``.pth`` / ``.pt`` (safe unpickling only) or ``.safetensors`` files, and write safetensors.

Images are float NCHW tensors, RGB, nominally in [0, 1].
"""

from __future__ import annotations

import math
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

# The critic lives in gmgan.critic (architecture files hold one architecture each).
from gmgan.critic import NORMS, Discriminator  # noqa: F401 (re-exported)

# The one class for every unusable checkpoint or weights file; importable from here too.
from gmgan.errors import CheckpointError

# ESRGAN multiplies every residual branch by 0.2 before adding it back ("residual scaling"):
# with 23 x 3 stacked dense blocks, unscaled residuals make the trunk's output grow and training
# unstable (ESRGAN paper, Sec. 3.1).
RESIDUAL_SCALE = 0.2
LRELU_SLOPE = 0.2
SUPPORTED_SCALES = (2, 4)


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs with a scaled residual: ``x + 0.2 * conv5([x, x1..x4])``.

    Each ``conv_i`` sees the block input concatenated with all earlier outputs, so its input has
    ``num_feat + (i - 1) * num_grow`` channels; conv1..conv4 add ``num_grow`` channels each and
    conv5 maps back to ``num_feat``.

    Shapes: (N, num_feat, H, W) -> (N, num_feat, H, W).
    ``residual_scale`` (default 0.2) is the factor on the residual branch.
    """

    def __init__(
        self, num_feat: int = 64, num_grow: int = 32, residual_scale: float = RESIDUAL_SCALE
    ) -> None:
        super().__init__()
        self.residual_scale = residual_scale
        self.conv1 = nn.Conv2d(num_feat, num_grow, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow, num_grow, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow, num_grow, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow, num_grow, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(LRELU_SLOPE, inplace=True)
        # BasicSR's scaled Kaiming initialisation: He-normal (gain sqrt(2), fan_in), then x0.1, so
        # each block starts close to the identity and the deep trunk trains stably.
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            nn.init.kaiming_normal_(conv.weight)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))  # no activation on the residual branch
        return x + self.residual_scale * x5


class RRDB(nn.Module):
    """Residual in Residual Dense Block: three dense blocks in a row inside another scaled residual.

    Shapes: (N, num_feat, H, W) -> (N, num_feat, H, W).
    ``residual_scale`` (default 0.2) scales this block's residual and those of its dense blocks.
    """

    def __init__(
        self, num_feat: int = 64, num_grow: int = 32, residual_scale: float = RESIDUAL_SCALE
    ) -> None:
        super().__init__()
        self.residual_scale = residual_scale
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow, residual_scale)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow, residual_scale)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow, residual_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rdb3(self.rdb2(self.rdb1(x)))
        return x + self.residual_scale * out


class RRDBNet(nn.Module):
    """ESRGAN's generator (BasicSR's ``RRDBNet`` layout and parameter names).

    conv_first -> body (num_block RRDBs) -> conv_body, plus a long skip from conv_first; then
    per x2 step: nearest-neighbour x2 upsampling, conv, LeakyReLU; then conv_hr, LeakyReLU,
    conv_last.
    No batch norm anywhere (it causes artefacts in SR GANs, ESRGAN Sec. 3.1).

    Args:
        in_channels: channels of the input image (3 for RGB).
        out_channels: channels of the output image.
        num_feat: feature channels of the trunk (64 in ESRGAN).
        num_block: number of RRDBs (23 in ESRGAN).
        num_grow: growth channels of the dense blocks (32 in ESRGAN).
        scale: 4 (two x2 upsampling steps) or 2 (one step; key ``conv_up2`` is then absent).
            BasicSR's pixel-unshuffle trick for x2 / x1 (Real-ESRGAN x2plus) is not supported.
        residual_scale: factor on every residual branch (0.2 in ESRGAN and in all published
            weights). Other values are for experiments (e.g. 1.0 to see why ESRGAN scales); a
            non-default value appears in :attr:`config` and in saved metadata.
        noise_inject: StyleGAN's noise inputs (Karras et al. 2019): one map of N(0, 1)
            noise per upsampled feature map (2x and 4x the LR size), added to it after
            its conv with a learned strength per channel (``noise_strength_up1`` /
            ``_up2``, zero at first, so a fresh option leaves the output unchanged) and
            before its LeakyReLU, which lets the following convs shape the noise by the
            image content.
        noise_head: channels of an additive noise head (0: none): one map of N(0, 1)
            noise at HR resolution through 5x5 conv -> LeakyReLU -> 5x5 conv to
            ``out_channels``, its mean over the image removed (no colour shift), added
            to the output (as :func:`gmgan.synthetic_sr.with_noise_head`, which keeps
            the mean): a stationary texture within a 9x9 reach, whatever the image.

    Both noise options draw from torch's global generator at every call (seed it for a
    repeatable output) and are multiplied by the attribute :attr:`noise_scale` (1.0; 0.0
    gives the noise-free output). They add keys to the state dict that ESRGAN's weights
    do not have; without them the keys are exactly BasicSR's.

    Forward: float (N, in_channels, H, W), nominally [0, 1] -> (N, out_channels, scale*H, scale*W),
    not clamped. Works with ``channels_last`` memory format and autocast.
    The default x4 model has 16,697,987 parameters.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow: int = 32,
        scale: int = 4,
        residual_scale: float = RESIDUAL_SCALE,
        noise_inject: bool = False,
        noise_head: int = 0,
    ) -> None:
        super().__init__()
        if scale not in SUPPORTED_SCALES:
            raise ValueError(
                f"RRDBNet supports scale 2 or 4 (nearest x2 upsampling once or twice), "
                f"got scale={scale!r}"
            )
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("num_feat", num_feat),
            ("num_block", num_block),
            ("num_grow", num_grow),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"RRDBNet: {name} must be a positive int, got {value!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_feat, self.num_block, self.num_grow = num_feat, num_block, num_grow
        self.scale = scale
        if not isinstance(residual_scale, (int, float)) or not math.isfinite(residual_scale):
            raise ValueError(
                f"RRDBNet: residual_scale must be a finite number, got {residual_scale!r}"
            )
        self.residual_scale = float(residual_scale)

        self.conv_first = nn.Conv2d(in_channels, num_feat, 3, 1, 1)
        self.body = nn.Sequential(
            *[RRDB(num_feat, num_grow, self.residual_scale) for _ in range(num_block)]
        )
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        if scale == 4:
            self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, out_channels, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(LRELU_SLOPE, inplace=True)
        if (not isinstance(noise_head, int) or isinstance(noise_head, bool)
                or noise_head < 0):
            raise ValueError(
                f"RRDBNet: noise_head must be an int >= 0, got {noise_head!r}")
        self.noise_inject, self.noise_scale = bool(noise_inject), 1.0
        if self.noise_inject:
            self.noise_strength_up1 = nn.Parameter(torch.zeros(num_feat))
            if scale == 4:
                self.noise_strength_up2 = nn.Parameter(torch.zeros(num_feat))
        self.noise_head = _noise_head(noise_head, out_channels) if noise_head else None

    @property
    def config(self) -> dict[str, int | float]:
        """The constructor arguments: ``RRDBNet(**model.config)`` builds the same architecture.

        ``residual_scale`` is included only when it is not ESRGAN's 0.2.
        """
        config: dict[str, int | float] = {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "num_feat": self.num_feat,
            "num_block": self.num_block,
            "num_grow": self.num_grow,
            "scale": self.scale,
        }
        if self.residual_scale != RESIDUAL_SCALE:
            config["residual_scale"] = self.residual_scale
        if self.noise_inject:
            config["noise_inject"] = True
        if self.noise_head is not None:
            config["noise_head"] = self.noise_head[0].out_channels
        return config

    def _noise(self, like: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) of N(0, 1) x noise_scale, for ``like`` (N, C, H, W)."""
        n, _, h, w = like.shape
        noise = torch.randn(n, 1, h, w, dtype=like.dtype, device=like.device)
        return noise * self.noise_scale

    def _up(self, feat: torch.Tensor, conv: nn.Conv2d, strength: str) -> torch.Tensor:
        feat = conv(F.interpolate(feat, scale_factor=2, mode="nearest"))
        if self.noise_inject:  # after the conv, before the activation (StyleGAN)
            weight = getattr(self, strength).view(1, -1, 1, 1).to(feat.dtype)
            feat = feat + weight * self._noise(feat)
        return self.lrelu(feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"RRDBNet expects a (N, {self.in_channels}, H, W) tensor, "
                f"got shape {tuple(x.shape)}"
            )
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))  # long skip around the whole trunk
        # Upsample with nearest neighbour + conv rather than transposed convs: no checkerboard.
        feat = self._up(feat, self.conv_up1, "noise_strength_up1")
        if self.scale == 4:
            feat = self._up(feat, self.conv_up2, "noise_strength_up2")
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        if self.noise_head is not None:
            texture = self.noise_head(self._noise(out))
            # Mean-free over the image: through its LeakyReLU the head's output has a
            # constant expectation per channel, a colour shift; keep the texture only.
            out = out + texture - texture.mean(dim=(2, 3), keepdim=True)
        return out


def _noise_head(channels: int, out_channels: int) -> nn.Sequential:
    """5x5 conv (1 -> channels), LeakyReLU, 5x5 conv (-> out_channels); the last conv
    at 0.1x PyTorch's initialisation, without bias: a fresh head adds little noise."""
    head = nn.Sequential(nn.Conv2d(1, channels, 5, padding=2),
                         nn.LeakyReLU(LRELU_SLOPE),
                         nn.Conv2d(channels, out_channels, 5, padding=2, bias=False))
    with torch.no_grad():
        head[-1].weight.mul_(0.1)
    return head


def with_noise(model: RRDBNet, *, noise_inject: bool = False, noise_head: int = 0,
               seed: int = 0) -> RRDBNet:
    """A copy of ``model`` with the noise options added (fresh, seeded noise weights;
    the others copied): how a GAN with noise starts from a PSNR model trained without.
    Options the model already has keep their weights. The copy's output equals the
    model's at first for ``noise_inject`` (zero strengths) and is close to it for
    ``noise_head`` (a small last conv)."""
    config = dict(model.config)
    config["noise_inject"] = bool(noise_inject) or model.noise_inject
    if noise_head or model.noise_head is not None:
        config["noise_head"] = noise_head or model.noise_head[0].out_channels
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = RRDBNet(**config)
    missing, unexpected = out.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("noise_") for k in missing):
        raise ValueError(f"with_noise: keys do not match: {missing} {unexpected}")
    out.noise_scale = model.noise_scale
    return out.to(next(model.parameters()).device)


def count_parameters(module: nn.Module) -> dict[str, int]:
    """Number of parameters of each direct child of ``module``, plus ``"total"``.

    For an :class:`RRDBNet` the keys are conv_first, body, conv_body, conv_up1, conv_up2 (x4
    only), conv_hr, conv_last and total (16,697,987 for the default x4 model). Children without
    parameters (activations) are left out; parameters registered on ``module`` itself, if any,
    are counted under ``"(own)"``. Shared parameters are counted once in ``"total"``.

    Returns:
        dict from child name to its number of scalar parameters (trainable or not), in
        registration order, ending with ``"total"``.
    """
    counts = {}
    for name, child in module.named_children():
        n = sum(p.numel() for p in child.parameters())
        if n:
            counts[name] = n
    own = sum(p.numel() for p in module.parameters(recurse=False))
    if own:
        counts["(own)"] = own
    counts["total"] = sum(p.numel() for p in module.parameters())
    return counts


# ---------------------------------------------------------------------------------------------
# Checkpoint formats
# ---------------------------------------------------------------------------------------------
# Three key layouts of the same network exist in the wild (x4, 23 blocks shown):
#   BasicSR (ours):    conv_first, body.N.rdbK.convJ, conv_body,
#                      conv_up1, conv_up2, conv_hr, conv_last
#   original ESRGAN:   conv_first, RRDB_trunk.N.RDBK.convJ, trunk_conv,
#                      upconv1, upconv2, HRconv, conv_last
#   "old arch" ESRGAN: model.0, model.1.sub.N.RDBK.convJ.0, model.1.sub.23 (trunk conv),
#                      then an nn.Sequential tail: [Upsample, conv, LReLU] per x2 step,
#                      conv, LReLU, conv:
#                      x4: model.3, model.6 (up), model.8 (hr), model.10 (last); x2: model.3, 5, 7.

_ESRGAN_RULES = [
    (r"^RRDB_trunk\.(\d+)\.RDB([123])\.conv([1-5])\.", r"body.\1.rdb\2.conv\3."),
    (r"^trunk_conv\.", "conv_body."),
    (r"^upconv([12])\.", r"conv_up\1."),
    (r"^HRconv\.", "conv_hr."),
]
_OLD_RDB_RULE = (r"^model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.", r"body.\1.rdb\2.conv\3.")


def _unwrap(state_dict: Mapping[str, Any]) -> Mapping[str, Any]:
    """BasicSR saves {'params': ..., 'params_ema': ...}; the EMA weights are the ones to use."""
    for wrapper in ("params_ema", "params"):
        inner = state_dict.get(wrapper)
        if isinstance(inner, Mapping):
            return inner
    return state_dict


def _old_tail_names(indices: list[int]) -> dict[int, str]:
    """Map the conv indices of an old-arch ``model.I`` tail (I >= 2) to BasicSR names."""
    n_up = len(indices) - 2
    expected = [3 * (i + 1) for i in range(n_up)] + [3 * n_up + 2, 3 * n_up + 4]
    if n_up not in (1, 2) or indices != expected:
        raise CheckpointError(
            f"old-arch ESRGAN tail convs model.{indices} do not match an x2 "
            f"(model.3, 5, 7) or x4 (model.3, 6, 8, 10) layout"
        )
    names = {expected[i]: f"conv_up{i + 1}" for i in range(n_up)}
    names[expected[-2]], names[expected[-1]] = "conv_hr", "conv_last"
    return names


def _convert_old(sd: Mapping[str, Any]) -> dict[str, Any]:
    rdb_pattern, rdb_repl = _OLD_RDB_RULE
    tail = sorted(
        {int(m.group(1)) for k in sd if (m := re.match(r"^model\.(\d+)\.(weight|bias)$", k))} - {0}
    )
    tail_names = _old_tail_names(tail)
    out = {}
    for key, value in sd.items():
        if re.match(rdb_pattern, key):
            key = re.sub(rdb_pattern, rdb_repl, key)
        elif m := re.match(r"^model\.1\.sub\.\d+\.(weight|bias)$", key):
            key = f"conv_body.{m.group(1)}"  # the conv after the last RRDB, model.1.sub.<num_block>
        elif m := re.match(r"^model\.(\d+)\.(weight|bias)$", key):
            index = int(m.group(1))
            key = f"{'conv_first' if index == 0 else tail_names[index]}.{m.group(2)}"
        out[key] = value  # anything unrecognised passes through and is reported as unexpected
    return out


def convert_state_dict(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Rename any supported ESRGAN generator state dict to BasicSR keys (those of :class:`RRDBNet`).

    Accepts BasicSR keys, original ESRGAN keys (``RRDB_trunk`` / ``trunk_conv`` / ``upconv1`` /
    ``HRconv``), and the old ``model.0`` / ``model.1.sub.N...`` layout; unwraps BasicSR's
    ``params_ema`` (preferred) or ``params``; strips a ``module.`` prefix (DataParallel / DDP).
    Tensors are not copied.
    Keys it does not recognise are kept as they are (:func:`load_generator` then reports them).

    Args:
        state_dict: mapping from key to tensor (any dtype / device), possibly wrapped as above.
    Returns:
        a new dict with BasicSR keys and the same tensor objects.
    """
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(
            f"expected a state dict (mapping of names to tensors), got {type(state_dict).__name__}"
        )
    sd = dict(_unwrap(state_dict))
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    if any(k.startswith(("RRDB_trunk.", "trunk_conv.")) for k in sd):  # original ESRGAN
        out = {}
        for key, value in sd.items():
            for pattern, repl in _ESRGAN_RULES:
                key = re.sub(pattern, repl, key)
            out[key] = value
        return out
    if "model.0.weight" in sd:  # old arch
        return _convert_old(sd)
    return sd  # BasicSR already (or another architecture: reported by load_generator)


def _read_checkpoint(path: Path) -> tuple[Mapping[str, Any], dict[str, str]]:
    """Read tensors (+ safetensors metadata) from a file; never executes code from a pickle."""
    if not path.is_file():
        raise FileNotFoundError(f"generator checkpoint not found: {path}")
    if path.suffix.lower() == ".safetensors":
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
        except Exception as e:
            raise CheckpointError(
                f"{path} is not a valid safetensors file ({type(e).__name__}: {e})"
            ) from e
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only load failed" in str(e).lower():
            # The pickle references globals other than tensors / containers: loading it would run
            # arbitrary code. We never fall back to weights_only=False.
            raise CheckpointError(
                f"refusing to load {path}: the pickle contains objects other than tensors and "
                f"plain containers, and unpickling it could execute arbitrary code. gmgan only "
                f"loads checkpoints with torch.load(weights_only=True). If you trust the file, "
                f"re-save its state dict (or use .safetensors)."
            ) from e
        raise CheckpointError(f"{path} is not a valid PyTorch checkpoint ({e})") from e
    except Exception as e:
        raise CheckpointError(
            f"{path} is not a valid PyTorch checkpoint ({type(e).__name__}: {e})"
        ) from e
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict")
    return obj, {}


def _infer_config(sd: Mapping[str, Any], default_scale: int) -> dict[str, int]:
    """Architecture hyper-parameters from BasicSR-keyed tensors; defaults where a key is absent."""

    def shape(key: str) -> tuple[int, ...] | None:
        value = sd.get(key)
        return tuple(value.shape) if isinstance(value, torch.Tensor) else None

    config = {
        "in_channels": 3,
        "out_channels": 3,
        "num_feat": 64,
        "num_block": 23,
        "num_grow": 32,
        "scale": default_scale,
    }
    if (s := shape("conv_first.weight")) and len(s) == 4:
        config["num_feat"], config["in_channels"] = s[0], s[1]
    if (s := shape("conv_last.weight")) and len(s) == 4:
        config["out_channels"] = s[0]
    if (s := shape("body.0.rdb1.conv1.weight")) and len(s) == 4:
        config["num_grow"] = s[0]
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"^body\.(\d+)\.", k))}
    if blocks:
        config["num_block"] = max(blocks) + 1
    if "conv_up2.weight" in sd:
        config["scale"] = 4
    elif "conv_up1.weight" in sd:
        config["scale"] = 2
    if "noise_strength_up1" in sd:
        config["noise_inject"] = True
    if (s := shape("noise_head.0.weight")) and len(s) == 4:
        config["noise_head"] = s[0]
    return config


def _key_report(
    missing: list[str], unexpected: list[str], mismatched: list[str], n: int = 5
) -> str:
    def head(keys: list[str]) -> str:
        return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")

    parts = []
    if missing:
        parts.append(f"missing keys: {head(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {head(unexpected)}")
    if mismatched:
        parts.append(f"shape mismatches: {head(mismatched)}")
    return "; ".join(parts)


def load_generator(
    path_or_state_dict: str | os.PathLike | Mapping[str, Any],
    *,
    strict: bool = True,
    device: str | torch.device = "cpu",
    scale: int | None = None,
) -> RRDBNet:
    """Build an :class:`RRDBNet` whose architecture is read off a checkpoint, and load its weights.

    Args:
        path_or_state_dict: a ``.safetensors`` file, a ``.pth`` / ``.pt`` file (read with
            ``torch.load(weights_only=True)``; pickles that need code execution are refused), or a
            state dict. Key layouts: BasicSR, original ESRGAN, old-arch ESRGAN, optionally wrapped
            in ``params_ema`` / ``params`` and/or prefixed ``module.`` (see
            :func:`convert_state_dict`).
            So the public RRDB_ESRGAN_x4.pth / RRDB_PSNR_x4.pth (new and old arch) load unchanged.
        strict: if True, every key of the model must be present and no other key may be.
        device: where the returned model lives.
        scale: if given, the scale you expect (2 or 4); a checkpoint of another scale is an error.

    Returns:
        the model in eval mode, float32, on ``device``; in_channels, out_channels, num_feat,
        num_block, num_grow and scale are inferred from the tensor shapes and keys.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a checkpoint, an unsafe pickle, another architecture (the message
            lists the first missing / unexpected keys), a scale other than ``scale``,
            safetensors metadata that disagrees with the tensors, or weights that are
            NaN or infinite.
    """
    if isinstance(path_or_state_dict, Mapping):
        source, raw, metadata = "the given state dict", path_or_state_dict, {}
    else:
        path = Path(path_or_state_dict)
        source = str(path)
        raw, metadata = _read_checkpoint(path)
    try:
        sd = convert_state_dict(raw)
    except CheckpointError as e:
        raise CheckpointError(f"{source}: {e}") from e
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{source} is not a generator state dict: entries {bad[:5]} are not tensors"
        )

    config = _infer_config(sd, default_scale=scale or 4)
    if scale is not None and config["scale"] != scale:
        raise CheckpointError(f"{source}: checkpoint is x{config['scale']}, you asked for x{scale}")
    gmgan_metadata = metadata if metadata.get("format") == "gmgan.RRDBNet" else {}
    for key, value in gmgan_metadata.items():
        if key in config and str(config[key]) != value:
            raise CheckpointError(
                f"{source}: metadata says {key}={value} but the tensors say {key}={config[key]}"
            )
    if "residual_scale" in gmgan_metadata:  # not visible in the tensors: only metadata has it
        try:
            config["residual_scale"] = float(gmgan_metadata["residual_scale"])
        except ValueError as e:
            raise CheckpointError(
                f"{source}: bad residual_scale metadata {gmgan_metadata['residual_scale']!r}"
            ) from e
    if config["in_channels"] in (4 * config["out_channels"], 16 * config["out_channels"]):
        raise CheckpointError(
            f"{source}: conv_first takes {config['in_channels']} channels for "
            f"{config['out_channels']} output channels: a pixel-unshuffle model "
            f"(e.g. Real-ESRGAN x2plus), which gmgan's RRDBNet does not support"
        )

    model = RRDBNet(**config)
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    mismatched = [
        f"{k} {tuple(sd[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in sd and sd[k].shape != v.shape
    ]
    if mismatched or (strict and (missing or unexpected)):
        raise CheckpointError(
            f"{source} does not match RRDBNet({', '.join(f'{k}={v}' for k, v in config.items())}): "
            + _key_report(missing, unexpected, mismatched)
        )
    not_finite = [k for k in expected if k in sd and sd[k].is_floating_point()
                  and not bool(torch.isfinite(sd[k]).all())]
    if not_finite:  # such a model outputs NaN everywhere: a black image, not an error
        raise CheckpointError(
            f"{source}: {len(not_finite)} weight tensor(s) hold NaN or inf values "
            f"(first: {', '.join(not_finite[:3])}); the training run that wrote them "
            f"diverged"
        )
    model.load_state_dict({k: v for k, v in sd.items() if k in expected}, strict=False)
    return model.to(device).eval()


def save_generator(model: RRDBNet, path: str | os.PathLike) -> Path:
    """Write a generator's weights to a ``.safetensors`` file (atomically), BasicSR keys.

    The architecture hyper-parameters (``model.config``) are stored as string metadata, plus
    ``format="gmgan.RRDBNet"``; :func:`load_generator` reads them back and checks them.

    Args:
        model: an :class:`RRDBNet` (any device / memory format; tensors keep their dtype).
        path: destination; must end in ``.safetensors``.
    Returns:
        the path written.
    Raises:
        OSError: the file could not be written (disk full, permissions); the message names
            ``path``, and no partial file is left behind.
    """
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise ValueError(
            f"save_generator writes safetensors; give a path ending in .safetensors, got {path}"
        )
    if not isinstance(model, RRDBNet):
        raise TypeError(f"save_generator expects an RRDBNet, got {type(model).__name__}")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": "gmgan.RRDBNet", **{k: str(v) for k, v in model.config.items()}}
    # Serialised in memory, then written as bytes: safetensors' own file writer reports a full
    # disk as a SafetensorError, a plain write reports it as the OSError it is.
    data = safetensors_bytes(tensors, metadata=metadata)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # a crash mid-write never leaves a truncated file under `path`
    except OSError as err:
        tmp.unlink(missing_ok=True)
        error = OSError(err.errno, f"could not write {path}: {err.strerror or err}")
        raise error from err
    return path
