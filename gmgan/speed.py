"""How the trainer computes an update: the ``speed`` modes of
:class:`~gmgan.config.TrainConfig`.

The maths of an update is the paper's in every mode; the modes differ in how it is
computed:

* ``reference``: eager fp32 exactly as :mod:`gmgan.train` first computed it (and as the
  shipped teaching models were trained): two generator forwards per phase-2 update (one
  without a graph for the critic, one with a graph for the generator loss), contiguous
  (NCHW) tensors unless ``channels_last`` is set, torch's default (per-parameter) Adam
  on the CPU.
* ``fast`` (the default): the same update with less work. One generator forward per
  phase-2 update, with its graph: the critic reads it detached, and the generator loss
  backpropagates through it. This is the same tensor, bit for bit, because G's weights
  do not change between the two uses (the critic is updated first with G fixed, then G).
  Adam updates all parameters with one ``foreach`` call per operation (the same
  arithmetic, the same bits). On a CPU, networks and batches are channels-last (NHWC),
  which oneDNN's convolutions run faster; this rounds differently from NCHW (about 1e-7
  relative in one update), so ``fast`` is close to, not bit-equal with, ``reference``.
  Not in a multi-process (DDP) run, whose gradient buckets assume the parameters'
  default layout. The critic scores HR and SR as one batch of 2N (one forward, one
  backward through it) where it has no batch norm (``d_norm`` none or layer, whose
  scores of a sample do not depend on the others): the same losses and gradients to
  fp32 rounding. The gradient penalty's interpolates keep their own forward: joining
  them too (3N) measured slower, as their input gradient then runs over all 3N.
* ``auto``: ``fast``, plus bf16 autocast of the generator and of l_P where the CPU
  computes bf16 natively (AVX512-BF16 or AMX: :func:`native_bf16_cpu`) and ``amp`` is
  ``none``; fp32 everywhere else. The critic stays in fp32 (its input is cast back): the
  Wasserstein term is a difference of near-equal scores, E[D(SR)] - E[D(HR)], which bf16
  (8 mantissa bits) cannot resolve at the start of phase 2 (a fresh 8-feature critic on
  32 px patches: -3.8e-6 in fp32, exactly 0 in bf16, and a bf16 gradient 113 % off the
  fp32 one, relative L2). Opt-in: bf16 rounds the generator's activations, so a run no
  longer follows the fp32 trajectory of a shipped model.

Every mode is deterministic on a CPU for a given number of threads, and a resumed run
repeats the uninterrupted one bit for bit within one mode. ``torch.compile`` stays the
separate, opt-in ``compile`` field: the convolutions, 85 % of a teach update on the
project's 2-core CPU (torch.profiler), run in oneDNN with or without it. Measured on
teach's phase 1 in fast mode: with 1 thread (load average 3.5) compiling took 91 s and
the compiled update was slower, 466 ms against 409 ms eager; with 2 threads on a quiet
machine, interleaved against eager in three rounds, compiling and two updates took 49 s
and the compiled update ran at 0.89-0.96x of eager's speed. Also measured and not adopted:
splitting the batch across two worker threads of one intra-op thread each (data
parallelism inside the process, the parts' gradients averaged). A bare RRDB-2 forward and
backward ran about 1.2x faster so, but in the real trainer's update (teach, 2 threads,
interleaved against the unsplit fast update, three rounds) it sped phase 1 up by
0.97-0.99x and phase 2 by 1.03-1.07x: not worth threads, pre-drawn noise and a second
gradient path. Nor did cheaper convolutions for the frozen VGG19 of l_P, three quarters of
a conv5_4 update, beat oneDNN (forward and input gradient, batch 16, one thread, against
oneDNN channels-last): Winograd F(2x2, 3x3) written in torch operations was 1.2x faster on
the 512-channel 6x6 layers but 0.2-0.65x on the others, and im2col + GEMM 0.2-1.1x.

:func:`gmgan.experiments.teaching_config` picks the mode that trained the shipped model
(``reference`` for the PSNR models, ``fast`` for phase 2), so that the book's teaching runs
repeat the shipped models' logs.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import torch

__all__ = ["SPEED_MODES", "SpeedPlan", "cpu_flags", "native_bf16_cpu", "plan_speed"]

#: The values of ``TrainConfig.speed``.
SPEED_MODES = ("fast", "reference", "auto")

#: /proc/cpuinfo flags of a native bf16 dot product: AVX512-BF16 (Cooper Lake, Zen 4)
#: or AMX.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.lru_cache(maxsize=1)
def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags listed in ``path`` (Linux); empty where there is none."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bf16_cpu() -> bool:
    """True when ATen's CPU kernels run at AVX-512 level and the CPU has a native bf16
    dot product (flags ``avx512_bf16`` or ``amx_bf16``). False on AVX2-only CPUs and
    whenever ATen was limited below AVX-512 (``ATEN_CPU_CAPABILITY=default`` or
    ``avx2``): bf16 there is
    emulated in fp32 and slower than fp32 itself."""
    capability = torch.backends.cpu.get_cpu_capability().upper()
    return capability.startswith("AVX512") and bool(BF16_FLAGS & cpu_flags())


@dataclasses.dataclass(frozen=True)
class SpeedPlan:
    """What one run does in its mode (:func:`plan_speed`).

    Attributes:
        mode: the configured ``speed`` (``fast``, ``reference`` or ``auto``).
        channels_last: networks and batches in channels-last memory format.
        one_generator_forward: phase 2 computes G(LR) once per update (see the module
        doc).
        foreach_adam: Adam steps all parameters with multi-tensor (foreach) kernels.
        amp: the mixed precision used: ``none``, ``bf16`` or ``fp16``.
        fp32_critic: the critic runs in fp32 inside the autocast region (``auto``'s
        bf16).
        critic_batch: ``GMGANLoss.critic``'s ``batched``: ``"pair"`` scores HR and SR in
        one critic forward (a critic without batch norm), ``"none"`` in two.
    """

    mode: str
    channels_last: bool
    one_generator_forward: bool
    foreach_adam: bool
    amp: str
    fp32_critic: bool = False
    critic_batch: str = "none"

    def describe(self) -> str:
        """One line for the trainer's start-up message, e.g. ``speed fast: fp32,
        channels-last, one G forward per GAN update, foreach Adam``."""
        parts = [
            "fp32"
            if self.amp == "none"
            else f"{self.amp} autocast" + (" (critic fp32)" if self.fp32_critic else "")
        ]
        if self.channels_last:
            parts.append("channels-last")
        if self.one_generator_forward:
            parts.append("one G forward per GAN update")
        if self.critic_batch == "pair":
            parts.append("D(HR) and D(SR) in one forward")
        if self.foreach_adam:
            parts.append("foreach Adam")
        return f"speed {self.mode}: " + ", ".join(parts)

    def adam(self, params, **kwargs) -> torch.optim.Adam:
        """``torch.optim.Adam(params, **kwargs)``, foreach in the fast modes."""
        if self.foreach_adam:
            kwargs.setdefault("foreach", True)
        return torch.optim.Adam(params, **kwargs)

    def critic(self, module: torch.nn.Module):
        """The critic as the update calls it: ``module`` itself, or with ``fp32_critic``
        a function that runs it in float32 with autocast off, inside any region."""
        if not self.fp32_critic:
            return module

        def in_fp32(x: torch.Tensor) -> torch.Tensor:
            with torch.autocast(x.device.type, enabled=False):
                return module(x.float())

        return in_fp32

    def apply(self, cfg):
        """``cfg`` with the plan's ``amp`` and ``channels_last`` (what :class:`PhaseRun`
        reads for autocast and for the memory format of the batches it serves)."""
        return dataclasses.replace(cfg, amp=self.amp, channels_last=self.channels_last)


def plan_speed(
    cfg, device: torch.device | str, *, distributed: bool = False
) -> SpeedPlan:
    """The plan for ``cfg.speed`` on ``device``; ``distributed``: a DDP run."""
    mode = getattr(cfg, "speed", "fast")
    if mode not in SPEED_MODES:
        raise ValueError(f"speed must be one of {', '.join(SPEED_MODES)}; got {mode!r}")
    device = torch.device(device)
    if mode == "reference":
        return SpeedPlan(mode, bool(cfg.channels_last), False, False, cfg.amp)
    on_cpu = device.type == "cpu"
    channels_last = bool(cfg.channels_last) or (on_cpu and not distributed)
    # Batch norm would mix HR and SR statistics in one forward: two forwards then.
    critic_batch = "none" if getattr(cfg, "d_norm", "none") == "batch" else "pair"
    if mode == "auto" and cfg.amp == "none" and on_cpu and native_bf16_cpu():
        return SpeedPlan(
            mode, channels_last, True, True, "bf16", fp32_critic=True,
            critic_batch=critic_batch,
        )
    return SpeedPlan(
        mode, channels_last, True, True, cfg.amp, critic_batch=critic_batch
    )
