"""The generator's moving average (gmgan.training.ema)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gmgan.training.ema import EMA


def test_ema_matches_hand_computation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).double()
    ema = EMA(model, decay=0.9)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(4, 3, dtype=torch.float64))  # moves the BatchNorm running statistics
        ema.update(model)
        for name, p in model.named_parameters():
            expected[name] = 0.9 * expected[name] + 0.1 * p.detach()
    state = ema.state_dict()
    for name, _ in model.named_parameters():
        torch.testing.assert_close(state[name], expected[name], rtol=0, atol=1e-12)
    for name, b in model.named_buffers():  # buffers are copied, not averaged
        assert torch.equal(state[name], b)
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_ema_refuses_a_decay_outside_0_1():
    with pytest.raises(ValueError, match=r"EMA decay must be in \[0, 1\), got 1.0"):
        EMA(nn.Linear(1, 1), decay=1.0)
