"""Helpers of the reliability suite: a tiny training configuration (for the CLI and for
``train()``) and subprocess helpers. (Imported by the test modules of this folder.)"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gmgan.config import TrainConfig, apply_overrides

# The networks and batches of tests/test_train.py: a few steps per second on one CPU core.
TINY = {"train_set": "samples", "num_feat": 8, "num_block": 1, "num_grow": 8, "d_num_feat": 8,
        "patch_size": 32, "batch_size": 4, "num_workers": 0, "pretrain_iters": 4, "gan_iters": 4,
        "log_every": 1, "val_every": 0, "ckpt_every": 1, "keep_last": 3, "val_sets": (),
        "perceptual_weights": "none", "progress": False, "tensorboard": False, "ema_decay": 0.9,
        "augment8": False}


def tiny_config(out_dir: Path, **overrides) -> TrainConfig:
    """The tiny configuration with its run folder at ``out_dir``."""
    return apply_overrides(TrainConfig(name="rel", out_dir=str(out_dir), **TINY), overrides)


def tiny_cli_args(**overrides) -> list[str]:
    """``gmgan train`` options for the tiny configuration (``--preset teach`` + overrides)."""
    values = {**TINY, **overrides}
    args = ["--preset", "teach"]
    for key, value in values.items():
        option = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(option if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, tuple):
            args += [option, *map(str, value)]
        else:
            args += [option, str(value)]
    return args


def child_env() -> dict[str, str]:
    """Environment of child processes: one thread (the CI has two cores), unbuffered output."""
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def gmgan_process(args: list[str], log: Path) -> subprocess.Popen:
    """Start ``python -m gmgan ARGS`` with stdout and stderr going to the file ``log``."""
    with open(log, "ab") as handle:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "gmgan", *args], stdout=handle,
                                stderr=subprocess.STDOUT, env=child_env())


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None,
             poll: float = 0.02):
    """Poll ``condition()`` until it returns something truthy; fail after ``timeout`` seconds
    or when ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the process exited (status {proc.returncode}) before {what}")
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")
