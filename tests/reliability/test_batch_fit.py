"""A batch that does not fit in GPU memory: the trainer catches the out-of-memory error of the
first training step, halves the batch and tries one probe step at a time until one fits, then
stops with one clear message giving the batch, the device's memory and the batch that fits.

On the CPU of the CI the GPU is simulated: the generator raises ``torch.cuda.OutOfMemoryError``
(the exception PyTorch raises when CUDA memory runs out) whenever it trains on more than
``limit`` samples at once.
"""
from __future__ import annotations

import pytest
import torch
from rel_helpers import tiny_cli_args, tiny_config

from gmgan.checkpoint import list_checkpoints
from gmgan.cli import main
from gmgan.nets import RRDBNet
from gmgan.train import BatchTooLarge, train


def _gpu_with_room_for(monkeypatch, limit: int) -> list[int]:
    """Make RRDBNet run out of 'GPU memory' above ``limit`` training samples; returns the list of
    batch sizes it was asked to train on."""
    real_forward = RRDBNet.forward
    seen: list[int] = []

    def forward(self, x):
        if self.training and torch.is_grad_enabled():
            seen.append(x.shape[0])
            if x.shape[0] > limit:
                raise torch.cuda.OutOfMemoryError(
                    "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
                    "of 79.19 GiB of which 1.06 GiB is free.")
        return real_forward(self, x)

    monkeypatch.setattr(RRDBNet, "forward", forward)
    return seen


def test_batch_that_does_not_fit_is_named_with_one_that_does(tmp_path, samples_ready, monkeypatch,
                                                             capsys):
    seen = _gpu_with_room_for(monkeypatch, limit=3)
    run = tmp_path / "run"
    code = main(["train", *tiny_cli_args(phase="pretrain", batch_size=16, pretrain_iters=3),
                 "--out-dir", str(run)])
    err = capsys.readouterr().err
    line = [x for x in err.splitlines() if x.strip()][-1]
    print(line)
    assert code == 2 and "Traceback" not in err
    assert line.startswith("gmgan: error: batch_size=16 does not fit")
    assert "phase 'pretrain'" in line and "memory" in line
    assert "A batch of 2 fits" in line and "--batch-size 2" in line
    assert seen == [16, 8, 4, 2]  # the failed step, then one probe step per halving
    assert list_checkpoints(run / "pretrain" / "checkpoints") == []
    # probes cleaned up (the lock file stays: see gmgan.training.RunFolderLock)
    assert sorted(p.name for p in run.iterdir()) == [".gmgan-train.lock", "config.yaml", "pretrain"]


def test_not_even_one_sample_fits(tmp_path, samples_ready, monkeypatch):
    seen = _gpu_with_room_for(monkeypatch, limit=0)
    with pytest.raises(BatchTooLarge) as info:
        train(tiny_config(tmp_path / "run", phase="pretrain", batch_size=4))
    message = str(info.value)
    print(message)
    assert info.value.batch_size == 4 and info.value.fits is None
    assert "even a batch of 1 does not fit" in message and "patch_size" in message
    assert seen == [4, 2, 1]


def test_later_out_of_memory_is_not_blamed_on_the_batch(tmp_path, samples_ready, monkeypatch):
    """Memory that runs out after training has been going for a while is not a batch that does
    not fit: the original error is raised as it is, without probing."""
    real_forward = RRDBNet.forward
    calls = {"n": 0}

    def forward(self, x):
        if self.training and torch.is_grad_enabled():
            calls["n"] += 1
            if calls["n"] == 5:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (fragmentation)")
        return real_forward(self, x)

    monkeypatch.setattr(RRDBNet, "forward", forward)
    with pytest.raises(torch.cuda.OutOfMemoryError, match="fragmentation"):
        train(tiny_config(tmp_path / "run", phase="pretrain", pretrain_iters=8))
    assert calls["n"] == 5
