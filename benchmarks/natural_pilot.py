"""Pilots of the natural-image teaching models (issue 19): which phase-2 recipe draws
texture on BSD100 at teaching scale?

    OMP_NUM_THREADS=1 python -m benchmarks.natural_pilot \
        --run psnr-s0=/work/runs/parents/psnr-s0 --run p2=/work/runs/pilots/p2-inject \
        --bsd-limit 30 --time-updates 6

Each ``--run NAME=FOLDER`` is a run folder of ``gmgan train`` (its ``config.yaml`` and
``pretrain/`` or ``gan/`` weights). Every generator found (``G_ema`` and, for phase 2,
the raw ``G``) is scored on a fixed subset:

- BSD100, the first ``--bsd-limit`` images: the median high-frequency energy ratio
  (:func:`gmgan.metrics.hf_energy_ratio`, luminance power above 1/4 of Nyquist relative
  to HR's), the mean NIQE (4 px border cropped, as the trainer's validation) and the
  mean PSNR (Y, 4 px border);
- Set5: the mean PSNR and the colour drift, the mean over images of SR - HR per channel
  in grey levels (:func:`gmgan.metrics.channel_offsets`), reported as its largest
  absolute channel.

Generators with noise inputs draw their noise from torch's generator, seeded with 0
before every image, so a score repeats exactly. ``--time-updates N`` also measures the
CPU seconds (``time.process_time``, so that other processes on the machine do not count)
of N phase-2 updates of each phase-2 recipe on one fixed batch, after one warm-up
update: the cost of the recipe, not of the run's validation or checkpoints.

Writes ``<out>/natural_pilot.md`` (a table) and ``natural_pilot.jsonl`` (one line per
generator, with the recipe: the config fields that differ from the ``teach`` preset).

``--collect`` gathers every record of ``benchmarks/results/natural_pilot``, and the shipped
GMGAN models' records in ``benchmarks/results/production``, into the file the package ships
for notebook 06 (:func:`gmgan.teaching_scores.load_pilots`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gmgan import metrics
from gmgan.config import TrainConfig, get_preset
from gmgan.data import load_benchmark
from gmgan.nets import load_generator
from gmgan.training.validation import super_resolve

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "natural_pilot"
# Fields that say where and how a run ran, not what it learnt: left out of the recipe.
_NOT_RECIPE = {
    "name",
    "out_dir",
    "resume",
    "device",
    "val_sets",
    "val_limit",
    "val_every",
    "ckpt_every",
    "keep_last",
    "log_every",
    "progress",
    "tensorboard",
    "pretrained_g",
    "num_workers",
    "on_save_error",
    "max_bad_steps",
    "speed",
}


def recipe(cfg: TrainConfig) -> dict:
    """The fields of ``cfg`` that differ from the ``teach`` preset."""
    base = get_preset("teach").to_dict()
    return {
        k: v
        for k, v in cfg.to_dict().items()
        if k not in _NOT_RECIPE and base.get(k) != v
    }


#: The fields of a record the package ships (gmgan.teaching_scores.load_pilots).
SHIPPED_FIELDS = ("run", "model", "updates", "images", "recipe", "hf_median", "niqe_mean",
                  "psnr_bsd", "psnr_set5", "colour_max_abs")


#: The records of the shipped GMGAN models (``benchmarks/results/production/gmgan-sN.jsonl``,
#: one file a seed, made by ``--stem gmgan-sN``): the recipe the pilots chose, at production.
PRODUCTION_RECORDS = DEFAULT_OUT.parent / "production"


def collect(records: Path = DEFAULT_OUT, out: Path | None = None,
            production: Path | None = PRODUCTION_RECORDS) -> Path:
    """Every record in ``records`` (its ``*.jsonl``, in name order: the order they were made),
    then the shipped models' records in ``production`` (its ``gmgan-s<seed>.jsonl``; None:
    none), as the one file the package ships, ``gmgan/teaching_models/pilots/teach.jsonl``.
    Each row has ``source`` (its file's stem; ``production/<stem>`` for the shipped models)
    and ``images`` (the BSD100 images it was scored on: the row's own field; records older
    than that field take it from the title of the table beside them). Returns the file
    written."""
    from gmgan.teaching_scores import pilots_path

    out = pilots_path("teach") if out is None else out
    files = [(path, path.stem) for path in sorted(records.glob("*.jsonl"))]
    if production is not None:
        seeds = sorted(production.glob("gmgan-s[0-9]*.jsonl"),
                       key=lambda path: int(path.stem.removeprefix("gmgan-s")))
        files += [(path, f"production/{path.stem}") for path in seeds]
    rows = []
    for path, source in files:
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("images") is None:
                record["images"] = _images_from_title(path.with_suffix(".md"))
            rows.append({"source": source,
                         **{k: record.get(k) for k in SHIPPED_FIELDS}})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return out


def _images_from_title(table: Path) -> int:
    """The BSD100 image count in the title of a record's table ("BSD100 first N images")."""
    found = re.search(r"BSD100 first (\d+) images", table.read_text().splitlines()[0])
    if found is None:
        raise ValueError(f"{table}: no 'BSD100 first N images' in its title")
    return int(found.group(1))


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img


def score(model: torch.nn.Module | None, bsd: list, set5: list) -> dict:
    """The scores of one generator (None: MATLAB bicubic); see the module doc."""
    from gmgan.resize import imresize

    def upsample(lr: np.ndarray) -> np.ndarray:
        if model is None:
            return imresize(_rgb(lr), 4)
        torch.manual_seed(0)  # the same noise draw for every image and model
        return super_resolve(model, lr, torch.device("cpu"))

    hf, niqe, psnr_bsd = [], [], []
    for im in bsd:
        sr, hr = upsample(im.lr), _rgb(im.hr)
        hf.append(metrics.hf_energy_ratio(sr, hr))
        niqe.append(metrics.niqe(sr, crop_border=4))
        psnr_bsd.append(metrics.psnr(sr, hr, crop_border=4))
    psnr5, offsets = [], []
    for im in set5:
        sr, hr = upsample(im.lr), _rgb(im.hr)
        psnr5.append(metrics.psnr(sr, hr, crop_border=4))
        offsets.append(metrics.channel_offsets(sr, hr))
    colour = np.mean(offsets, axis=0)
    return {
        "hf_median": float(np.median(hf)),
        "niqe_mean": float(np.mean(niqe)),
        "psnr_bsd": float(np.mean(psnr_bsd)),
        "psnr_set5": float(np.mean(psnr5)),
        "colour_rgb": [round(float(c), 3) for c in colour],
        "colour_max_abs": float(np.abs(colour).max()),
    }


def cpu_seconds_per_update(cfg: TrainConfig, parent: Path, updates: int) -> float:
    """CPU seconds of one phase-2 update of ``cfg`` (median of ``updates``, one thread),
    from the generator ``parent``, on the phase's first batch."""
    from gmgan.train import gan_session, training_patches
    from gmgan.training import GracefulStop, first_batch, phase_seed, setup

    with tempfile.TemporaryDirectory() as tmp:
        c = dataclasses.replace(
            cfg,
            phase="gan",
            resume=False,
            val_sets=(),
            val_every=0,
            ckpt_every=0,
            tensorboard=False,
            progress=False,
            pretrained_g=str(parent),
            out_dir=tmp,
        )
        env = setup(c)
        try:
            session = gan_session(c, env, GracefulStop())
            seed = phase_seed(c.seed, "gan")
            lr, hr = first_batch(training_patches(c, env, seed), c.batch_size, seed)
            fmt = (
                torch.channels_last
                if session.run.cfg.channels_last
                else torch.contiguous_format
            )
            lr, hr = (t.contiguous(memory_format=fmt) for t in (lr, hr))
            session.update(lr, hr)  # warm-up
            times = []
            for _ in range(updates):
                start = time.process_time()
                session.update(lr, hr)
                times.append(time.process_time() - start)
        finally:
            env.close()
    return float(np.median(times))


#: Phase-2 recipes whose cost ``--time-recipes`` measures: overrides of the ``teach``
#: preset (the levers of issue 19 that change the cost of an update).
TIMING_RECIPES: dict[str, dict] = {
    "teach (conv2_2)": {},
    "conv5_4": {"perceptual_layer": "conv5_4"},
    "conv5_4 + noise_inject": {"perceptual_layer": "conv5_4", "noise_inject": True},
    "conv5_4 + noise_head 8": {"perceptual_layer": "conv5_4", "noise_head": 8},
    "conv5_4, 64 px patches": {"perceptual_layer": "conv5_4", "patch_size": 64},
    "conv5_4, 96 px patches": {"perceptual_layer": "conv5_4", "patch_size": 96},
    "conv5_4, 4 blocks x 48 features": {
        "perceptual_layer": "conv5_4",
        "num_block": 4,
        "num_feat": 48,
        "num_grow": 24,
    },
}


def time_recipes(updates: int) -> list[dict]:
    """CPU seconds per phase-2 update of each of :data:`TIMING_RECIPES` (from a freshly
    initialised generator of the recipe's size: the cost does not depend on weights)."""
    from gmgan.nets import save_generator
    from gmgan.train import build_generator

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in TIMING_RECIPES.items():
            cfg = get_preset("teach", **overrides)
            torch.manual_seed(0)
            parent = save_generator(
                build_generator(
                    dataclasses.replace(cfg, noise_inject=False, noise_head=0)
                ),
                Path(tmp) / f"{len(rows)}.safetensors",
            )
            rows.append(
                {
                    "recipe": name,
                    "overrides": overrides,
                    "cpu_s_per_update": cpu_seconds_per_update(cfg, parent, updates),
                }
            )
            print(rows[-1], flush=True)
    return rows


def _generators(
    folder: Path, newest_checkpoint: bool
) -> list[tuple[str, object, int | None]]:
    """``(label, path or state dict, updates)`` of the run's final generators (G_ema,
    G), or of its newest checkpoint where it has no final weights or
    ``newest_checkpoint``."""
    from safetensors.torch import load_file

    from gmgan.checkpoint import latest_checkpoint

    for phase in ("gan", "pretrain"):
        final = [
            (f"{phase}/{kind}", folder / phase / f"{kind}.safetensors", None)
            for kind in ("G_ema", "G")
        ]
        final = [f for f in final if f[1].is_file()]
        if final and not newest_checkpoint:
            return final
        ckpt = latest_checkpoint(folder / phase / "checkpoints")
        if ckpt is not None:
            weights = load_file(str(ckpt / "weights.safetensors"))
            step = int(ckpt.name.split("_")[1])
            out = []
            for kind in ("G_ema", "G"):
                sd = {
                    k[len(kind) + 1 :]: v
                    for k, v in weights.items()
                    if k.startswith(kind + ".")
                }
                if sd:
                    out.append((f"{phase}/{kind}@{step}", sd, step))
            return out
        if final:
            return final
    return []


def _updates(folder: Path, phase: str) -> int | None:
    log = folder / phase / "log.jsonl"
    if not log.is_file():
        return None
    steps = [
        json.loads(line).get("step", 0) for line in log.read_text().splitlines() if line
    ]
    return max(steps) if steps else None


def _load_text() -> str:
    from benchmarks.common import load_average

    load = load_average()
    return (
        "unknown"
        if load is None
        else " / ".join(f"{x:.1f}" for x in load) + " (1/5/15 min)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="a run folder to score (repeat)",
    )
    parser.add_argument("--bsd-limit", type=int, default=30)
    parser.add_argument(
        "--time-updates",
        type=int,
        default=0,
        help="also time N phase-2 updates of each phase-2 recipe (CPU s)",
    )
    parser.add_argument(
        "--parent",
        type=Path,
        default=None,
        help="phase-2 initial generator for the timing (default: the run's)",
    )
    parser.add_argument("--bicubic", action="store_true", help="score bicubic as well")
    parser.add_argument(
        "--newest-checkpoint",
        action="store_true",
        help="score the newest checkpoint even where final weights exist",
    )
    parser.add_argument(
        "--raw", action="store_true", help="score the raw G as well as G_ema"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--collect", action="store_true",
                        help="only gather the records of --out (and of the shipped models) into the "
                             "package's pilots file")
    parser.add_argument("--stem", default="natural_pilot")
    parser.add_argument(
        "--time-recipes",
        type=int,
        default=0,
        metavar="N",
        help="only time N phase-2 updates of each of TIMING_RECIPES",
    )
    args = parser.parse_args(argv)
    if args.collect:
        print(f"wrote {collect(args.out)}")
        return
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.time_recipes:
        rows = time_recipes(args.time_recipes)
        lines = [
            (
                "# CPU seconds per phase-2 update (time.process_time, one thread, "
                f"median of {args.time_recipes} updates after one warm-up; batch 16)"
            ),
            "",
            f"Load average at the end: {_load_text()}.",
            "",
            "| recipe | overrides of teach | CPU s/update |",
            "|---|---|---|",
        ]
        lines += [
            f"| {r['recipe']} | {r['overrides'] or '-'} | {r['cpu_s_per_update']:.3f} |"
            for r in rows
        ]
        (args.out / f"{args.stem}_timing.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return

    bsd = load_benchmark("BSD100", scale=4, limit=args.bsd_limit)
    set5 = load_benchmark("Set5", scale=4)
    rows = []
    if args.bicubic:
        rows.append(
            {"run": "bicubic", "model": "-", "recipe": {}, "images": len(bsd),
             **score(None, bsd, set5)}
        )
        print(rows[-1], flush=True)
    for spec in args.run:
        name, _, folder = spec.partition("=")
        folder = Path(folder)
        cfg = TrainConfig.from_yaml(folder / "config.yaml")
        phase = "gan" if (folder / "gan").is_dir() else "pretrain"
        seconds = None
        if args.time_updates and phase == "gan":
            parent = args.parent or Path(cfg.pretrained_g)
            seconds = cpu_seconds_per_update(cfg, parent, args.time_updates)
        for model_name, weights, step in _generators(folder, args.newest_checkpoint):
            if (
                "G_ema" not in model_name
                and not args.raw
                and "pretrain" not in model_name
            ):
                continue
            start = time.perf_counter()
            row = {
                "run": name,
                "model": model_name,
                "recipe": recipe(cfg),
                "updates": step or _updates(folder, phase),
                "images": len(bsd),
                "cpu_s_per_update": seconds,
                **score(load_generator(weights), bsd, set5),
                "score_s": round(time.perf_counter() - start, 1),
            }
            rows.append(row)
            print(row, flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / f"{args.stem}.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    lines = [
        f"# Natural-image pilots: BSD100 first {args.bsd_limit} images, Set5",
        "",
        f"Load average at the end: {_load_text()}.",
        "",
        (
            "| run | model | updates | CPU s/update | HF ratio (median) | NIQE | "
            "PSNR BSD | PSNR Set5 | colour max abs (R,G,B) | recipe |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sec = (
            "-" if r.get("cpu_s_per_update") is None else f"{r['cpu_s_per_update']:.2f}"
        )
        recipe_text = ", ".join(f"{k}={v}" for k, v in r["recipe"].items()) or "-"
        lines.append(
            f"| {r['run']} | {r['model']} | {r.get('updates') or '-'} | {sec} | "
            f"{r['hf_median']:.3f} | {r['niqe_mean']:.3f} | {r['psnr_bsd']:.2f} | "
            f"{r['psnr_set5']:.2f} | {r['colour_max_abs']:.2f} "
            f"{tuple(r['colour_rgb'])} | "
            f"{recipe_text} |"
        )
    (args.out / f"{args.stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
