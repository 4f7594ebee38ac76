"""Checkpoints: round trip, weights_only loading, atomic writes, manifest checks, keep_last."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from torch import nn

import gmgan.checkpoint as ckpt_mod
from gmgan.checkpoint import (
    CheckpointError,
    capture_rng,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)


def _parts(seed: int = 0):
    torch.manual_seed(seed)
    g = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    d = nn.Linear(4, 1)
    opt = torch.optim.Adam(g.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    g(torch.rand(2, 3, 8, 8)).square().mean().backward()
    opt.step()  # so the optimiser has state (exp_avg, step) to save
    sched.step()
    return g, d, opt, sched


def _save(run_dir, step, g, d, opt, sched, **kw):
    return save_checkpoint(run_dir, step, models={"G": g, "D": d}, optimizers={"G": opt},
                           schedulers={"G": sched}, extra={"phase": "pretrain", "note": [1, 2.5, "x"]}, **kw)


def test_round_trip_restores_everything(tmp_path):
    g, d, opt, sched = _parts()
    path = _save(tmp_path, 1000, g, d, opt, sched)
    assert path == tmp_path / "step_00001000"
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "state.pt", "weights.safetensors"]

    ck = load_checkpoint(path)
    assert ck["step"] == 1000 and ck["extra"] == {"phase": "pretrain", "note": [1, 2.5, "x"]}
    for name, module in (("G", g), ("D", d)):
        ref = module.state_dict()
        assert ck["models"][name].keys() == ref.keys()
        for k in ref:
            assert torch.equal(ck["models"][name][k], ref[k]), k
    g2, _, opt2, sched2 = _parts(seed=1)
    g2.load_state_dict(ck["models"]["G"])
    opt2.load_state_dict(ck["optimizers"]["G"])
    sched2.load_state_dict(ck["schedulers"]["G"])
    assert sched2.last_epoch == sched.last_epoch
    s1, s2 = opt.state_dict()["state"][0], opt2.state_dict()["state"][0]
    assert torch.equal(s1["exp_avg_sq"], s2["exp_avg_sq"]) and float(s1["step"]) == float(s2["step"])


def test_state_file_loads_with_weights_only(tmp_path):
    g, d, opt, sched = _parts()
    path = _save(tmp_path, 7, g, d, opt, sched)
    # weights_only=True refuses any pickled object that is not plain data: this is the guarantee.
    state = torch.load(path / "state.pt", weights_only=True)
    assert state["step"] == 7 and set(state["rng"]) == {"python", "numpy", "torch", "cuda"}
    manifest = json.loads((path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"weights.safetensors", "state.pt"}
    from safetensors.torch import load_file
    keys = load_file(str(path / "weights.safetensors")).keys()
    assert "G.0.weight" in keys and "G.1.running_mean" in keys and "D.weight" in keys


def test_rng_capture_restore_repeats_draws():
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    np.random.normal()  # leaves a cached gaussian in numpy's legacy state
    state = capture_rng()
    first = (random.random(), np.random.normal(), np.random.rand(3).tolist(), torch.rand(3).tolist())
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    restore_rng(state)
    again = (random.random(), np.random.normal(), np.random.rand(3).tolist(), torch.rand(3).tolist())
    assert first == again


def test_failed_write_keeps_previous_and_removes_temp(tmp_path, monkeypatch):
    g, d, opt, sched = _parts()
    good = _save(tmp_path, 1, g, d, opt, sched)
    before = (good / "weights.safetensors").read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt_mod.torch, "save", disk_full)
    with pytest.raises(CheckpointError, match="No space left"):
        _save(tmp_path, 2, g, d, opt, sched)
    assert [p.name for p in tmp_path.iterdir()] == ["step_00000001"]  # no temp folder, no step 2
    assert (good / "weights.safetensors").read_bytes() == before
    assert latest_checkpoint(tmp_path) == good
    load_checkpoint(good)


def test_interrupt_during_write_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    """A kill in the middle of writing (simulated by KeyboardInterrupt from inside the write)."""
    g, d, opt, sched = _parts()
    good = _save(tmp_path, 1, g, d, opt, sched)
    real_sha = ckpt_mod._sha256

    def killed(path):  # weights and state are on disk, the manifest is not yet
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_mod, "_sha256", killed)
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path, 2, g, d, opt, sched)
    monkeypatch.setattr(ckpt_mod, "_sha256", real_sha)
    assert list_checkpoints(tmp_path) == [good]
    assert not list(tmp_path.glob(".tmp-*"))


def test_stale_temp_folders_are_ignored_and_cleaned(tmp_path):
    g, d, opt, sched = _parts()
    stale = tmp_path / ".tmp-step_00000005-123"
    stale.mkdir(parents=True)
    (stale / "weights.safetensors").write_bytes(b"half")
    assert latest_checkpoint(tmp_path) is None
    _save(tmp_path, 3, g, d, opt, sched)
    assert not stale.exists()


def test_corrupt_checkpoint_is_refused_and_skipped(tmp_path):
    g, d, opt, sched = _parts()
    older = _save(tmp_path, 1, g, d, opt, sched)
    newer = _save(tmp_path, 2, g, d, opt, sched)
    weights = newer / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # flip one bit in the middle of the tensor data
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(newer)
    with pytest.warns(UserWarning, match="skipping invalid checkpoint"):
        assert latest_checkpoint(tmp_path) == older


def test_incomplete_checkpoint_is_refused(tmp_path):
    g, d, opt, sched = _parts()
    path = _save(tmp_path, 4, g, d, opt, sched)
    (path / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        load_checkpoint(path)
    path2 = _save(tmp_path, 5, g, d, opt, sched)
    (path2 / "state.pt").write_bytes((path2 / "state.pt").read_bytes()[:-10])  # truncated
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path2)
    with pytest.warns(UserWarning):
        assert latest_checkpoint(tmp_path) is None
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "step_00000009")


def test_keep_last_and_resave(tmp_path):
    g, d, opt, sched = _parts()
    for step in (10, 20, 30, 40):
        _save(tmp_path, step, g, d, opt, sched, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000030", "step_00000040"]
    with torch.no_grad():
        g[0].weight.add_(1.0)
    again = _save(tmp_path, 40, g, d, opt, sched, keep_last=2)  # same step: replaced
    assert torch.equal(load_checkpoint(again)["models"]["G"]["0.weight"], g[0].weight)
    assert not list(tmp_path.glob(".tmp-*"))
