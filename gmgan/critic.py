"""SRGAN's VGG-style critic (Ledig et al. 2017) as GMGAN trains it: a WGAN-GP critic whose
score is unbounded (no sigmoid). Its own file, as in BasicSR's ``discriminator_arch.py``;
:mod:`gmgan.nets` re-exports it beside the generator.

Images are float NCHW tensors, RGB, nominally in [0, 1].
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

__all__ = ["NORMS", "Discriminator"]

# SRGAN's LeakyReLU slope, the same as the generator's (gmgan.nets.LRELU_SLOPE).
LRELU_SLOPE = 0.2
NORMS = ("none", "layer", "batch")



class Discriminator(nn.Module):
    """SRGAN's VGG-style critic, used as a WGAN-GP critic (no sigmoid: the score is unbounded).

    Eight 3x3 convs with (64, 64, 128, 128, 256, 256, 512, 512) * num_feat/64 channels and strides
    (1, 2, 1, 2, 1, 2, 1, 2), each followed by LeakyReLU(0.2); then
    Linear(8*num_feat * (input_size/16)^2 -> 1024), LeakyReLU(0.2), Linear(1024 -> 1).

    Args:
        in_channels: image channels.
        num_feat: channels of the first conv (64 in SRGAN).
        input_size: side of the square input patch in pixels; must be divisible by 16.
        norm: normalisation after every conv except the first:
            ``"none"`` (default; what WGAN-GP asks for), ``"layer"`` (per-sample
            ``GroupNorm(1, C)``) or ``"batch"`` (``BatchNorm2d``, exactly SRGAN; warns, see below).

    Forward: float (N, in_channels, input_size, input_size) -> (N, 1) raw critic score.
    """

    def __init__(
        self, in_channels: int = 3, num_feat: int = 64, input_size: int = 128, norm: str = "none"
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"Discriminator norm must be one of {NORMS}, got {norm!r}")
        if not isinstance(input_size, int) or input_size < 16 or input_size % 16:
            raise ValueError(
                f"Discriminator input_size must be a positive multiple of 16 (four "
                f"stride-2 convs), got {input_size!r}"
            )
        if norm == "batch":
            warnings.warn(
                "Discriminator(norm='batch'): batch norm mixes the samples of a batch, so "
                "a sample's score depends on the others; this breaks WGAN-GP's per-sample "
                "gradient penalty. Use norm='none' or 'layer' for WGAN-GP.",
                UserWarning,
                stacklevel=2,
            )
        self.in_channels, self.num_feat = in_channels, num_feat
        self.input_size, self.norm = input_size, norm

        widths = [num_feat * m for m in (1, 1, 2, 2, 4, 4, 8, 8)]
        strides = (1, 2, 1, 2, 1, 2, 1, 2)
        layers: list[nn.Module] = []
        channels = in_channels
        for i, (width, stride) in enumerate(zip(widths, strides, strict=True)):
            normed = i > 0 and norm != "none"
            # A conv bias right before batch norm is cancelled by the mean subtraction: drop it.
            layers.append(
                nn.Conv2d(channels, width, 3, stride, 1, bias=not (normed and norm == "batch"))
            )
            if normed and norm == "batch":
                layers.append(nn.BatchNorm2d(width))
            elif normed and norm == "layer":
                # GroupNorm with one group normalises each sample over its own (C, H, W): no
                # statistic is shared across the batch, so D(x_i) depends on x_i only and the
                # gradient penalty on ||grad_x D(x_i)|| stays a per-sample quantity (as WGAN-GP's
                # authors recommend layer norm over batch norm).
                layers.append(nn.GroupNorm(1, width))
            # Not in-place: the gradient penalty back-propagates through the critic twice.
            layers.append(nn.LeakyReLU(LRELU_SLOPE))
            channels = width
        self.features = nn.Sequential(*layers)
        side = input_size // 16
        self.classifier = nn.Sequential(
            nn.Linear(channels * side * side, 1024),
            nn.LeakyReLU(LRELU_SLOPE),
            nn.Linear(1024, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.in_channels, self.input_size, self.input_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"Discriminator(input_size={self.input_size}) expects (N, {expected[0]}, "
                f"{expected[1]}, {expected[2]}) input, got shape {tuple(x.shape)}; "
                f"crop or build the critic with the patch size you train on"
            )
        return self.classifier(torch.flatten(self.features(x), 1))
