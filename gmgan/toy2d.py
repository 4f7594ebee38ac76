"""Two-dimensional toy GANs: why WGAN-GP's critic behaves better than a clipped or a vanilla one.

Gulrajani et al. (2017) showed the difference between GAN objectives on 2-D mixtures, where the
critic is a function of the plane that can be drawn as a contour map. This module holds the pieces
for that experiment (notebook 04):

* samplers of three point clouds: :func:`sample_8gaussians` (8 modes on a circle of
  radius 1.414), :func:`sample_25gaussians` (a 5 x 5 grid, spacing 0.707),
  :func:`sample_swissroll` (a noisy spiral), scaled as in the toy code of Gulrajani et al.;
  :func:`sample_toy` picks one by name and :func:`mode_centres` gives the mixture centres;
* :class:`ToyGenerator` (noise -> point) and :class:`ToyCritic` (point -> score), small ReLU MLPs;
* :func:`train_toy_gan`: a compact training loop for three objectives,

  - ``"vanilla"``: the original GAN (binary cross-entropy on the critic's logit, the
    non-saturating generator loss), one critic step per generator step, Adam;
  - ``"wgan-clip"``: WGAN (Arjovsky et al. 2017) with every critic weight clipped to
    [-clip, clip] after each step, RMSprop, 5 critic steps per generator step;
  - ``"wgan-gp"``: WGAN-GP, the critic loss plus :func:`gmgan.losses.gradient_penalty`, Adam
    (beta1 0.5, beta2 0.9), 5 critic steps per generator step;

* :func:`critic_grad_norms` (the norm ``||grad_x D(x_hat)||`` at the points where the penalty
  looks), :func:`critic_on_grid` (the critic's values on a grid, for contour plots) and
  :func:`mode_coverage` (how many modes the generator's samples reach).

Points are float32 tensors of shape (N, 2) in the data's own units (the plane roughly spans
[-3, 3]^2); scores are float32 (N, 1). A few hundred training steps take seconds on one CPU core.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gmgan.losses import critic_loss, generator_loss, gradient_penalty
from gmgan.threads import torch_threads

__all__ = [
    "DATASETS",
    "KINDS",
    "ToyCritic",
    "ToyGenerator",
    "ToyRun",
    "critic_grad_norms",
    "critic_on_grid",
    "mode_centres",
    "mode_coverage",
    "sample_8gaussians",
    "sample_25gaussians",
    "sample_swissroll",
    "sample_toy",
    "train_toy_gan",
]

DATASETS = ("8gaussians", "25gaussians", "swissroll")
KINDS = ("vanilla", "wgan-clip", "wgan-gp")

# Geometry of the three data sets, as in the toy code of Gulrajani et al. (gan_toy.py in
# igul222/improved_wgan_training): 8 modes of std 0.02 on a circle of radius 2, and 25
# modes of std 0.05 on the grid {-4, -2, 0, 2, 4}^2, each divided by its data set's standard
# deviation (1.414 and 2.828, the divisors of that code): both clouds have about unit spread.
RING_RADIUS = 2.0 / 1.414
RING_STD = 0.02 / 1.414
GRID_SPACING = 2.0 / 2.828
GRID_STD = 0.05 / 2.828
# Swiss roll (sklearn's make_swiss_roll, its x and z coordinates, noise 0.25, as in
# gan_toy.py):
ROLL_T_RANGE = (1.5 * math.pi, 4.5 * math.pi)
ROLL_NOISE = 0.25
ROLL_DIVISOR = 7.5


def _check_n(n: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"number of samples must be a positive int, got {n!r}")


def _gaussian_mixture(
    centres: torch.Tensor, std: float, n: int, generator: torch.Generator | None
) -> torch.Tensor:
    """n points: a uniformly chosen centre plus isotropic Gaussian noise of the given std."""
    _check_n(n)
    which = torch.randint(len(centres), (n,), generator=generator)
    return centres[which] + std * torch.randn(n, 2, generator=generator)


def mode_centres(name: str) -> torch.Tensor:
    """The mixture centres of a data set: (8, 2) for "8gaussians", (25, 2) for "25gaussians".

    8gaussians: angles 0, 45, ..., 315 degrees on a circle of radius 2 / 1.414
    (:data:`RING_RADIUS`). 25gaussians: the grid {-2, -1, 0, 1, 2}^2 times 2 / 2.828
    (:data:`GRID_SPACING`), row-major.
    The swiss roll has no modes (ValueError).
    """
    if name == "8gaussians":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return (RING_RADIUS * torch.stack((angles.cos(), angles.sin()), 1)).float()
    if name == "25gaussians":
        ticks = GRID_SPACING * torch.arange(-2, 3, dtype=torch.float32)
        ys, xs = torch.meshgrid(ticks, ticks, indexing="ij")
        return torch.stack((xs.flatten(), ys.flatten()), 1)
    raise ValueError(f"mode_centres: {name!r} has no modes; use '8gaussians' or '25gaussians'")


def sample_8gaussians(n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """n points from 8 equally likely Gaussians (std 0.02 / 1.414) on a circle.

    The circle has radius 2 / 1.414 (:data:`RING_RADIUS`).

    Returns float32 (n, 2). ``generator`` makes the draw reproducible.
    """
    return _gaussian_mixture(mode_centres("8gaussians"), RING_STD, n, generator)


def sample_25gaussians(n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """n points from 25 equally likely Gaussians (std 0.05 / 2.828) on a 5 x 5 grid.

    The grid spacing is 2 / 2.828 = 0.707 (:data:`GRID_SPACING`).

    Returns float32 (n, 2). ``generator`` makes the draw reproducible.
    """
    return _gaussian_mixture(mode_centres("25gaussians"), GRID_STD, n, generator)


def sample_swissroll(n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """n points of a 2-D swiss roll: ``(t cos t, t sin t) + N(0, 0.25^2)``, divided by 7.5.

    t ~ U[1.5 pi, 4.5 pi], so the spiral makes 1.5 turns and its distance from the origin grows
    from 0.63 to 1.88 (before noise). Returns float32 (n, 2).
    """
    _check_n(n)
    lo, hi = ROLL_T_RANGE
    t = lo + (hi - lo) * torch.rand(n, generator=generator)
    points = torch.stack((t * t.cos(), t * t.sin()), 1)
    return (points + ROLL_NOISE * torch.randn(n, 2, generator=generator)) / ROLL_DIVISOR


_SAMPLERS = {
    "8gaussians": sample_8gaussians,
    "25gaussians": sample_25gaussians,
    "swissroll": sample_swissroll,
}


def sample_toy(name: str, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """n points of the data set ``name`` (one of :data:`DATASETS`): float32 (n, 2)."""
    if name not in _SAMPLERS:
        raise ValueError(f"unknown toy data set {name!r}; choose one of {DATASETS}")
    return _SAMPLERS[name](n, generator=generator)


# ---------------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------------


def _uniform_init_(layer: nn.Linear, std: float) -> None:
    """Weights ~ U[-std sqrt 3, std sqrt 3] (standard deviation ``std``), biases 0."""
    with torch.no_grad():
        bound = std * math.sqrt(3.0)
        layer.weight.uniform_(-bound, bound)
        layer.bias.zero_()


def _mlp(in_dim: int, hidden: int, depth: int, out_dim: int) -> nn.Sequential:
    """in_dim -> hidden (x depth, ReLU after each) -> out_dim.

    Initialised as the toy networks of Gulrajani et al.: uniform weights with He's
    standard deviation sqrt(2 / fan_in) in the ReLU layers and Glorot's
    sqrt(2 / (fan_in + fan_out)) in the last, linear one; zero biases. (PyTorch's default
    would start with weights about sqrt 6 times smaller.)
    """
    if depth < 1 or hidden < 1:
        raise ValueError(f"MLP needs depth, hidden >= 1, got depth={depth}, hidden={hidden}")
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layer = nn.Linear(width, hidden)
        _uniform_init_(layer, math.sqrt(2.0 / width))
        layers += [layer, nn.ReLU()]
        width = hidden
    last = nn.Linear(width, out_dim)
    _uniform_init_(last, math.sqrt(2.0 / (width + out_dim)))
    layers.append(last)
    return nn.Sequential(*layers)


class ToyGenerator(nn.Module):
    """Noise (N, noise_dim) ~ N(0, I) -> points (N, 2): an MLP with ``depth`` ReLU layers."""

    def __init__(self, noise_dim: int = 2, hidden: int = 128, depth: int = 3) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.net = _mlp(noise_dim, hidden, depth, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n generated points, float32 (n, 2), without gradient."""
        with torch.no_grad():
            return self(torch.randn(n, self.noise_dim, generator=generator))


class ToyCritic(nn.Module):
    """Points (N, 2) -> scores (N, 1): an MLP 2 -> hidden x depth -> 1 with ReLU, no normalisation.

    For the vanilla GAN the score is a logit (D = sigmoid(score)); for the WGANs it is the
    unbounded critic value.
    """

    def __init__(self, hidden: int = 128, depth: int = 3) -> None:
        super().__init__()
        self.net = _mlp(2, hidden, depth, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# ---------------------------------------------------------------------------------------------
# Diagnostics
# ---------------------------------------------------------------------------------------------


def critic_grad_norms(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``||grad_x D(x_hat)||_2`` per sample at x_hat = a real + (1 - a) fake, a ~ U[0, 1].

    The same points :func:`gmgan.losses.gradient_penalty` penalises, so a WGAN-GP critic should
    give values near 1 here. real, fake: float (N, 2) (or any (N, ...)) -> float32 (N,), detached.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake shapes differ: {tuple(real.shape)} vs {tuple(fake.shape)}")
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), generator=generator)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
    return torch.linalg.vector_norm(grad.flatten(1), dim=1).float()


def critic_on_grid(
    critic: nn.Module, extent: float = 3.0, n: int = 121
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The critic's score on an n x n grid over [-extent, extent]^2, for ``plt.contourf``.

    Returns (xs, ys, values): float64 arrays of shape (n,), (n,) and (n, n) with
    ``values[i, j] = D((xs[j], ys[i]))``.
    """
    ticks = torch.linspace(-extent, extent, n)
    yy, xx = torch.meshgrid(ticks, ticks, indexing="ij")
    with torch.no_grad():
        values = critic(torch.stack((xx.flatten(), yy.flatten()), 1)).view(n, n)
    return ticks.double().numpy(), ticks.double().numpy(), values.double().numpy()


def mode_coverage(points: torch.Tensor, data: str, n_std: float = 3.0) -> tuple[int, float]:
    """How well samples cover a Gaussian mixture ("8gaussians" or "25gaussians").

    A point is "good" when it lies within ``n_std`` standard deviations of its nearest centre.
    Returns (modes that received at least one good point, fraction of good points in [0, 1]).
    points: float (N, 2).
    """
    centres = mode_centres(data)
    std = RING_STD if data == "8gaussians" else GRID_STD
    dist = torch.cdist(points.float(), centres)
    nearest, which = dist.min(dim=1)
    good = nearest <= n_std * std
    return int(torch.unique(which[good]).numel()), float(good.float().mean())


def energy_distance(points: torch.Tensor, data: torch.Tensor) -> float:
    """Energy distance between two 2-D samples: ``2 E|X-Y| - E|X-X'| - E|Y-Y'|``.

    X are the rows of ``points`` (N, 2), Y those of ``data`` (M, 2), |.| the Euclidean
    norm and X' an independent copy of X. The within-sample means leave out the zero
    distance of a point to itself (U-statistics), so two samples of one distribution give 0
    on average (the value can then be slightly negative). Its expectation is 0 only for equal
    distributions; it is in the plane's units (2 |a - b| for point masses at a and b) and
    grows when ``points`` miss part of ``data`` (coverage) as well as when they lie off it
    (quality). Computed in float64; N, M >= 2.
    """
    if points.dim() != 2 or data.dim() != 2 or points.shape[1] != data.shape[1]:
        raise ValueError(
            f"energy_distance needs two (N, d) samples, got {tuple(points.shape)} and "
            f"{tuple(data.shape)}"
        )
    if len(points) < 2 or len(data) < 2:
        raise ValueError("energy_distance needs at least 2 points in each sample")
    x, y = points.double(), data.double()

    def mean_within(z: torch.Tensor) -> torch.Tensor:
        n = len(z)
        return torch.cdist(z, z).sum() / (n * (n - 1))

    return float(2 * torch.cdist(x, y).mean() - mean_within(x) - mean_within(y))


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


@dataclass
class ToyRun:
    """The result of :func:`train_toy_gan`.

    Attributes:
        kind, data, seed: the run's settings.
        generator, critic: the trained networks (eval mode, CPU).
        history: per generator step: ``"critic_loss"`` (critic objective without the penalty:
            E D(fake) - E D(real) for the WGANs, the binary cross-entropy for vanilla),
            ``"gp"`` (the weighted penalty, 0 unless wgan-gp), ``"generator_loss"`` and
            ``"grad_norm"`` (mean ``||grad D||`` at interpolates in the last critic step).
        real, fake: (n_eval, 2) float32 samples of the data and of the trained generator.
        grad_norms: (n_eval,) float32 ``||grad_x D(x_hat)||`` at interpolates between ``real``
            and ``fake`` (see :func:`critic_grad_norms`).
        snapshots: generator step -> (n_eval, 2) float32 samples of the generator after
            that many steps, for each step in ``checkpoints``; all from one fixed noise
            batch.
    """

    kind: str
    data: str
    seed: int
    generator: ToyGenerator
    critic: ToyCritic
    history: dict[str, list[float]]
    real: torch.Tensor
    fake: torch.Tensor
    grad_norms: torch.Tensor
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)


def _critic_objective(
    kind: str, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, lam: float,
    rng: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss without penalty, weighted penalty) of one critic step."""
    d_real, d_fake = critic(real), critic(fake)
    if kind == "vanilla":
        # -log sigmoid(d_real) - log(1 - sigmoid(d_fake)), written with softplus for stability.
        loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        return loss, torch.zeros(())
    loss = critic_loss(d_real, d_fake)
    if kind == "wgan-gp":
        return loss, gradient_penalty(critic, real, fake, lam=lam, generator=rng)
    return loss, torch.zeros(())


def train_toy_gan(
    kind: str = "wgan-gp",
    data: str = "8gaussians",
    steps: int = 300,
    seed: int = 0,
    *,
    batch_size: int = 256,
    n_critic: int | None = None,
    hidden: int = 128,
    depth: int = 3,
    lr: float | None = None,
    clip: float = 0.01,
    lam: float = 10.0,
    n_eval: int = 1024,
    checkpoints: tuple[int, ...] = (),
) -> ToyRun:
    """Train a toy GAN on a 2-D data set and return the networks, histories and diagnostics.

    Args:
        kind: "vanilla", "wgan-clip" or "wgan-gp" (see the module docstring).
        data: "8gaussians", "25gaussians" or "swissroll".
        steps: generator updates; the critic gets ``n_critic`` updates before each of them.
        seed: seeds the initial weights and every random draw (data, noise, interpolation
            weights), so a run is reproducible on one machine.
        batch_size: points per batch (real and fake each).
        n_critic: critic updates per generator update (default 1 for vanilla, 5 for the WGANs).
        hidden, depth: width and number of hidden layers of both MLPs (default 2-128-128-128-1).
        lr: learning rate (default 1e-4 with Adam for vanilla and wgan-gp, 5e-5 with RMSprop for
            wgan-clip, as in the WGAN and WGAN-GP papers).
        clip: weight-clipping bound c for wgan-clip (0.01 in the WGAN paper).
        lam: gradient-penalty weight lambda for wgan-gp (10, as in GMGAN and WGAN-GP).
        n_eval: samples for the final ``real`` / ``fake`` / ``grad_norms``.
        checkpoints: generator steps (0 to ``steps``) after which to keep n_eval samples of
            the generator in ``snapshots``; they use their own noise, so the training is the
            same with or without them.

    Returns:
        a :class:`ToyRun`.

    The loop runs on one CPU thread (restored afterwards): its ~50 operations per step on
    256 x 128 matrices are far too small to split between threads (see :mod:`gmgan.threads`).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown GAN kind {kind!r}; choose one of {KINDS}")
    if data not in DATASETS:
        raise ValueError(f"unknown toy data set {data!r}; choose one of {DATASETS}")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    n_critic = n_critic if n_critic is not None else (1 if kind == "vanilla" else 5)
    if n_critic < 1:
        raise ValueError(f"n_critic must be >= 1, got {n_critic}")
    bad = [c for c in checkpoints if not isinstance(c, int) or not 0 <= c <= steps]
    if bad:
        raise ValueError(f"checkpoints must be ints in [0, steps={steps}], got {bad}")
    with torch_threads(1):
        return _train(
            kind, data, steps, seed, batch_size, n_critic, hidden, depth, lr, clip, lam,
            n_eval, frozenset(checkpoints),
        )


def _train(
    kind: str, data: str, steps: int, seed: int, batch_size: int, n_critic: int, hidden: int,
    depth: int, lr: float | None, clip: float, lam: float, n_eval: int,
    checkpoints: frozenset[int],
) -> ToyRun:
    """The body of :func:`train_toy_gan` (arguments already checked)."""
    rng = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, global RNG left untouched
        torch.manual_seed(seed)
        gen = ToyGenerator(hidden=hidden, depth=depth)
        critic = ToyCritic(hidden=hidden, depth=depth)
    if kind == "wgan-clip":
        # WGAN used RMSprop: momentum-based optimisers were unstable with clipping in its tests.
        lr = lr if lr is not None else 5e-5
        opt_g = torch.optim.RMSprop(gen.parameters(), lr=lr)
        opt_d = torch.optim.RMSprop(critic.parameters(), lr=lr)
    else:
        lr = lr if lr is not None else 1e-4
        opt_g = torch.optim.Adam(gen.parameters(), lr=lr, betas=(0.5, 0.9))
        opt_d = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.9))
    if kind == "wgan-clip":
        _clip_(critic, clip)  # the critic must live in the clipped set from the start

    history: dict[str, list[float]] = {
        k: [] for k in ("critic_loss", "gp", "generator_loss", "grad_norm")
    }
    # Snapshots map one fixed noise batch, drawn from its own generator: the training's
    # draws do not depend on which checkpoints were asked for.
    snapshot_noise = torch.randn(
        n_eval, gen.noise_dim, generator=torch.Generator().manual_seed(seed + 7919)
    )
    snapshots: dict[int, torch.Tensor] = {}

    def snapshot(step: int) -> None:
        if step in checkpoints:
            with torch.no_grad():
                snapshots[step] = gen(snapshot_noise)

    snapshot(0)
    for step in range(1, steps + 1):
        for _ in range(n_critic):
            real = sample_toy(data, batch_size, generator=rng)
            fake = gen.sample(batch_size, generator=rng)
            loss, gp = _critic_objective(kind, critic, real, fake, lam, rng)
            opt_d.zero_grad(set_to_none=True)
            (loss + gp).backward()
            opt_d.step()
            if kind == "wgan-clip":
                _clip_(critic, clip)
        norms = critic_grad_norms(critic, real, fake, generator=rng)
        # Generator step: gradients flow through the critic to the generator only.
        critic.requires_grad_(False)
        fake = gen(torch.randn(batch_size, gen.noise_dim, generator=rng))
        d_fake = critic(fake)
        critic.requires_grad_(True)
        g_loss = F.softplus(-d_fake).mean() if kind == "vanilla" else generator_loss(d_fake)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for key, value in (("critic_loss", loss), ("gp", gp), ("generator_loss", g_loss),
                           ("grad_norm", norms.mean())):
            history[key].append(float(value.detach()))
        snapshot(step)

    gen.eval(), critic.eval()
    real = sample_toy(data, n_eval, generator=rng)
    fake = gen.sample(n_eval, generator=rng)
    grad_norms = critic_grad_norms(critic, real, fake, generator=rng)
    return ToyRun(
        kind, data, seed, gen, critic, history, real, fake, grad_norms, snapshots
    )


def _clip_(module: nn.Module, c: float) -> None:
    """Clamp every parameter of ``module`` to [-c, c] in place (WGAN's Lipschitz constraint)."""
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-c, c)


# ---------------------------------------------------------------------------------------------
# The experiment of notebook 04: every objective on every data set, over several seeds
# ---------------------------------------------------------------------------------------------

#: The toy settings of Gulrajani et al. (gan_toy.py of igul222/improved_wgan_training):
#: MLPs 2-512-512-512-{2,1}, batch 256, lambda 0.1, 5 critic steps per generator step,
#: Adam 1e-4 with betas (0.5, 0.9) for WGAN-GP, RMSprop 5e-5 and clip 0.01 for WGAN,
#: 100,000 generator steps.
#: Their code has no vanilla GAN; ours uses WGAN-GP's Adam with one discriminator step.
PAPER_TOY_SETTINGS = {
    "hidden": 512, "depth": 3, "batch_size": 256, "lam": 0.1, "clip": 0.01,
    "steps": 100_000, "lr": {"vanilla": 1e-4, "wgan-clip": 5e-5, "wgan-gp": 1e-4},
    "n_critic": {"vanilla": 1, "wgan-clip": 5, "wgan-gp": 5},
}
#: Seed of the data sample that every run's samples are measured against.
REFERENCE_SEED = 12345
SHIPPED_RESULTS = Path(__file__).parent / "teaching_models" / "toy2d"


def toy_scores(
    points: torch.Tensor, data: str, reference: torch.Tensor
) -> dict[str, float]:
    """The coverage measures of float32 (N, 2) generated points of the data set ``data``.

    ``"energy"``: :func:`energy_distance` to ``reference`` (a sample of the data); for the
    two mixtures also ``"modes"`` (modes with a point within 3 std) and ``"near"`` (fraction
    of points within 3 std of a mode), see :func:`mode_coverage`.
    """
    scores = {"energy": energy_distance(points, reference)}
    if data != "swissroll":
        modes, near = mode_coverage(points, data)
        scores.update(modes=modes, near=near)
    return scores


def train_all(
    out_dir: str | Path,
    *,
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
    steps: int = 2000,
    every: int = 100,
    lr_scale: float = 10.0,
    hidden: int = 128,
    datasets: tuple[str, ...] = DATASETS,
    kinds: tuple[str, ...] = KINDS,
    n_eval: int = 1024,
) -> dict:
    """Train every objective on every data set for each seed; write results to ``out_dir``.

    The settings are :data:`PAPER_TOY_SETTINGS` except ``steps``, ``hidden`` and the
    learning rates (the paper's times ``lr_scale``): 100,000 steps of 512-wide networks do
    not fit a CPU budget. Seeds run in order, and both files are rewritten after every run,
    so a stopped job leaves the complete seeds behind (:func:`final_scores` keeps those):

    * ``metrics.json``: the settings, and per run (data, kind, seed, seconds of training
      and, every ``every`` generator steps, :func:`toy_scores` of n_eval generated points
      against n_eval points of the data drawn with seed :data:`REFERENCE_SEED`);
    * ``samples.npz``: per run the n_eval final generated points, float32 (n_eval, 2),
      under ``"<data>/<kind>/<seed>"``.

    Returns the content of ``metrics.json``. Command line:
    ``python -m gmgan.toy2d OUT_DIR --seeds 0 1 2 3 4 --steps 2000 --every 100``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paper = PAPER_TOY_SETTINGS
    settings = {
        "hidden": hidden, "depth": paper["depth"], "batch_size": paper["batch_size"],
        "lam": paper["lam"], "clip": paper["clip"], "steps": steps, "every": every,
        "lr": {k: lr_scale * v for k, v in paper["lr"].items()},
        "n_critic": paper["n_critic"], "n_eval": n_eval,
        "reference_seed": REFERENCE_SEED,
        "seeds": list(seeds), "datasets": list(datasets), "kinds": list(kinds),
    }
    references = {d: _reference(d, n_eval) for d in datasets}
    result: dict = {"settings": settings, "runs": []}
    samples: dict[str, np.ndarray] = {}
    checkpoints = tuple(range(0, steps + 1, every))
    for seed in seeds:
        for data in datasets:
            for kind in kinds:
                start = time.perf_counter()
                run = train_toy_gan(
                    kind, data, steps=steps, seed=seed, batch_size=paper["batch_size"],
                    n_critic=paper["n_critic"][kind], hidden=hidden,
                    depth=paper["depth"],
                    lr=settings["lr"][kind], clip=paper["clip"], lam=paper["lam"],
                    n_eval=n_eval, checkpoints=checkpoints,
                )
                seconds = time.perf_counter() - start
                curve = [
                    {"step": s, **toy_scores(run.snapshots[s], data, references[data])}
                    for s in checkpoints
                ]
                result["runs"].append({"data": data, "kind": kind, "seed": seed,
                                       "seconds": round(seconds, 1), "curve": curve})
                samples[f"{data}/{kind}/{seed}"] = run.snapshots[steps].numpy()
                (out / "metrics.json").write_text(json.dumps(result, indent=1))
                np.savez_compressed(out / "samples.npz", **samples)
    return result


def _reference(data: str, n: int) -> torch.Tensor:
    """The sample of ``data`` every run is scored against (seed :data:`REFERENCE_SEED`)."""
    return sample_toy(data, n, generator=torch.Generator().manual_seed(REFERENCE_SEED))


def load_results(
    path: str | Path | None = None,
) -> tuple[dict, dict[tuple[str, str, int], torch.Tensor]]:
    """Read what :func:`train_all` wrote (default: the results shipped with gmgan).

    Returns (the content of ``metrics.json``,
    {(data, kind, seed): float32 (n_eval, 2) final generated points}).
    """
    folder = Path(path) if path is not None else SHIPPED_RESULTS
    for name in ("metrics.json", "samples.npz"):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"no {name} in {folder}; make it with toy2d.train_all({str(folder)!r})"
            )
    metrics = json.loads((folder / "metrics.json").read_text())
    with np.load(folder / "samples.npz") as npz:
        samples = {}
        for key in npz.files:
            data, kind, seed = key.split("/")
            samples[data, kind, int(seed)] = torch.from_numpy(npz[key])
    return metrics, samples


def final_scores(metrics: dict) -> dict[tuple[str, str, str], list[float]]:
    """The scores at the last checkpoint of every run of a :func:`train_all` result.

    Returns {(data, kind, measure): [value of each seed, in seed order]}, measure one of
    "energy", "modes", "near" (the last two for the mixtures only). Only seeds that have a
    run of every data set and kind are kept, so the lists of one result have equal lengths.
    """
    runs = metrics["runs"]
    grid = {(r["data"], r["kind"]) for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    complete = [
        s for s in seeds if {(r["data"], r["kind"]) for r in runs if r["seed"] == s} == grid
    ]
    table: dict[tuple[str, str, str], list[float]] = {}
    for seed in complete:
        for r in runs:
            if r["seed"] == seed:
                last = r["curve"][-1]
                for measure in ("energy", "modes", "near"):
                    if measure in last:
                        key = (r["data"], r["kind"], measure)
                        table.setdefault(key, []).append(last[measure])
    return table


def mean_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Mean of ``values`` (one per seed) and the half-width of its Student-t interval.

    The interval ``mean +- half`` covers the true mean with probability ``level`` if the
    values are independent draws from a normal distribution:
    half = t_{(1+level)/2, n-1} * sd / sqrt(n), with the sample standard deviation sd.
    Needs n >= 2 values.
    """
    # Deferred: scipy.stats took 2.2-2.6 s to import beside torch (2 busy cores), for
    # one quantile that only notebook 04's summary tables ask for; training never does.
    from scipy.stats import t as student_t

    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) < 2:
        raise ValueError(f"mean_interval needs at least 2 values, got {values!r}")
    t_quantile = student_t.ppf((1 + level) / 2, len(x) - 1)
    half = t_quantile * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(half)


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=train_all.__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--lr-scale", type=float, default=10.0)
    parser.add_argument("--hidden", type=int, default=128)
    args = parser.parse_args(argv)
    train_all(args.out_dir, seeds=tuple(args.seeds), steps=args.steps, every=args.every,
              lr_scale=args.lr_scale, hidden=args.hidden)


if __name__ == "__main__":
    _main()
