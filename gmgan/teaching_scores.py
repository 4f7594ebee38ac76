"""Per-image scores of the shipped teaching models on large test sets, made once and shipped.

Notebooks 07 and 08 compare models paired by seed and image. Their live evaluation fits a
5-minute notebook only on a few dozen images; the comparisons the field expects pool BSD100
and Urban100 (200 images, many of them large). Scoring every shipped model on those takes
an hour or more on a CPU, so :func:`score_teaching_models` does it once, by command::

    gmgan teaching-models score                 # BSD100 + Urban100, psnr ssim gmsd niqe hf
    gmgan teaching-models score --runs gmgan-s0 --update   # one model into the same file

and writes every score of every image to ``gmgan/teaching_models/scores/<preset>.csv``
(:meth:`gmgan.evaluate.EvalResult.to_csv` with ``per_image=True``). The notebooks read it
with :func:`load_teaching_scores` and re-score a few images live
(:func:`spot_check`), so the file cannot drift from the models beside it.

Methods are named by their run folder (``"psnr-s0"``, ``"gmgan-no-lq-s2"``), plus
``"Bicubic"``.

The pilot runs that chose the preset's phase-2 recipe were scored the same way, on fewer
images, by ``python -m benchmarks.natural_pilot``; their records ship too
(:func:`load_pilots`), so that notebook 06 can show what was tried.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gmgan.evaluate import BICUBIC, EvalResult, evaluate
from gmgan.runs import SHIPPED_DIR, load_run

__all__ = [
    "POOLED_METRICS",
    "POOLED_SETS",
    "describe_recipe",
    "load_pilots",
    "load_teaching_scores",
    "pilots_path",
    "score_teaching_models",
    "scores_path",
    "shipped_generators",
    "spot_check",
]

#: The sets the shipped scores pool: 100 natural photographs and 100 urban scenes.
POOLED_SETS: tuple[str, ...] = ("BSD100", "Urban100")
#: What they score: the paper's three (NIQE the no-reference one; PI needs Ma et al.'s model,
#: which is not available offline) and the high-frequency energy ratio (texture).
POOLED_METRICS: tuple[str, ...] = ("psnr", "ssim", "gmsd", "niqe", "hf")


def scores_path(preset: str = "teach") -> Path:
    """Where the shipped scores of ``preset``'s models live."""
    return SHIPPED_DIR / "scores" / f"{preset}.csv"


def shipped_generators(preset: str = "teach") -> dict[str, Path]:
    """``{run name: final moving-average generator file}`` of every shipped run of ``preset``,
    sorted by name.

    Raises:
        FileNotFoundError: no shipped run of ``preset`` (the message names the folder).
    """
    folder = SHIPPED_DIR / preset
    runs = sorted(p for p in folder.glob("*") if (p / "run.json").is_file())
    if not runs:
        raise FileNotFoundError(f"no shipped {preset!r} models in {folder}")
    return {p.name: load_run(p, shipped=True).generator_path(ema=True) for p in runs}


def score_teaching_models(preset: str = "teach", *, sets: Iterable[str] = POOLED_SETS,
                          metrics: Iterable[str] = POOLED_METRICS,
                          runs: Sequence[str] | None = None, limit: int | None = None,
                          out: str | os.PathLike | None = None, update: bool = False,
                          progress: bool = True) -> EvalResult:
    """Score bicubic and the shipped models of ``preset`` image by image; write the CSV.

    Args:
        preset: the shipped models' preset folder.
        sets, metrics: as :func:`gmgan.evaluate.evaluate` takes them.
        runs: run names to score (default: every shipped run).
        limit: only the first N images of each set (a quick check; the shipped file has all).
        out: the CSV to write (default :func:`scores_path`; None keeps that default).
        update: keep the scores already in ``out`` and replace only those of the runs scored
            now (bicubic is scored only when the file lacks it): models scored one by one as
            they finish make one file. The file must hold the same sets, metrics and images.
        progress: a progress bar on stderr.

    Returns:
        the :class:`gmgan.evaluate.EvalResult` written (with ``update``, the whole file),
        per-image scores included.

    Raises:
        ValueError: an unknown run name; with ``update``, a file of other sets, metrics or
            images (the message names the file and what differs).
    """
    generators = shipped_generators(preset)
    if runs is not None:
        missing = [r for r in runs if r not in generators]
        if missing:
            raise ValueError(f"no shipped {preset!r} run named {', '.join(missing)}; "
                             f"shipped: {', '.join(generators)}")
        generators = {r: generators[r] for r in runs}
    path = Path(out) if out is not None else scores_path(preset)
    sets, metrics = list(sets), list(metrics)
    old = _scores_to_update(path, sets, metrics) if update else None
    models = {BICUBIC: None, **{name: str(weights) for name, weights in generators.items()}}
    if old is not None and BICUBIC in old.methods:
        del models[BICUBIC]
    result = evaluate(models, sets=sets, metrics=metrics, limit=limit, device="cpu",
                      progress=progress)
    if old is not None:
        kept = [r for r in old.per_image if r["method"] not in models]
        # Bicubic first, then the runs by name; each method's rows keep their order.
        merged = sorted(kept + result.per_image, key=lambda r: (r["method"] != BICUBIC,
                                                                 r["method"]))
        result = EvalResult.from_per_image(merged)
        images = {set_name: {n for (_, s), n in result.counts.items() if s == set_name}
                  for set_name in sets}
        if any(len(counts) > 1 for counts in images.values()):
            raise ValueError(f"{path}: its images are not those scored now (images per "
                             f"method: {images}); score with the same limit, or write a "
                             f"new file")
    result.to_csv(path, per_image=True)
    return result


def _scores_to_update(path: Path, sets: list[str], metrics: list[str]) -> EvalResult | None:
    """The per-image scores in ``path`` (None if there is no file), checked to be of
    ``sets`` and ``metrics``."""
    if not path.is_file():
        return None
    old = EvalResult.from_csv(path)
    if not old.per_image:
        raise ValueError(f"{path} holds set means, not per-image scores: cannot update it")
    if set(old.sets) != set(sets) or set(old.metrics) != set(metrics):
        raise ValueError(f"{path} holds sets {', '.join(old.sets)} and metrics "
                         f"{', '.join(old.metrics)}, not {', '.join(sets)} and "
                         f"{', '.join(metrics)}: updating would mix them")
    return old


def pilots_path(preset: str = "teach") -> Path:
    """Where the records of the pilot runs of ``preset``'s recipe live."""
    return SHIPPED_DIR / "pilots" / f"{preset}.jsonl"


def load_pilots(preset: str = "teach") -> list[dict[str, Any]]:
    """The pilot runs that chose ``preset``'s phase-2 recipe, oldest first, then the shipped
    GMGAN models trained with it: one dict per scored generator.

    Keys: ``source`` (the record's file in ``benchmarks/results/natural_pilot``;
    ``production/gmgan-s<seed>`` for a shipped model's record), ``run``,
    ``model`` (``"gan/G_ema@1497"``: phase, the moving average or the raw ``G``, and the
    checkpoint's update where it is not the run's end; ``"-"`` for bicubic), ``updates``,
    ``images`` (the first N BSD100 images scored), ``recipe`` (the configuration fields that
    differed from the teach preset of the time, :func:`describe_recipe`), and the scores:
    ``hf_median`` (HF ratio, median over the images), ``niqe_mean``, ``psnr_bsd`` and
    ``psnr_set5`` (dB, on Y, 4-px border), ``colour_max_abs`` (the largest mean SR - HR of a
    channel on Set5, grey levels). Made by ``python -m benchmarks.natural_pilot --collect``.

    Raises:
        FileNotFoundError: no records for ``preset`` (the message names the file).
    """
    path = pilots_path(preset)
    if not path.is_file():
        raise FileNotFoundError(f"no pilot records at {path}; gather them with "
                                f"`python -m benchmarks.natural_pilot --collect`")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


#: How :func:`describe_recipe` says a configuration field; ``{}`` takes the value.
_RECIPE_WORDS = {
    "delta": "delta {:g}", "perceptual_layer": "l_P at {}", "gan_lr": "lr {:g}",
    "gan_lr_halve_every": "halved every {}", "ema_decay": "EMA {:g}",
    "gan_ema_decay": "EMA {:g}", "noise_inject": "noise inputs",
    "noise_head": "HR noise head ({} channels)", "critic_lr": "critic lr {:g}",
}


def describe_recipe(recipe: Mapping[str, Any], fields: Iterable[str] | None = None) -> str:
    """A pilot's recipe as a reader says it, e.g. ``"delta 0.1, l_P at conv5_4, noise
    inputs, lr 0.0002, halved every 1500, EMA 0.999"``; the phase and the run's length
    (``gan_iters``, shown as updates) are left out, and ``"teach preset"`` is a recipe
    that changes nothing else. ``fields``: say only these (a table column that shows what
    the pilots varied, e.g. ``("delta", "ema_decay", "noise_inject")``)."""
    keep = set(fields) if fields is not None else None
    words = [_RECIPE_WORDS.get(k, k.replace("_", " ") + " {}").format(v)
             for k, v in recipe.items() if k not in ("phase", "gan_iters", "pretrain_iters")
             and v is not False and (keep is None or k in keep)]
    return ", ".join(words) or "teach preset"


def load_teaching_scores(preset: str = "teach",
                         path: str | os.PathLike | None = None) -> EvalResult:
    """The shipped per-image scores (:func:`scores_path`), with set means recomputed.

    Raises:
        FileNotFoundError: no scores file; the message gives the command that makes it.
    """
    path = Path(path) if path is not None else scores_path(preset)
    if not path.is_file():
        raise FileNotFoundError(
            f"no per-image scores at {path}; make them with "
            f"`gmgan teaching-models score --preset {preset}` (an hour or more on a CPU)")
    return EvalResult.from_csv(path)


def spot_check(scores: EvalResult, images: int = 2, *, runs: Sequence[str] | None = None,
               sets: Iterable[str] | None = None, tolerance: float = 1e-3,
               preset: str = "teach") -> float:
    """Score the first ``images`` images of each set again, live, and compare with ``scores``.

    Args:
        scores: what :func:`load_teaching_scores` read.
        images: images per set to re-score.
        runs: the methods to re-score (default: every one in ``scores``; ``"Bicubic"`` is
            re-scored as bicubic).
        sets: default: every set in ``scores``.
        tolerance: the largest difference allowed, relative to the value's size (at least 1):
            NIQE's and the spectra's sums may round differently on another CPU.

    Returns:
        the largest relative difference found.

    Raises:
        AssertionError: a score differs by more than ``tolerance``, naming method, set,
            image and metric.
    """
    sets = list(sets) if sets is not None else list(scores.sets)
    methods = list(runs) if runs is not None else list(scores.methods)
    generators = shipped_generators(preset)
    models = {m: (None if m == BICUBIC else str(generators[m])) for m in methods}
    again = evaluate(models, sets=sets, metrics=scores.metrics, limit=images, device="cpu")
    stored = {(r["method"], r["set"], r["image"], r["metric"]): r["value"]
              for r in scores.per_image}
    worst = 0.0
    for r in again.per_image:
        key = (r["method"], r["set"], r["image"], r["metric"])
        if key not in stored:
            raise AssertionError(f"the shipped scores lack {key}")
        diff = abs(r["value"] - stored[key]) / max(1.0, abs(stored[key]))
        if not np.isfinite(diff) or diff > tolerance:
            raise AssertionError(
                f"{key}: live {r['value']!r}, shipped {stored[key]!r} (the scores file is "
                f"older than the models? `gmgan teaching-models score` remakes it)")
        worst = max(worst, diff)
    return worst
