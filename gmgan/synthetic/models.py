"""Small models for the synthetic task: a generator that corrects bicubic interpolation,
an optional HR noise head that lets it sample a texture, a WGAN-GP critic, network
interpolation between two generators, and their files (fp16 safetensors).
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import torch
from torch import nn

from gmgan.nets import Discriminator, RRDBNet
from gmgan.resize import imresize
from gmgan.synthetic.degradation import SCALE

__all__ = [
    "BicubicResidualSR",
    "interpolate_generators",
    "load_generator",
    "save_generator",
    "small_critic",
    "small_generator",
    "with_noise_head",
]

# --------------------------------------------------------------------------------------
# Generators and critic
# --------------------------------------------------------------------------------------


class BicubicResidualSR(nn.Module):
    """SR = MATLAB bicubic x4 of LR + an :class:`gmgan.nets.RRDBNet`'s output (the
    residual), optionally + a texture synthesised from noise.

    The RRDBNet's last conv starts near zero, so a fresh model is bicubic interpolation
    and training only has to learn the correction: what makes a few hundred CPU steps
    enough.

    Two optional sources of randomness (drawn from torch's global generator at every
    call):

    * ``noise_channels`` > 0: the RRDBNet also reads that many channels of N(0, 1) noise
      at LR resolution (it has to shape them into fine texture through its two x2
      upsamplings);
    * ``noise_head`` > 0: one channel of N(0, 1) noise at HR resolution goes through a
      small convolutional head (5x5 conv to ``noise_head`` channels, LeakyReLU, 5x5 conv
      to 3), whose output is added: noise injection at full resolution (as StyleGAN's),
      which can learn a stationary texture of any spectrum within its 9x9 reach,
      independent of the LR image.

    Forward: float (N, 3, h, w) in [0, 1] -> (N, 3, 4h, 4w), not clamped.
    """

    def __init__(
        self, body: RRDBNet, noise_channels: int = 0, noise_head: int = 0
    ) -> None:
        super().__init__()
        if body.in_channels != 3 + noise_channels:
            raise ValueError(
                f"BicubicResidualSR: the RRDBNet reads {body.in_channels} channels, "
                f"expected 3 + noise_channels = {3 + noise_channels}"
            )
        self.body, self.noise_channels = body, noise_channels
        self.noise_head = _noise_head(noise_head) if noise_head else None

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        n, _, h, w = lr.shape
        inputs = lr
        if self.noise_channels:
            noise = torch.randn(
                n, self.noise_channels, h, w, dtype=lr.dtype, device=lr.device
            )
            inputs = torch.cat([lr, noise], dim=1)
        out = imresize(lr, SCALE) + self.body(inputs)
        if self.noise_head is not None:
            noise = torch.randn(
                n, 1, SCALE * h, SCALE * w, dtype=lr.dtype, device=lr.device
            )
            out = out + self.noise_head(noise)
        return out


def small_generator(
    num_feat: int = 16,
    num_block: int = 1,
    num_grow: int = 16,
    seed: int = 0,
    noise_channels: int = 0,
    noise_head: int = 0,
) -> BicubicResidualSR:
    """A :class:`BicubicResidualSR` around a small RRDBNet (x4), its weights seeded; the
    last convs are scaled by 0.1 so the start is close to bicubic."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        body = RRDBNet(
            in_channels=3 + noise_channels,
            num_feat=num_feat,
            num_block=num_block,
            num_grow=num_grow,
        )
        model = BicubicResidualSR(body, noise_channels, noise_head)
    with torch.no_grad():
        body.conv_last.weight.mul_(0.1)
        body.conv_last.bias.zero_()
    return model


def _noise_head(channels: int) -> nn.Sequential:
    head = nn.Sequential(
        nn.Conv2d(1, channels, 5, padding=2),
        nn.LeakyReLU(0.2),
        nn.Conv2d(channels, 3, 5, padding=2),
    )
    with torch.no_grad():
        head[-1].weight.mul_(0.1)
        head[-1].bias.zero_()
    return head


def with_noise_head(
    model: BicubicResidualSR, channels: int = 8, seed: int = 0
) -> BicubicResidualSR:
    """A copy of ``model`` with a fresh, seeded HR noise head (see
    :class:`BicubicResidualSR`): how a GAN is started from a PSNR model trained without
    one. The head's last conv starts at 0.1 x PyTorch's default initialisation, so the
    copy starts close to ``model``."""
    out = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out.noise_head = _noise_head(channels)
    return out


def small_critic(patch: int = 32, num_feat: int = 16, seed: int = 0) -> Discriminator:
    """A seeded :class:`gmgan.nets.Discriminator` (no normalisation, WGAN-GP) for patch
    x patch."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Discriminator(num_feat=num_feat, input_size=patch)


def interpolate_generators(
    psnr: BicubicResidualSR, gan: BicubicResidualSR, alpha: float
) -> BicubicResidualSR:
    """Network interpolation (ESRGAN's): weights (1 - alpha) psnr + alpha gan.

    ``gan`` may have an HR noise head that ``psnr`` lacks: the PSNR end then uses the
    GAN's head with its last conv at zero (a head that adds nothing, so alpha = 0 is
    the PSNR model exactly), and along the path the added texture grows as alpha.

    Args:
        psnr, gan: generators of the same architecture (``gan`` possibly with a head).
        alpha: in [0, 1].

    Returns:
        a new generator in eval mode; the inputs are not changed.
    """
    if not 0.0 <= alpha <= 1.0 or not math.isfinite(alpha):
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    start = copy.deepcopy(psnr)
    if gan.noise_head is not None and start.noise_head is None:
        start.noise_head = copy.deepcopy(gan.noise_head)
        with torch.no_grad():
            start.noise_head[-1].weight.zero_()
            start.noise_head[-1].bias.zero_()
    a, b = start.state_dict(), gan.state_dict()
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise ValueError("interpolate_generators: the two generators differ in shape")
    start.load_state_dict({k: torch.lerp(a[k], b[k], alpha) for k in a})
    return start.eval()


def save_generator(model: BicubicResidualSR, path: str | os.PathLike) -> Path:
    """Write ``model``'s weights to ``path`` (.safetensors) in float16 (half the bytes;
    load with :func:`load_generator`, which evaluates in float32)."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in
             model.state_dict().items()}
    save_file(state, str(path))
    return path


def load_generator(
    path: str | os.PathLike, *, noise_head: int = 0, **architecture
) -> BicubicResidualSR:
    """A :func:`small_generator` (``architecture``: its num_feat, num_block, num_grow)
    with the weights of ``path`` (float16 or float32, returned as float32, eval mode);
    ``noise_head``: the head's channels when the file has one (0: none)."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_generator: no weights file {path}")
    state = load_file(str(path))
    bad = [k for k, v in state.items() if not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"load_generator: {path} has non-finite values in {bad[0]}")
    model = small_generator(noise_head=noise_head, **architecture)
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as err:
        raise ValueError(
            f"load_generator: {path} does not fit the architecture "
            f"{architecture} with noise_head={noise_head}: {err}"
        ) from None
    return model.eval()
