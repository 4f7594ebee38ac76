"""Tiny training configurations shared by tests/test_runs.py and tests/test_experiments.py."""
from __future__ import annotations

from gmgan.config import TrainConfig, apply_overrides

# A generator and critic small enough for a few steps per second on one CPU core; the training
# images are scikit-image's samples (no data cache needed) and validation is off.
TINY = {"num_feat": 8, "num_block": 1, "num_grow": 8, "d_num_feat": 8,
        "patch_size": 32, "batch_size": 4, "num_workers": 0, "pretrain_iters": 3, "gan_iters": 2,
        "log_every": 1, "val_every": 0, "ckpt_every": 0, "val_sets": (), "ema_decay": 0.9,
        "perceptual_layer": "conv1_2", "perceptual_weights": "random"}


def tiny(**kw) -> TrainConfig:
    """A TINY run on the samples set, with ``kw`` overriding any field."""
    return apply_overrides(TrainConfig(name="unit", train_set="samples", **TINY), kw)


def losses(history: list[dict]) -> list[dict]:
    """A run's log rows without their timings: what two runs of one config share exactly."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]
