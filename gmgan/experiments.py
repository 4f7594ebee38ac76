"""The trained models that the experiment notebooks share: shipped, cached, or trained now.

The experiment notebooks (06 training, 07 evaluation and ablation, 08 training sets, 09 failure
case) compare the same trained generators. At the ``teach`` scale they come with the package
(:data:`SHIPPED_DIR`, ``gmgan/teaching_models/teach/<run>``): training all 18 takes hours on a
CPU, so :func:`train_teaching_models` trained them once and :func:`export_run` copied weights,
configuration and logs there. Any other model (another preset, a changed field, ``retrain=True``)
is trained once into ``gmgan.cache.derived_dir("models", preset, name)`` and reused from there.
:func:`ensure_run` says in one printed line which of the three happened.

How a run is found (by its configuration, :func:`config_key`) or trained and recorded
lives in :mod:`gmgan.runs`; how long training takes and which preset a machine runs, in
:mod:`gmgan.sizing`. This module re-exports both, as the notebooks use them from here.

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
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gmgan.config import TrainConfig, apply_overrides, get_preset
from gmgan.data import dataset_dir
from gmgan.degrade import make_set
from gmgan.pretrained import WeightsUnavailable, fetch_vgg19, vgg19_cached, vgg19_file
from gmgan.runs import (
    SHIPPED_DIR,
    RunInfo,
    config_hash,
    config_key,
    ensure_run,
    export_run,
    load_run,
    load_run_generator,
)
from gmgan.sizing import (
    CPU_SECONDS_PER_UPDATE,
    ESTIMATE_DEVICES,
    GPU_SECONDS_PER_UPDATE,
    H200_TO_T4,
    T4_SECONDS_PER_UPDATE,
    estimate_device,
    estimate_seconds,
    pick_preset,
    print_estimate,
)

__all__ = [
    "CPU_SECONDS_PER_UPDATE",
    "ESTIMATE_DEVICES",
    "GPU_SECONDS_PER_UPDATE",
    "H200_TO_T4",
    "RANDOM_VGG_FALLBACK",
    "SEEDS",
    "SHIPPED_DIR",
    "SHIP_RAW",
    "T4_SECONDS_PER_UPDATE",
    "VARIANTS",
    "RunInfo",
    "TrainingSet",
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
    "table3_config",
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


#: Seeds of the teaching models: every model that enters a comparison is trained with each of
#: them, so that a difference can be set against the spread that the seed alone makes.
SEEDS: tuple[int, ...] = (0, 1, 2)

#: Runs whose raw (non-averaged) generator is shipped too, for the EMA-against-raw comparison of
#: notebook 06; the others ship only their moving average, which every table evaluates.
SHIP_RAW = frozenset({"gmgan-s0"})


# ---------------------------------------------------------------------------------------------
# Perceptual-loss weights
# ---------------------------------------------------------------------------------------------

def perceptual_weights_available(*, download: bool = False) -> bool:
    """True when torchvision's ImageNet VGG19 weights (``vgg19-dcbb9e9d.pth``) are in the torch hub
    cache (``$TORCH_HOME/hub/checkpoints``). ``download=False`` looks at the file only and never
    touches the network; ``download=True`` fetches the file first where the network allows
    (:func:`gmgan.pretrained.fetch_vgg19`) and returns False when it cannot."""
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

    ``speed`` is how the shipped models were trained (gmgan.speed): ``reference`` (eager fp32)
    for the PSNR models, ``fast`` for phase 2 (1.24x faster at one thread in
    ``benchmarks/results/cpu.md``; its 4,000 updates at conv5_4 are the long part). A model
    trained again on a CPU like the one that trained it, at its one thread, repeats the
    shipped log bit for bit; on another CPU phase 2 rounds
    differently, which the critic amplifies within a few updates, so its scores move by about
    the spread between seeds (``speed`` is not part of the configuration key)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known variants: {', '.join(VARIANTS)}")
    fields, _, _ = VARIANTS[variant]
    base = get_preset(preset, **fields)
    speed = "fast" if "gan" in base.phases() else "reference"
    values: dict[str, Any] = {"seed": seed, "speed": speed, **fields}
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
    parent = teaching_run("psnr", preset=preset, seed=seed, retrain=retrain, verbose=verbose, threads=threads)
    name, cfg = table3_config(training_set, preset=preset, seed=seed,
                              pretrained_g=parent.generator_path(ema=True))
    run = ensure_run(name, cfg, preset=preset, parent=parent.run_dir.name, verbose=verbose, threads=threads,
                     retrain=retrain)
    run.parent = parent
    return run


def table3_config(training_set: TrainingSet, *, preset: str = "teach", seed: int = 0,
                  pretrained_g: str | os.PathLike) -> tuple[str, TrainConfig]:
    """The run name and :class:`TrainConfig` of :func:`table3_run`, without training:
    phase 2 on ``training_set`` from the generator ``pretrained_g``."""
    base = get_preset(preset)
    train_set = None if training_set.train_set == base.train_set else training_set.train_set
    cfg = teaching_config("gmgan", preset=preset, train_set=train_set, seed=seed,
                          augment8=training_set.augment8, pretrained_g=pretrained_g)
    name = run_name("gmgan", preset=preset, train_set=train_set, seed=seed,
                    augment8=training_set.augment8)
    return name, cfg


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
