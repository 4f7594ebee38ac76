"""The production runs of issue 19: the new phase-2 recipe, trained model by model.

    GMGAN_DATA=... GMGAN_DERIVED=/work/runs/derived OMP_NUM_THREADS=1 \
        nice -n 10 python benchmarks/results/natural_pilot/production_runs.py VARIANT SEED

VARIANT: psnr | gmgan | gmgan-no-lq | x1 | imagenet-like | textures (the last three: notebook
08's Table 3 sets); SEED 0, 1, 2, or more for the extra seeds of the paired tests. Each run goes
through gmgan.runs.ensure_run into GMGAN_DERIVED/models/teach/<run name>; a phase-2 run starts
from the shipped PSNR model of its seed, or where none is shipped (seeds 3+) from the one that
`production_runs.py psnr SEED` trained there (phase 1 of the teach preset). A stopped run
(SIGTERM writes a checkpoint; a killed one has one every 100 updates) resumes from it when the
same command runs again, and a finished one holds run.json for export_run (see README.md,
"Fourth session"; the recipe now lives in the teach preset).
"""
import sys

from gmgan.cache import derived_dir
from gmgan.experiments import SHIPPED_DIR, run_name, table3_sets, teaching_config
from gmgan.runs import ensure_run

# The recipe is the teach preset's (and teaching_config trains phase 2 at speed="fast"); these
# runs only checkpoint more often, so that a session's end costs at most 100 updates. Passing
# the recipe again here would not change a run's configuration key (checked when the preset
# took it over: the same key, so unfinished runs resume).
RUN = {"ckpt_every": 100, "keep_last": 2}
variant, seed = sys.argv[1], int(sys.argv[2])
if len(sys.argv) > 3:
    RUN["gan_iters"] = int(sys.argv[3])
psnr_name = run_name("psnr", seed=seed)
if variant == "psnr":
    cfg = teaching_config("psnr", seed=seed)
    print(f"{psnr_name}: {cfg.pretrain_iters} updates", flush=True)
    run = ensure_run(psnr_name, cfg, preset="teach", threads=1, retrain=True)
    print(f"{psnr_name}: done in {run.run_dir}", flush=True)
    sys.exit(0)
parent = SHIPPED_DIR / "teach" / psnr_name / "pretrain" / "G_ema.safetensors"
if not parent.is_file():  # an extra seed: the PSNR model trained by `psnr SEED`
    folder = derived_dir("models", "teach", psnr_name, create=False)
    parent = folder / "pretrain" / "G_ema.safetensors"
    if not parent.is_file():
        sys.exit(f"no PSNR model of seed {seed}: run `production_runs.py psnr {seed}` first")
extra, kind = {}, "gmgan"
if variant == "gmgan-no-lq":
    kind = "gmgan-no-lq"
elif variant in ("x1", "imagenet-like", "textures"):
    sets = {ts.paper_row: ts for ts in table3_sets("teach").values()}
    ts = sets[{"x1": "DF2K", "imagenet-like": "ImageNet", "textures": "DF2K + OST"}[variant]]
    extra = {"augment8": ts.augment8}
    if ts.train_set != "T91":
        extra["train_set"] = ts.train_set
cfg = teaching_config(kind, seed=seed, pretrained_g=parent, **extra, **RUN)
name = run_name(kind, train_set=extra.get("train_set"), seed=seed, augment8=extra.get("augment8"))
print(f"{name}: {cfg.gan_iters} updates", flush=True)
run = ensure_run(name, cfg, preset="teach", parent=None, threads=1, retrain=True)
print(f"{name}: done in {run.run_dir}", flush=True)
