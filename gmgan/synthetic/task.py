"""The synthetic x4 SR task: HR images of hard-edged structure plus a Gaussian texture.

    HR = structure + texture        (float RGB in [0, 1], N x 3 x n x n, n = 64)

* **structure**: a background colour and a few shapes with hard (not antialiased) edges,
  each of one RGB colour in [0.25, 0.75]: random convex polygons and straight bars
  (lines 1.5-3 px wide). They are drawn on the torus (a shape crossing the right border
  comes back on the left), so HR is periodic.
* **texture**: a stationary Gaussian random field of known spectrum
  (:mod:`gmgan.synthetic.texture`). HR is not clipped: with std 0.08 a pixel leaves
  [0, 1] only beyond 3.1 sigma (at most 9e-4 of the pixels, on the darkest and brightest
  colours), and clipping would make the degradation non-linear.
* **LR** = :func:`gmgan.synthetic.degradation.downscale` of HR (MATLAB bicubic x1/4,
  periodic borders, float).

Everything is seeded: image ``i`` of split ``split`` of a task with seed ``s`` is the
same on every machine (numpy's PCG64 from the key (s, split, i)).
:class:`TrainingStream` serves (LR, HR) training patches with fresh texture in every
batch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from gmgan.synthetic.degradation import SCALE, _check_size, downscale
from gmgan.synthetic.texture import (
    TextureBounds,
    TextureSpectrum,
    sample_texture,
    texture_bounds,
)

__all__ = ["SPLITS", "SyntheticSRTask", "TaskBatch", "TrainingStream"]

SPLITS = {"train": 0, "test": 1}

# --------------------------------------------------------------------------------------
# The structure: shapes with hard edges on the torus
# --------------------------------------------------------------------------------------


def _convex_polygon(rng: np.random.Generator, n: int) -> np.ndarray:
    """(V, 2) vertices (y, x) of a random convex polygon, counter-clockwise, 3..6
    vertices."""
    count = int(rng.integers(3, 7))
    centre = rng.uniform(0, n, 2)
    radius = rng.uniform(0.12, 0.3) * n
    angles = np.sort(rng.uniform(0, 2 * np.pi, count))
    stretch = rng.uniform(0.6, 1.0)
    return centre + radius * np.stack(
        [stretch * np.sin(angles), np.cos(angles)], axis=1
    )


def _bar(rng: np.random.Generator, n: int) -> np.ndarray:
    """(4, 2) vertices of a straight bar (a line 1.5..3 px wide, 0.3..0.8 n long)."""
    centre = rng.uniform(0, n, 2)
    angle = rng.uniform(0, np.pi)
    half_len, half_width = 0.5 * rng.uniform(0.3, 0.8) * n, 0.5 * rng.uniform(1.5, 3.0)
    along = np.array([np.sin(angle), np.cos(angle)])
    across = np.array([along[1], -along[0]])
    return centre + np.array(
        [
            s * half_len * along + t * half_width * across
            for s, t in ((-1, -1), (1, -1), (1, 1), (-1, 1))
        ]
    )


def _inside_convex(vertices: np.ndarray, n: int) -> np.ndarray:
    """Boolean (n, n): pixel centres inside the convex polygon, on the torus (hard
    edges)."""
    yy, xx = np.mgrid[0:n, 0:n] + 0.5
    inside = np.zeros((n, n), bool)
    edges = np.roll(vertices, -1, axis=0) - vertices
    for dy in (-n, 0, n):
        for dx in (-n, 0, n):
            py, px = yy + dy, xx + dx
            sides = [
                e[1] * (py - v[0]) - e[0] * (px - v[1]) for v, e in zip(vertices, edges)
            ]
            sides = np.stack(sides)
            inside |= np.all(sides <= 0, axis=0) | np.all(sides >= 0, axis=0)
    return inside


def _structure(
    rng: np.random.Generator, n: int, shapes: tuple[int, int], bars: tuple[int, int]
) -> np.ndarray:
    """(3, n, n) float64: background plus shapes and bars, each one colour in [0.25,
    0.75]."""
    image = np.empty((3, n, n))
    image[:] = rng.uniform(0.25, 0.75, 3)[:, None, None]
    outlines = [
        _convex_polygon(rng, n)
        for _ in range(int(rng.integers(shapes[0], shapes[1] + 1)))
    ]
    outlines += [_bar(rng, n) for _ in range(int(rng.integers(bars[0], bars[1] + 1)))]
    for vertices in outlines:
        mask = _inside_convex(vertices, n)
        image[:, mask] = rng.uniform(0.25, 0.75, 3)[:, None]
    return image


# --------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskBatch:
    """Images of the task, float32 tensors in [0, 1] (HR not clipped, see the module
    docstring).

    hr (N, 3, n, n) = structure + texture (texture broadcast over RGB); lr (N, 3, n/4,
    n/4); structure (N, 3, n, n); texture (N, 1, n, n) (zero mean, not in [0, 1]).
    """

    hr: torch.Tensor
    lr: torch.Tensor
    structure: torch.Tensor
    texture: torch.Tensor

    def __len__(self) -> int:
        return self.hr.shape[0]


@dataclass(frozen=True)
class SyntheticSRTask:
    """The synthetic x4 SR task (module docstring): n x n HR images, seeded.

    Args:
        size: HR side n in pixels (multiple of 4).
        spectrum: the texture's spectrum (:class:`TextureSpectrum`); std 0 gives
            structure only.
        shapes: (min, max) number of convex polygons per image.
        bars: (min, max) number of straight bars per image.
        seed: the task's seed; images are keyed by (seed, split, index).
    """

    size: int = 64
    spectrum: TextureSpectrum = TextureSpectrum()  # noqa: RUF009 (frozen)
    shapes: tuple[int, int] = (2, 4)
    bars: tuple[int, int] = (1, 3)
    seed: int = 0

    def __post_init__(self) -> None:
        _check_size(self.size)
        for name in ("shapes", "bars"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(
                    f"SyntheticSRTask.{name} must be (min, max) with 0 <= min <= max, "
                    f"got {getattr(self, name)!r}"
                )

    def _rng(self, split: str, index: int) -> np.random.Generator:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        if index < 0:
            raise ValueError(f"image index must be >= 0, got {index}")
        return np.random.default_rng([self.seed, SPLITS[split], int(index)])

    def image(self, split: str, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image ``index`` of ``split``: (structure (3, n, n), texture (n, n)),
        float64."""
        rng = self._rng(split, index)
        structure = _structure(rng, self.size, self.shapes, self.bars)
        texture = sample_texture(self.spectrum, self.size, rng)
        return structure, texture

    def batch(self, split: str, indices) -> TaskBatch:
        """The images ``indices`` (an iterable of ints) of ``split`` as a
        :class:`TaskBatch`."""
        parts = [self.image(split, int(i)) for i in indices]
        if not parts:
            raise ValueError("batch: no indices given")
        structure = np.stack([p[0] for p in parts])
        texture = np.stack([p[1] for p in parts])[:, None]
        hr = structure + texture
        lr = downscale(hr)
        as_t = functools.partial(torch.as_tensor, dtype=torch.float32)
        return TaskBatch(as_t(hr), as_t(lr), as_t(structure), as_t(texture))

    def bounds(self, cutoff: float = 0.25) -> TextureBounds:
        """:func:`texture_bounds` of this task's texture."""
        return texture_bounds(self.spectrum, self.size, cutoff)


# --------------------------------------------------------------------------------------
# Training data: a pool of structures, fresh texture in every batch
# --------------------------------------------------------------------------------------


class TrainingStream:
    """An endless, seeded stream of (LR, HR) training patches of a
    :class:`SyntheticSRTask`.

    Drawing shapes is the slow part (~10 ms an image), so ``pool`` structures of the
    task's "train" split are drawn once; every batch takes ``batch_size`` of them,
    shifts each cyclically by a random multiple of 4 pixels (the degradation commutes
    with that), adds a fresh texture and crops the top-left ``patch`` x ``patch`` HR
    pixels and the matching LR ones. LR is downscale(structure) + downscale(texture),
    the same as downscale(HR) (it is linear).

    ``next(stream)`` -> (lr (B, 3, patch/4, patch/4), hr (B, 3, patch, patch)), float32.
    """

    def __init__(
        self,
        task: SyntheticSRTask,
        *,
        batch_size: int = 16,
        patch: int = 32,
        pool: int = 128,
        seed: int = 0,
    ) -> None:
        if patch % SCALE or not SCALE <= patch <= task.size:
            raise ValueError(
                f"patch must be a multiple of {SCALE} up to {task.size}, got {patch}"
            )
        self.task, self.batch_size, self.patch = task, batch_size, patch
        self.structure = np.stack([task.image("train", i)[0] for i in range(pool)])
        self.rng = np.random.default_rng([task.seed, 7, seed])

    def __iter__(self) -> TrainingStream:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        n, m, p = self.task.size, self.task.size // SCALE, self.patch
        picks = self.rng.integers(0, len(self.structure), self.batch_size)
        texture = sample_texture(self.task.spectrum, n, self.rng, count=self.batch_size)
        hr = self.structure[picks] + texture[:, None]
        shifts = self.rng.integers(0, m, (self.batch_size, 2))
        hr = np.stack(
            [
                np.roll(img, tuple(SCALE * shift), axis=(1, 2))
                for img, shift in zip(hr, shifts)
            ]
        )
        lr = downscale(hr)
        # The crop's LR pixels see up to 9 HR pixels beyond it: those lie outside the HR
        # patch, as they do for patches cut from any larger training image.
        hr, lr = hr[..., :p, :p], lr[..., : p // SCALE, : p // SCALE]
        return (
            torch.as_tensor(lr, dtype=torch.float32),
            torch.as_tensor(hr, dtype=torch.float32),
        )

