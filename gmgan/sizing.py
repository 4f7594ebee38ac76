"""How long a training configuration takes, and which preset a notebook runs here.

:func:`estimate_seconds` scales measured seconds per update
(:data:`CPU_SECONDS_PER_UPDATE`, :data:`GPU_SECONDS_PER_UPDATE`,
:data:`T4_SECONDS_PER_UPDATE`) by a FLOP model of the networks (:func:`phase_flops`);
:func:`print_estimate` says it in one line before a run starts; :func:`pick_preset`
chooses ``colab`` on a CUDA device and ``teach`` on a CPU. Re-exported by
:mod:`gmgan.experiments`, where the notebooks find them.
"""
from __future__ import annotations

import functools
import types

import torch
from torch.utils.flop_counter import FlopCounterMode

from gmgan.config import TrainConfig, get_preset
from gmgan.losses import VGG19_LAYERS, _vgg19_features_meta
from gmgan.nets import Discriminator, RRDBNet

__all__ = [
    "CPU_SECONDS_PER_UPDATE",
    "ESTIMATE_DEVICES",
    "GPU_SECONDS_PER_UPDATE",
    "H200_TO_T4",
    "T4_SECONDS_PER_UPDATE",
    "duration_text",
    "estimate_device",
    "estimate_seconds",
    "phase_flops",
    "pick_preset",
    "print_estimate",
]

#: CPU seconds per generator update of the ``teach`` preset, training on one thread (see
#: :func:`gmgan.runs.ensure_run`), measured with the trainer on the 2-core machine the
#: notebooks were made on. Phase 1 (``speed="reference"``): 1000 updates took 200 s of CPU
#: time, validation included. Phase 2 (conv5_4, noise inputs, ``speed="fast"``, as
#: :func:`gmgan.experiments.teaching_config` trains it): the eight 4,000-update production runs
#: of issue 19 took 2,155-2,466 s each (mean 2,315 s), two at a time, one core each. On a busy
#: machine the wall-clock time is longer. Estimates for other configurations scale these by the
#: ratio of their FLOPs (:func:`estimate_seconds`).
CPU_SECONDS_PER_UPDATE: dict[str, float] = {"pretrain": 0.17, "gan": 0.58}

#: Seconds per update of the ``paper`` preset on one NVIDIA H200, measured with the trainer in its
#: default fp32 eager mode, median over steps 16-60 (phase 1) and 11-40 (phase 2) of short runs
#: with validation and checkpoints off and a random VGG19 (the same cost as ImageNet weights).
#: bf16 autocast with channels-last gave 0.0995 s and 0.156 s.
GPU_SECONDS_PER_UPDATE: dict[str, float | None] = {"pretrain": 0.113, "gan": 0.154}

#: H200 -> Colab T4: an ESTIMATE, no T4 has run gmgan yet. The H200's fp32 step (convolutions in
#: TF32, cuDNN's default) reached 15.6 TFLOP/s in phase 1 and 24.8 TFLOP/s in phase 2 by the FLOP model
#: (:func:`phase_flops`), a few per cent of its tensor-core peak, and bf16 was only 12 % faster:
#: the step is bound by memory traffic and kernel launches as much as by arithmetic. The T4 has
#: 65 / 989 of the H200's dense fp16 tensor peak and 0.32 / 4.8 TB/s of its memory bandwidth: both
#: ratios are 1/15. Assuming the T4 reaches the same fraction of its peak with fp16 autocast as the
#: H200 did in fp32 (efficiency factor 1), a T4 update takes 15.2 times as long as an H200 update.
#: A small GPU is usually filled better by these small kernels, so this is more likely pessimistic
#: than optimistic; a T4 at its 70 W limit clocks down, which goes the other way.
H200_TO_T4 = 989.0 / 65.0

#: Seconds per update of the ``paper`` preset on a Colab T4 with fp16 autocast: an ESTIMATE,
#: :data:`GPU_SECONDS_PER_UPDATE` x :data:`H200_TO_T4` (1.72 s and 2.34 s).
T4_SECONDS_PER_UPDATE: dict[str, float | None] = {
    phase: None if seconds is None else seconds * H200_TO_T4 for phase, seconds in GPU_SECONDS_PER_UPDATE.items()}


def phase_flops(cfg: TrainConfig, phase: str) -> float:
    """The FLOP model of one update of ``phase`` (``"pretrain"`` or ``"gan"``) for
    ``cfg``'s networks and batch: forward FLOPs weighted by how often each network runs
    per update (:func:`_count_flops`, cached: counting takes a few seconds)."""
    fields = ("num_feat", "num_block", "num_grow", "scale", "batch_size", "patch_size", "d_num_feat",
              "d_norm", "n_critic", "perceptual_layer")
    uses_vgg = cfg.perceptual_mode != "none"
    return _count_flops(tuple(getattr(cfg, f) for f in fields), phase, uses_vgg)


@functools.lru_cache(maxsize=32)
def _count_flops(values: tuple, phase: str, uses_vgg: bool) -> float:
    """Forward FLOPs of one update's networks (counted on the meta device, no memory used), weighted
    roughly by how often each runs per update: backward about twice a forward."""
    cfg = types.SimpleNamespace(**dict(zip(
        ("num_feat", "num_block", "num_grow", "scale", "batch_size", "patch_size", "d_num_feat",
         "d_norm", "n_critic", "perceptual_layer"), values)))
    lr_side = cfg.patch_size // cfg.scale
    with torch.device("meta"):
        g = RRDBNet(3, 3, num_feat=cfg.num_feat, num_block=cfg.num_block, num_grow=cfg.num_grow,
                    scale=cfg.scale)
        x = torch.empty(cfg.batch_size, 3, lr_side, lr_side)
        with FlopCounterMode(display=False) as counter:
            g(x)
        g_fwd = counter.get_total_flops()
        if phase == "pretrain":
            return 3.0 * g_fwd
        d = Discriminator(3, num_feat=cfg.d_num_feat, input_size=cfg.patch_size, norm=cfg.d_norm)
        y = torch.empty(cfg.batch_size, 3, cfg.patch_size, cfg.patch_size)
        with FlopCounterMode(display=False) as counter:
            d(y)
        d_fwd = counter.get_total_flops()
    vgg_fwd = 0.0
    if uses_vgg:
        features = _vgg19_features_meta()[: VGG19_LAYERS[cfg.perceptual_layer] + 1]
        with FlopCounterMode(display=False) as counter:
            features(torch.empty(cfg.batch_size, 3, cfg.patch_size, cfg.patch_size, device="meta"))
        vgg_fwd = counter.get_total_flops()
    # G: one no-grad forward for the critic step, forward + backward for its own step (4 forwards).
    # D: per critic step SR and HR forward + backward, plus the gradient penalty's double backward
    # (about 10 forwards); in the generator step a forward and backward through it (3).
    # VGG: SR forward + backward (3) and HR forward (1).
    return 4.0 * g_fwd + (10.0 * cfg.n_critic + 3.0) * d_fwd + 4.0 * vgg_fwd


#: Devices :func:`estimate_seconds` knows: (seconds-per-update table, reference preset, label).
ESTIMATE_DEVICES: dict[str, tuple[dict[str, float | None], str, str]] = {
    "cpu": (CPU_SECONDS_PER_UPDATE, "teach", "2 CPU cores"),
    "gpu": (GPU_SECONDS_PER_UPDATE, "paper", "one H200"),
    "t4": (T4_SECONDS_PER_UPDATE, "paper", "a Colab T4 (estimate)"),
}


def estimate_seconds(cfg: TrainConfig, device: str = "cpu") -> float | None:
    """A rough wall-clock estimate for training ``cfg`` (all its phases), in seconds.

    ``device="cpu"``: :data:`CPU_SECONDS_PER_UPDATE` (the teach preset on 2 shared CPU cores),
    scaled by the FLOPs of ``cfg``'s networks relative to the teach preset's. ``device="gpu"``:
    :data:`GPU_SECONDS_PER_UPDATE` (the paper preset on one H200) scaled the same way from the paper
    preset. ``device="t4"``: :data:`T4_SECONDS_PER_UPDATE`, the H200 times scaled to a Colab T4 by
    the ratio of the two GPUs' peak throughputs (an estimate, see :data:`H200_TO_T4`), then the same
    way. None while a table entry is unmeasured. Validation, data preparation and downloads are not
    modelled.
    """
    if device not in ESTIMATE_DEVICES:
        raise ValueError(f"estimate_seconds: device must be one of {', '.join(ESTIMATE_DEVICES)}, got {device!r}")
    table, reference_name, _ = ESTIMATE_DEVICES[device]
    reference = get_preset(reference_name)
    total = 0.0
    for phase in cfg.phases():
        per_update = table.get(phase)
        if per_update is None:
            return None
        # The VGG19 layer counts too: conv5_4 on the teach preset's 48-px patches is 2.8x the
        # FLOPs of a conv2_2 update, and it measured 2.4x the seconds (issue 19's pilots).
        ratio = phase_flops(cfg, phase) / phase_flops(reference, phase)
        total += cfg.iters(phase) * per_update * ratio
    return total


def duration_text(seconds: float | None) -> str:
    """A duration in words for the printed lines: ``"about 14 min"``,
    ``"about 1.5 h"``."""
    if seconds is None:
        return "an unknown time"
    if seconds < 90:
        return "about 1 min" if seconds >= 30 else "under a minute"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.0f} h" if seconds >= 10 * 3600 else f"about {seconds / 3600:.1f} h"


def pick_preset(preset: str | None = None) -> str:
    """The preset a notebook runs: ``preset`` when given; otherwise ``"colab"`` when a CUDA device
    is present (a Colab GPU runtime) and ``"teach"`` on a CPU."""
    if preset:
        get_preset(preset)  # an unknown name fails here, listing the known ones
        return preset
    return "colab" if torch.cuda.is_available() else "teach"


def estimate_device(device: str | None = None) -> str:
    """The :data:`ESTIMATE_DEVICES` entry for ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``;
    default: CUDA device 0 when present, else the CPU): ``"gpu"`` for an H100/H200-class device,
    ``"t4"`` for any other GPU (the T4 estimate is the only one for smaller GPUs), else ``"cpu"``."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if not str(device).startswith("cuda"):
        return "cpu"
    name = torch.cuda.get_device_name(torch.device(device)) if torch.cuda.is_available() else ""
    return "gpu" if any(big in name for big in ("H100", "H200")) else "t4"


def print_estimate(cfg: TrainConfig, device: str | None = None) -> float | None:
    """Print one line with the estimated training time of ``cfg`` on ``device`` (see
    :func:`estimate_device`) before a run starts, and return the seconds (None: unknown).

    Example: ``colab: 5000 MSE + 2000 GAN updates, about 1.0 h on a Colab T4 (estimate)``.
    """
    key = estimate_device(device if device is not None else (None if cfg.device == "auto" else cfg.device))
    seconds = estimate_seconds(cfg, key)
    steps = [f"{cfg.iters(p)} {'MSE' if p == 'pretrain' else 'GAN'} updates"
             for p in cfg.phases()]
    gpu = ""
    if key != "cpu" and torch.cuda.is_available():
        gpu = f"; this GPU: {torch.cuda.get_device_name(0)}"
    print(f"{cfg.name}: {' + '.join(steps)}, {duration_text(seconds)} on "
          f"{ESTIMATE_DEVICES[key][2]}{gpu} (FLOP model x measured seconds per update; data "
          f"download and preparation not included)", flush=True)
    return seconds
