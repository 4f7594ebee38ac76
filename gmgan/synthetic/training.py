"""Training on the synthetic task: the loop (:func:`train_sr`), the recipe of the
shipped models (:class:`Recipe`), one seed's three models (:func:`train_seed`) and
their files.

Per seed: a PSNR model (MSE only, no noise); from it a GAN (a fresh HR noise head, MSE +
l_Q + WGAN-GP) and the same GAN without l_Q (the same head, critic, batches and noise
draws: a paired ablation). The shipped ones are in ``gmgan/teaching_models/synthetic/``
(:func:`shipped_dir`), trained by::

    OMP_NUM_THREADS=1 python -m gmgan.synthetic gmgan/teaching_models/synthetic \
        --seeds 0 1 2 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gmgan.cache import derived_dir
from gmgan.losses import GMGANLoss, critic_loss, gradient_penalty
from gmgan.synthetic.models import (
    BicubicResidualSR,
    load_generator,
    save_generator,
    small_critic,
    small_generator,
    with_noise_head,
)
from gmgan.synthetic.task import SyntheticSRTask, TrainingStream
from gmgan.synthetic.texture import TextureSpectrum
from gmgan.threads import torch_threads

__all__ = [
    "MODEL_NAMES",
    "Recipe",
    "load_seed",
    "models_for",
    "save_seed",
    "shipped_dir",
    "train_seed",
    "train_sr",
]

#: The three models of a seed, in the order they are trained.
MODEL_NAMES = ("psnr", "gan", "gan-no-lq")
RETRAIN_COMMAND = (
    "OMP_NUM_THREADS=1 python -m gmgan.synthetic "
    "gmgan/teaching_models/synthetic --seeds {seed}"
)


def train_sr(
    generator: nn.Module,
    stream: TrainingStream,
    steps: int,
    *,
    mse: float = 1.0,
    quality: float = 0.0,
    adversarial: float = 0.0,
    critic: nn.Module | None = None,
    n_critic: int = 1,
    lr: float = 1e-3,
    lr_critic: float = 1e-3,
    gp: float = 10.0,
    seed: int = 0,
    threads: int | None = None,
) -> list[dict[str, float]]:
    """Train ``generator`` in place on ``stream`` for ``steps`` updates; returns the
    log.

    The generator's loss is :class:`gmgan.losses.GMGANLoss` with alpha = ``mse``, gamma
    = ``quality`` (l_Q, GMSD per channel), delta = ``adversarial`` (l_GA = -E[D(SR)])
    and no perceptual term. With ``adversarial`` > 0 a ``critic`` is trained first at
    every step, ``n_critic`` WGAN-GP updates (E[D(SR)] - E[D(HR)] + ``gp`` x penalty,
    unscaled: Adam does not care about a constant factor). Adam, betas (0.9, 0.999)
    without a critic and (0, 0.9) with one, as the paper's two phases; constant learning
    rates.

    Returns:
        one dict per step: "step", "seconds" (wall-clock since the start) and the loss
        terms ("mse", "quality", "adversarial", "total", and "wasserstein" with a
        critic).
    """
    if adversarial and critic is None:
        raise ValueError("train_sr: adversarial > 0 needs a critic")
    gan = bool(adversarial)
    loss = GMGANLoss(
        alpha=mse, beta=0.0, gamma=quality, delta=adversarial, lam=gp, perceptual=False
    )
    betas = (0.0, 0.9) if gan else (0.9, 0.999)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    opt_d = (
        torch.optim.Adam(critic.parameters(), lr=lr_critic, betas=(0.0, 0.9))
        if gan
        else None
    )
    penalty_rng = torch.Generator().manual_seed(seed)
    log: list[dict[str, float]] = []
    start = time.perf_counter()
    with torch_threads(threads or torch.get_num_threads()):
        generator.train()
        for step in range(1, steps + 1):
            record: dict[str, float] = {}
            if gan:
                for _ in range(n_critic):
                    lr_img, hr = next(stream)
                    with torch.no_grad():
                        sr = generator(lr_img)
                    d_loss = critic_loss(critic(hr), critic(sr))
                    d_total = d_loss + gradient_penalty(
                        critic, hr, sr, lam=gp, generator=penalty_rng
                    )
                    opt_d.zero_grad(set_to_none=True)
                    d_total.backward()
                    opt_d.step()
                record["wasserstein"] = -float(d_loss.detach())
            lr_img, hr = next(stream)
            sr = generator(lr_img)
            if gan:
                for p in critic.parameters():
                    p.requires_grad_(False)
            total, terms = loss.generator(sr, hr, critic if gan else None)
            opt_g.zero_grad(set_to_none=True)
            total.backward()
            opt_g.step()
            if gan:
                for p in critic.parameters():
                    p.requires_grad_(True)
            record.update({k: float(v) for k, v in terms.items()})
            record.update(step=step, seconds=time.perf_counter() - start)
            log.append(record)
    generator.eval()
    return log


@dataclass(frozen=True)
class Recipe:
    """How the three models of a seed are trained (the pilot's settings, see
    benchmarks/results/synthetic_sr_pilot/).

    The PSNR model: ``psnr_steps`` MSE updates, Adam ``lr`` (0.9, 0.999). Each GAN:
    ``gan_steps`` updates from it with a fresh ``head``-channel HR noise head, loss
    ``mse`` x MSE + ``quality`` x l_Q (0 in the ablation) + ``adversarial`` x l_GA,
    Adam ``gan_lr`` (0, 0.9), ``n_critic`` WGAN-GP critic updates (Adam ``lr_critic``)
    per generator update. Batches of ``batch`` patches of ``patch`` HR pixels; the
    task's texture has the spectrum (``peak``, ``width``, ``std``).
    """

    psnr_steps: int = 100
    gan_steps: int = 300
    batch: int = 16
    patch: int = 32
    lr: float = 1e-3
    gan_lr: float = 2e-4
    lr_critic: float = 1e-3
    n_critic: int = 2
    mse: float = 1.0
    quality: float = 1.0
    adversarial: float = 0.05
    head: int = 8
    peak: float = 0.2
    width: float = 0.06
    std: float = 0.08

    def task(self) -> SyntheticSRTask:
        """The task these models are trained on (64 px images, task seed 0)."""
        spectrum = TextureSpectrum(self.peak, self.width, self.std)
        return SyntheticSRTask(spectrum=spectrum)


def _stream(recipe: Recipe, seed: int) -> TrainingStream:
    return TrainingStream(
        recipe.task(), batch_size=recipe.batch, patch=recipe.patch, seed=seed
    )


def train_seed(
    seed: int,
    recipe: Recipe = Recipe(),
    *,
    names: tuple[str, ...] = MODEL_NAMES,
    threads: int | None = 1,
    verbose: bool = False,
) -> dict[str, dict]:
    """Train the models ``names`` (a subset of :data:`MODEL_NAMES`, "psnr" always) of
    ``seed``.

    Returns:
        {name: {"model": generator (eval mode), "log": per-step dicts of
        :func:`train_sr`, "seconds": wall-clock training time}}.
    """
    unknown = set(names) - set(MODEL_NAMES)
    if unknown:
        raise ValueError(f"train_seed: unknown models {sorted(unknown)}; "
                         f"choose from {MODEL_NAMES}")
    out: dict[str, dict] = {}
    torch.manual_seed(seed)
    psnr = small_generator(seed=seed)
    start = time.perf_counter()
    log = train_sr(psnr, _stream(recipe, seed), recipe.psnr_steps, lr=recipe.lr,
                   seed=seed, threads=threads)
    out["psnr"] = {"model": psnr, "log": log, "seconds": time.perf_counter() - start}
    for name in names:
        if name == "psnr":
            continue
        if verbose:
            print(f"seed {seed}: training {name}", flush=True)
        torch.manual_seed(1000 + seed)  # the same noise draws in both arms
        model = with_noise_head(psnr, recipe.head, seed=seed)
        start = time.perf_counter()
        log = train_sr(
            model,
            _stream(recipe, 100 + seed),
            recipe.gan_steps,
            mse=recipe.mse,
            quality=recipe.quality if name == "gan" else 0.0,
            adversarial=recipe.adversarial,
            critic=small_critic(recipe.patch, seed=seed),
            n_critic=recipe.n_critic,
            lr=recipe.gan_lr,
            lr_critic=recipe.lr_critic,
            seed=seed,
            threads=threads,
        )
        out[name] = {"model": model, "log": log, "seconds": time.perf_counter() - start}
    return out


def shipped_dir() -> Path:
    """``gmgan/teaching_models/synthetic``: the shipped models, one folder per seed."""
    return Path(__file__).resolve().parent.parent / "teaching_models" / "synthetic"


def _log_lines(log: list[dict], every: int = 5) -> str:
    kept = [r for r in log if r["step"] % every == 0 or r["step"] in (1, len(log))]
    rounded = [{k: float(f"{v:.6g}") for k, v in r.items()} for r in kept]
    for r in rounded:
        r["step"] = int(r["step"])
    return "".join(json.dumps(r) + "\n" for r in rounded)


def save_seed(trained: dict[str, dict], folder: str | os.PathLike, seed: int,
              recipe: Recipe = Recipe()) -> Path:
    """Write one seed's models into ``folder/s<seed>/``: ``<name>.safetensors`` (fp16),
    ``<name>.log.jsonl`` (every 5th step of the training log, 6 digits) and
    ``config.json`` (the recipe, the seed, seconds per model, the retrain command)."""
    out = Path(folder) / f"s{seed}"
    out.mkdir(parents=True, exist_ok=True)
    for name, run in trained.items():
        save_generator(run["model"], out / f"{name}.safetensors")
        (out / f"{name}.log.jsonl").write_text(_log_lines(run["log"]))
    config = {
        "seed": seed,
        "recipe": dataclasses.asdict(recipe),
        "seconds": {n: round(r["seconds"], 1) for n, r in trained.items()},
        "threads": 1,
        "retrain": RETRAIN_COMMAND.format(seed=seed),
    }
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    return out


def load_seed(folder: str | os.PathLike, seed: int,
              recipe: Recipe = Recipe()) -> dict[str, BicubicResidualSR] | None:
    """The models of ``seed`` saved by :func:`save_seed` in ``folder``, or None when
    they are missing or were trained with another recipe."""
    out = Path(folder) / f"s{seed}"
    config_file = out / "config.json"
    if not config_file.is_file():
        return None
    config = json.loads(config_file.read_text())
    if config.get("recipe") != dataclasses.asdict(recipe):
        return None
    if not all((out / f"{n}.safetensors").is_file() for n in MODEL_NAMES):
        return None
    return {
        name: load_generator(out / f"{name}.safetensors",
                             noise_head=0 if name == "psnr" else recipe.head)
        for name in MODEL_NAMES
    }


def models_for(seeds, recipe: Recipe = Recipe(), *, retrain: bool = False,
               threads: int | None = 1) -> dict[int, dict[str, BicubicResidualSR]]:
    """{seed: {name: generator}}: the shipped models, or with ``retrain`` (or where
    none is shipped for this recipe) models trained into
    ``GMGAN_DERIVED/synthetic/`` (reused there on later calls). Prints one line per
    seed saying which."""
    out = {}
    cache = derived_dir("synthetic")
    for seed in seeds:
        models = None if retrain else load_seed(shipped_dir(), seed, recipe)
        if models is not None:
            print(f"seed {seed}: the shipped models")
        else:
            models = None if retrain else load_seed(cache, seed, recipe)
            if models is not None:
                print(f"seed {seed}: the models trained earlier into GMGAN_DERIVED")
            else:
                print(f"seed {seed}: training the models (a few minutes)", flush=True)
                trained = train_seed(seed, recipe, threads=threads)
                save_seed(trained, cache, seed, recipe)
                models = load_seed(cache, seed, recipe)  # through fp16, as shipped
        out[seed] = models
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Train the synthetic task's PSNR model, GAN and GAN without l_Q "
        "per seed (the shipped teaching models)."
    )
    parser.add_argument("folder", help="output folder, one s<seed>/ per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    for seed in args.seeds:
        trained = train_seed(seed, threads=args.threads, verbose=True)
        out = save_seed(trained, args.folder, seed)
        seconds = {n: round(r["seconds"]) for n, r in trained.items()}
        print(f"seed {seed}: wrote {out} (seconds {seconds})", flush=True)


if __name__ == "__main__":
    main()
