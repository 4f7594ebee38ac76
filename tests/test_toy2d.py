"""Tests of gmgan.toy2d: the geometry of the three toy data sets (checked against centres and a
spiral written out here, not taken from the module), the WGAN-GP penalty's effect on the critic's
gradient norms compared with weight clipping, and the use of gmgan.losses.gradient_penalty."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import gmgan.losses
from gmgan import toy2d


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# Samplers
# ---------------------------------------------------------------------------------------------


# gan_toy.py of Gulrajani et al.: 8 modes of std 0.02 on a circle of radius 2, then / 1.414;
# 25 modes of std 0.05 on the grid {-4, -2, 0, 2, 4}^2, then / 2.828.
RADIUS, RING_STD = 2 / 1.414, 0.02 / 1.414
SPACING, GRID_STD = 2 / 2.828, 0.05 / 2.828


def test_8gaussians_on_a_circle_as_in_gan_toy():
    n = 16_000
    pts = toy2d.sample_8gaussians(n, generator=_gen())
    assert pts.shape == (n, 2) and pts.dtype == torch.float32
    # Modes at angles 0, 45, ..., 315 degrees (written out independently of the module).
    angles = [k * math.pi / 4 for k in range(8)]
    centres = torch.tensor([[RADIUS * math.cos(a), RADIUS * math.sin(a)] for a in angles])
    dist, which = torch.cdist(pts, centres).min(dim=1)
    assert dist.max() < 6 * RING_STD  # every point sits on one of the 8 narrow modes
    counts = torch.bincount(which, minlength=8).float()
    assert (counts - n / 8).abs().max() < 5 * math.sqrt(n / 8)  # equally likely modes
    for k in range(8):
        cluster = pts[which == k]
        assert torch.allclose(cluster.mean(0), centres[k], atol=0.004)
        assert cluster.std(0).tolist() == pytest.approx([RING_STD, RING_STD], rel=0.1)
    assert pts.norm(dim=1).mean().item() == pytest.approx(1.4144, abs=0.002)
    assert torch.allclose(toy2d.mode_centres("8gaussians"), centres, atol=1e-6)


def test_25gaussians_on_a_grid_as_in_gan_toy():
    n = 25_000
    pts = toy2d.sample_25gaussians(n, generator=_gen(1))
    cell = (pts / SPACING).round()  # the nearest grid point, in units of the spacing
    assert cell.min() == -2 and cell.max() == 2
    offsets = pts - SPACING * cell
    assert offsets.abs().max() < 6 * GRID_STD
    assert offsets.std(0).tolist() == pytest.approx([GRID_STD, GRID_STD], rel=0.05)
    index = ((cell[:, 1] + 2) * 5 + (cell[:, 0] + 2)).long()
    counts = torch.bincount(index, minlength=25).float()
    assert counts.numel() == 25 and (counts - n / 25).abs().max() < 5 * math.sqrt(n / 25)
    grid = {(x, y) for x in range(-2, 3) for y in range(-2, 3)}
    centres = toy2d.mode_centres("25gaussians") / SPACING
    assert {tuple(c) for c in centres.round().int().tolist()} == grid
    assert torch.allclose(centres, centres.round(), atol=1e-5)


def test_swissroll_follows_the_spiral():
    n = 20_000
    pts = toy2d.sample_swissroll(n, generator=_gen(2))
    r = pts.norm(dim=1)
    theta = torch.atan2(pts[:, 1], pts[:, 0])
    # Spiral (t cos t, t sin t) / 7.5 with t in [1.5 pi, 4.5 pi]: radius t / 7.5 in [0.63, 1.88],
    # mean radius E[t] / 7.5 = 3 pi / 7.5 (noise 0.25 / 7.5 barely changes it).
    assert r.mean().item() == pytest.approx(3 * math.pi / 7.5, abs=0.01)
    assert r.quantile(0.01).item() > 1.5 * math.pi / 7.5 - 0.1
    assert r.quantile(0.99).item() < 4.5 * math.pi / 7.5 + 0.1
    # The angle of each point matches the angle its radius implies (mod 2 pi), up to the noise:
    # the cloud is a spiral, not a ring or a disc.
    t = 7.5 * r
    mismatch = torch.remainder(t - theta + math.pi, 2 * math.pi) - math.pi
    assert (mismatch.abs() < 0.6).float().mean() > 0.95
    # A ring with the same radii but random angles would fail that test.
    random_theta = 2 * math.pi * torch.rand(n, generator=_gen(3))
    ring = torch.remainder(t - random_theta + math.pi, 2 * math.pi) - math.pi
    assert (ring.abs() < 0.6).float().mean() < 0.3


def test_sampler_errors_and_reproducibility():
    a = toy2d.sample_toy("swissroll", 10, generator=_gen(5))
    b = toy2d.sample_toy("swissroll", 10, generator=_gen(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="unknown toy data set"):
        toy2d.sample_toy("moons", 10)
    with pytest.raises(ValueError, match="positive"):
        toy2d.sample_8gaussians(0)
    with pytest.raises(ValueError, match="no modes"):
        toy2d.mode_centres("swissroll")


# ---------------------------------------------------------------------------------------------
# Diagnostics against closed forms
# ---------------------------------------------------------------------------------------------


def test_grad_norms_and_penalty_of_a_linear_critic():
    """D(x) = w . x + b has gradient w everywhere: norms |w|, penalty lam (|w| - 1)^2."""
    critic = nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))  # |w| = 5
    real, fake = torch.randn(64, 2, generator=_gen()), torch.randn(64, 2, generator=_gen(1))
    norms = toy2d.critic_grad_norms(critic, real, fake, generator=_gen())
    assert torch.allclose(norms, torch.full((64,), 5.0))
    gp = gmgan.losses.gradient_penalty(critic, real, fake, lam=10.0)
    assert gp.item() == pytest.approx(10 * (5 - 1) ** 2)


def test_grad_norms_at_the_points_gradient_penalty_uses():
    """Same generator seed -> same interpolates: lam * mean((norm - 1)^2) equals the penalty."""
    torch.manual_seed(0)
    critic = toy2d.ToyCritic(hidden=16, depth=2)
    real, fake = torch.randn(32, 2, generator=_gen(1)), torch.randn(32, 2, generator=_gen(2))
    norms = toy2d.critic_grad_norms(critic, real, fake, generator=_gen(7))
    gp = gmgan.losses.gradient_penalty(critic, real, fake, lam=3.0, generator=_gen(7))
    assert gp.item() == pytest.approx(3.0 * ((norms - 1) ** 2).mean().item(), rel=1e-5)


def test_critic_on_grid_orientation():
    critic = nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[1.0, 10.0]]))
        critic.bias.zero_()
    xs, ys, values = toy2d.critic_on_grid(critic, extent=2.0, n=5)
    assert values.shape == (5, 5)
    assert values[0, 4] == pytest.approx(xs[4] + 10 * ys[0])  # values[i, j] = D(xs[j], ys[i])


def test_mode_coverage():
    centres = toy2d.mode_centres("8gaussians")
    pts = torch.cat([centres[:3].repeat(10, 1), torch.zeros(10, 2)])  # 3 modes hit, 10 points off
    modes, good = toy2d.mode_coverage(pts, "8gaussians")
    assert modes == 3 and good == pytest.approx(30 / 40)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

SHORT = {"steps": 12, "seed": 0, "batch_size": 128, "hidden": 64, "n_eval": 512}


def test_gradient_penalty_brings_norms_to_one_where_clipping_does_not():
    clipped = toy2d.train_toy_gan("wgan-clip", "8gaussians", lr=5e-4, **SHORT)
    penalised = toy2d.train_toy_gan("wgan-gp", "8gaussians", lr=1e-3, **SHORT)
    dev_clip = (clipped.grad_norms - 1).abs().mean().item()
    dev_gp = (penalised.grad_norms - 1).abs().mean().item()
    assert dev_gp < 0.3 and dev_gp < 0.3 * dev_clip
    # Clipping bounds the critic's Lipschitz constant far below 1 (all weights in [-0.01, 0.01]).
    assert clipped.grad_norms.max() < 0.01
    assert all(p.abs().max() <= 0.01 for p in clipped.critic.parameters())
    assert len(penalised.history["gp"]) == SHORT["steps"] and penalised.history["gp"][-1] > 0


def test_wgan_gp_calls_the_package_penalty(monkeypatch):
    calls = []
    real_penalty = gmgan.losses.gradient_penalty

    def spy(critic, real, fake, lam=10.0, generator=None):
        calls.append(lam)
        return real_penalty(critic, real, fake, lam=lam, generator=generator)

    monkeypatch.setattr(toy2d, "gradient_penalty", spy)
    toy2d.train_toy_gan("wgan-gp", "swissroll", steps=2, n_critic=3, lam=0.5, hidden=8, n_eval=16)
    assert calls == [0.5] * 6
    toy2d.train_toy_gan("wgan-clip", "swissroll", steps=2, hidden=8, n_eval=16)
    assert len(calls) == 6  # no penalty for clipping


def test_training_is_reproducible_and_checks_arguments():
    kw = {"steps": 3, "hidden": 8, "n_eval": 32, "seed": 4}
    a = toy2d.train_toy_gan("vanilla", "25gaussians", **kw)
    b = toy2d.train_toy_gan("vanilla", "25gaussians", **kw)
    assert torch.equal(a.fake, b.fake) and a.history == b.history
    assert a.fake.shape == (32, 2) and a.grad_norms.shape == (32,)
    assert torch.get_num_threads() >= 1
    with pytest.raises(ValueError, match="kind"):
        toy2d.train_toy_gan("lsgan")
    with pytest.raises(ValueError, match="data set"):
        toy2d.train_toy_gan("wgan-gp", "moons")
    with pytest.raises(ValueError, match="steps"):
        toy2d.train_toy_gan("wgan-gp", steps=-1)


def test_snapshots_do_not_change_the_training():
    kw = {"steps": 4, "hidden": 8, "n_eval": 16, "seed": 3}
    plain = toy2d.train_toy_gan("wgan-gp", "8gaussians", **kw)
    watched = toy2d.train_toy_gan("wgan-gp", "8gaussians", checkpoints=(0, 2, 4), **kw)
    assert plain.history == watched.history and plain.snapshots == {}
    assert sorted(watched.snapshots) == [0, 2, 4]
    assert not torch.equal(watched.snapshots[0], watched.snapshots[4])
    # the last snapshot is the trained generator on its fixed noise batch
    noise = torch.randn(16, 2, generator=torch.Generator().manual_seed(3 + 7919))
    with torch.no_grad():
        assert torch.equal(watched.snapshots[4], watched.generator(noise))
    with pytest.raises(ValueError, match="checkpoints"):
        toy2d.train_toy_gan("wgan-gp", "8gaussians", checkpoints=(5,), **kw)


def test_train_all_writes_what_load_results_reads(tmp_path):
    result = toy2d.train_all(tmp_path, seeds=(0, 1), steps=2, every=1, hidden=8, n_eval=32,
                             datasets=("8gaussians", "swissroll"), kinds=("wgan-gp",))
    metrics, samples = toy2d.load_results(tmp_path)
    assert metrics == result
    assert sorted(samples) == [(d, "wgan-gp", s) for d in ("8gaussians", "swissroll")
                               for s in (0, 1)]
    assert metrics["settings"]["lam"] == 0.1 and metrics["settings"]["lr"]["wgan-gp"] == 1e-3
    run = metrics["runs"][0]
    assert [c["step"] for c in run["curve"]] == [0, 1, 2]
    ref = toy2d.sample_toy("8gaussians", 32, generator=torch.Generator().manual_seed(12345))
    final = samples["8gaussians", "wgan-gp", 0]
    assert final.shape == (32, 2) and final.dtype == torch.float32
    assert run["curve"][-1] == {"step": 2, **toy2d.toy_scores(final, "8gaussians", ref)}
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        toy2d.load_results(tmp_path / "nothing")


def test_final_scores_keeps_complete_seeds_and_mean_interval():
    def run(data, kind, seed, energy):
        return {"data": data, "kind": kind, "seed": seed,
                "curve": [{"step": 0, "energy": 9.0}, {"step": 5, "energy": energy}]}

    metrics = {"runs": [run("swissroll", "a", 0, 1.0), run("swissroll", "b", 0, 2.0),
                        run("swissroll", "a", 1, 3.0), run("swissroll", "b", 1, 4.0),
                        run("swissroll", "a", 2, 5.0)]}  # seed 2 lacks kind "b"
    table = toy2d.final_scores(metrics)
    assert table == {("swissroll", "a", "energy"): [1.0, 3.0],
                     ("swissroll", "b", "energy"): [2.0, 4.0]}
    # values 1, 2, 3: mean 2, sd 1, t_{0.975, 2} = 4.303 (statistical tables)
    mean, half = toy2d.mean_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 / math.sqrt(3), rel=1e-3)
    with pytest.raises(ValueError, match="at least 2"):
        toy2d.mean_interval([1.0])


def test_thread_setting_is_restored():
    before = torch.get_num_threads()
    toy2d.train_toy_gan("wgan-clip", "8gaussians", steps=1, hidden=8, n_eval=8)
    assert torch.get_num_threads() == before


def test_networks_start_as_in_gan_toy():
    """He-uniform ReLU layers, a Glorot-uniform last layer, zero biases (tflib's 'he' and
    default initialisations): the weights' standard deviations match those formulas."""
    torch.manual_seed(0)
    critic = toy2d.ToyCritic(hidden=512, depth=3)
    linears = [m for m in critic.net if isinstance(m, nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(512, 2), (512, 512), (512, 512), (1, 512)]
    for m in linears[1:3]:
        assert m.weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.01)
        bound = math.sqrt(3 * 2 / 512)
        assert m.weight.abs().max().item() <= bound and m.weight.abs().max() > 0.99 * bound
    assert linears[3].weight.std().item() == pytest.approx(math.sqrt(2 / 513), rel=0.1)
    assert all(m.bias.abs().max() == 0 for m in linears)


# ---------------------------------------------------------------------------------------------
# Coverage measures
# ---------------------------------------------------------------------------------------------


def test_energy_distance_closed_forms():
    a, b = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]])
    # point masses at a and b (two copies each): 2 |a - b| = 10
    assert toy2d.energy_distance(a.repeat(2, 1), b.repeat(2, 1)) == pytest.approx(10.0)
    # samples at {a, b} vs the same: 2 * 2.5 - 5 - 5 = -5 with the U-statistics (the within-
    # sample means skip the zero diagonal: each point's one partner is 5 away)
    pair = torch.cat([a, b])
    assert toy2d.energy_distance(pair, pair) == pytest.approx(2 * 2.5 - 5 - 5)
    with pytest.raises(ValueError, match="two \\(N, d\\) samples"):
        toy2d.energy_distance(torch.zeros(5), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="at least 2"):
        toy2d.energy_distance(a, pair)


def test_energy_distance_sees_missing_modes_and_is_near_zero_for_the_data():
    n = 1024
    data = toy2d.sample_8gaussians(n, generator=_gen(1))
    same = toy2d.sample_8gaussians(n, generator=_gen(2))
    half = same[same[:, 0] > 0]  # the modes on the right-hand half only
    blur = same + 0.3 * torch.randn(n, 2, generator=_gen(3))
    floor = abs(toy2d.energy_distance(same, data))
    assert floor < 0.01
    assert toy2d.energy_distance(half, data) > 20 * floor
    assert toy2d.energy_distance(blur, data) > 5 * floor


def test_toy_scores():
    ref = toy2d.sample_25gaussians(512, generator=_gen(4))
    pts = toy2d.mode_centres("25gaussians")[:10].repeat(20, 1)  # 10 of 25 modes, exactly
    scores = toy2d.toy_scores(pts, "25gaussians", ref)
    assert scores["modes"] == 10 and scores["near"] == 1.0 and scores["energy"] > 0.1
    assert set(toy2d.toy_scores(ref[:50], "swissroll", ref)) == {"energy"}
