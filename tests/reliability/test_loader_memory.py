"""The training loader runs in bounded memory however large the training set is.

A synthetic set of 120 HR images of 480 x 480 (the size of the paper's DIV2K sub-images; 88 MB
decoded with their LR images) is read for two passes by two DataLoader workers, in the trainer's
data order (:class:`gmgan.training.StepSampler`, :func:`gmgan.training.make_loader`). The
construction scan reads headers only, as for DIV2K (the set is made to count as large), so every
image is decoded in a worker. Each worker reports its private resident memory with every patch
(USS: ``Private_Clean + Private_Dirty`` in /proc/self/smaps_rollup, the pages no other process
shares); its growth over the run is the memory the worker kept. Not RSS or RssAnon: a forked
worker reuses the free heap it inherits from a long-running parent (pytest after other tests),
pages that already count as resident, so those would not grow however much the worker caches.

With a cache budget of 16 MiB (8 MiB per worker) the growth stays under 8 MiB + 24 MiB of slack
(the image being decoded, PIL's and the allocator's buffers). The same run with an unbounded
cache (what PatchPairs did before: every decoded image kept for good) grows past that bound,
which shows that the measurement sees the cache.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

from gmgan.data import pairs
from gmgan.data.pairs import PatchPairs
from gmgan.imageio import write_image
from gmgan.training import StepSampler, make_loader

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps_rollup")]

N_IMAGES, SIDE, SCALE = 120, 480, 4
BUDGET = 16 << 20  # bytes, both workers together
SLACK = 24 << 20  # bytes per worker beyond its share of the budget
WORKERS, BATCH = 2, 8


def _private_bytes() -> int:
    """This process's private resident memory (USS), in bytes."""
    total = 0
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1]) * 1024
    return total


class MeasuredPairs(PatchPairs):
    """PatchPairs whose items also carry (pid, private bytes) of the process that made them."""

    def __getitem__(self, index):
        lr, hr = super().__getitem__(index)
        return lr, hr, torch.tensor([os.getpid(), _private_bytes()], dtype=torch.int64)


@pytest.fixture(scope="module")
def large_set(tmp_path_factory):
    """120 smooth, distinct 480 x 480 PNGs and their 120 x 120 LR images (fast to write)."""
    root = tmp_path_factory.mktemp("large")
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    for i in range(N_IMAGES):
        hr = np.stack([(x * (1 + i % 7) + y) % 256, (y * (1 + i % 5) + 3 * i) % 256,
                       (x + y + 11 * i) % 256], axis=-1).astype(np.uint8)
        write_image(root / "HR" / f"{i:03d}.png", hr)
        write_image(root / "LR" / f"{i:03d}.png", hr[::SCALE, ::SCALE])
    return root / "HR", root / "LR"


def _growth_per_worker(hr_dir, lr_dir, cache_bytes: int) -> dict[int, int]:
    """Bytes of private memory each worker gained from its first patch to its peak, over two
    passes."""
    ds = MeasuredPairs(hr_dir, lr_dir, patch_size=64, scale=SCALE, seed=0, cache_bytes=cache_bytes)
    steps = 2 * N_IMAGES // BATCH
    sampler = StepSampler(len(ds), BATCH, seed=0, end=steps)
    ds.length = sampler.dataset_length(steps)
    first: dict[int, int] = {}
    peak: dict[int, int] = {}
    for _, _, memory in make_loader(ds, sampler, num_workers=WORKERS, pin_memory=False):
        for pid, private in memory.tolist():
            first.setdefault(pid, private)
            peak[pid] = max(peak.get(pid, 0), private)
    assert len(first) == WORKERS and os.getpid() not in first
    return {pid: peak[pid] - first[pid] for pid in first}


def test_loader_memory_stays_within_the_cache_budget(large_set, monkeypatch):
    monkeypatch.setattr(pairs, "_DECODE_BUDGET_PX", 0)  # a large set: the scan reads headers only
    decoded = N_IMAGES * 3 * SIDE * SIDE * (1 + 1 / SCALE**2)
    bound = BUDGET // WORKERS + SLACK
    bounded = _growth_per_worker(*large_set, cache_bytes=BUDGET)
    unbounded = _growth_per_worker(*large_set, cache_bytes=10 * int(decoded))
    mib = {k: {pid: f"{v / 2**20:.1f} MiB" for pid, v in d.items()}
           for k, d in (("bounded", bounded), ("unbounded", unbounded))}
    print(f"set {decoded / 2**20:.0f} MiB decoded; bound per worker {bound / 2**20:.0f} MiB; "
          f"growth of private memory {mib}")
    assert max(bounded.values()) <= bound, mib
    assert max(unbounded.values()) > bound, mib  # the measurement sees an unbounded cache
