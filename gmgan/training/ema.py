"""The generator's exponential moving average (:class:`EMA`)."""
from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """Exponential moving average of a model's weights (Polyak averaging).

    After every optimiser step: ``ema = decay * ema + (1 - decay) * param`` for each parameter;
    buffers are copied. ``decay`` 0.999 averages over roughly the last 1000 updates; the averaged
    generator is smoother and usually scores higher than the raw one (BasicSR does the same).
    ``self.module`` is a frozen copy in eval mode, ready for validation or saving.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema = list(self.module.parameters())
        new = [p.detach() for p in model.parameters()]
        # lerp(ema, p, w) = ema + w * (p - ema) = (1 - w) * ema + w * p with w = 1 - decay
        torch._foreach_lerp_(ema, new, 1.0 - self.decay)
        for b_ema, b in zip(self.module.buffers(), model.buffers()):
            b_ema.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
