"""Tests of the two small additions to gmgan.nets used by the notebooks: count_parameters and the
residual_scale switch of RRDBNet (checked against hand counts and closed forms)."""
from __future__ import annotations

import pytest
import torch

from gmgan.nets import (
    RESIDUAL_SCALE,
    RRDB,
    Discriminator,
    ResidualDenseBlock,
    RRDBNet,
    count_parameters,
    load_generator,
    save_generator,
)


def conv_params(c_in: int, c_out: int, k: int = 3) -> int:
    return c_in * c_out * k * k + c_out


def test_count_parameters_by_hand():
    model = RRDBNet(num_feat=16, num_block=2, num_grow=8)
    rdb = sum(conv_params(16 + i * 8, 8) for i in range(4)) + conv_params(16 + 4 * 8, 16)
    want = {
        "conv_first": conv_params(3, 16),
        "body": 2 * 3 * rdb,
        "conv_body": conv_params(16, 16),
        "conv_up1": conv_params(16, 16),
        "conv_up2": conv_params(16, 16),
        "conv_hr": conv_params(16, 16),
        "conv_last": conv_params(16, 3),
    }
    want["total"] = sum(want.values())
    assert count_parameters(model) == want
    assert list(count_parameters(model)) == list(want)  # registration order, total last
    per_rrdb = {"rdb1": rdb, "rdb2": rdb, "rdb3": rdb, "total": 3 * rdb}
    assert count_parameters(model.body[0]) == per_rrdb


def test_count_parameters_published_totals():
    torch.manual_seed(0)
    assert count_parameters(RRDBNet())["total"] == 16_697_987  # ESRGAN's RRDB_ESRGAN_x4
    d = count_parameters(Discriminator())
    assert d["classifier"] == 512 * 8 * 8 * 1024 + 1024 + 1024 + 1
    assert d["total"] == d["features"] + d["classifier"]


def test_count_parameters_own_and_shared():
    lin = torch.nn.Linear(3, 2)
    assert count_parameters(lin) == {"(own)": 8, "total": 8}
    shared = torch.nn.Sequential(lin, lin)  # the same layer twice: counted once in the total
    assert count_parameters(shared)["total"] == 8


def test_residual_scale_closed_form():
    """conv5 weights zeroed, bias c: RDB(x) = x + s c; RRDB(x) = (1 + s) x + s (1 + s + ... ) c."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 5)
    c = torch.randn(8).view(1, -1, 1, 1)
    for s in (0.2, 1.0, 0.5):
        rdb = ResidualDenseBlock(8, 4, residual_scale=s)
        rrdb = RRDB(8, 4, residual_scale=s)
        with torch.no_grad():
            for block in (rdb, rrdb.rdb1, rrdb.rdb2, rrdb.rdb3):
                block.conv5.weight.zero_()
                block.conv5.bias.copy_(c.flatten())
            torch.testing.assert_close(rdb(x), x + s * c)
            # the three RDBs give x + 3 s c; the RRDB returns x + s (x + 3 s c)
            torch.testing.assert_close(rrdb(x), (1 + s) * x + 3 * s * s * c)


def test_residual_scale_default_unchanged_and_round_trip(tmp_path):
    torch.manual_seed(0)
    default = RRDBNet(num_feat=8, num_block=1, num_grow=4)
    assert default.residual_scale == RESIDUAL_SCALE == 0.2
    assert "residual_scale" not in default.config
    unscaled = RRDBNet(num_feat=8, num_block=1, num_grow=4, residual_scale=1.0)
    assert unscaled.config["residual_scale"] == 1.0
    assert RRDBNet(**unscaled.config).residual_scale == 1.0
    unscaled.load_state_dict(default.state_dict())
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        assert not torch.allclose(unscaled(x), default(x))
        loaded = load_generator(save_generator(unscaled, tmp_path / "g.safetensors"))
        assert loaded.residual_scale == 1.0
        torch.testing.assert_close(loaded(x), unscaled(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="residual_scale"):
        RRDBNet(residual_scale=float("nan"))
