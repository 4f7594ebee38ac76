"""The step-indexed data order: the seeds of a phase and of a step,
:class:`StepSampler`, :func:`first_batch` and the DataLoader (:func:`make_loader`).

Reproducibility: everything random in step ``s`` is a pure function of
``(seed, phase, s)``. The data order and crops come from :class:`StepSampler` and the
dataset's per-index generator, and the global torch generator is re-seeded at the start
of every step (:func:`step_seed`), so the gradient penalty's random mixing weights do
not depend on what ran before. A run resumed from a checkpoint therefore repeats the
uninterrupted run exactly on a CPU (GPU kernels may not be bitwise deterministic).
"""
from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["PHASE_INDEX", "StepSampler", "first_batch", "make_loader", "phase_seed",
           "step_seed"]

PHASE_INDEX = {"pretrain": 0, "gan": 1}


def phase_seed(seed: int, phase: str) -> int:
    """The seed of a phase's data order and crops (:class:`StepSampler`, the dataset)."""
    return 2 * seed + PHASE_INDEX[phase]


def step_seed(seed: int, phase: str, step: int, rank: int = 0) -> int:
    """The seed of all random draws of one step, a pure function of its arguments (63 bits)."""
    ss = np.random.SeedSequence([seed, PHASE_INDEX[phase], step, rank])
    return int(ss.generate_state(2, dtype=np.uint32).astype(np.uint64) @ np.array([1 << 31, 1], np.uint64))


class StepSampler:
    """A batch sampler whose batch for step ``s`` depends on ``(seed, s)`` only, so that training
    can restart at any step and see the same data as an uninterrupted run.

    Samples form an endless stream: pass ``e`` over the ``num_images`` images visits them in the
    order ``perm_e`` (a permutation seeded by ``(seed, e)``); the global batch of step ``s``
    (0-based) is stream positions ``s*B .. s*B+B-1``. Position ``p`` becomes the dataset index
    ``e*num_images + perm_e[p % num_images]`` with ``e = p // num_images``: image
    ``index % num_images`` as :class:`gmgan.data.PatchPairs` reads it, and a new random crop in
    every pass (the dataset seeds its crops by index). The dataset must therefore have
    ``len >= num_images * passes`` (:meth:`dataset_length`).

    With ``world_size`` K, process ``rank`` takes the ``rank``-th of K equal slices of each
    global batch, so K processes together see exactly the single-process batches.

    Iterating yields lists of indices for steps ``start .. end-1``.
    """

    def __init__(self, num_images: int, batch_size: int, *, seed: int = 0, start: int = 0,
                 end: int | None = None, rank: int = 0, world_size: int = 1) -> None:
        if num_images < 1 or batch_size < 1:
            raise ValueError(f"StepSampler needs num_images >= 1 and batch_size >= 1, got "
                             f"{num_images}, {batch_size}")
        if batch_size % world_size:
            raise ValueError(f"global batch {batch_size} does not split over {world_size} processes")
        self.n, self.batch, self.seed = num_images, batch_size, seed
        self.start, self.end = start, end
        self.rank, self.world = rank, world_size
        self._perms: dict[int, np.ndarray] = {}

    def dataset_length(self, steps: int) -> int:
        """The dataset length that covers ``steps`` steps."""
        passes = (steps * self.batch + self.n - 1) // self.n + 1
        return self.n * passes

    def _perm(self, e: int) -> np.ndarray:
        if e not in self._perms:
            if len(self._perms) > 4:
                self._perms.pop(min(self._perms))
            self._perms[e] = np.random.default_rng([self.seed, e]).permutation(self.n)
        return self._perms[e]

    def global_batch(self, step: int) -> list[int]:
        """Dataset indices of the whole batch of 0-based ``step``."""
        out = []
        for p in range(step * self.batch, (step + 1) * self.batch):
            e, j = divmod(p, self.n)
            out.append(e * self.n + int(self._perm(e)[j]))
        return out

    def __iter__(self) -> Iterator[list[int]]:
        share = self.batch // self.world
        step = self.start
        while self.end is None or step < self.end:
            yield self.global_batch(step)[self.rank * share:(self.rank + 1) * share]
            step += 1

    def __len__(self) -> int:
        if self.end is None:
            raise TypeError("an endless StepSampler has no length")
        return max(0, self.end - self.start)


def first_batch(dataset: Dataset, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole (global) batch of a phase's first step as :meth:`PhaseRun.batches` serves it:
    ``(lr, hr)`` stacked on the CPU. ``seed`` is the phase's (:func:`phase_seed`), and ``dataset``
    must be made with it; its crops depend on the index only, so this is the training batch."""
    sampler = StepSampler(len(dataset), batch_size, seed=seed)
    items = [dataset[i] for i in sampler.global_batch(0)]
    return torch.stack([lr for lr, _ in items]), torch.stack([hr for _, hr in items])


def _leave_sigterm_to_the_trainer(worker_id: int) -> None:
    """DataLoader workers ignore SIGTERM. Slurm and ``kill -- -PGID`` signal every process
    of a job: a worker ended by it would stop the trainer with an error before
    :class:`GracefulStop` wrote its checkpoint. The trainer ends its workers itself, and
    they exit when it dies."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(dataset: Dataset, sampler: StepSampler, *, num_workers: int, pin_memory: bool) -> DataLoader:
    """A DataLoader over ``sampler``'s batches: workers prefetch, pinned memory for fast copies."""
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs = {"prefetch_factor": 4, "persistent_workers": False,
                  "worker_init_fn": _leave_sigterm_to_the_trainer}
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                      pin_memory=pin_memory, **kwargs)
