"""gmgan.stats against scipy's own tests and intervals."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from gmgan.stats import bootstrap_interval, paired_comparison, t_interval


def test_t_interval_matches_scipy():
    values = [0.3, -0.1, 0.5, 0.2]
    mean, low, high = t_interval(values)
    ref = scipy.stats.t.interval(
        0.95, 3, loc=np.mean(values), scale=scipy.stats.sem(values)
    )
    assert mean == pytest.approx(0.225)
    assert (low, high) == pytest.approx(ref)
    with pytest.raises(ValueError, match="at least 2"):
        t_interval([1.0])


def test_bootstrap_interval_covers_like_the_normal_interval():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, 400)
    mean, low, high = bootstrap_interval(x)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert mean == pytest.approx(x.mean())
    assert low == pytest.approx(mean - half, abs=0.03)
    assert high == pytest.approx(mean + half, abs=0.03)
    assert bootstrap_interval(x) == (mean, low, high)  # seeded
    # (seeds, images): averaged over the seeds, resampled over the images.
    two = np.stack([x, x + 1.0])
    assert bootstrap_interval(two)[0] == pytest.approx(x.mean() + 0.5)


def _scores(seeds=4, images=30, effect=-0.2, seed_sd=0.1, image_sd=0.5, rng=0):
    """A (seeds, images) score of model A, and B = A + a seed effect + image noise."""
    g = np.random.default_rng(rng)
    a = 7.0 + g.normal(0, 1.0, (seeds, images))
    b = a + effect + g.normal(0, seed_sd, (seeds, 1)) + g.normal(0, image_sd, a.shape)
    return a, b


def test_paired_comparison_is_scipys_paired_t_test_over_seeds():
    a, b = _scores()
    c = paired_comparison(a, b)
    seed_a, seed_b = a.mean(axis=1), b.mean(axis=1)
    assert c.difference == pytest.approx((b - a).mean())
    assert c.seed_differences == pytest.approx(tuple(seed_b - seed_a))
    assert c.p_value == pytest.approx(scipy.stats.ttest_rel(seed_b, seed_a).pvalue)
    d = seed_b - seed_a
    ref = scipy.stats.t.interval(0.95, d.size - 1, loc=d.mean(), scale=scipy.stats.sem(d))
    assert c.seed_interval == pytest.approx(ref)
    per_image = (b - a).mean(axis=0)
    ref = scipy.stats.t.interval(
        0.95, per_image.size - 1, loc=per_image.mean(), scale=scipy.stats.sem(per_image)
    )
    assert c.image_interval == pytest.approx(ref)
    assert (c.n_seeds, c.n_images) == (4, 30)


def test_a_clear_effect_is_established_and_said_so():
    c = paired_comparison(*_scores(effect=-0.5, seed_sd=0.05))
    assert c.established and c.seeds_agree and c.p_value < 0.01
    text = c.summary()
    assert text.startswith(f"{c.difference:+.2f} [") and "every seed lower" in text
    assert "over 4 seeds" in text and "; images [" in text


def test_seeds_that_disagree_are_not_an_established_effect():
    a = np.zeros((3, 10))
    b = a + np.array([[0.3], [-0.2], [0.25]])  # the seeds disagree in sign
    b = b + np.linspace(-0.01, 0.01, 10)
    c = paired_comparison(a, b)
    assert not c.seeds_agree and not c.established
    assert "seeds differ in sign" in c.summary()
    # the image-level interval is tight here: precise about these models, silent about
    # the recipe
    assert c.image_interval[0] > 0


def test_one_seed_gives_the_image_interval_only():
    a, b = _scores(seeds=1)
    c = paired_comparison(a[0], b[0])
    assert c.n_seeds == 1 and c.seed_interval is None and c.p_value is None
    assert not c.established and c.summary().count("one seed") == 1


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="one shape"):
        paired_comparison(np.zeros((2, 5)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="at least 2 images"):
        paired_comparison(np.zeros((2, 1)), np.zeros((2, 1)))
    b = np.zeros((2, 5))
    b[1, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        paired_comparison(np.zeros((2, 5)), b)
