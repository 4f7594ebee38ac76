"""A batch that does not fit: the out-of-memory guard of a phase's first steps
(:func:`run_phase`, :class:`BatchTooLarge`)."""
from __future__ import annotations

import dataclasses
import gc
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from gmgan.config import TrainConfig
from gmgan.training.environment import Env
from gmgan.training.phase_run import PhaseResult

__all__ = ["FIT_STEPS", "BatchTooLarge", "run_phase"]


class BatchTooLarge(RuntimeError):
    """The configured batch does not fit in the device's memory (an out-of-memory error in the
    first training steps). ``batch_size`` is the configured batch, ``fits`` the largest batch
    (``batch_size / 2**k``) whose probe step succeeded, or None when not even 1 did."""

    def __init__(self, message: str, *, batch_size: int, fits: int | None) -> None:
        super().__init__(message)
        self.batch_size, self.fits = batch_size, fits


#: An out-of-memory error before this many steps of a phase have completed (in this call) means the
#: batch does not fit; later ones (fragmentation, validation) are raised as they are.
FIT_STEPS = 3


def _release_memory(device: torch.device) -> None:
    """Free what a failed step left behind (its tensors die with the traceback: collect them)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _memory_text(device: torch.device) -> str:
    if device.type != "cuda":
        return str(device)
    free, total = torch.cuda.mem_get_info(device)
    return (f"{device} ({torch.cuda.get_device_name(device)}: {total / 2**30:.1f} GiB, "
            f"{free / 2**30:.1f} GiB free now)")


def _probe_fits(run: Callable[[TrainConfig, Env], Any], cfg: TrainConfig, env: Env, batch: int,
                overrides: Mapping[str, Any]) -> bool:
    """Run one step of the phase with ``batch`` samples in a throw-away folder; False on OOM."""
    folder = Path(tempfile.mkdtemp(prefix=".fit-probe-", dir=env.run_dir))
    probe = dataclasses.replace(cfg, batch_size=batch, out_dir=str(folder), resume=False,
                                pretrain_iters=1, gan_iters=1, ckpt_every=0, val_every=0,
                                val_sets=(), tensorboard=False, progress=False, **overrides)
    probe_env = dataclasses.replace(env, cfg=probe, run_dir=folder, _benchmarks={}, lock=None)
    fits = True
    try:
        run(probe, probe_env)
    except torch.cuda.OutOfMemoryError:
        fits = False
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _release_memory(env.device)
    return fits


def run_phase(phase: str, run: Callable[[TrainConfig, Env], PhaseResult],
              cfg: TrainConfig, env: Env, *,
              probe_overrides: Mapping[str, Any] | None = None) -> PhaseResult:
    """``run(cfg, env)`` (one phase of :mod:`gmgan.train`), with a clear error for a batch that
    does not fit in memory.

    An out-of-memory error (``torch.cuda.OutOfMemoryError``) before :data:`FIT_STEPS` steps of the
    phase have completed stops the phase; the batch is then halved, and one probe step of the
    phase (in a temporary folder, removed afterwards) tried at a time, until one fits.
    ``probe_overrides`` are config fields for the probe runs (e.g. the phase-1 weights the
    ``gan`` phase starts from). In a ``torchrun`` job the error is raised as it is.

    Raises:
        BatchTooLarge: naming the batch, the device and its memory, and the batch that fits.
    """
    before = env.steps_done
    try:
        return run(cfg, env)
    except torch.cuda.OutOfMemoryError:
        if env.distributed or env.steps_done - before >= FIT_STEPS:
            raise
    # Outside the except block the failed step's traceback, and with it its tensors, are gone.
    _release_memory(env.device)
    tried: list[int] = []
    fits = None
    batch = cfg.batch_size // 2
    while batch >= 1 and fits is None:
        tried.append(batch)
        if _probe_fits(run, cfg, env, batch, probe_overrides or {}):
            fits = batch
        batch //= 2
    where = (f"batch_size={cfg.batch_size} does not fit in the memory of {_memory_text(env.device)} "
             f"in phase '{phase}' (num_feat={cfg.num_feat}, num_block={cfg.num_block}, "
             f"patch_size={cfg.patch_size}, amp={cfg.amp}): out of memory in its first steps")
    probes = f"one probe step each with {', '.join(map(str, tried))}" if tried else "no smaller batch"
    if fits is not None:
        advice = (f". A batch of {fits} fits ({probes}): run again with --batch-size {fits} "
                  f"(batch_size={fits}), or keep the batch and lower patch_size or use amp=bf16.")
    else:
        advice = (f"; even a batch of 1 does not fit ({probes}): lower patch_size, num_feat or "
                  f"num_block, use amp=bf16, or a device with more memory.")
    raise BatchTooLarge(where + advice, batch_size=cfg.batch_size, fits=fits)
