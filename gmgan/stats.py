"""Comparing two models as the field expects: the seed is the unit of replication.

A training run is one draw of a recipe: its seed fixes the initial weights and the order of
the patches, and two seeds of one recipe differ by about as much as two recipes often do
(notebook 07). So a claim about a *recipe* ("l_Q lowers GMSD") is tested over seeds, and a
comparison is paired: model B of seed s is compared with model A of the same seed (the same
parent, the same patches), image by image (the same test images).

:func:`paired_comparison` reports, for B - A:

* the **effect**: the mean difference over seeds and images, with the mean difference of
  each seed beside it (do the seeds agree in sign?);
* a **seed-level** interval and p-value: Student's t over the per-seed mean differences
  (the paired t-test of the recipes; needs 2 seeds or more). This is the test of the
  recipe;
* an **image-level** interval: Student's t over the test images of the difference averaged
  over seeds. It says how precisely these seeds' models are compared on these images, not
  whether another seed would agree; with one seed it is all there is.

"Within chance" (an interval that contains 0) is not "no effect": :meth:`PairedComparison.
summary` says how large the effect is and whether every seed agrees in sign.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PairedComparison", "bootstrap_interval", "paired_comparison", "t_interval"]


def _scipy_stats():
    # Deferred: scipy.stats takes about 2 s to import beside torch on a busy 2-core CPU,
    # and gmgan.evaluate (imported by the trainer) only needs it when a comparison is made.
    import scipy.stats

    return scipy.stats


def t_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student's t interval of the mean of ``values`` (1-D, at least
    2, e.g. one paired difference per seed)."""
    x = np.asarray(values, np.float64).ravel()
    if x.size < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"t_interval: need at least 2 finite values, got {x.size}")
    half = _scipy_stats().t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1)
    half /= np.sqrt(x.size)
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def bootstrap_interval(
    values, level: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap interval of the mean of ``values``,
    resampling the last axis (the images) and averaging over the rest (the seeds).

    ``values``: (images,) or (seeds, images), e.g. paired differences per seed and
    image. Seeded: the same interval at every call.
    """
    x = np.asarray(values, np.float64)
    x = x.reshape(-1, x.shape[-1]).mean(axis=0) if x.ndim > 1 else x
    if x.size < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"bootstrap_interval: need at least 2 finite values, "
                         f"got {x.size}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, (resamples, x.size))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(x.mean()), float(low), float(high)


@dataclass(frozen=True)
class PairedComparison:
    """B - A, paired by seed and image (see the module doc). Units: the metric's.

    Attributes:
        difference: mean of B - A over seeds and images.
        seed_differences: the mean of B - A of each seed, in seed order.
        seed_interval: (low, high), the t interval over seeds at ``level``; None with
            one seed.
        p_value: two-sided p of the paired t-test over seeds (H0: the recipes do not
            differ on average); None with one seed.
        image_interval: (low, high), the t interval over images of B - A averaged over
            the seeds, at ``level``.
        n_seeds, n_images: how many of each the comparison used.
        level: the confidence level of both intervals (0.95).
    """

    difference: float
    seed_differences: tuple[float, ...]
    seed_interval: tuple[float, float] | None
    p_value: float | None
    image_interval: tuple[float, float]
    n_seeds: int
    n_images: int
    level: float = 0.95

    @property
    def seeds_agree(self) -> bool:
        """Every seed's mean difference has the sign of the overall difference."""
        sign = np.sign(self.difference)
        return bool(sign != 0 and all(np.sign(d) == sign for d in self.seed_differences))

    @property
    def established(self) -> bool:
        """The seed-level interval excludes 0 (so the recipe's effect is established at
        ``level``); False with one seed, where it cannot be."""
        return self.seed_interval is not None and (
            self.seed_interval[0] > 0 or self.seed_interval[1] < 0)

    def summary(self, digits: int = 2, unit: str = "") -> str:
        """One line for a table or a report, e.g. ``"-0.21 [-0.35, -0.07] over 3 seeds
        (p = 0.02; every seed lower); images [-0.29, -0.13]"``."""
        unit = f" {unit}" if unit else ""

        def f(v: float) -> str:
            return f"{v:+.{digits}f}"

        text = f"{f(self.difference)}{unit}"
        if self.seed_interval is not None:
            low, high = self.seed_interval
            agree = ("every seed " + ("higher" if self.difference > 0 else "lower")
                     if self.seeds_agree else "seeds differ in sign")
            text += (f" [{f(low)}, {f(high)}] over {self.n_seeds} seeds "
                     f"(p = {self.p_value:.2g}; {agree})")
        else:
            text += " (one seed)"
        low, high = self.image_interval
        return text + f"; images [{f(low)}, {f(high)}]"


def paired_comparison(a, b, level: float = 0.95) -> PairedComparison:
    """B - A for two models scored on the same images with the same seeds.

    Args:
        a, b: scores of shape (seeds, images) (or (images,) for one seed): ``a[s, i]``
            and ``b[s, i]`` are the scores of seed s's models on image i, so that row s of
            B was trained from the parent of row s of A (or with the same patches).
        level: confidence level of the intervals.

    Returns:
        A :class:`PairedComparison`.

    Raises:
        ValueError: shapes differ, fewer than 2 images, or a score is not finite (the
            message says which).
    """
    a = np.atleast_2d(np.asarray(a, np.float64))
    b = np.atleast_2d(np.asarray(b, np.float64))
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"paired_comparison: a and b must have one shape (seeds, "
                         f"images), got {a.shape} and {b.shape}")
    if a.shape[1] < 2:
        raise ValueError(f"paired_comparison: need at least 2 images, got {a.shape[1]}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("paired_comparison: scores must be finite (NaN or inf found)")
    diff = b - a
    per_seed = diff.mean(axis=1)
    seed_interval = p_value = None
    if diff.shape[0] >= 2:
        _, low, high = t_interval(per_seed, level)
        seed_interval = (low, high)
        if np.all(per_seed == per_seed[0]):  # no spread: t is undefined
            p_value = 0.0 if per_seed[0] != 0 else 1.0
        else:
            p_value = float(_scipy_stats().ttest_1samp(per_seed, 0.0).pvalue)
    _, low, high = t_interval(diff.mean(axis=0), level)
    return PairedComparison(
        difference=float(diff.mean()),
        seed_differences=tuple(float(d) for d in per_seed),
        seed_interval=seed_interval,
        p_value=p_value,
        image_interval=(low, high),
        n_seeds=diff.shape[0],
        n_images=diff.shape[1],
        level=level,
    )
