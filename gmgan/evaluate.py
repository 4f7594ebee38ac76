"""Evaluate generators and the bicubic baseline on the x4 benchmarks, as in the paper's Table 1.

:func:`evaluate` runs every method on every image of every set, scores each SR image with the
chosen metrics (:mod:`gmgan.metrics`: PSNR / SSIM on the Y channel with a ``scale``-pixel border
crop, GMSD, NIQE and PI with PIRM's ``scale``-pixel crop), keeps the per-image values and averages
them per set. The result, :class:`EvalResult`, writes CSV / JSON and formats the table.

The scoring itself is :func:`score_sets`, the one path that :func:`evaluate` (``gmgan
eval``, the notebooks) and the trainer's validation share; how each metric is called,
whether lower is better and how it is printed is
:data:`gmgan.metric_table.METRIC_TABLE`.

The bicubic baseline is MATLAB's ``imresize(LR, 4, 'bicubic')`` (:func:`gmgan.resize.imresize`),
the definition the published bicubic rows use. The grey Set14 image (bridge) enters PSNR / SSIM as
R = G = B (:data:`gmgan.metrics.GREY_DEFAULT`, as in training validation), the convention that
reproduces the paper's bicubic Set14 (26.09 dB against its 26.10); tables say which was used. Metrics whose model files are not available offline
(NIQE without its parameter file, PI without Ma et al.'s NRQM model) are reported as unavailable,
with the reason, instead of stopping the evaluation.
"""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from gmgan.data import load_benchmark
from gmgan.data.benchmark import BenchmarkImage
from gmgan.infer import upscale
from gmgan.metric_table import METRIC_TABLE, UNAVAILABLE_ERRORS, Metric, get_metric
from gmgan.metrics import GREY_DEFAULT, Grey, channel_offsets, match_channel_means
from gmgan.nets import load_generator
from gmgan.resize import imresize
from gmgan.stats import PairedComparison, paired_comparison

__all__ = ["BICUBIC", "METRICS", "PAPER_TABLE1", "PAPER_TABLE2", "PAPER_TABLE3",
           "EvalResult", "ImageScore", "SetScores", "evaluate", "score_sets"]

BICUBIC = "Bicubic"

#: The metrics :func:`evaluate` knows: the names of
#: :data:`gmgan.metric_table.METRIC_TABLE`, which says for each whether lower is
#: better.
METRICS = tuple(METRIC_TABLE)

#: How each ``grey`` convention of :mod:`gmgan.metrics` is named in table captions.
GREY_CAPTIONS = {"as_rgb": "grey images as R = G = B", "as_y": "grey images as Y"}

#: Table 1 of Zhu et al. (2020), x4: {method: {set: (PI, SSIM, PSNR dB)}} (see PAPER.md).
PAPER_TABLE1: dict[str, dict[str, tuple[float, float, float]]] = {
    method: dict(zip(("Set5", "Set14", "BSD100"), cells))
    for method, cells in {
        "Bicubic": ((7.33, 0.8111, 28.42), (6.97, 0.7163, 26.10), (6.94, 0.6681, 25.96)),
        "LapSRN": ((6.48, 0.8866, 31.54), (5.96, 0.7720, 28.19), (5.81, 0.7264, 27.32)),
        "EDSR+": ((5.99, 0.9003, 32.62), (5.50, 0.7903, 28.94), (5.39, 0.7439, 27.79)),
        "EnhanceNet-E": ((6.05, 0.8889, 31.74), (5.25, 0.7774, 28.42), (5.49, 0.7324, 27.50)),
        "EnhanceNet-PAT": ((2.93, 0.8103, 28.56), (3.02, 0.6782, 25.77), (2.91, 0.6267, 24.93)),
        "SRGAN": ((3.35, 0.8356, 32.05), (2.88, 0.6958, 28.49), (2.35, 0.6426, 27.58)),
        "GMGAN": ((3.25, 0.8447, 30.02), (2.77, 0.7055, 26.37), (2.29, 0.6592, 25.46)),
    }.items()
}

#: Table 2 of Zhu et al. (2020), the ablation of the quality loss l_Q, x4:
#: {variant: {set: (PI, SSIM, PSNR dB)}} (see PAPER.md). "GMGAN w/o l_Q" is trained with
#: l_MSE + l_P + l_GA only; its SRGAN and GMGAN rows repeat Table 1.
PAPER_TABLE2: dict[str, dict[str, tuple[float, float, float]]] = {
    method: dict(zip(("Set5", "Set14", "BSD100"), cells))
    for method, cells in {
        "SRGAN": ((3.35, 0.8356, 32.05), (2.88, 0.6958, 28.49), (2.35, 0.6426, 27.58)),
        "GMGAN w/o l_Q": ((3.30, 0.8491, 31.41), (2.87, 0.7113, 26.40), (2.31, 0.6651, 25.51)),
        "GMGAN": ((3.25, 0.8447, 30.02), (2.77, 0.7055, 26.37), (2.29, 0.6592, 25.46)),
    }.items()
}

#: Table 3 of Zhu et al. (2020), GMGAN trained on four training sets, x4:
#: {training set: {set: (PI, SSIM, PSNR dB)}} (see PAPER.md). "Augmentation" is DIV2K with the 8
#: rotated / flipped versions of every image; its numbers differ from Table 1's GMGAN row in SSIM
#: (Set5 0.8342 against 0.8447, Set14 0.7021 against 0.7055), as printed in the paper.
PAPER_TABLE3: dict[str, dict[str, tuple[float, float, float]]] = {
    training_set: dict(zip(("Set5", "Set14", "BSD100"), cells))
    for training_set, cells in {
        "ImageNet": ((3.85, 0.8510, 30.12), (2.97, 0.6898, 26.51), (2.40, 0.6470, 25.31)),
        "DF2K": ((3.70, 0.8447, 30.40), (2.87, 0.7055, 25.96), (2.34, 0.6601, 25.56)),
        "DF2K + OST": ((3.43, 0.8497, 30.31), (2.96, 0.7015, 26.60), (2.37, 0.6590, 25.70)),
        "Augmentation": ((3.25, 0.8342, 30.02), (2.77, 0.7021, 26.37), (2.29, 0.6593, 25.46)),
    }.items()
}

ModelSpec = torch.nn.Module | str | os.PathLike | None
Published = Mapping[str, Mapping[str, tuple]]


# ---------------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------------

@dataclass
class EvalResult:
    """What :func:`evaluate` measured.

    Attributes:
        rows: ``{(method, set, metric): mean over the set's images}`` for every metric that could
            be computed. PSNR in dB; SSIM, GMSD, NIQE, PI unitless.
        per_image: one dict per score: ``{"method", "set", "image", "metric", "value"}``.
        unavailable: ``{metric: reason}`` for metrics that could not be computed at all.
        counts: ``{(method, set): number of images}``.
        methods, sets, metrics: the evaluation's order, for tables.
        scale: the upscaling factor.
        grey: how single-channel images entered PSNR / SSIM (``"as_rgb"`` or ``"as_y"``, see
            :mod:`gmgan.metrics`); table captions name it.
        offsets: ``{(method, set): [R, G, B]}``, the colour drift: mean over the set's images of
            the mean SR - HR per channel, in grey levels (:func:`gmgan.metrics.channel_offsets`).
    """

    rows: dict[tuple[str, str, str], float] = field(default_factory=dict)
    per_image: list[dict[str, Any]] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    methods: list[str] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    scale: int = 4
    grey: str = GREY_DEFAULT
    offsets: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def mean(self, method: str, set_name: str, metric: str) -> float | None:
        """The set mean of a metric, or None when it was not measured."""
        return self.rows.get((method, set_name, metric))

    def over_seeds(self, methods: Iterable[str], set_name: str, metric: str) -> tuple[float, float]:
        """``(mean, range)`` of one metric's set means over several methods, e.g. the same model
        trained with different seeds: their average, and the largest difference between two of
        them (max - min), the chance gap that a comparison of two models must exceed."""
        values = [self.rows[(m, set_name, metric)] for m in methods]
        return float(np.mean(values)), float(np.max(values) - np.min(values))

    def per_image_scores(self, method: str, sets: Iterable[str], metric: str) -> np.ndarray:
        """One metric of one method image by image: the sets in the order given, each
        set's images in the evaluation's order (the same for every method, so the arrays
        of two methods pair image by image).

        Raises:
            KeyError: the method, a set or the metric was not scored (the message says
                which).
        """
        values = []
        for set_name in sets:
            found = [r["value"] for r in self.per_image
                     if (r["method"], r["set"], r["metric"]) == (method, set_name, metric)]
            if not found:
                raise KeyError(f"no per-image {metric} of {method!r} on {set_name!r} "
                               f"(scored: {', '.join(self.methods)} on "
                               f"{', '.join(self.sets)}; metrics {', '.join(self.metrics)})")
            values += found
        return np.asarray(values, np.float64)

    def paired(self, a: Sequence[str], b: Sequence[str], sets: Iterable[str],
               metric: str, level: float = 0.95) -> PairedComparison:
        """B - A paired by seed and image (:func:`gmgan.stats.paired_comparison`):
        ``a[s]`` and ``b[s]`` are the method names of seed s (e.g. ``"PSNR model s0"``
        and ``"GMGAN s0"``), scored on the images of ``sets`` pooled."""
        if len(a) != len(b):
            raise ValueError(f"paired: {len(a)} methods in a, {len(b)} in b; give one "
                             f"per seed on each side")
        sets = list(sets)
        return paired_comparison(
            np.stack([self.per_image_scores(m, sets, metric) for m in a]),
            np.stack([self.per_image_scores(m, sets, metric) for m in b]), level)

    # -- files -----------------------------------------------------------------------------

    def to_csv(self, path: str | os.PathLike, *, per_image: bool = False) -> Path:
        """Write the set means (columns method, set, metric, mean, n, note) or, with
        ``per_image=True``, the per-image scores (method, set, image, metric, value).
        Returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            if per_image:
                writer.writerow(["method", "set", "image", "metric", "value"])
                for r in self.per_image:
                    writer.writerow([r["method"], r["set"], r["image"], r["metric"],
                                     repr(r["value"])])
                return path
            writer.writerow(["method", "set", "metric", "mean", "n", "note"])
            for method in self.methods:
                for set_name in self.sets:
                    n = self.counts.get((method, set_name), 0)
                    for metric in self.metrics:
                        value = self.rows.get((method, set_name, metric))
                        if value is not None:
                            writer.writerow([method, set_name, metric, repr(value), n, ""])
                        elif metric in self.unavailable:
                            writer.writerow([method, set_name, metric, "", n,
                                             f"unavailable: {self.unavailable[metric]}"])
        return path

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> EvalResult:
        """Read a file written by :meth:`to_csv`: set means (``per_image`` stays empty), or
        per-image scores (``per_image=True``; the set means are computed from them).

        Raises:
            ValueError: a file of neither kind (the message names it and its columns).
        """
        result = cls()
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            if columns == ["method", "set", "image", "metric", "value"]:
                return cls.from_per_image(list(reader))
            if columns != ["method", "set", "metric", "mean", "n", "note"]:
                raise ValueError(f"{path}: not a file of EvalResult.to_csv (columns "
                                 f"{', '.join(columns) or 'none'})")
            for rec in reader:
                method, set_name, metric = result._note_order(rec)
                result.counts[(method, set_name)] = int(rec["n"])
                if rec["mean"]:
                    result.rows[(method, set_name, metric)] = float(rec["mean"])
                elif rec["note"].startswith("unavailable: "):
                    result.unavailable[metric] = rec["note"][len("unavailable: "):]
        return result

    def _note_order(self, rec: dict[str, str]) -> tuple[str, str, str]:
        """A CSV record's (method, set, metric), each added to the table's order when new."""
        key = rec["method"], rec["set"], rec["metric"]
        for seq, item in zip((self.methods, self.sets, self.metrics), key):
            if item not in seq:
                seq.append(item)
        return key

    @classmethod
    def from_per_image(cls, records: Iterable[Mapping[str, Any]]) -> EvalResult:
        """The result of per-image records (dicts with method, set, image, metric, value; the
        value a number or its text), in their order; the set means are computed from them."""
        result = cls()
        values: dict[tuple[str, str, str], list[float]] = {}
        images: dict[tuple[str, str], set[str]] = {}
        for rec in records:
            method, set_name, metric = result._note_order(rec)
            value = float(rec["value"])
            result.per_image.append({"method": method, "set": set_name, "image": rec["image"],
                                     "metric": metric, "value": value})
            values.setdefault((method, set_name, metric), []).append(value)
            images.setdefault((method, set_name), set()).add(rec["image"])
        result.rows = {key: float(np.mean(v)) for key, v in values.items()}
        result.counts = {key: len(names) for key, names in images.items()}
        return result

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with everything (means, per-image scores, unavailable metrics)."""
        return {
            "scale": self.scale, "grey": self.grey, "methods": self.methods, "sets": self.sets,
            "metrics": self.metrics,
            "rows": [{"method": m, "set": s, "metric": k, "mean": v,
                      "n": self.counts.get((m, s), 0)}
                     for (m, s, k), v in self.rows.items()],
            "counts": [{"method": m, "set": s, "n": n} for (m, s), n in self.counts.items()],
            "per_image": self.per_image,
            "unavailable": self.unavailable,
        }

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON (an infinite PSNR, for identical images, is written as
        ``Infinity``, which Python's json module reads back). Returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> EvalResult:
        """Read a file written by :meth:`to_json`."""
        data = json.loads(Path(path).read_text())
        return cls(
            rows={(r["method"], r["set"], r["metric"]): float(r["mean"]) for r in data["rows"]},
            per_image=list(data["per_image"]),
            unavailable=dict(data["unavailable"]),
            counts={(c["method"], c["set"]): int(c["n"]) for c in data["counts"]},
            methods=list(data["methods"]), sets=list(data["sets"]), metrics=list(data["metrics"]),
            scale=int(data["scale"]), grey=str(data.get("grey", GREY_DEFAULT)),
        )

    # -- tables ----------------------------------------------------------------------------

    def to_table(self, layout: str = "paper", *, published: Published | str | None = None) -> str:
        """The result as a plain-text table, under a caption that says how it was measured
        (PSNR in dB, on Y with a ``scale``-pixel border; how grey images entered, :attr:`grey`).

        Args:
            layout: ``"paper"``: rows = methods, columns = sets, each cell ``PI / SSIM / PSNR``
                as in the paper's Table 1; when PI is unavailable (offline) the first number is
                NIQE and the caption and header say so; when neither was measured, the cells are
                ``SSIM / PSNR``. ``"long"``: one line per method, set and metric, with n and the
                reasons for unavailable metrics.
            published: extra rows of published numbers, shown as ``"<method> (paper)"``:
                ``"table1"`` for :data:`PAPER_TABLE1`, or ``{method: {set: (PI, SSIM, PSNR)}}``.
                Their first number is always PI; a cell says ``PI`` when the header names NIQE.
        Returns:
            the table, lines joined by newlines (no trailing newline).
        """
        if layout == "long":
            return self._long_table()
        if layout != "paper":
            raise ValueError(f"to_table: layout must be 'paper' or 'long', got {layout!r}")
        if isinstance(published, str):
            if published != "table1":
                raise ValueError(f"to_table: published must be 'table1' or a mapping, "
                                 f"got {published!r}")
            published = PAPER_TABLE1
        first = next((m for m in ("pi", "niqe") if any(k[2] == m for k in self.rows)), None)
        keys = ([first] if first else []) + ["ssim", "psnr"]
        parts = [get_metric(m).label for m in keys]
        sets = list(self.sets) or sorted({s for v in (published or {}).values() for s in v})

        body: list[list[str]] = []
        for method in self.methods:
            cells = []
            for set_name in sets:
                values = [self.rows.get((method, set_name, m)) for m in keys]
                cells.append(" / ".join(_fmt(m, v) for m, v in zip(keys, values)))
            body.append([method] + cells)
        for method, by_set in (published or {}).items():
            cells = []
            for set_name in sets:
                triple = by_set.get(set_name)
                if triple is None:
                    cells.append("-")
                    continue
                pi_value, ssim_value, psnr_value = triple
                head = _fmt("pi", pi_value)
                if first != "pi":
                    head = f"PI {head}"
                cells.append(" / ".join([head, _fmt("ssim", ssim_value),
                                         _fmt("psnr", psnr_value)]))
            body.append([f"{method} (paper)"] + cells)

        header = [f"x{self.scale}"] + sets
        sub = [""] + [" / ".join(parts)] * len(sets)
        widths = [max(len(r[i]) for r in [header, sub] + body) for i in range(len(header))]

        def line(cells: list[str]) -> str:
            return " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

        rule = "-+-".join("-" * w for w in widths)
        caption = (f"x{self.scale} super-resolution, each cell {' / '.join(parts)} "
                   f"({self._measured_as()})")
        notes = [f"{_label(m)} unavailable: {why}"
                 for m, why in self.unavailable.items()]
        return "\n".join([caption, line(header), line(sub), rule] + [line(r) for r in body] + notes)

    def _measured_as(self) -> str:
        """The caption's conventions: PSNR's unit, the Y channel and border, grey images."""
        grey = GREY_CAPTIONS.get(self.grey, f"grey={self.grey}")
        return f"PSNR in dB; PSNR and SSIM on Y, {self.scale}-pixel border, {grey}"

    def _long_table(self) -> str:
        lines = [f"x{self.scale} super-resolution ({self._measured_as()})",
                 f"{'method':<16} {'set':<10} {'metric':<6} {'mean':>10} {'n':>4}"]
        for method in self.methods:
            for set_name in self.sets:
                n = self.counts.get((method, set_name), 0)
                for metric in self.metrics:
                    value = self.rows.get((method, set_name, metric))
                    shown = _fmt(metric, value) if value is not None else "unavailable"
                    lines.append(f"{method:<16} {set_name:<10} {metric:<6} {shown:>10} {n:>4}")
        lines += [f"{_label(m)} unavailable: {why}"
                  for m, why in self.unavailable.items()]
        return "\n".join(lines)


def _fmt(metric: str, value: float | None) -> str:
    """A value as tables print it: the paper's precision from the metric table (PSNR,
    PI, NIQE with 2 decimals, SSIM and GMSD with 4), ``-`` for none."""
    return get_metric(metric).format(value)


def _label(metric: str) -> str:
    """The name tables print for a metric (``"psnr"`` -> ``"PSNR"``)."""
    return get_metric(metric).label


# --------------------------------------------------------------------------------------
# Scoring: one path for evaluate(), `gmgan eval` and the trainer's validation
# --------------------------------------------------------------------------------------

#: The views of an SR image that :func:`score_sets` scores: the image as the method made
#: it, and the same image shifted per channel to the HR image's means
#: (:func:`gmgan.metrics.match_channel_means`).
SR_VIEW, MEAN_MATCHED_VIEW = "sr", "mean-matched"


@dataclass(frozen=True)
class ImageScore:
    """One metric of one image; ``value`` in the metric's unit (see
    :data:`gmgan.metric_table.METRIC_TABLE`)."""

    view: str
    set: str
    image: str
    metric: str
    value: float


@dataclass
class SetScores:
    """What :func:`score_sets` measured, in scoring order (set, image, view, metric).

    Attributes:
        sets: the set names, in the order given.
        per_image: one :class:`ImageScore` per value.
        values: ``{(view, set, metric): [value per image]}``.
        counts: ``{(view, set): images scored}``.
        offsets: ``{(view, set): [R, G, B] per image}``, the colour drift of each image
            (:func:`gmgan.metrics.channel_offsets`, grey levels).
        unavailable: ``{metric: reason}`` for metrics that could not run here at all.
        notes: why values are missing, as the trainer logs them: ``{metric: "NIQE
            skipped: <reason>"}`` for an unavailable metric and, with
            ``nan_on_failure``, ``{"<metric>_<set>_<image>": "NIQE failed on
            <set>/<image>: <error>"}`` for a value that is NaN.
    """

    sets: list[str] = field(default_factory=list)
    per_image: list[ImageScore] = field(default_factory=list)
    values: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    offsets: dict[tuple[str, str], list[np.ndarray]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def means(self, view: str = SR_VIEW) -> dict[str, dict[str, float]]:
        """``{set: {metric: mean over the set's images}}`` of one view, metrics in the
        order they were asked for. A metric without values is left out; one NaN value
        makes its mean NaN."""
        out: dict[str, dict[str, float]] = {name: {} for name in self.sets}
        for (v, set_name, metric), values in self.values.items():
            if v == view:
                out[set_name][metric] = float(np.mean(values))
        return out


def _record(scores: SetScores, view: str, set_name: str, item: BenchmarkImage,
            sr: np.ndarray, metrics: Sequence[Metric], grey: Grey, border: int,
            nan_on_failure: Collection[str]) -> None:
    """Score one view of one image with ``metrics`` into ``scores``."""
    key = (view, set_name)
    scores.counts[key] = scores.counts.get(key, 0) + 1
    scores.offsets.setdefault(key, []).append(channel_offsets(sr, item.hr))
    for metric in metrics:
        if metric.name in scores.unavailable:
            continue
        try:
            value = metric.score(sr, item.hr, border=border, grey=grey)
        except UNAVAILABLE_ERRORS as err:
            scores.unavailable[metric.name] = str(err)
            scores.notes[metric.name] = f"{metric.label} skipped: {err}"
            continue
        except Exception as err:  # e.g. pyiqa's linear algebra on a flat image
            if metric.name not in nan_on_failure:
                raise
            where = f"{set_name}_{item.name}" + ("" if view == SR_VIEW else f"_{view}")
            scores.notes[f"{metric.name}_{where}"] = (
                f"{metric.label} failed on {set_name}/{item.name}: {err}")
            value = float("nan")
        scores.values.setdefault((view, set_name, metric.name), []).append(value)
        scores.per_image.append(
            ImageScore(view, set_name, item.name, metric.name, value))


def score_sets(upsample: Callable[[np.ndarray], np.ndarray],
               sets: Mapping[str, Sequence[BenchmarkImage]], metrics: Iterable[str], *,
               border: int, grey: Grey = GREY_DEFAULT,
               mean_matched: Collection[str] = (), nan_on_failure: Collection[str] = (),
               after_image: Callable[[str], None] | None = None) -> SetScores:
    """Super-resolve every image of every set and score it: gmgan's one scoring path.

    Args:
        upsample: ``upsample(lr) -> sr``: numpy uint8 LR H x W x 3 (or H x W grey) to
            uint8 SR of the HR image's height and width (RGB, or grey for a grey LR).
        sets: ``{set name: images}``, each with ``name``, ``lr`` and ``hr`` (numpy
            uint8, HR cropped to a multiple of the scale), as
            :func:`gmgan.data.load_benchmark` gives them.
        metrics: names in :data:`gmgan.metric_table.METRIC_TABLE`, scored in this order
            and called as the table says (PSNR / SSIM on Y with ``border`` pixels
            cropped, GMSD on the whole luminance, NIQE / PI with ``border`` cropped).
        border: pixels removed from each side (the scale factor, by custom).
        grey: how a grey image enters PSNR / SSIM (:mod:`gmgan.metrics`).
        mean_matched: when not empty, every image is also scored as the view
            :data:`MEAN_MATCHED_VIEW` (SR shifted to HR's channel means) with those of
            ``metrics`` named here.
        nan_on_failure: metrics whose error on one image makes that value NaN (noted in
            :attr:`SetScores.notes`, e.g. NIQE on the flat output of an untrained
            model); the errors of the others are raised. The errors of
            :data:`gmgan.metric_table.UNAVAILABLE_ERRORS` instead make a metric
            unavailable for the rest (:attr:`SetScores.unavailable`).
        after_image: called with the set name after each image (progress bars).

    Returns:
        a :class:`SetScores`; ``.means()`` gives ``{set: {metric: mean}}``.

    Raises:
        ValueError: an unknown metric, or an SR image whose height and width differ from
            its HR image's (naming set and image).
    """
    table = [get_metric(name) for name in metrics]
    matched = [metric for metric in table if metric.name in mean_matched]
    scores = SetScores(sets=list(sets))
    for set_name, images in sets.items():
        for item in images:
            sr = upsample(item.lr)
            if sr.shape[:2] != item.hr.shape[:2]:
                raise ValueError(f"{set_name}/{item.name}: SR shape {sr.shape} differs "
                                 f"from HR {item.hr.shape}")
            _record(scores, SR_VIEW, set_name, item, sr, table, grey, border,
                    nan_on_failure)
            if mean_matched:
                _record(scores, MEAN_MATCHED_VIEW, set_name, item,
                        match_channel_means(sr, item.hr), matched, grey, border,
                        nan_on_failure)
            if after_image is not None:
                after_image(set_name)
    return scores


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------

def _resolve_models(models: Mapping[str, ModelSpec] | None, device: str | torch.device | None
                    ) -> dict[str, torch.nn.Module | None]:
    if models is None:
        models = {BICUBIC: None}
    if not isinstance(models, Mapping) or not models:
        raise ValueError("evaluate: models must be a non-empty dict "
                         "{name: model, checkpoint path or None}")
    load_device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    out: dict[str, torch.nn.Module | None] = {}
    for name, spec in models.items():
        if spec is None or isinstance(spec, torch.nn.Module):
            out[str(name)] = spec
        elif isinstance(spec, (str, os.PathLike)):
            out[str(name)] = load_generator(spec, device=load_device)
        else:
            raise TypeError(f"evaluate: model {name!r} must be an nn.Module, a checkpoint path "
                            f"or None "
                            f"(bicubic), got {type(spec).__name__}")
    return out


def _super_resolve(model: torch.nn.Module | None, lr: np.ndarray, scale: int, *,
                   device: str | torch.device | None, tile: int | None) -> np.ndarray:
    """uint8 LR (h x w [x 3]) -> uint8 SR (scale*h x scale*w [x 3]): bicubic or the model."""
    if model is None:
        return imresize(lr, scale)
    model_scale = getattr(model, "scale", None)
    if model_scale != scale:
        raise ValueError(f"evaluate: a model is x{model_scale} but the evaluation is x{scale}")
    return upscale(model, lr, tile=tile, device=device)


def evaluate(models: Mapping[str, ModelSpec] | None = None,
             sets: Iterable[str] = ("Set5", "Set14", "BSD100"),
             metrics: Iterable[str] = ("psnr", "ssim", "gmsd"), *,
             scale: int = 4, limit: int | None = None, device: str | torch.device | None = None,
             tile: int | None = None, grey: str = GREY_DEFAULT, lr: str = "dataset",
             mean_matched: bool | Iterable[str] = False, progress: bool = False) -> EvalResult:
    """Score super-resolution methods on benchmark sets.

    Args:
        models: ``{method name: model}`` where a model is an ``nn.Module`` (e.g.
            :class:`gmgan.nets.RRDBNet`), a checkpoint path (:func:`gmgan.nets.load_generator`), or
            ``None`` for the bicubic baseline (MATLAB-style :func:`gmgan.resize.imresize` of the LR
            image by ``scale``). Each entry is one row of the table. Default: bicubic only.
        sets: benchmark names (:data:`gmgan.data.BENCHMARK_SETS`), read with
            :func:`gmgan.data.load_benchmark` from the data cache (``GMGAN_DATA``).
        metrics: any of :data:`METRICS`. PSNR (dB) and SSIM on the Y channel with a ``scale``-pixel
            border crop; GMSD on the luminance; NIQE and PI (PIRM 2018) with a ``scale``-pixel crop.
            All through :func:`score_sets`, as :data:`gmgan.metric_table.METRIC_TABLE`
            says.
            Metrics whose model files are missing are recorded in ``EvalResult.unavailable``.
        scale: the upscaling factor (4).
        limit: use only the first N images of each set (sorted by name).
        device: where models run (None: CUDA if available for checkpoint paths; a module stays
            where it is).
        tile: tile side in LR pixels for :func:`gmgan.infer.upscale` (None: whole images).
            Every image is super-resolved with torch's generator seeded with 0 (``upscale``'s
            ``seed``), so a generator with noise inputs scores the same whichever methods
            and images came before it.
        grey: how single-channel images (Set14 ``bridge``) enter PSNR / SSIM: ``"as_rgb"`` (the
            default, as everywhere in gmgan: R = G = B, GMGAN's Table 1, Set14 bicubic 26.09 dB
            against the published 26.10) or ``"as_y"`` (the ESRGAN / EDSR convention, 25.99 dB
            against 26.00); see :mod:`gmgan.metrics`.
        lr: ``"dataset"`` (the sets' own LR files, as published results use) or ``"matlab"``
            (MATLAB-exact bicubic LR for every set); see :func:`gmgan.data.load_benchmark`.
        mean_matched: also score every model's SR images shifted per channel to the HR image's
            mean (:func:`gmgan.metrics.match_channel_means`), as the method
            ``"<name> (mean-matched)"``: brightness-corrected scores beside the raw ones, for models
            that drift in colour. True: with every metric; a list of metrics: with those only
            (e.g. ``("psnr", "ssim")``, which a colour shift changes most; NIQE is the slow one).
        progress: show a tqdm progress bar on stderr.

    Returns:
        an :class:`EvalResult`: SR images are uint8 (as if saved to PNG and read back), scored
        against the HR image cropped to a multiple of ``scale``.
    """
    metrics = [m.lower() for m in metrics]
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"evaluate: unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
    sets = list(sets)
    if not sets or not metrics:
        raise ValueError("evaluate: give at least one set and one metric")
    if grey not in GREY_CAPTIONS:
        raise ValueError(f"evaluate: grey must be one of {', '.join(GREY_CAPTIONS)}, got {grey!r}")
    resolved = _resolve_models(models, device)
    methods = list(resolved)
    matched_metrics = set(metrics if mean_matched is True else (mean_matched or ()))
    if matched_metrics:
        methods += [f"{m} (mean-matched)" for m, model in resolved.items() if model is not None]
    result = EvalResult(methods=methods, sets=sets, metrics=metrics, scale=scale, grey=grey)

    data = {s: load_benchmark(s, scale=scale, limit=limit, lr=lr) for s in sets}
    total = sum(len(v) for v in data.values()) * len(resolved)
    bar = tqdm(total=total, desc="evaluate", unit="img") if progress else None
    try:
        for method, model in resolved.items():
            def upsample(lr_image: np.ndarray, model=model) -> np.ndarray:
                return _super_resolve(model, lr_image, scale, device=device, tile=tile)

            def advance(set_name: str, method=method) -> None:
                if bar is not None:
                    bar.set_postfix_str(f"{method} {set_name}", refresh=False)
                    bar.update(1)

            # A metric found unavailable for one method is not tried again for the next.
            available = [m for m in metrics if m not in result.unavailable]
            matched = matched_metrics if model is not None else set()
            scores = score_sets(upsample, data, available, border=scale, grey=grey,
                                mean_matched=matched, after_image=advance)
            _merge(result, method, scores)
    finally:
        if bar is not None:
            bar.close()
    return result


def _merge(result: EvalResult, method: str, scores: SetScores) -> None:
    """Add one method's :class:`SetScores` to ``result``, keeping the scoring order."""
    names = {SR_VIEW: method, MEAN_MATCHED_VIEW: f"{method} (mean-matched)"}
    result.unavailable.update(scores.unavailable)
    for (view, set_name), count in scores.counts.items():
        result.counts[(names[view], set_name)] = count
        result.offsets[(names[view], set_name)] = np.mean(
            scores.offsets[(view, set_name)], axis=0).tolist()
    for (view, set_name, metric), values in scores.values.items():
        result.rows[(names[view], set_name, metric)] = float(np.mean(values))
    result.per_image += [{"method": names[s.view], "set": s.set, "image": s.image,
                          "metric": s.metric, "value": s.value}
                         for s in scores.per_image]
