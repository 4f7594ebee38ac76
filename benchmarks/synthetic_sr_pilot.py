"""Pilot of the synthetic SR task (gmgan.synthetic): can a CPU train, in minutes, a
PSNR model that averages the texture away, a GAN that restores its high-frequency
energy, and show what l_Q does to the edges?

    OMP_NUM_THREADS=1 python -m benchmarks.synthetic_sr_pilot --seeds 0 1 2 \
        --out pilot.jsonl

Per seed, gmgan.synthetic.train_seed with the recipe the options give: a PSNR model (MSE
only, no noise); from it, a GAN (a fresh HR noise head, MSE + l_Q + WGAN-GP) and the
same GAN without l_Q (same head, critic and batches: a paired ablation). Each is scored
on held-out task images by gmgan.synthetic.score: MSE, the median HF energy ratio
(gmgan.metrics.hf_energy_ratio, cutoff 1/4 Nyquist = the LR's Nyquist) on task images
and on texture-only images, GMSD and GMSM on the structure's edges (edge_gms), GMSD of
the whole image, the spectral W2 of the texture part (SR - structure), and the
wall-clock training time. One JSON line per model, and per seed the paired difference
GAN - GAN-without-l_Q of the edge scores with a 95% t-interval over the images.
"""

from __future__ import annotations

import argparse
import json

import torch

from gmgan import synthetic as S


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    defaults = S.Recipe()
    for field, flag in (
        ("psnr_steps", "--psnr-steps"), ("gan_steps", "--gan-steps"),
        ("batch", "--batch"), ("patch", "--patch"), ("mse", "--mse"),
        ("quality", "--quality"), ("adversarial", "--adversarial"), ("lr", "--lr"),
        ("lr_critic", "--lr-critic"), ("gan_lr", "--gan-lr"),
        ("n_critic", "--n-critic"), ("head", "--head"), ("peak", "--peak"),
        ("width", "--width"), ("std", "--std"),
    ):
        default = getattr(defaults, field)
        parser.add_argument(flag, dest=field, type=type(default), default=default)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recipe = S.Recipe(**{k: v for k, v in vars(args).items()
                         if k in S.Recipe.__dataclass_fields__})
    task = recipe.task()
    bounds = task.bounds()
    print(
        f"texture: var {bounds.variance:.5f}, D* {bounds.mmse:.5f}, 2D* "
        f"{bounds.posterior_sampling_mse:.5f}, W2 {bounds.w2:.4f}, "
        f"HF ratio of the MMSE "
        f"estimate {bounds.hf_ratio_mmse:.3f}, HF fraction {bounds.hf_fraction:.3f}"
    )
    test = task.batch("test", range(32))
    flat = S.SyntheticSRTask(spectrum=task.spectrum, shapes=(0, 0), bars=(0, 0)).batch(
        "test", range(16)
    )
    rows = []

    def report(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)

    def scored(seed, name, model, seconds) -> S.Scores:
        scores = S.score(model, test, task.spectrum, flat)
        report({"seed": seed, "model": name, "train_s": round(seconds, 1),
                **scores.summary()})
        return scores

    scored(None, "bicubic", None, 0.0)
    for seed in args.seeds:
        trained = S.train_seed(seed, recipe, threads=args.threads)
        edges = {name: scored(seed, name, run["model"], run["seconds"])
                 for name, run in trained.items()}
        for key in ("edge_gmsd", "edge_gmsm"):
            mean, lo, hi = S.t_interval(
                getattr(edges["gan"], key) - getattr(edges["gan-no-lq"], key)
            )
            report({"seed": seed, "model": f"paired gan - gan-no-lq, {key}",
                    "mean": mean, "ci95": [lo, hi]})
    if args.out:
        with open(args.out, "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()
