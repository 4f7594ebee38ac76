"""The GPU profile of GMGAN training (paper preset) and inference. Needs a CUDA device for real numbers.

    python -m benchmarks.gpu_profile               # on a CUDA machine: benchmarks/results/gpu.{json,md}
    python -m benchmarks.gpu_profile --dry-run     # tiny sizes on any device: checks the script (CI)

Measured:
  - training, by the real trainer (``gmgan.train.train``, phase 2, paper preset: RRDB-23, batch 16,
    128^2 HR patches, VGG19 conv5_4, GMSD, WGAN-GP): iterations/s and peak GPU memory for eager
    fp32, bf16 autocast, bf16 + channels_last, and bf16 + channels_last + torch.compile (the
    trainer's own ``amp``, ``channels_last`` and ``compile`` options). Step times come from the
    trainer's log (one row per step), after warm-up steps;
  - FLOPs per iteration (torch.utils.flop_counter around the real trainer, checked against the
    benchmark's mirror of the step) and MFU: achieved FLOP/s over the GPU's dense bf16 peak;
  - data-loader patches/s (0, 4, 8 workers) against what the GPU consumes at the fastest mode;
  - inference megapixels/s (output) for 1080p, 1440p and 4K outputs (x4 from 480x270, 640x360,
    960x540) in fp16 and bf16, tiled and untiled, with peak memory as the image grows.

gmgan.train.gan has no step function to call, so the timings run the trainer itself for a few
iterations; only the FLOP cross-check uses the mirror (benchmarks/trainstep.py).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from benchmarks.common import Row, load_average, machine_info, write_results

RESULTS = Path(__file__).resolve().parent / "results"

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from the vendors' data sheets. Longest
# name first, so "H100 PCIe" wins over "H100". Unknown GPUs: pass --peak-tflops.
PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.0, "H200": 989.0, "GH200": 989.0, "A100": 312.0,
                    "L40S": 362.0, "L4": 121.0, "A10": 125.0}

MODES = {  # label -> the trainer's options
    "eager fp32": {"amp": "none", "channels_last": False, "compile": False},
    "bf16 autocast": {"amp": "bf16", "channels_last": False, "compile": False},
    "bf16 + channels_last": {"amp": "bf16", "channels_last": True, "compile": False},
    "bf16 + channels_last + compile": {"amp": "bf16", "channels_last": True, "compile": True},
}


def _log(msg: str) -> None:
    print(f"[gpu-profile {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def peak_tflops(name: str) -> float | None:
    """The dense bf16 peak of a GPU from its device name, or None if unknown."""
    for key in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):
        if key in name:
            return PEAK_BF16_TFLOPS[key]
    return None


def _reset_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


class _NoModuleTracking:
    """Stands in for FlopCounterMode's ModuleTracker. Its module hooks make torch.autograd.grad
    fail when the gradient is taken w.r.t. a leaf, which is what the gradient penalty does
    ("A leaf node was passed to _will_engine_execute_node ..."). Only the total is needed here."""

    parents: ClassVar[set[str]] = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False


def flop_counter():
    """A ``torch.utils.flop_counter.FlopCounterMode`` that counts totals only (see above)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _NoModuleTracking()
    return counter


def count_flops(cfg, workdir: Path) -> tuple[int, int, int]:
    """FLOPs of one phase-2 iteration: (real trainer in its default speed mode, real trainer in
    ``speed="reference"``, the mirror's one step), each trainer count over 2 iterations / 2.

    The mirror (benchmarks/trainstep.py) times the reference update part by part, with two
    generator forwards; the default ``fast`` mode shares one (gmgan.speed), so the cross-check
    compares the mirror with the reference trainer, and MFU uses the default's FLOPs."""
    from benchmarks.trainstep import GanStep, trainer_step_seconds

    # balance_random_vgg off: its one extra l_P/l_Q evaluation on the first batch is not per iteration
    cfg = dataclasses.replace(cfg, amp="none", channels_last=False, compile=False, balance_random_vgg=False)
    counts = []
    for speed in (cfg.speed, "reference"):
        with flop_counter() as counter:
            trainer_step_seconds(dataclasses.replace(cfg, speed=speed), 2, workdir=workdir)
        counts.append(counter.get_total_flops() // 2)
    step = GanStep(cfg, device=cfg.device)
    with flop_counter() as counter:
        step.step()
    return counts[0], counts[1], counter.get_total_flops()


def profile_training(cfg, *, iters: int, warmup: int, modes: dict, workdir: Path, flops: int | None,
                     peak: float | None) -> list[dict]:
    """Per mode: ms per iteration (median over ``iters`` steps after ``warmup``), peak memory, MFU."""
    from benchmarks.trainstep import trainer_step_seconds

    device = torch.device(cfg.device)
    out = []
    for label, options in modes.items():
        _log(f"training: {label}")
        _reset_memory(device)
        t0 = time.perf_counter()
        try:
            seconds = trainer_step_seconds(dataclasses.replace(cfg, **options), warmup + iters + 1, workdir=workdir)
        except Exception as err:  # noqa: BLE001 - report the failing mode, go on with the others
            out.append({"mode": label, "options": options, "error": f"{type(err).__name__}: {err}"[:500]})
            _log(f"training: {label} failed: {type(err).__name__}: {str(err)[:200]}")
            continue
        steps = seconds[warmup:]
        ms = float(np.median(steps)) * 1e3
        row = {"mode": label, "options": options, "ms_per_it": ms, "it_per_s": 1e3 / ms,
               "step_ms": [s * 1e3 for s in steps], "wall_s_incl_setup": time.perf_counter() - t0,
               "peak_mem_gib": _peak_gib(device)}
        if flops:
            row["tflops"] = flops / (ms / 1e3) / 1e12
            row["mfu"] = row["tflops"] / peak if peak else None
        out.append(row)
    return out


def profile_loader(hr_dir: Path, lr_dir: Path, *, batch: int, patch: int, workers: tuple[int, ...],
                   batches: int) -> dict[int, float]:
    from benchmarks.loader import loader_rate

    rates = {}
    for w in workers:
        _log(f"loader: {w} workers")
        rates[w] = loader_rate(hr_dir, lr_dir, workers=w, cache=True, patch=patch, batch=batch,
                               batches=batches).patches_per_s
    return rates


def profile_inference(device: torch.device, *, num_block: int, sizes: list[tuple[int, int]],
                      tiles: tuple[int | None, ...], dtypes: tuple[str, ...]) -> list[dict]:
    """Output megapixels/s and peak memory of gmgan.upscale, per dtype, LR size and tiling."""
    from gmgan.infer import upscale
    from gmgan.nets import RRDBNet

    torch.manual_seed(0)
    model = RRDBNet(num_block=num_block).to(device).eval()
    rows = []
    for h, w in sizes:
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h * w)).to(device)
        crop = x[..., : min(h, 64), : min(w, 64)]
        with torch.no_grad():
            ref = model(crop).float().clamp(0, 1)  # fp32 reference for the precision check
        for dtype in dtypes:
            for tile in tiles:
                label = {"dtype": dtype, "lr": f"{w}x{h}", "sr": f"{4 * w}x{4 * h}", "tile": tile}
                try:
                    upscale(model, x, tile=tile, half=dtype)  # warm-up: cuDNN autotuning, allocations
                    _reset_memory(device)
                    t0 = time.perf_counter()
                    upscale(model, x, tile=tile, half=dtype)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    dt = time.perf_counter() - t0
                    err = (upscale(model, crop, tile=None, half=dtype).float() - ref).abs().max().item()
                except torch.OutOfMemoryError as oom:
                    rows.append({**label, "error": f"out of memory: {str(oom)[:200]}"})
                    continue
                rows.append({**label, "seconds": dt, "sr_megapixels_per_s": 16 * h * w / dt / 1e6,
                             "peak_mem_gib": _peak_gib(device), "max_abs_err_vs_fp32": err})
                _log(f"inference {dtype} {w}x{h} tile {tile}: {rows[-1]['sr_megapixels_per_s']:.2f} MP/s")
    return rows


def _train_source(name: str | None, dry_run: bool) -> tuple[Path, str]:
    """HR training images: the named set if the data cache has it, else synthetic photo-like ones."""
    from benchmarks.loader import synthetic_image_folder
    from gmgan.cache import derived_dir

    if name and not dry_run:
        from gmgan.data.download import dataset_dir

        try:
            return Path(dataset_dir(name)), name
        except Exception as err:  # noqa: BLE001 - not in the data cache, no internet: synthetic
            _log(f"{name} unavailable ({type(err).__name__}); using synthetic images")
    if dry_run:
        return synthetic_image_folder(derived_dir("bench", "synthetic")), "synthetic (6 x 200x264)"
    folder = synthetic_image_folder(derived_dir("bench", "synthetic-480"), count=64, size=(480, 480))
    return folder, "synthetic (64 x 480x480)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes, any device: checks the script runs")
    ap.add_argument("--iters", type=int, default=20, help="timed training iterations per mode")
    ap.add_argument("--warmup", type=int, default=5, help="untimed iterations per mode (after step 1)")
    ap.add_argument("--train-set", default="BSDS200", help="training images (synthetic if unavailable)")
    ap.add_argument("--workers", type=int, default=None, help="trainer's loader workers (default: preset's)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak, for an unknown GPU")
    ap.add_argument("--compile-in-dry-run", action="store_true", help="also try torch.compile in --dry-run")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    threads, cudnn_benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*random VGG19 weights.*")
            return _main(args)
    finally:  # leave the process as it was (the tests call main in-process)
        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = cudnn_benchmark


def _main(args: argparse.Namespace) -> int:
    from benchmarks.trainstep import bench_config
    from gmgan.cache import derived_dir
    from gmgan.data import prepare_training_set

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if not cuda and not args.dry_run:
        print("no CUDA device: run with --dry-run to check the script on the CPU", file=sys.stderr)
        return 2
    if not cuda:
        torch.set_num_threads(1)  # only the checks count; a second thread only waits on a busy CPU
    torch.backends.cudnn.benchmark = True
    src, src_label = _train_source(args.train_set, args.dry_run)
    prepared = prepare_training_set(src, progress=False)
    if args.dry_run:
        cfg = bench_config("paper", device=device.type, train_set=str(src), batch_size=2, patch_size=32,
                           num_block=1, num_workers=0 if args.workers is None else args.workers)
        iters, warmup = 2, 0
        modes = {k: v for k, v in MODES.items() if args.compile_in_dry_run or not v["compile"]}
        loader_workers, loader_batches = (0,), 3
        sizes, tiles = [(24, 32)], (None, 16)
        dtypes = ("fp16", "bf16") if cuda else ("bf16",)  # upscale refuses fp16 on the CPU
        num_block = 1
    else:
        cfg = bench_config("paper", device="cuda", train_set=str(src),
                           **({} if args.workers is None else {"num_workers": args.workers}))
        iters, warmup = args.iters, args.warmup
        modes = MODES
        loader_workers, loader_batches = (0, 4, 8), 40
        sizes, tiles = [(270, 480), (360, 640), (540, 960)], (None, 256)
        dtypes, num_block = ("fp16", "bf16"), cfg.num_block
    workdir = derived_dir("bench", "gpu-runs")
    gpu = torch.cuda.get_device_name(0) if cuda else None
    peak = args.peak_tflops or (peak_tflops(gpu) if gpu else None)

    _log("FLOPs per iteration")
    flops, flops_reference, flops_mirror = count_flops(cfg, workdir)
    training = profile_training(cfg, iters=iters, warmup=warmup, modes=modes, workdir=workdir, flops=flops,
                                peak=peak)
    loader = profile_loader(prepared.hr_dir, prepared.lr_dir, batch=cfg.batch_size, patch=cfg.patch_size,
                            workers=loader_workers, batches=loader_batches)
    inference = profile_inference(device, num_block=num_block, sizes=sizes, tiles=tiles, dtypes=dtypes)

    rows: list[Row] = []
    ok_modes = [r for r in training if "ms_per_it" in r]
    base = next((r for r in ok_modes if r["mode"] == "eager fp32"), None)
    flops_ok = flops_reference == flops_mirror and flops <= flops_reference
    rows.append(Row("flops", "FLOPs per iteration (real trainer, FlopCounterMode)", math.nan, "mirror of the step", None,
                    f"{flops_reference / 1e12:.3f} TFLOP (trainer, speed reference) vs "
                    f"{flops_mirror / 1e12:.3f} TFLOP (mirror); {flops / 1e12:.3f} TFLOP in the "
                    f"default speed mode ({cfg.speed})"
                    + (f"; bf16 peak {peak:g} TFLOP/s" if peak else "; peak unknown: no MFU"), flops_ok))
    for r in training:
        if "error" in r:
            rows.append(Row("training", r["mode"], math.nan, "eager fp32", None, r["error"], False))
            continue
        mem = f", peak {r['peak_mem_gib']:.2f} GiB" if r["peak_mem_gib"] is not None else ""
        mfu = f", MFU {100 * r['mfu']:.1f}%" if r.get("mfu") else ""
        rows.append(Row("training", r["mode"], r["ms_per_it"], "eager fp32",
                        base["ms_per_it"] if base else None,
                        f"{r['it_per_s']:.2f} it/s{mem}, {r.get('tflops', 0):.1f} TFLOP/s{mfu}", True))
    best = min(ok_modes, key=lambda r: r["ms_per_it"]) if ok_modes else None
    for w, rate in loader.items():
        ms = cfg.batch_size / rate * 1e3
        rows.append(Row("loader", f"{w} workers: ms per batch of {cfg.batch_size}", ms,
                        f"GPU consumption at '{best['mode']}'" if best else "GPU consumption",
                        best["ms_per_it"] if best else None,
                        f"{rate:.0f} patches/s" + (f" vs {cfg.batch_size * best['it_per_s']:.0f} consumed"
                                                   if best else ""), rate > 0))
    for r in inference:
        name = f"{r['dtype']} {r['lr']}→{r['sr']}, tile {r['tile'] or 'none'}"
        if "error" in r:
            rows.append(Row("inference", name, math.nan, "—", None, r["error"], r["tile"] is None))
            continue
        mem = f", peak {r['peak_mem_gib']:.2f} GiB" if r["peak_mem_gib"] is not None else ""
        rows.append(Row("inference", name, r["seconds"] * 1e3, "—", None,
                        f"{r['sr_megapixels_per_s']:.2f} MP/s{mem}; max|Δ| vs fp32 on a 64² crop "
                        f"{r['max_abs_err_vs_fp32']:.1e} (tol 0.05)",
                        math.isfinite(r["max_abs_err_vs_fp32"]) and r["max_abs_err_vs_fp32"] <= 0.05))

    machine = machine_info()
    machine["load_average_end"] = load_average()
    # "eager fp32" convolutions use TF32 tensor cores when cuDNN allows it (PyTorch's default).
    machine["tf32"] = {"cudnn": torch.backends.cudnn.allow_tf32, "matmul": torch.backends.cuda.matmul.allow_tf32}
    extra = {"config": {k: v for k, v in cfg.to_dict().items() if k in (
                 "batch_size", "patch_size", "num_block", "num_feat", "perceptual_layer", "num_workers")},
             "train_images": src_label, "dry_run": args.dry_run, "flops_per_iteration": flops,
             "flops_per_iteration_mirror": flops_mirror,
             "flops_per_iteration_reference": flops_reference, "peak_bf16_tflops": peak, "training": training,
             "loader_patches_per_s": loader, "inference": inference,
             "gpu_patches_per_s_at_best_mode": cfg.batch_size * best["it_per_s"] if best else None}
    stem = "gpu-dry-run" if args.dry_run else "gpu"
    json_path, md_path = write_results(
        rows, args.out, stem, machine, extra=extra,
        title="gmgan GPU profile" + (" (dry run: tiny sizes, checks only)" if args.dry_run else ""),
        notes=[(f"Training: gmgan.train.train, phase 2, batch {cfg.batch_size}, {cfg.patch_size}² HR patches, "
               f"RRDB-{cfg.num_block}, VGG19 {cfg.perceptual_layer} (random weights: same cost), "
               f"{cfg.num_workers} loader workers, images: {src_label}; {iters} timed steps after "
               f"{warmup + 1} warm-up steps. ratio = eager fp32 ms / mode ms (training) and "
               f"GPU ms per iteration / loader ms per batch (loader: > 1 means the loader keeps up).")])
    print(md_path.read_text())
    _log(f"wrote {json_path} and {md_path}")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
