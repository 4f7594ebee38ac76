"""The GPU profile of the paper preset (and of inference). Needs a CUDA device for real numbers.

    python -m benchmarks.gpu_profile                   # writes benchmarks/results/gpu.{json,md}
    python -m benchmarks.gpu_profile --dry-run         # tiny sizes on any device (checks the script)

Measured, for one GAN iteration of the paper preset (RRDB-23, batch 16, 128^2 HR patches, VGG19 conv5_4,
GMSD quality loss, WGAN-GP critic step + generator step):
  - iterations/s and peak memory for eager fp32, bf16 autocast, bf16 + channels_last, and + torch.compile;
  - FLOPs per iteration (torch.utils.flop_counter) and the achieved TFLOP/s as a fraction of the GPU's
    dense bf16 peak (MFU);
  - data-loader patches/s against what the GPU consumes;
  - inference megapixels/s for 1080p -> 4K with tiling, fp16 and bf16, and peak memory as the image grows.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import machine_info

RESULTS = Path(__file__).resolve().parent / "results"

# Dense bf16 tensor-core peaks (TFLOP/s), from the vendors' data sheets.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "T4": 65.0, "A10": 125.0}


def peak_tflops(name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value
    return None


class GANStep:
    """One iteration of phase 2 as gmgan.train runs it: a critic update, then a generator update."""

    def __init__(self, device, *, batch, patch, num_block, dtype, channels_last, compile_models):
        from gmgan import losses, nets

        self.device, self.dtype = device, dtype
        self.G = nets.RRDBNet(num_block=num_block).to(device)
        self.D = nets.Discriminator(input_size=patch).to(device)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.G.to(memory_format=fmt)
        self.D.to(memory_format=fmt)
        self.loss = losses.GMGANLoss(perceptual=losses.PerceptualLoss(weights=None)).to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.0, 0.9))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.0, 0.9))
        self.g_fwd = torch.compile(self.G) if compile_models else self.G
        self.d_fwd = torch.compile(self.D) if compile_models else self.D
        g = torch.Generator(device="cpu").manual_seed(0)
        self.lr = torch.rand(batch, 3, patch // 4, patch // 4, generator=g).to(device, memory_format=fmt)
        self.hr = torch.rand(batch, 3, patch, patch, generator=g).to(device, memory_format=fmt)

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def __call__(self):
        with self.autocast():
            sr = self.g_fwd(self.lr)
            d_total, _ = self.loss.critic(self.d_fwd, sr, self.hr)
        self.opt_d.zero_grad(set_to_none=True)
        d_total.backward()
        self.opt_d.step()
        with self.autocast():
            sr = self.g_fwd(self.lr)
            g_total, _ = self.loss.generator(sr, self.hr, self.d_fwd)
        self.opt_g.zero_grad(set_to_none=True)
        g_total.backward()
        self.opt_g.step()


def count_flops(step: GANStep) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops()


def profile_training(device, *, batch, patch, num_block, iters, warmup) -> list[dict]:
    modes = [
        ("eager fp32", None, False, False),
        ("bf16 autocast", torch.bfloat16, False, False),
        ("bf16 + channels_last", torch.bfloat16, True, False),
        ("bf16 + channels_last + compile", torch.bfloat16, True, True),
    ]
    cuda = device.type == "cuda"
    rows = []
    flops = None
    for label, dtype, cl, comp in modes:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        try:
            step = GANStep(device, batch=batch, patch=patch, num_block=num_block, dtype=dtype,
                           channels_last=cl, compile_models=comp)
            if flops is None:
                flops = count_flops(step)
            for _ in range(warmup):
                step()
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(iters):
                step()
            if cuda:
                torch.cuda.synchronize()
            dt = (time.perf_counter() - t0) / iters
        except Exception as err:  # a mode that fails (e.g. compile without a compiler) is reported
            rows.append({"mode": label, "error": f"{type(err).__name__}: {err}"[:300]})
            continue
        row = {"mode": label, "it_per_s": 1.0 / dt, "ms_per_it": dt * 1e3,
               "tflops": flops / dt / 1e12 if flops else None}
        if cuda:
            row["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
        rows.append(row)
        del step
    base = next((r for r in rows if r["mode"] == "eager fp32" and "it_per_s" in r), None)
    peak = peak_tflops(torch.cuda.get_device_name(0)) if cuda else None
    for r in rows:
        if base and "it_per_s" in r:
            r["speedup_vs_fp32"] = r["it_per_s"] / base["it_per_s"]
        if peak and r.get("tflops"):
            r["mfu"] = r["tflops"] / peak
    return rows, flops


def profile_loader(*, batch, patch, workers, batches) -> float:
    from gmgan.data import PatchPairs, build_loader, prepare_training_set

    prepared = prepare_training_set("samples", scale=4)
    ds = PatchPairs(prepared.hr_dir, prepared.lr_dir, patch_size=patch, scale=4, seed=0, length=100_000)
    loader = build_loader(ds, batch_size=batch, num_workers=workers, seed=0)
    it = iter(loader)
    next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - t0)


def profile_inference(device, *, num_block, sizes, tile, dtypes) -> list[dict]:
    import numpy as np

    from gmgan import RRDBNet
    from gmgan.infer import upscale

    model = RRDBNet(num_block=num_block).to(device).eval()
    rows = []
    for dtype_name in dtypes:
        for h, w in sizes:
            img = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            half = dtype_name != "fp32"
            upscale(model, img[:64, :64], tile=tile, half=half, device=device)  # warm-up
            t0 = time.perf_counter()
            upscale(model, img, tile=tile, half=half, device=device)
            if device.type == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            row = {"dtype": dtype_name, "lr": f"{w}x{h}", "sr": f"{4 * w}x{4 * h}", "tile": tile,
                   "seconds": dt, "sr_megapixels_per_s": 16 * h * w / dt / 1e6}
            if device.type == "cuda":
                row["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes, any device: checks the script runs")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.dry_run:
        print("no CUDA device: run with --dry-run to check the script on the CPU", file=sys.stderr)
        return 2
    if args.dry_run:
        cfg = dict(batch=2, patch=32, num_block=1, iters=1, warmup=1)
        sizes, tile, workers, dtypes = [(24, 32)], 16, (0,), ("fp32",)
    else:
        cfg = dict(batch=16, patch=128, num_block=23, iters=args.iters, warmup=3)
        sizes, tile, workers, dtypes = [(270, 480), (540, 960)], 256, (0, 4, 8), ("fp16", "bf16")
    torch.backends.cudnn.benchmark = True
    training, flops = profile_training(device, **cfg)
    loader = {w: profile_loader(batch=cfg["batch"], patch=cfg["patch"], workers=w, batches=5 if args.dry_run else 50)
              for w in workers}
    best = max((r["it_per_s"] for r in training if "it_per_s" in r), default=None)
    consumed = best * cfg["batch"] if best else None
    inference = profile_inference(device, num_block=cfg["num_block"], sizes=sizes, tile=tile, dtypes=dtypes)
    result = {
        "machine": machine_info(),
        "config": cfg,
        "flops_per_iteration": flops,
        "training": training,
        "loader_patches_per_s": loader,
        "gpu_patches_per_s_at_best_mode": consumed,
        "loader_keeps_up": {w: (r / consumed if consumed else None) for w, r in loader.items()},
        "inference": inference,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("gpu-dry-run.json" if args.dry_run else "gpu.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
