"""Ship the production runs of issue 19 as the package's teaching models.

    python benchmarks/results/production/ship.py --check   # only compare the keys
    python benchmarks/results/production/ship.py           # compare, then copy

The runs that ``natural_pilot/production_runs.py`` trained were exported, as each finished,
into ``models/teach/<name>`` beside this file (``gmgan.runs.export_run``: config, logs,
validation, the moving-average generator, and the raw one for GMGAN). For every phase-2 model
of ``gmgan.experiments.teaching_plan`` this script checks that the staged run's configuration
key is the key of what ``teaching_run`` / ``table3_run`` train now, i.e. that the ``teach``
preset carries the recipe the runs were trained with; only then it copies each run to
``gmgan/teaching_models/teach/<name>`` (the raw generator only for ``SHIP_RAW``), with
``run.json`` naming its parent, the shipped PSNR model of its seed.

Once shipped (2026-12-08) the staged copies were removed from the repository: the package holds
the models. To ship retrained runs, export them into ``models/teach/<name>`` again first.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gmgan.config import TrainConfig
from gmgan.experiments import (
    SHIP_RAW,
    SHIPPED_DIR,
    config_key,
    export_run,
    load_run,
    run_name,
    table3_config,
    teaching_config,
    teaching_plan,
)
from gmgan.runs import config_differences

STAGED = Path(__file__).resolve().parent / "models" / "teach"


def planned(preset: str = "teach") -> dict[str, tuple[TrainConfig, str]]:
    """``{run name: (configuration, parent run name)}`` of every phase-2 model of the plan,
    each from the shipped PSNR model of its seed."""
    plan = {}
    for what, kwargs in teaching_plan(preset):
        if what == "psnr":
            continue
        seed = kwargs["seed"]
        parent = run_name("psnr", preset=preset, seed=seed)
        weights = SHIPPED_DIR / preset / parent / "pretrain" / "G_ema.safetensors"
        if what == "table3":
            name, cfg = table3_config(kwargs["training_set"], preset=preset, seed=seed,
                                      pretrained_g=weights)
        else:
            name = run_name(what, preset=preset, seed=seed)
            cfg = teaching_config(what, preset=preset, seed=seed, pretrained_g=weights)
        plan[name] = (cfg, parent)
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare the keys, copy nothing")
    args = parser.parse_args(argv)
    plan = planned()
    problems = []
    for name, (cfg, _) in plan.items():
        saved = STAGED / name / "config.yaml"
        if not saved.is_file():
            problems.append(f"{name}: not staged (no {saved})")
            continue
        # The key of the saved configuration, as ensure_run will compare it once shipped.
        diff = config_differences(config_key(TrainConfig.from_yaml(saved)), config_key(cfg))
        if diff:
            problems.append(f"{name}: staged key differs from the preset's: " + "; ".join(diff))
    for line in problems:
        print(line)
    if problems or args.check:
        print(f"{len(plan) - len(problems)} of {len(plan)} staged runs match the teach preset")
        return 1 if problems else 0
    for name, (_, parent) in plan.items():
        dst = export_run(load_run(STAGED / name, preset="teach"), SHIPPED_DIR / "teach" / name,
                         raw=name in SHIP_RAW)
        record = json.loads((dst / "run.json").read_text())
        record["parent"] = parent
        (dst / "run.json").write_text(json.dumps(record, indent=1))
        print(f"shipped {name} (parent {parent})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
