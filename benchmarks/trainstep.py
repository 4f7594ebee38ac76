"""One phase-2 (GAN) iteration of :mod:`gmgan.train`, two ways: split into timed parts, and whole.

``gmgan.train.gan`` writes its loop body inline (there is no step function to call), so:

* :class:`GanStep` rebuilds one iteration from the trainer's own pieces (``build_generator``,
  ``perceptual_network``, :class:`~gmgan.losses.GMGANLoss`, ``frozen``, ``EMA``, ``grad_norm``)
  and times each part separately (G forward and backward, the critic with its gradient penalty,
  VGG, GMSD, the optimisers). :meth:`GanStep.check_decomposition` verifies that the parts add
  up to the trainer's generator update: G's gradient from the parts must equal G's gradient
  from ``GMGANLoss.generator`` as one loss.
* :func:`trainer_step_seconds` runs the real :func:`gmgan.train.train` for a few iterations and
  reads each step's wall time from its log (``log_every=1``), so the sum of the parts can be
  compared with what the trainer actually spends.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gmgan.config import TrainConfig, get_preset

__all__ = ["GanStep", "bench_config", "trainer_step_seconds"]


def bench_config(preset: str, **overrides) -> TrainConfig:
    """A preset set up for timing phase 2: random VGG weights (ImageNet weights cannot be
    downloaded here; the cost is the same), no validation, no TensorBoard, no progress bar,
    a log row every step, checkpoints only at the end."""
    settings = {"phase": "gan", "perceptual_weights": "random", "val_sets": (), "val_every": 0,
                "ckpt_every": 0, "log_every": 1, "tensorboard": False, "progress": False}
    settings.update(overrides)
    return get_preset(preset, **settings)


@contextlib.contextmanager
def _quiet():
    """Silence the 'random VGG19 weights' warning: it is intended here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*random VGG19 weights.*")
        yield


class GanStep:
    """The body of ``gmgan.train.gan``'s loop for one config, on fixed random inputs.

    Inputs: HR ``batch_size x 3 x patch x patch`` uniform noise in [0, 1] and its MATLAB bicubic
    LR (``gmgan.imresize``); compute cost does not depend on the pixel values.
    ``step()`` runs one whole iteration: n_critic critic updates, then one generator update and
    the EMA update, as the trainer does. ``parts()`` gives the pieces to time one by one.
    """

    def __init__(self, cfg: TrainConfig, device: str | torch.device = "cpu") -> None:
        from gmgan.losses import GMGANLoss
        from gmgan.nets import Discriminator
        from gmgan.resize import imresize
        from gmgan.train import build_generator, critic_optimizer, perceptual_network
        from gmgan.training import EMA

        self.cfg, self.device = cfg, torch.device(device)
        self.fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        torch.manual_seed(cfg.seed)
        self.G = build_generator(cfg).to(self.device, memory_format=self.fmt).train()
        self.D = Discriminator(3, num_feat=cfg.d_num_feat, input_size=cfg.patch_size,
                               norm=cfg.d_norm).to(self.device, memory_format=self.fmt).train()
        with _quiet():
            perceptual = perceptual_network(cfg)
        self.criterion = GMGANLoss(alpha=cfg.alpha, beta=cfg.beta, gamma=cfg.gamma, delta=cfg.delta,
                                   lam=cfg.lam, perceptual=perceptual).to(self.device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.gan_lr, betas=cfg.gan_betas)
        self.opt_d = critic_optimizer(self.D, cfg)
        self.ema = EMA(self.G, cfg.ema_decay) if cfg.ema_decay > 0 else None
        gen = torch.Generator().manual_seed(cfg.seed)
        p = cfg.patch_size
        hr = torch.rand(cfg.batch_size, 3, p, p, generator=gen)
        lr = imresize(hr, 1 / cfg.scale).clamp(0, 1)
        self.hr = hr.to(self.device).contiguous(memory_format=self.fmt)
        self.lr = lr.to(self.device).contiguous(memory_format=self.fmt)

    # ------------------------------------------------------------------ the whole iteration

    def autocast(self):
        """The trainer's mixed precision (``PhaseRun.autocast``): bf16 / fp16 autocast or none."""
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.cfg.amp)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def _update(self, opt: torch.optim.Optimizer, net: nn.Module, loss: torch.Tensor) -> bool:
        """``PhaseRun.update`` without GradScaler: backward, gradient norm, finite check, step."""
        from gmgan.training import grad_norm

        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = grad_norm(list(net.parameters()))
        ok = all(torch.stack([torch.isfinite(loss.detach().float()), torch.isfinite(norm.float())]).tolist())
        if ok:
            opt.step()
        return ok

    def step(self) -> dict[str, float]:
        """One iteration, as ``gmgan.train.gan`` runs it; returns its loss terms as floats."""
        from gmgan.training import frozen

        G, D, crit = self.G, self.D, self.criterion
        with torch.no_grad(), self.autocast():
            sr = G(self.lr)
        for _ in range(self.cfg.n_critic):
            with self.autocast():
                l_d, d_terms = crit.critic(D, sr, self.hr)
            self._update(self.opt_d, D, l_d)
        with self.autocast(), frozen(D) as critic:
            sr = G(self.lr)
            l_g, g_terms = crit.generator(sr, self.hr, critic=critic)
        self._update(self.opt_g, G, l_g)
        if self.ema is not None:
            self.ema.update(G)
        return {**{f"G_{k}": float(v) for k, v in g_terms.items()},
                **{f"D_{k}": float(v) for k, v in d_terms.items()}}

    # ------------------------------------------------------------------ the parts

    def _sr_leaf(self) -> torch.Tensor:
        with torch.no_grad(), self.autocast():
            sr = self.G(self.lr)
        return sr.detach().requires_grad_(True)

    def _generator_terms(self, sr: torch.Tensor, which: str) -> torch.Tensor:
        """The weighted terms of l_G (eq. 1) named by ``which`` on an SR tensor (D frozen)."""
        from gmgan.losses import generator_loss, mse_loss
        from gmgan.training import frozen

        c, hr = self.criterion, self.hr
        total = sr.new_zeros((), dtype=torch.float32)
        with self.autocast():
            if "P" in which and c.beta and c.perceptual is not None:
                total = total + c.beta * c.perceptual(sr, hr).float()
            if "Q" in which and c.gamma:
                total = total + c.gamma * c.quality(sr, hr)
            if "M" in which and c.alpha:
                total = total + c.alpha * mse_loss(sr, hr)
            if "A" in which and c.delta:
                with frozen(self.D) as critic:
                    total = total + c.delta * generator_loss(critic(sr))
        return total

    def parts(self) -> tuple[dict[str, Callable], dict[str, Callable]]:
        """``(fns, setup)`` for :func:`benchmarks.common.measure`: the parts of one iteration.

        Each part's work is what the trainer does for it; together they cover the iteration
        (see :meth:`check_decomposition`), so their sum is comparable with a whole step.
        """
        from gmgan.training import grad_norm

        G, D, cfg = self.G, self.D, self.cfg
        sr_fixed = self._sr_leaf().detach()
        grad_sr = torch.randn_like(sr_fixed) * 1e-3

        def g_forward_nograd():
            with torch.no_grad(), self.autocast():
                G(self.lr)

        def critic_and_gp():
            for _ in range(cfg.n_critic):
                self.opt_d.zero_grad(set_to_none=True)
                with self.autocast():
                    l_d, _ = self.criterion.critic(D, sr_fixed, self.hr)
                l_d.backward()

        def g_forward_graph():
            with self.autocast():
                return G(self.lr)

        def g_backward(sr):
            G.zero_grad(set_to_none=True)
            sr.backward(grad_sr)

        def loss_part(which):
            def run(sr):
                self._generator_terms(sr, which).backward()
            return run

        def leaf():
            return sr_fixed.clone().requires_grad_(True)

        def optimisers():
            # PhaseRun.update's work after backward: norms, one host sync per network, the steps.
            for opt, net in ((self.opt_d, D), (self.opt_g, G)):
                norm = grad_norm(list(net.parameters()))
                torch.isfinite(norm).tolist()
                opt.step()
            if self.ema is not None:
                self.ema.update(G)

        fns = {
            "G forward (no grad, critic's SR)": g_forward_nograd,
            "critic: D(HR), D(SR), gradient penalty, fwd+bwd": critic_and_gp,
            "G forward (with graph)": g_forward_graph,
            "VGG l_P fwd+bwd": loss_part("P"),
            "GMSD l_Q fwd+bwd": loss_part("Q"),
            "MSE + adversarial (D fwd+bwd)": loss_part("MA"),
            "G backward": g_backward,
            "optimisers, grad norms, EMA": optimisers,
        }
        setup = {"VGG l_P fwd+bwd": leaf, "GMSD l_Q fwd+bwd": leaf, "MSE + adversarial (D fwd+bwd)": leaf,
                 "G backward": g_forward_graph}
        if not (self.criterion.beta and self.criterion.perceptual is not None):
            del fns["VGG l_P fwd+bwd"], setup["VGG l_P fwd+bwd"]
        return fns, setup

    def check_decomposition(self) -> float:
        """Max |grad_parts - grad_whole| / max |grad_whole| over G's parameters.

        grad_parts: the loss terms' gradients w.r.t. SR (as the parts compute them), pushed back
        through G; grad_whole: ``GMGANLoss.generator(G(lr), hr, critic)`` backpropagated as one
        loss, as the trainer does. Equal up to float rounding when the parts cover l_G.
        """
        from gmgan.training import frozen

        G = self.G
        G.zero_grad(set_to_none=True)
        # A generator with noise inputs draws new noise on every forward: both forwards
        # below must draw the same, so each starts from the same seed.
        torch.manual_seed(self.cfg.seed)
        with self.autocast():
            sr = G(self.lr)
        leaf = sr.detach().requires_grad_(True)
        self._generator_terms(leaf, "PQMA").backward()
        sr.backward(leaf.grad)
        parts = [p.grad.detach().clone() for p in G.parameters()]
        G.zero_grad(set_to_none=True)
        torch.manual_seed(self.cfg.seed)
        with self.autocast(), frozen(self.D) as critic:
            l_g, _ = self.criterion.generator(G(self.lr), self.hr, critic=critic)
        l_g.backward()
        whole = [p.grad.detach() for p in G.parameters()]
        scale = max(w.abs().max().item() for w in whole)
        err = max((a - b).abs().max().item() for a, b in zip(parts, whole))
        G.zero_grad(set_to_none=True)
        return err / scale if scale > 0 else err


def trainer_step_seconds(cfg: TrainConfig, iters: int, workdir: str | Path | None = None) -> list[float]:
    """Wall seconds of steps 2..iters of the real trainer (``gmgan.train.train``, phase 2).

    Phase 2 starts from a freshly initialised generator saved to ``workdir`` (the trainer needs
    phase-1 weights; their values do not change the cost). Step 1 is left out: it includes the
    data loader's start and first-call allocations. Times come from the trainer's own log
    (``seconds`` since the phase started, one row per step with ``log_every=1``; 1 ms resolution).
    Everything is written under ``workdir`` (default: a temporary folder, removed afterwards).
    """
    from gmgan.nets import save_generator
    from gmgan.train import build_generator, train

    if iters < 2:
        raise ValueError(f"trainer_step_seconds needs iters >= 2 (step 1 is warm-up), got {iters}")
    with contextlib.ExitStack() as stack:
        root = Path(workdir) if workdir is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        root.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=root))
        g_path = save_generator(build_generator(cfg), run_dir / "G_init.safetensors")
        cfg = dataclasses.replace(cfg, phase="gan", gan_iters=iters, pretrained_g=str(g_path),
                                  out_dir=str(run_dir / "out"), log_every=1, resume=False)
        with _quiet():
            result = train(cfg)
        stamps = [row["seconds"] for row in result.history if row.get("phase") == "gan"]
        if len(stamps) != iters:
            raise RuntimeError(f"expected {iters} log rows from the trainer, got {len(stamps)}")
        for row in result.history:
            bad = [k for k, v in row.items() if isinstance(v, float) and not np.isfinite(v)]
            if bad:
                raise RuntimeError(f"the trainer logged non-finite values at step {row.get('step')}: {bad}")
        return [float(b - a) for a, b in itertools.pairwise(stamps)]
