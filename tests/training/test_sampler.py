"""The step-indexed data order (gmgan.training.sampler)."""
from __future__ import annotations

import numpy as np
import torch

from gmgan.training.sampler import StepSampler, phase_seed, step_seed


def test_step_sampler_is_a_pure_function_of_seed_and_step():
    full = list(StepSampler(10, 4, seed=3, start=0, end=8))
    assert list(StepSampler(10, 4, seed=3, start=5, end=8)) == full[5:]
    assert list(StepSampler(10, 4, seed=4, start=0, end=8)) != full
    stream = np.concatenate(full)  # 32 positions = passes 0, 1, 2 (partly) over 10 images
    for e in range(3):
        chunk = stream[10 * e:10 * (e + 1)]
        assert sorted(chunk // 10) == [e] * len(chunk)  # pass e uses indices e*10 .. e*10+9
        assert sorted(chunk % 10) == sorted(set(chunk % 10))  # each image at most once per pass
    assert sorted(stream[:10] % 10) == list(range(10))
    halves = [list(StepSampler(10, 4, seed=3, start=0, end=8, rank=r, world_size=2)) for r in (0, 1)]
    assert [a + b for a, b in zip(*halves)] == full
    assert StepSampler(10, 4).dataset_length(8) >= 10 * 3 + 10


def test_seeds_are_pure_functions_of_their_arguments():
    assert phase_seed(3, "pretrain") == 6 and phase_seed(3, "gan") == 7
    first = step_seed(0, "gan", 5)
    assert first == step_seed(0, "gan", 5) and 0 <= first < 2**63
    others = {step_seed(0, "gan", 6), step_seed(0, "pretrain", 5),
              step_seed(0, "gan", 5, 1), step_seed(1, "gan", 5)}
    assert len(others) == 4 and first not in others
    torch.manual_seed(step_seed(0, "gan", 5))  # a valid torch seed
