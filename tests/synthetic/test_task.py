"""gmgan.synthetic.task: seeded images and training patches."""

from __future__ import annotations

import pytest
import torch

from gmgan import synthetic as S

SPECTRUM = S.TextureSpectrum(peak=0.2, width=0.06, std=0.06)

def test_task_images_are_seeded_and_consistent():
    task = S.SyntheticSRTask(size=32, spectrum=SPECTRUM, seed=3)
    a, b = task.batch("test", [0, 1]), task.batch("test", [0, 1])
    torch.testing.assert_close(a.hr, b.hr)
    assert not torch.equal(a.hr, task.batch("train", [0, 1]).hr)
    assert (
        a.hr.shape == (2, 3, 32, 32)
        and a.lr.shape == (2, 3, 8, 8)
        and a.texture.shape == (2, 1, 32, 32)
    )
    torch.testing.assert_close(a.hr, a.structure + a.texture)
    torch.testing.assert_close(a.lr, S.downscale(a.hr.double()).float())
    # Structure: a few constant colours in [0.25, 0.75] with hard edges.
    assert 0.25 <= a.structure.min() and a.structure.max() <= 0.75
    assert len(torch.unique(a.structure[0].reshape(3, -1), dim=1).T) <= 1 + 4 + 3
    with pytest.raises(ValueError, match="split"):
        task.batch("val", [0])


def test_training_stream_patches_are_consistent_and_seeded():
    task = S.SyntheticSRTask(size=32, spectrum=SPECTRUM)
    stream = S.TrainingStream(task, batch_size=3, patch=16, pool=4, seed=1)
    lr, hr = next(stream)
    assert (
        lr.shape == (3, 3, 4, 4)
        and hr.shape == (3, 3, 16, 16)
        and lr.dtype == torch.float32
    )
    again = S.TrainingStream(task, batch_size=3, patch=16, pool=4, seed=1)
    torch.testing.assert_close(next(again)[1], hr)
    with pytest.raises(ValueError, match="patch"):
        S.TrainingStream(task, patch=18)


