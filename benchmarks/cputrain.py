"""The real trainer's updates, timed in two speed modes in one process (``cpu-train``).

:func:`gmgan.train.pretrain_session` and :func:`gmgan.train.gan_session` set a phase up
exactly as ``gmgan.train.train`` does (networks, memory format, optimisers, the balanced
l_P weight) and return the update rule its loop calls once per step. :class:`TwoModes`
builds one session in the trainer's default mode (``speed="fast"``) and one in eager
fp32 (``speed="reference"``), from the same initial weights, and feeds both the same
batch of the configured training set:

* :meth:`TwoModes.check` makes one update in each and compares the logged loss terms and
  the weights after the update (G, and D in phase 2);
* :meth:`TwoModes.time` then times further updates of both, interleaved (``measure``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import tempfile
from pathlib import Path

import torch

from gmgan.config import TrainConfig

__all__ = ["ModeCheck", "TwoModes"]


@dataclasses.dataclass
class ModeCheck:
    """How far the fast mode's first update is from eager fp32's, from the same weights.

    ``loss_rel``: max over the logged loss terms of |fast - ref| / (|ref| + 1e-4):
    relative, with a floor for terms that are differences of near-equal means (the
    Wasserstein estimate of a fresh critic is about 4e-5, E[D(HR)] - E[D(SR)] with both
    near 0.02). ``update_rel``: ||dw_fast - dw_ref|| / ||dw_ref||, the L2 norms over all
    weights (G, and D in phase 2) of what the update changed. Adam's first step is about
    lr * sign(g) per weight, so a weight whose gradient is near 0 (below the rounding
    difference of the two modes) may move differently; ``max_steps``, the largest single
    difference in units of the learning rate, says how much (reported, not checked).
    ``finite``: every term finite in both modes.
    """

    loss_rel: float
    update_rel: float
    max_steps: float
    finite: bool
    loss_tol: float = 1e-3
    update_tol: float = 1e-2

    @property
    def ok(self) -> bool:
        return (
            self.finite
            and self.loss_rel <= self.loss_tol
            and self.update_rel <= self.update_tol
        )

    def text(self) -> str:
        return (
            f"one update vs eager fp32: losses rel. {self.loss_rel:.1e} "
            f"(tol {self.loss_tol:g}), weight update rel. L2 {self.update_rel:.1e} "
            f"(tol {self.update_tol:g}; largest "
            f"single weight {self.max_steps:.1e} of a step)"
        )


def _float(value) -> float:
    return (
        float(value.detach().float())
        if isinstance(value, torch.Tensor)
        else float(value)
    )


class TwoModes:
    """One phase of ``cfg`` set up twice in this process: ``fast`` (``cfg.speed``, the
    trainer's default) and ``reference`` (eager fp32), as ``gmgan.train`` sets it up.

    Args:
        cfg: the run's configuration (its ``speed`` is the mode timed against
        ``reference``).
        phase: ``"pretrain"`` or ``"gan"``.
        workdir: folder for the two run folders (and phase 2's initial generator).

    Phase 2 starts from a freshly initialised generator (seeded by ``cfg.seed``), saved
    to a file both sessions load; the batch is the phase's first batch of the training
    set.
    """

    def __init__(self, cfg: TrainConfig, phase: str, workdir: str | Path) -> None:
        from gmgan.nets import save_generator
        from gmgan.train import (
            build_generator,
            gan_session,
            pretrain_session,
            training_patches,
        )
        from gmgan.training import GracefulStop, first_batch, phase_seed, setup

        if phase not in ("pretrain", "gan"):
            raise ValueError(f"phase must be 'pretrain' or 'gan', got {phase!r}")
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        settings = {
            "phase": phase,
            "resume": False,
            "val_sets": (),
            "val_every": 0,
            "ckpt_every": 0,
            "tensorboard": False,
            "progress": False,
        }
        if phase == "gan":
            torch.manual_seed(cfg.seed)
            g_path = workdir / f"G_init_{cfg.num_feat}x{cfg.num_block}.safetensors"
            save_generator(build_generator(cfg), g_path)
            settings["pretrained_g"] = str(g_path)
        self.phase = phase
        self.cfgs = {
            "fast": dataclasses.replace(
                cfg, **settings, out_dir=str(workdir / f"{phase}-fast")
            ),
            "reference": dataclasses.replace(
                cfg,
                **settings,
                speed="reference",
                out_dir=str(workdir / f"{phase}-reference"),
            ),
        }
        self._stack = contextlib.ExitStack()
        self.sessions, self.batches = {}, {}
        build = pretrain_session if phase == "pretrain" else gan_session
        for mode, c in self.cfgs.items():
            env = setup(c)
            self._stack.callback(env.close)
            session = build(c, env, GracefulStop())
            seed = phase_seed(c.seed, phase)
            lr, hr = first_batch(training_patches(c, env, seed), c.batch_size, seed)
            fmt = (
                torch.channels_last
                if session.run.cfg.channels_last
                else torch.contiguous_format
            )
            self.batches[mode] = tuple(
                t.to(env.device).contiguous(memory_format=fmt) for t in (lr, hr)
            )
            self.sessions[mode] = session
        self.plan = self.sessions["fast"].plan

    def close(self) -> None:
        self._stack.close()

    def update(self, mode: str) -> dict:
        """One update of ``mode``'s session on the fixed batch; its terms as floats."""
        return {
            k: _float(v)
            for k, v in self.sessions[mode].update(*self.batches[mode]).items()
        }

    def _weights(self, mode: str) -> list[torch.Tensor]:
        return [
            p.detach().float().clone(memory_format=torch.contiguous_format)
            for net in self.sessions[mode].run.raw.values()
            for p in net.parameters()
        ]

    def check(self) -> ModeCheck:
        """The first update of both sessions, from one state and one random draw."""
        terms, moved = {}, {}
        for mode in ("reference", "fast"):
            before = self._weights(mode)
            torch.manual_seed(1234)  # the gradient penalty's mixing weights
            terms[mode] = self.update(mode)
            moved[mode] = [a - b for a, b in zip(self._weights(mode), before)]
        ref, fast = terms["reference"], terms["fast"]
        finite = all(math.isfinite(v) for t in terms.values() for v in t.values())
        loss_rel = max(abs(fast[k] - ref[k]) / (abs(ref[k]) + 1e-4) for k in ref)
        diff = [a - b for a, b in zip(moved["fast"], moved["reference"])]
        norm = math.sqrt(sum(float(d.square().sum()) for d in moved["reference"]))
        update_rel = math.sqrt(sum(float(d.square().sum()) for d in diff)) / max(
            norm, 1e-30
        )
        lr = max(
            g["lr"]
            for s in self.sessions.values()
            for o in s.run.optimizers.values()
            for g in o.param_groups
        )
        return ModeCheck(
            loss_rel, update_rel, max(d.abs().max().item() for d in diff) / lr, finite
        )

    def time(self, repeat: int, warmup: int = 1) -> dict[str, float]:
        """Median ms per update of each mode, the two interleaved (``measure``)."""
        from benchmarks.common import measure

        t = measure(
            {
                mode: (lambda m=mode: self.sessions[m].update(*self.batches[m]))
                for mode in self.sessions
            },
            repeat=repeat,
            warmup=warmup,
        )
        return {mode: t[mode].median_ms for mode in t}


@contextlib.contextmanager
def two_modes(cfg: TrainConfig, phase: str, workdir: str | Path | None = None):
    """:class:`TwoModes` as a context manager (run folders in a temporary folder)."""
    with contextlib.ExitStack() as stack:
        root = (
            workdir
            if workdir is not None
            else stack.enter_context(tempfile.TemporaryDirectory())
        )
        modes = TwoModes(cfg, phase, Path(root))
        stack.callback(modes.close)
        yield modes
