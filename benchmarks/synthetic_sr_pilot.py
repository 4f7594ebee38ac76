"""Pilot of the synthetic SR task (gmgan.synthetic_sr): can a CPU train, in minutes, a
PSNR model that averages the texture away, a GAN that restores its high-frequency
energy, and show what l_Q does to the edges?

    OMP_NUM_THREADS=1 python -m benchmarks.synthetic_sr_pilot --seeds 0 1 2 \
        --out pilot.jsonl

Per seed: a PSNR model (MSE only, no noise); from it, a GAN (a fresh HR noise head, MSE
+ l_Q + WGAN-GP) and the same GAN without l_Q (same head, critic and batches: a paired
ablation). Each is scored on held-out task images: MSE, the median HF energy ratio
(gmgan.metrics.hf_energy_ratio, cutoff 1/4 Nyquist = the LR's Nyquist) on task images
and on texture-only images, GMSD and GMSM on the structure's edges
(synthetic_sr.edge_gms), the spectral W2 of the texture part (SR - structure), and the
wall-clock training time. One JSON line per model, and per seed the paired difference
GAN - GAN-without-l_Q of the edge scores with a 95% t-interval over the images.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from gmgan import synthetic_sr as S
from gmgan.losses import gmsd
from gmgan.metrics import hf_energy_ratio

# t quantile 0.975 for 31 degrees of freedom (32 test images).
_T975 = {31: 2.0395}


def _scores(
    name: str,
    model,
    task: S.SyntheticSRTask,
    test: S.TaskBatch,
    flat: S.TaskBatch,
    seconds: float,
) -> dict:
    torch.manual_seed(12345)  # the same evaluation noise for every model
    with torch.no_grad():
        sr = model(test.lr) if model is not None else S.imresize(test.lr, 4)
        sr_flat = model(flat.lr) if model is not None else S.imresize(flat.lr, 4)
    edges = S.edge_gms(sr.clamp(0, 1), test.hr, test.structure)
    texture_part = (sr - test.structure).mean(dim=1)
    return {
        "model": name,
        "train_s": round(seconds, 1),
        "mse": float(((sr - test.hr) ** 2).mean()),
        "hf_median": float(hf_energy_ratio(sr, test.hr).median()),
        "hf_texture_only_median": float(hf_energy_ratio(sr_flat, flat.hr).median()),
        "edge_gmsd": float(edges["gmsd"].mean()),
        "edge_gmsm": float(edges["gmsm"].mean()),
        "gmsd": float(gmsd(sr.clamp(0, 1), test.hr.clamp(0, 1))),
        "spectral_w2": S.spectral_w2(texture_part, task.spectrum),
        "_edges": edges,
    }


def _paired(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float, float]:
    d = (a - b).double().numpy()
    half = _T975.get(len(d) - 1, 1.96) * d.std(ddof=1) / math.sqrt(len(d))
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--psnr-steps", type=int, default=100)
    parser.add_argument("--gan-steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--mse", type=float, default=1.0)
    parser.add_argument("--quality", type=float, default=1.0)
    parser.add_argument("--adversarial", type=float, default=0.05)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-critic", type=float, default=1e-3)
    parser.add_argument("--gan-lr", type=float, default=2e-4)
    parser.add_argument("--n-critic", type=int, default=2)
    parser.add_argument("--head", type=int, default=8)
    parser.add_argument("--peak", type=float, default=0.2)
    parser.add_argument("--width", type=float, default=0.06)
    parser.add_argument("--std", type=float, default=0.08)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spectrum = S.TextureSpectrum(args.peak, args.width, args.std)
    task = S.SyntheticSRTask(spectrum=spectrum)
    bounds = task.bounds()
    print(
        f"texture: var {bounds.variance:.5f}, D* {bounds.mmse:.5f}, 2D* "
        f"{bounds.posterior_sampling_mse:.5f}, W2 {bounds.w2:.4f}, "
        f"HF ratio of the MMSE "
        f"estimate {bounds.hf_ratio_mmse:.3f}, HF fraction {bounds.hf_fraction:.3f}"
    )
    test = task.batch("test", range(32))
    flat = S.SyntheticSRTask(spectrum=spectrum, shapes=(0, 0), bars=(0, 0)).batch(
        "test", range(16)
    )
    rows = []

    def report(row: dict) -> None:
        row = {k: v for k, v in row.items() if not k.startswith("_")}
        rows.append(row)
        print(json.dumps(row), flush=True)

    report({"seed": None, **_scores("bicubic", None, task, test, flat, 0.0)})
    for seed in args.seeds:
        torch.manual_seed(seed)
        psnr = S.small_generator(seed=seed)
        stream = S.TrainingStream(
            task, batch_size=args.batch, patch=args.patch, seed=seed
        )
        start = time.perf_counter()
        S.train_sr(psnr, stream, args.psnr_steps, lr=args.lr, seed=seed)
        report(
            {
                "seed": seed,
                **_scores("psnr", psnr, task, test, flat, time.perf_counter() - start),
            }
        )
        edges = {}
        for name, quality in (("gan", args.quality), ("gan-no-lq", 0.0)):
            torch.manual_seed(1000 + seed)  # the same noise draws in both arms
            model = S.with_noise_head(psnr, args.head, seed=seed)
            critic = S.small_critic(args.patch, seed=seed)
            stream = S.TrainingStream(
                task, batch_size=args.batch, patch=args.patch, seed=100 + seed
            )
            start = time.perf_counter()
            S.train_sr(
                model,
                stream,
                args.gan_steps,
                mse=args.mse,
                quality=quality,
                adversarial=args.adversarial,
                critic=critic,
                n_critic=args.n_critic,
                lr=args.gan_lr,
                lr_critic=args.lr_critic,
                seed=seed,
            )
            row = _scores(name, model, task, test, flat, time.perf_counter() - start)
            edges[name] = row["_edges"]
            report({"seed": seed, **row})
        for key in ("gmsd", "gmsm"):
            mean, lo, hi = _paired(edges["gan"][key], edges["gan-no-lq"][key])
            report(
                {
                    "seed": seed,
                    "model": f"paired gan - gan-no-lq, edge_{key}",
                    "mean": mean,
                    "ci95": [lo, hi],
                }
            )
    if args.out:
        with open(args.out, "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()
