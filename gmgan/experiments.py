"""The trained models that the experiment notebooks share: shipped, cached, or trained now.

The experiment notebooks (06 training, 07 evaluation and ablation, 08 training sets, 09 failure
case) compare the same trained generators. At the ``teach`` scale they come with the package
(:data:`SHIPPED_DIR`, ``gmgan/teaching_models/teach/<run>``): training all 18 takes hours on a
CPU, so :func:`train_teaching_models` trained them once and :func:`export_run` copied weights,
configuration and logs there. Any other model (another preset, a changed field, ``retrain=True``)
is trained once into ``gmgan.cache.derived_dir("models", preset, name)`` and reused from there.
:func:`ensure_run` says in one printed line which of the three happened.

A model is found only when its configuration matches the one asked for. The comparison uses
:func:`config_key`: the fields that change the trained weights or the logged curves (not the run's
name, folder, device, progress bar and the like), with paths written so that they are the same on
every machine (:func:`_portable_path`). A folder that holds a run of another configuration is left
alone; the new run goes to ``<name>-<hash>``, ``hash`` being 8 hex digits of the key.

The model variants of the paper's experiments (:data:`VARIANTS`, built by :func:`teaching_run`),
each trained with every seed of :data:`SEEDS` so that a difference can be set against the spread
the seed alone makes:

- ``"psnr"``: phase 1 only, the PSNR-oriented generator trained with the pixel MSE;
- ``"gmgan"``: phase 2 with GMGAN's full generator loss, started from the ``"psnr"`` generator of
  the same seed (so phases 1 + 2 of the paper);
- ``"gmgan-no-lq"``: phase 2 without the quality loss (gamma = 0), from the same phase-1 generator:
  the paper's Table 2 ablation;
- Table 3: GMGAN trained in phase 2 on each of the four training sets of :func:`table3_sets`
  (:func:`table3_run`).

The perceptual loss needs VGG19 weights trained on ImageNet (:mod:`gmgan.pretrained` fetches them
where the network allows). The ``teach`` preset always uses a seeded random VGG19 with its weight
balanced against l_Q (:func:`gmgan.train.balanced_beta`), so that its models are the same on every
machine; the other presets use the ImageNet weights or refuse to start without them
(:func:`default_perceptual_weights`).

Files of a run folder (besides the trainer's own, see :mod:`gmgan.train`): ``run.json``, written
when training finished, with the configuration key, the bicubic baseline, the weights used for l_P
and the seconds each phase took. Only a folder with ``run.json`` counts as a finished run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import os
import re
import sys
import types
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock

from gmgan.cache import derived_dir
from gmgan.presets import TrainConfig, apply_overrides, get_preset
from gmgan.threads import torch_threads

__all__ = [
    "CPU_SECONDS_PER_UPDATE",
    "ESTIMATE_DEVICES",
    "GPU_SECONDS_PER_UPDATE",
    "H200_TO_T4",
    "RANDOM_VGG_FALLBACK",
    "RunInfo",
    "SEEDS",
    "SHIPPED_DIR",
    "T4_SECONDS_PER_UPDATE",
    "TrainingSet",
    "VARIANTS",
    "config_hash",
    "config_key",
    "default_perceptual_weights",
    "ensure_run",
    "estimate_device",
    "estimate_seconds",
    "export_run",
    "load_run",
    "load_run_generator",
    "perceptual_weights_available",
    "pick_preset",
    "print_estimate",
    "run_name",
    "table3_run",
    "table3_sets",
    "teaching_config",
    "teaching_plan",
    "teaching_run",
    "train_teaching_models",
]

#: The model variants of the experiments: name -> (TrainConfig overrides, parent variant whose final
#: generator phase 2 starts from, a one-line description).
VARIANTS: dict[str, tuple[dict[str, Any], str | None, str]] = {
    "psnr": ({"phase": "pretrain"}, None, "phase 1 only: the PSNR-oriented generator (pixel MSE)"),
    "gmgan": ({"phase": "gan"}, "psnr",
              "phase 2 from the PSNR model with the full loss alpha*MSE + beta*l_P + gamma*l_Q + delta*l_GA"),
    "gmgan-no-lq": ({"phase": "gan", "gamma": 0.0}, "psnr",
                    "phase 2 from the PSNR model without the quality loss (gamma = 0), the Table 2 ablation"),
}

# Fields that do not change what a run learns or logs (where and how it runs), left out of the key.
# ``speed`` picks how an update is computed (gmgan.speed): its modes agree to float rounding, and
# leaving it out keeps the keys of the models trained before the field existed.
_MECHANICS = frozenset({"name", "out_dir", "resume", "device", "num_workers", "progress", "tensorboard",
                        "ckpt_every", "keep_last", "on_save_error", "max_bad_steps", "speed"})
# Fields that only one phase reads: left out of the key of a run without that phase.
_PRETRAIN_ONLY = frozenset({"pretrain_iters", "pretrain_lr", "pretrain_lr_halve_every", "pretrain_betas"})
# Fields added after the shipped models were trained: in a key only where they differ
# from these defaults, so that the keys of the runs made before them stay the same.
_KEY_ONLY_IF_SET: dict[str, Any] = {"noise_inject": False, "noise_head": 0}
_GAN_ONLY = frozenset({"gan_iters", "gan_lr", "critic_lr", "gan_lr_halve_every", "gan_betas", "pretrained_g", "n_critic",
                       "alpha", "beta", "gamma", "delta", "lam", "perceptual_layer", "perceptual_weights", "balance_random_vgg",
                       "d_num_feat", "d_norm"})

#: CPU seconds per generator update of the ``teach`` preset, training on one thread (see
#: :func:`ensure_run`), measured with the trainer on the 2-core machine the notebooks were made on:
#: 1000 phase-1 updates took 200 s and 300 phase-2 updates 201 s of CPU time, validation included
#: (about 30 s of it in each). On a busy machine the wall-clock time is longer. Estimates for other
#: configurations scale these by the ratio of their FLOPs (:func:`estimate_seconds`).
CPU_SECONDS_PER_UPDATE: dict[str, float] = {"pretrain": 0.17, "gan": 0.57}

#: Seconds per update of the ``paper`` preset on one NVIDIA H200, measured with the trainer in its
#: default fp32 eager mode, median over steps 16-60 (phase 1) and 11-40 (phase 2) of short runs
#: with validation and checkpoints off and a random VGG19 (the same cost as ImageNet weights).
#: bf16 autocast with channels-last gave 0.0995 s and 0.156 s.
GPU_SECONDS_PER_UPDATE: dict[str, float | None] = {"pretrain": 0.113, "gan": 0.154}

#: H200 -> Colab T4: an ESTIMATE, no T4 has run gmgan yet. The H200's fp32 step (convolutions in
#: TF32, cuDNN's default) reached 15.6 TFLOP/s in phase 1 and 24.8 TFLOP/s in phase 2 by the FLOP model
#: (:func:`_phase_flops`), a few per cent of its tensor-core peak, and bf16 was only 12 % faster:
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

#: Seeds of the teaching models: every model that enters a comparison is trained with each of
#: them, so that a difference can be set against the spread that the seed alone makes.
SEEDS: tuple[int, ...] = (0, 1, 2)

#: The teaching models shipped with the package (``gmgan/teaching_models/<preset>/<run name>``):
#: finished runs of the ``teach`` preset (weights, configuration, logs), trained once on a CPU by
#: :func:`train_teaching_models` and reused by the notebooks instead of training again. They are
#: found by their configuration (:func:`config_key`), exactly like the runs of the derived-data
#: cache, so a notebook that changes a field trains its own model.
#: ``GMGAN_TEACHING_MODELS`` points elsewhere (a copy on shared storage, a test's folder).
SHIPPED_DIR = Path(os.environ.get("GMGAN_TEACHING_MODELS") or Path(__file__).with_name("teaching_models"))

#: Runs whose raw (non-averaged) generator is shipped too, for the EMA-against-raw comparison of
#: notebook 06; the others ship only their moving average, which every table evaluates.
SHIP_RAW = frozenset({"gmgan-s0"})

_RUN_FILE = "run.json"


# ---------------------------------------------------------------------------------------------
# Perceptual-loss weights
# ---------------------------------------------------------------------------------------------

def perceptual_weights_available(*, download: bool = False) -> bool:
    """True when torchvision's ImageNet VGG19 weights (``vgg19-dcbb9e9d.pth``) are in the torch hub
    cache (``$TORCH_HOME/hub/checkpoints``). ``download=False`` looks at the file only and never
    touches the network; ``download=True`` fetches the file first where the network allows
    (:func:`gmgan.pretrained.fetch_vgg19`) and returns False when it cannot."""
    from gmgan.pretrained import WeightsUnavailable, fetch_vgg19, vgg19_cached

    if vgg19_cached() or not download:
        return vgg19_cached()
    try:
        fetch_vgg19()
    except WeightsUnavailable:
        return False
    return True


#: Presets whose notebooks fall back to a random VGG19 when the ImageNet weights are not cached
#: (small CPU runs that teach the mechanics). Every other preset needs the ImageNet weights.
RANDOM_VGG_FALLBACK = frozenset({"teach"})


def default_perceptual_weights(preset: str = "teach", *, verbose: bool = False) -> str:
    """The notebooks' rule for ``TrainConfig.perceptual_weights`` of a preset's runs.

    - the ImageNet weights are cached: ``"imagenet"``;
    - ``teach`` (:data:`RANDOM_VGG_FALLBACK`): ``"random"``, a randomly initialised VGG19 seeded by
      the run's seed, without downloading anything (``verbose``: one printed line says so). A random
      VGG still compares multi-channel filter responses of SR and HR, but it is not the paper's l_P;
      say so wherever results depend on it;
    - any other preset (``paper``, ``colab``): ``"imagenet"``, after downloading the weights where
      the network allows (:func:`gmgan.pretrained.fetch_vgg19`).

    Call it only when the caller did not choose ``perceptual_weights`` itself: an explicit
    ``perceptual_weights="random"`` is how a paper-scale run without the weights is allowed.

    Raises:
        gmgan.pretrained.WeightsUnavailable: a preset that needs the ImageNet weights, which can be
        neither found nor downloaded; the message names the file, the URL, TORCH_HOME, a local path
        and ``perceptual_weights=random`` as the ways out.
    """
    from gmgan.pretrained import fetch_vgg19, vgg19_cached, vgg19_file

    if vgg19_cached():
        return "imagenet"
    if preset in RANDOM_VGG_FALLBACK:
        if verbose:
            print(f"l_P uses a randomly initialised VGG19 (seeded): the ImageNet weights are not in the torch "
                  f"hub cache ({vgg19_file()})", flush=True)
        return "random"
    fetch_vgg19()
    return "imagenet"


# ---------------------------------------------------------------------------------------------
# Configuration keys
# ---------------------------------------------------------------------------------------------

def _portable_path(value: str | None) -> str | None:
    """A path written so that keys do not depend on the machine: a trained model's file as
    ``<models>/<preset>/<run>/...`` whether it lies in the shipped models or in the derived-data
    cache's ``models`` folder, any other file of the derived-data cache as ``<derived>/...``.
    Anything else (a registry name, a folder elsewhere, an already portable path) is kept."""
    if not value or str(value).startswith("<"):
        return value
    path = Path(value).expanduser().resolve()
    derived = derived_dir(create=False)
    for root, tag in ((SHIPPED_DIR.resolve(), "<models>"), (derived / "models", "<models>"), (derived, "<derived>")):
        try:
            return f"{tag}/" + path.relative_to(root).as_posix()
        except ValueError:
            continue
    return str(value)


def config_key(cfg: TrainConfig) -> dict[str, Any]:
    """The fields of ``cfg`` that decide what a run learns and logs, as a plain dict.

    Left out: where and how it runs (name, out_dir, device, workers, progress bar, TensorBoard,
    checkpoint cadence) and the fields of a phase the run does not have. ``pretrained_g``
    and ``train_set`` are written machine-independently (:func:`_portable_path`).
    """
    phases = cfg.phases()
    skip = set(_MECHANICS)
    if "pretrain" not in phases:
        skip |= _PRETRAIN_ONLY
    if "gan" not in phases:
        skip |= _GAN_ONLY
    key = {k: v for k, v in cfg.to_dict().items() if k not in skip
           and not (k in _KEY_ONLY_IF_SET and v == _KEY_ONLY_IF_SET[k])}
    for name in ("pretrained_g", "train_set"):
        if name in key:
            key[name] = _portable_path(key[name])
    return key


def config_hash(cfg: TrainConfig) -> str:
    """8 hex digits of the SHA-256 of :func:`config_key` (as sorted JSON)."""
    text = json.dumps(config_key(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _key_of_folder(folder: Path) -> dict[str, Any] | None:
    """The key of the configuration saved in a run folder (None if there is none readable)."""
    path = folder / "config.yaml"
    if not path.is_file():
        return None
    try:
        return config_key(TrainConfig.from_yaml(path))
    except (ValueError, OSError):
        return None


def _diff(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 4) -> str:
    names = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    parts = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in names[:limit]]
    return ", ".join(parts) + (f" and {len(names) - limit} more" if len(names) > limit else "")


# ---------------------------------------------------------------------------------------------
# Time estimates
# ---------------------------------------------------------------------------------------------

def _phase_flops(cfg: TrainConfig, phase: str) -> float:
    """:func:`_count_flops` of the fields that matter (cached: counting takes a few seconds)."""
    fields = ("num_feat", "num_block", "num_grow", "scale", "batch_size", "patch_size", "d_num_feat",
              "d_norm", "n_critic", "perceptual_layer")
    uses_vgg = cfg.beta > 0 and cfg.perceptual_weights.lower() not in ("none", "off", "false")
    return _count_flops(tuple(getattr(cfg, f) for f in fields), phase, uses_vgg)


@functools.lru_cache(maxsize=32)
def _count_flops(values: tuple, phase: str, uses_vgg: bool) -> float:
    """Forward FLOPs of one update's networks (counted on the meta device, no memory used), weighted
    roughly by how often each runs per update: backward about twice a forward."""
    from torch.utils.flop_counter import FlopCounterMode

    from gmgan.nets import Discriminator, RRDBNet

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
        from gmgan.losses import VGG19_LAYERS, _vgg19_features_meta

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
        ref = dataclasses.replace(reference, perceptual_layer=cfg.perceptual_layer) if phase == "gan" else reference
        ratio = _phase_flops(cfg, phase) / _phase_flops(ref, phase)
        iters = cfg.pretrain_iters if phase == "pretrain" else cfg.gan_iters
        total += iters * per_update * ratio
    return total


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "an unknown time"
    if seconds < 90:
        return "about 1 min" if seconds >= 30 else "under a minute"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.0f} h" if seconds >= 10 * 3600 else f"about {seconds / 3600:.1f} h"


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------

@dataclass
class RunInfo:
    """A finished training run in the cache (what :func:`ensure_run` returns).

    Attributes:
        name: the run's name (its folder name under ``models/<preset>``, e.g. ``"gmgan"``).
        preset: the preset it belongs to (``"teach"``, ``"paper"``).
        run_dir: the run folder.
        config: the configuration it was trained with.
        cached: True when it was found (shipped or in the cache), False when it was trained in
            this call.
        shipped: True for a model shipped with the package (:data:`SHIPPED_DIR`).
        weights: ``{phase: {"G": path, "G_ema": path[, "D": path]}}`` (safetensors files).
        history: one dict per logged step, as in ``<phase>/log.jsonl`` (``phase``, ``step``, the
            loss terms: ``mse`` in phase 1; ``mse``, ``perceptual``, ``quality``, ``adversarial``,
            ``l_G``, ``wasserstein``, ``gp``, ``l_D`` in phase 2; learning rates, gradient norms).
        validation: one dict per (phase, step, model, set): ``psnr`` (dB), ``ssim``, ``gmsd``, and
            at a phase's end ``niqe``; ``model`` is ``"G_ema"`` or ``"G"``.
        bicubic: the bicubic baseline on the validation sets, ``{set: {"psnr", "ssim", "gmsd"}}``.
        perceptual: the VGG19 weights l_P used (``"imagenet"``, ``"random"``, a file, ``"none"``),
            or None for a run without phase 2.
        seconds: wall-clock seconds per phase when it was trained (machine-dependent).
        parent: the run whose generator phase 2 started from, if any.
    """

    name: str
    preset: str
    run_dir: Path
    config: TrainConfig
    cached: bool
    shipped: bool = False
    weights: dict[str, dict[str, Path]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)
    bicubic: dict[str, dict[str, float]] = field(default_factory=dict)
    perceptual: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    parent: RunInfo | None = None

    @property
    def relative_dir(self) -> str:
        """The run folder relative to the derived-data cache (``models/teach/gmgan-s0``) or to the
        package (``gmgan/teaching_models/teach/gmgan-s0``) when it lies in one of them."""
        for root in (derived_dir(create=False), SHIPPED_DIR.parent.parent):
            try:
                return self.run_dir.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                continue
        return str(self.run_dir)

    @property
    def minutes(self) -> float:
        """Wall-clock minutes its phases took when it was trained (machine-dependent)."""
        return sum(self.seconds.values()) / 60

    def generator_path(self, ema: bool = True, phase: str | None = None) -> Path:
        """The final generator file of ``phase`` (default: the run's last phase): the moving
        average ``G_ema`` when ``ema`` and the run kept one, else the raw ``G``."""
        phase = phase or self.config.phases()[-1]
        if phase not in self.weights:
            raise KeyError(f"run {self.name!r} has no weights of phase {phase!r} "
                           f"(it has: {', '.join(self.weights) or 'none'})")
        files = self.weights[phase]
        return files["G_ema"] if ema and "G_ema" in files else files["G"]

    @property
    def generator(self) -> Path:
        """The final EMA generator of the last phase (see :meth:`generator_path`)."""
        return self.generator_path()

    def curve(self, key: str, phase: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A logged training quantity against the step: ``(steps int64, values float64)``.
        ``phase`` None: every phase of this run that logged ``key``."""
        rows = [r for r in self.history if key in r and (phase is None or r["phase"] == phase)]
        return (np.array([r["step"] for r in rows], dtype=np.int64),
                np.array([r[key] for r in rows], dtype=np.float64))

    def val_curve(self, set_name: str, metric: str, model: str = "G_ema",
                  phase: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A validation score against the step: ``(steps int64, values float64)`` for one set,
        metric (``psnr`` dB, ``ssim``, ``gmsd``, ``niqe``) and model (``G_ema`` or ``G``)."""
        rows = [r for r in self.validation if r["set"] == set_name and r["model"] == model
                and metric in r and (phase is None or r["phase"] == phase)]
        return (np.array([r["step"] for r in rows], dtype=np.int64),
                np.array([r[metric] for r in rows], dtype=np.float64))

    def final_scores(self, model: str = "G_ema") -> dict[str, dict[str, float]]:
        """The validation scores at the end of the last phase: ``{set: {metric: value}}``."""
        phase = self.config.phases()[-1]
        total = self.config.pretrain_iters if phase == "pretrain" else self.config.gan_iters
        return {r["set"]: {k: v for k, v in r.items() if isinstance(v, float)}
                for r in self.validation
                if r["phase"] == phase and r["step"] == total and r["model"] == model}


def _phase_weights(folder: Path, phase: str) -> dict[str, Path]:
    return {k: folder / phase / f"{k}.safetensors" for k in ("G", "G_ema", "D")
            if (folder / phase / f"{k}.safetensors").is_file()}


def load_run(folder: str | os.PathLike, *, preset: str = "", cached: bool = True,
             shipped: bool = False) -> RunInfo:
    """Read a finished run from its folder (one with ``run.json``), without training.

    Raises ``FileNotFoundError`` naming the folder when it holds no finished run.
    """
    from gmgan.train_utils import read_jsonl

    folder = Path(folder)
    record_path = folder / _RUN_FILE
    if not record_path.is_file():
        raise FileNotFoundError(f"{folder} holds no finished run ({_RUN_FILE} is missing)")
    record = json.loads(record_path.read_text())
    cfg = TrainConfig.from_yaml(folder / "config.yaml")
    history, validation = [], []
    for phase in cfg.phases():
        history += read_jsonl(folder / phase / "log.jsonl")
        validation += read_jsonl(folder / phase / "val.jsonl")
    parent = None
    if record.get("parent"):
        parent = load_run(folder.parent / record["parent"], preset=preset, cached=True, shipped=shipped)
    return RunInfo(name=folder.name, preset=preset or record.get("preset", ""), run_dir=folder, config=cfg,
                   cached=cached, shipped=shipped, weights={p: _phase_weights(folder, p) for p in cfg.phases()},
                   history=history, validation=validation, bicubic=record.get("bicubic", {}),
                   perceptual=record.get("perceptual"), seconds=record.get("seconds", {}), parent=parent)


def _folder_state(folder: Path, key: dict[str, Any], phases: list[str]) -> str:
    """``"done"`` (finished run of this key), ``"partial"`` (this key, unfinished), ``"free"``
    (nothing there) or ``"other"`` (a run of another configuration)."""
    saved = _key_of_folder(folder)
    if saved is None:
        has_files = folder.is_dir() and any(folder.iterdir())
        return "other" if has_files else "free"
    if saved != key:
        return "other"
    finished = (folder / _RUN_FILE).is_file() and all(
        _phase_weights(folder, p).keys() & {"G", "G_ema"} for p in phases)
    return "done" if finished else "partial"


_TRAINER_BANNER = re.compile(r"^training [\w, ]+ in .+ on \S+")


@contextlib.contextmanager
def _quiet_trainer(random_vgg: bool) -> Iterator[None]:
    """Keep the trainer's start-up line (it names an absolute path) and the random-VGG warning
    (announced by :func:`ensure_run` instead) out of notebook outputs. Anything else the trainer
    writes to stderr is passed on unchanged."""
    buffer = io.StringIO()
    with warnings.catch_warnings():
        if random_vgg:
            warnings.filterwarnings("ignore", message=r"PerceptualLoss\(weights=None\)")
        # Validation turns the grey Set14 image into a tensor through a read-only numpy view
        # (gmgan.imageio.image_to_tensor); torch warns although the tensor is only read.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        try:
            with contextlib.redirect_stderr(buffer):
                yield
        finally:
            rest = [line for line in buffer.getvalue().splitlines()
                    if line.strip() and not _TRAINER_BANNER.match(line)]
            if rest:
                print("\n".join(rest), file=sys.stderr)


def _announce_training(label: str, cfg: TrainConfig, reason: str) -> None:
    steps = []
    for phase in cfg.phases():
        iters = cfg.pretrain_iters if phase == "pretrain" else cfg.gan_iters
        steps.append(f"{iters} {'MSE' if phase == 'pretrain' else 'GAN'} updates")
    device = "gpu" if (cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())) \
        else "cpu"
    where = "on 2 CPU cores" if device == "cpu" else "on one GPU"
    print(f"no cached model {label}{reason} - training it now: {' + '.join(steps)}, "
          f"{_duration(estimate_seconds(cfg, device))} {where}", flush=True)


def ensure_run(name: str, cfg: TrainConfig, *, preset: str = "", parent: str | None = None,
               verbose: bool = True, threads: int | None = 1, retrain: bool = False) -> RunInfo:
    """The run ``name`` of ``cfg``: shipped with the package, from the cache, or trained now.

    Looks first among the shipped teaching models (:data:`SHIPPED_DIR`, unless ``retrain``), then
    in ``gmgan.cache.derived_dir("models", preset, name)`` (``preset`` default:
    ``cfg.name``) for a finished run whose saved configuration has the same :func:`config_key`;
    then in ``<name>-<config_hash(cfg)>``. If neither holds it, trains ``cfg`` with
    :func:`gmgan.train.train` into the first of the two that is free (or that holds an unfinished
    run of the same configuration, which is resumed) and writes ``run.json``.

    Prints one line (``verbose``): ``using the shipped model 'NAME' (PRESET), trained in ...``,
    ``using the cached model 'NAME' (PRESET) from models/...`` or
    ``no cached model 'NAME' (PRESET) - training it now: N updates, about T min on 2 CPU cores``.
    Training runs with seed ``cfg.seed`` set for everything, including a random VGG19 (so repeated
    runs on one CPU give identical weights and losses), without a progress bar and TensorBoard.

    Args:
        name: folder name (letters, digits, ``_ . + -``).
        cfg: the configuration (its ``name`` and ``out_dir`` are replaced).
        preset: the folder level above ``name``.
        parent: the name of the run (same ``preset`` folder) whose generator phase 2 starts from;
            recorded so that :func:`load_run` can return it with the run.
        verbose: print the line above.
        retrain: ignore the shipped models (train into the derived-data cache, or reuse a model
            trained there before).
        threads: CPU threads torch may use while training (restored afterwards); None leaves
            torch's setting. One thread by default, for two reasons: the result is then the same
            bits on machines with different core counts (CI re-runs the notebooks and compares
            their printed losses), and the teaching networks are so small that a second OpenMP
            thread gains little on an idle machine and loses a lot on a busy one (on the shared
            2-core machine the notebooks were made on, a teach-preset phase-1 update took 0.18 s
            with one thread and 0.89 s with two).

    Returns:
        a :class:`RunInfo`.

    Raises:
        ValueError: a bad name. Errors of training (:func:`gmgan.train.train`) pass through.
    """
    from gmgan.train import train

    if not re.fullmatch(r"[\w.+-]+", name):
        raise ValueError(f"ensure_run: name must be a folder name (letters, digits, _ . + -), got {name!r}")
    preset = preset or cfg.name
    key = config_key(cfg)
    label = f"'{name}' ({preset})"
    if not retrain:
        for folder in (SHIPPED_DIR / preset / name, SHIPPED_DIR / preset / f"{name}-{config_hash(cfg)}"):
            if _folder_state(folder, key, cfg.phases()) == "done":
                run = load_run(folder, preset=preset, cached=True, shipped=True)
                if verbose:
                    print(f"using the shipped model {label}, trained in {run.minutes:.0f} min "
                          f"(retrain=True retrains)", flush=True)
                return run
    base = derived_dir("models", preset, create=False) / name
    hashed = base.with_name(f"{name}-{config_hash(cfg)}")
    base.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(base.parent / f".{name}.lock")):  # two notebooks never train one run at once
        states = {folder: _folder_state(folder, key, cfg.phases()) for folder in (base, hashed)}
        for folder, state in states.items():
            if state == "done":
                run = load_run(folder, preset=preset, cached=True)
                if verbose:
                    print(f"using the cached model {label} from {run.relative_dir}", flush=True)
                return run
        target = next((f for f, s in states.items() if s == "partial"), None) or \
            next((f for f, s in states.items() if s == "free"), None)
        if target is None:
            raise FileExistsError(f"ensure_run: {base} and {hashed} both hold runs of other configurations; "
                                  f"remove one")
        reason = ""
        if states[base] == "other" and base.is_dir() and (saved := _key_of_folder(base)) is not None:
            reason = f" with this configuration (the one in {base.parent.name}/{base.name} differs: {_diff(saved, key)})"
        resume = states[target] == "partial"
        if verbose:
            if resume:
                print(f"found an unfinished run of {label} - resuming it", flush=True)
            else:
                _announce_training(label, cfg, reason)
        run_cfg = dataclasses.replace(cfg, name=name, out_dir=str(target), resume=resume,
                                      progress=False, tensorboard=False)
        random_vgg = "gan" in cfg.phases() and cfg.perceptual_weights.lower() == "random"
        torch.manual_seed(cfg.seed)  # the trainer re-seeds its phases; this covers a random VGG19
        with _quiet_trainer(random_vgg), torch_threads(threads):
            result = train(run_cfg)
        if result.interrupted:
            raise KeyboardInterrupt(f"training of {label} was interrupted; run the cell again to resume it")
        record = {
            "name": name, "preset": preset, "key": key, "hash": config_hash(cfg),
            "perceptual": cfg.perceptual_weights if "gan" in cfg.phases() else None,
            "bicubic": result.bicubic, "seconds": result.seconds, "parent": parent,
        }
        tmp = target / f".{_RUN_FILE}.tmp"
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(target / _RUN_FILE)
    return load_run(target, preset=preset, cached=False)


# ---------------------------------------------------------------------------------------------
# The experiments' variants
# ---------------------------------------------------------------------------------------------

def _slug(text: str) -> str:
    return re.sub(r"[^\w.+-]+", "_", Path(text).name or text).strip("_") or "set"


def run_name(variant: str, *, preset: str = "teach", train_set: str | None = None, seed: int = 0,
             augment8: bool | None = None) -> str:
    """The folder name of a variant's run: ``<variant>[-<set>][-x8]-s<seed>``, e.g. ``gmgan-s0``,
    ``gmgan-imagenet-like-s1``. The set appears when ``train_set`` is not the preset's own, ``-x1``
    / ``-x8`` when ``augment8`` differs from the preset's."""
    base = get_preset(preset)
    parts = [variant]
    if train_set is not None and train_set != base.train_set:
        parts.append(_slug(train_set))
    if augment8 is not None and augment8 != base.augment8:
        parts.append("x8" if augment8 else "x1")
    return "-".join(parts) + f"-s{seed}"


def teaching_config(variant: str = "gmgan", *, preset: str = "teach", train_set: str | None = None,
                    pretrained_g: str | os.PathLike | None = None, seed: int = 0,
                    **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of a variant: ``get_preset(preset)``, ``perceptual_weights`` by
    :func:`default_perceptual_weights` where the preset asks for ImageNet weights (``teach`` keeps
    its seeded random VGG19) and ``overrides`` do not say otherwise, the variant's fields,
    ``train_set`` and ``seed``, and last ``overrides``. Phase-2 variants need ``pretrained_g``
    (the parent's generator; :func:`teaching_run` fills it in).

    ``speed`` is ``reference`` (eager fp32, how the shipped models were trained: gmgan.speed),
    so that a model trained again, or notebook 06's live run, repeats the shipped log bit for
    bit on a CPU like the one that trained them, at their one thread; ``speed="fast"`` in
    ``overrides`` trains faster and rounds differently, which phase 2's critic amplifies within
    a few updates (``speed`` is not part of the configuration key)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known variants: {', '.join(VARIANTS)}")
    fields, _, _ = VARIANTS[variant]
    values: dict[str, Any] = {"seed": seed, "speed": "reference", **fields}
    base = get_preset(preset, **fields)
    if "gan" in base.phases() and "perceptual_weights" not in overrides and base.perceptual_weights == "imagenet":
        values["perceptual_weights"] = default_perceptual_weights(preset)  # fetched, or refused
    if train_set is not None:
        values["train_set"] = train_set
    if pretrained_g is not None:
        values["pretrained_g"] = str(pretrained_g)
    values.update(overrides)
    return apply_overrides(get_preset(preset), values)


def teaching_run(variant: str = "gmgan", *, preset: str = "teach", train_set: str | None = None,
                 seed: int = 0, retrain: bool = False, verbose: bool = True, threads: int | None = 1,
                 **overrides: Any) -> RunInfo:
    """One of the experiments' models (:data:`VARIANTS`): shipped, from the cache, or trained now.

    ``"gmgan"`` and ``"gmgan-no-lq"`` first get their parent ``"psnr"`` run (same preset, seed,
    ``train_set`` and ``overrides``; phase-2 fields do not change the parent's key, so every phase-2
    variant shares one phase-1 generator), then train phase 2 from its final EMA generator.

    Args:
        variant: ``"psnr"``, ``"gmgan"`` or ``"gmgan-no-lq"``.
        preset: ``"teach"`` (shipped, trained on a CPU), ``"colab"`` (an hour on a Colab GPU) or
            ``"paper"`` (the paper's scale).
        train_set: a registry name or a folder of HR images (default: the preset's); it becomes
            part of the run's name (:func:`run_name`).
        seed: the run's seed (and its parent's).
        retrain: train instead of using a shipped model (see :func:`ensure_run`).
        verbose: print where the model came from.
        threads: CPU threads while training (see :func:`ensure_run`).
        overrides: :class:`TrainConfig` fields of this run, e.g. ``augment8=False``.

    Returns:
        a :class:`RunInfo` whose ``parent`` is the phase-1 run for phase-2 variants.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known variants: {', '.join(VARIANTS)}")
    _, parent_variant, _ = VARIANTS[variant]
    parent = None
    pretrained = overrides.pop("pretrained_g", None)
    if parent_variant is not None and pretrained is None:
        parent = teaching_run(parent_variant, preset=preset, train_set=train_set, seed=seed, retrain=retrain,
                              verbose=verbose, threads=threads, **overrides)
        pretrained = parent.generator_path(ema=True)
    cfg = teaching_config(variant, preset=preset, train_set=train_set, pretrained_g=pretrained, seed=seed,
                          **overrides)
    name = run_name(variant, preset=preset, train_set=train_set, seed=seed, augment8=overrides.get("augment8"))
    run = ensure_run(name, cfg, preset=preset, parent=None if parent is None else parent.run_dir.name,
                     verbose=verbose, threads=threads, retrain=retrain)
    if parent is not None:
        run.parent = parent
    return run


# ---------------------------------------------------------------------------------------------
# Table 3: the training sets
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainingSet:
    """One row of the paper's Table 3 as trained here: phase 2's training set (a registry name or
    a folder), whether it is used in its 8 dihedral versions, and the paper's row it stands for."""

    train_set: str
    augment8: bool
    paper_row: str


#: The stand-ins of the teach preset for the paper's four training sets (none of ImageNet, DF2K
#: or OST is offline): images of the same kind, in the same relations of quality and quantity.
#: ImageNet's 10,000 low-quality images: BSDS200 + T91 shrunk by 2 (MATLAB bicubic) and saved as
#: JPEG quality 50 (290 images, more than T91 but worse); DF2K: T91; DF2K + OST: T91 with the two
#: OST300 photos and three scikit-image textures; the augmentation: T91 in its 8 dihedral versions.
TEACH_LOW_QUALITY = {"sources": ("BSDS200", "T91"), "downscale": 2.0, "jpeg_quality": 50}
TEACH_TEXTURES = {"sets": ("OST300-samples",), "samples": ("grass", "gravel", "brick")}


def table3_sets(preset: str = "teach", *, progress: bool = False) -> dict[str, TrainingSet]:
    """The four training sets of Table 3 for ``preset``, by label, building the derived ones
    (:func:`gmgan.degrade.make_set`) on first use. The last one, the 8x augmentation, is the
    preset's own training data, so its GMGAN is the one of Tables 1 and 2.

    ``teach``: the offline stand-ins described at :data:`TEACH_LOW_QUALITY`. Other presets: the
    paper's own sets where the registry has them (``DF2K``, ``DF2K-OST``, ``DIV2K`` x8); the
    ImageNet row is DIV2K degraded like the teach stand-in (its 10,000 images are not public as a
    set).
    """
    from gmgan.data import dataset_dir
    from gmgan.degrade import make_set

    cfg = get_preset(preset)
    if preset == "teach":
        hq = cfg.train_set
        low = make_set(list(TEACH_LOW_QUALITY["sources"]), name="imagenet-like",
                       downscale=TEACH_LOW_QUALITY["downscale"], jpeg_quality=TEACH_LOW_QUALITY["jpeg_quality"],
                       min_side=cfg.patch_size, progress=progress)
        textures = [hq, *TEACH_TEXTURES["sets"],
                    *(dataset_dir("samples") / f"{name}.png" for name in TEACH_TEXTURES["samples"])]
        rich = make_set(textures, name=f"{hq}-textures", progress=progress)
        return {"ImageNet-like": TrainingSet(str(low), False, "ImageNet"),
                hq: TrainingSet(hq, False, "DF2K"),
                f"{hq} + textures": TrainingSet(str(rich), False, "DF2K + OST"),
                f"{hq}, 8x dihedral": TrainingSet(hq, True, "Augmentation")}
    low = make_set([cfg.train_set], name="imagenet-like", downscale=TEACH_LOW_QUALITY["downscale"],
                   jpeg_quality=TEACH_LOW_QUALITY["jpeg_quality"], min_side=cfg.patch_size, progress=progress)
    return {"ImageNet-like": TrainingSet(str(low), False, "ImageNet"),
            "DF2K": TrainingSet("DF2K", False, "DF2K"),
            "DF2K + OST": TrainingSet("DF2K-OST", False, "DF2K + OST"),
            f"{cfg.train_set}, 8x dihedral": TrainingSet(cfg.train_set, True, "Augmentation")}


def table3_run(training_set: TrainingSet, *, preset: str = "teach", seed: int = 0, retrain: bool = False,
               verbose: bool = True, threads: int | None = 1) -> RunInfo:
    """GMGAN trained on one of :func:`table3_sets`: phase 2 on that set, from the preset's PSNR
    model of the same seed (one phase 1 for all four sets, so that they differ in phase 2 only)."""
    base = get_preset(preset)
    parent = teaching_run("psnr", preset=preset, seed=seed, retrain=retrain, verbose=verbose, threads=threads)
    train_set = None if training_set.train_set == base.train_set else training_set.train_set
    cfg = teaching_config("gmgan", preset=preset, train_set=train_set, seed=seed, augment8=training_set.augment8,
                          pretrained_g=parent.generator_path(ema=True))
    name = run_name("gmgan", preset=preset, train_set=train_set, seed=seed, augment8=training_set.augment8)
    run = ensure_run(name, cfg, preset=preset, parent=parent.run_dir.name, verbose=verbose, threads=threads,
                     retrain=retrain)
    run.parent = parent
    return run


# ---------------------------------------------------------------------------------------------
# Training and shipping the teaching models
# ---------------------------------------------------------------------------------------------

def teaching_plan(preset: str = "teach", seeds: tuple[int, ...] = SEEDS) -> list[tuple[str, dict[str, Any]]]:
    """Every model the notebooks compare, in an order that trains parents first: for each seed
    the PSNR model, then GMGAN, GMGAN without l_Q and GMGAN on each other Table 3 set. Returns
    ``[(what, keyword arguments of teaching_run or table3_run), ...]``."""
    plan: list[tuple[str, dict[str, Any]]] = [("psnr", {"seed": s}) for s in seeds]
    sets = [ts for ts in table3_sets(preset).values() if ts.paper_row != "Augmentation"]
    for s in seeds:
        plan += [("gmgan", {"seed": s}), ("gmgan-no-lq", {"seed": s})]
        plan += [("table3", {"seed": s, "training_set": ts}) for ts in sets]
    return plan


def _train_planned(item: tuple[str, dict[str, Any]], preset: str, retrain: bool, export: str | None) -> str:
    what, kwargs = item
    if what == "table3":
        run = table3_run(preset=preset, retrain=retrain, verbose=True, **kwargs)
    else:
        run = teaching_run(what, preset=preset, retrain=retrain, verbose=True, **kwargs)
    if export:
        export_run(run, Path(export) / preset / run.name, raw=run.name in SHIP_RAW)
    return f"{run.name}: {run.minutes:.1f} min"


def train_teaching_models(preset: str = "teach", *, jobs: int = 1, seeds: tuple[int, ...] = SEEDS,
                          export: str | os.PathLike | None = None, retrain: bool = True) -> None:
    """Train every model of :func:`teaching_plan` into the derived-data cache, ``jobs`` at a time
    (one CPU thread each), and copy each finished run to ``export`` (e.g. :data:`SHIPPED_DIR`).
    This is how the shipped teaching models were made (``gmgan teaching-models train``)."""
    import concurrent.futures
    import multiprocessing

    plan = teaching_plan(preset, seeds)
    export_text = None if export is None else str(export)
    if jobs <= 1:
        for item in plan:
            print(_train_planned(item, preset, retrain, export_text), flush=True)
        return
    # Parents first: a GAN run waits (file lock in ensure_run) for a PSNR run another job trains.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(_train_planned, item, preset, retrain, export_text) for item in plan]
        for future in futures:
            print(future.result(), flush=True)


def export_run(run: RunInfo, dst: str | os.PathLike, *, raw: bool = False) -> Path:
    """Copy a finished run to ``dst`` in the layout :func:`load_run` reads, keeping what the
    notebooks use: ``config.yaml`` (paths written portably), ``run.json``, each phase's
    ``log.jsonl``, ``val.jsonl`` and ``G_ema.safetensors`` (and ``G.safetensors`` with ``raw``).
    Checkpoints, the critic and TensorBoard files stay behind. Written under a temporary name and
    renamed, replacing an older copy."""
    import shutil

    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cfg = run.config
    portable = dataclasses.replace(cfg, out_dir=None, resume=False, pretrained_g=_portable_path(cfg.pretrained_g),
                                   train_set=_portable_path(cfg.train_set))
    portable.to_yaml(tmp / "config.yaml")
    shutil.copy2(run.run_dir / _RUN_FILE, tmp / _RUN_FILE)
    for phase in cfg.phases():
        (tmp / phase).mkdir()
        for name in ("log.jsonl", "val.jsonl", "G_ema.safetensors", *(("G.safetensors",) if raw else ())):
            if (run.run_dir / phase / name).is_file():
                shutil.copy2(run.run_dir / phase / name, tmp / phase / name)
    if dst.exists():
        shutil.rmtree(dst)
    tmp.rename(dst)
    return dst


def load_run_generator(run: RunInfo, ema: bool = True, phase: str | None = None,
                       device: str | torch.device = "cpu"):
    """The trained generator of a run as an :class:`gmgan.nets.RRDBNet` in eval mode: the final
    ``G_ema`` (``ema=True``) or raw ``G`` of ``phase`` (default: the run's last phase). It maps
    float (N, 3, h, w) RGB in [0, 1] to (N, 3, scale*h, scale*w), unclamped."""
    from gmgan.nets import load_generator

    return load_generator(run.generator_path(ema=ema, phase=phase), device=device).eval()


# ---------------------------------------------------------------------------------------------
# Choosing a preset for the machine, and saying how long it will take (Colab)
# ---------------------------------------------------------------------------------------------

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
    steps = [f"{cfg.pretrain_iters if p == 'pretrain' else cfg.gan_iters} {'MSE' if p == 'pretrain' else 'GAN'} updates"
             for p in cfg.phases()]
    gpu = ""
    if key != "cpu" and torch.cuda.is_available():
        gpu = f"; this GPU: {torch.cuda.get_device_name(0)}"
    print(f"{cfg.name}: {' + '.join(steps)}, {_duration(seconds)} on {ESTIMATE_DEVICES[key][2]}{gpu} "
          f"(FLOP model x measured seconds per update; data download and preparation not included)", flush=True)
    return seconds

