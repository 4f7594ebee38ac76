"""Two-dimensional toy GANs: why WGAN-GP's critic behaves better than a clipped or a vanilla one.

Gulrajani et al. (2017) showed the difference between GAN objectives on 2-D mixtures, where the
critic is a function of the plane that can be drawn as a contour map. This module holds the pieces
for that experiment (notebook 04):

* samplers of three point clouds: :func:`sample_8gaussians` (8 modes on a circle of radius 2),
  :func:`sample_25gaussians` (a 5 x 5 grid, spacing 1), :func:`sample_swissroll` (a noisy spiral);
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

import math
from dataclasses import dataclass

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

# Geometry of the three data sets. The WGAN-GP toy experiments use the same shapes; we keep the
# plane unscaled (8 modes on a circle of radius 2, a unit-spaced grid) so the numbers are simple.
RING_RADIUS = 2.0
RING_STD = 0.02
GRID_SPACING = 1.0
GRID_STD = 0.025
# Swiss roll: angle t ~ U[1.5 pi, 4.5 pi] (1.5 turns), point t (cos t, sin t) plus Gaussian noise
# of std 0.25, all divided by 7.5 so that the roll fits in a disc of radius ~1.9.
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

    8gaussians: angles 0, 45, ..., 315 degrees on a circle of radius 2 (:data:`RING_RADIUS`).
    25gaussians: the grid {-2, -1, 0, 1, 2}^2 (spacing :data:`GRID_SPACING`), row-major.
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
    """n points from 8 equally likely Gaussians (std 0.02) centred on a circle of radius 2.

    Returns float32 (n, 2). ``generator`` makes the draw reproducible.
    """
    return _gaussian_mixture(mode_centres("8gaussians"), RING_STD, n, generator)


def sample_25gaussians(n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """n points from 25 equally likely Gaussians (std 0.025) on the grid {-2, ..., 2}^2.

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


def _mlp(in_dim: int, hidden: int, depth: int, out_dim: int) -> nn.Sequential:
    """in_dim -> hidden (x depth, ReLU after each) -> out_dim."""
    if depth < 1 or hidden < 1:
        raise ValueError(f"MLP needs depth, hidden >= 1, got depth={depth}, hidden={hidden}")
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
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
    with torch_threads(1):
        return _train(
            kind, data, steps, seed, batch_size, n_critic, hidden, depth, lr, clip, lam, n_eval
        )


def _train(
    kind: str, data: str, steps: int, seed: int, batch_size: int, n_critic: int, hidden: int,
    depth: int, lr: float | None, clip: float, lam: float, n_eval: int,
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
    for _ in range(steps):
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

    gen.eval(), critic.eval()
    real = sample_toy(data, n_eval, generator=rng)
    fake = gen.sample(n_eval, generator=rng)
    grad_norms = critic_grad_norms(critic, real, fake, generator=rng)
    return ToyRun(kind, data, seed, gen, critic, history, real, fake, grad_norms)


def _clip_(module: nn.Module, c: float) -> None:
    """Clamp every parameter of ``module`` to [-c, c] in place (WGAN's Lipschitz constraint)."""
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-c, c)
