"""How many CPU threads torch uses, set for one block of code.

Much of gmgan's CPU work is many small operations: preparing a data set (thousands of small
resizes), the 2-D toy GANs, the tiny teaching networks. Splitting each operation between threads
gains little, and every operation pays for waking the others, which on a 2-core machine shared with
other jobs made such loops several times slower (``imresize`` of a 480x320 image: 19 ms with one
thread, 350 ms with two, on a busy machine). One thread also gives the same bits on machines with
different core counts.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)`` (None: unchanged), then restore the
    previous number of threads, also when the block raises."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
