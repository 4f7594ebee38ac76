"""Training GMGAN in two phases (Zhu et al. 2020; the recipe is summarised in PAPER.md).

Phase 1, ``pretrain`` (PSNR-oriented): the generator G alone learns to minimise the pixel MSE
between G(LR) and HR, with Adam; the learning rate is halved every ``pretrain_lr_halve_every``
updates. This gives the GAN a generator that already produces sensible images.

Phase 2, ``gan``: G starts from the phase-1 weights and a critic D is trained against it, WGAN-GP
style, alternating

1. ``n_critic`` critic updates on  l_D = delta * (E[D(SR)] - E[D(HR)] + lambda * GP)   (G fixed)
2. one generator update on        l_G = alpha * l_MSE + beta * l_P + gamma * l_Q + delta * l_GA

where l_P compares VGG19 features, l_Q is the GMSD quality loss (the paper's contribution) and
l_GA = -E[D(SR)]. Both use Adam with betas (0, 0.9); learning rates are halved every
``gan_lr_halve_every`` updates.

Everything else (devices, mixed precision, several GPUs, the generator's moving average,
checkpoints and resuming, logging, validation) lives in :mod:`gmgan.training`; how an
update
is computed (``cfg.speed``: ``fast``, ``reference`` or ``auto``) is said in :mod:`gmgan.speed`
and on the start-up line. :func:`pretrain_session` and :func:`gan_session` set a phase up and
return its update rule, which the loop (and ``benchmarks.run --only cpu-train``) calls.

Files, for a run folder ``out_dir`` (default ``<GMGAN_DERIVED>/runs/<name>``)::

    out_dir/config.yaml
    out_dir/pretrain/{G,G_ema}.safetensors       final weights (load with gmgan.load_generator)
    out_dir/pretrain/log.jsonl, val.jsonl, tb/   losses, validation scores, TensorBoard
    out_dir/pretrain/checkpoints/step_NNNNNNNN/  resumable checkpoints
    out_dir/gan/{G,G_ema,D}.safetensors, ...     the same for phase 2

Several GPUs: ``torchrun --nproc_per_node K -m gmgan train ...``; ``batch_size`` stays the global
batch, each process computes ``batch_size / K`` samples and gradients are averaged.

Messages go through :mod:`logging` (logger ``gmgan.train``; the start-up line, which
names the run folder, through ``gmgan.train.setup``), see :mod:`gmgan.training.console`:
``logging.getLogger("gmgan.train.setup").setLevel(logging.WARNING)`` silences that line.
"""
from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gmgan.checkpoint import list_checkpoints
from gmgan.config import TrainConfig, apply_overrides
from gmgan.data import PatchPairs, prepare_training_set, resolve_image_source
from gmgan.losses import GMGANLoss, PerceptualLoss, QualityLoss, mse_loss
from gmgan.nets import Discriminator, RRDBNet, load_generator, with_noise
from gmgan.pretrained import require_perceptual_weights
from gmgan.speed import SpeedPlan, plan_speed
from gmgan.training import (
    BatchTooLarge,
    Env,
    GracefulStop,
    PhaseResult,
    PhaseRun,
    TrainingDiverged,
    bicubic_scores,
    first_batch,
    frozen,
    phase_seed,
    run_phase,
    setup,
)
from gmgan.training.console import LOG, SETUP_LOG

__all__ = ["BatchTooLarge", "PhaseSession", "TrainResult", "TrainingDiverged", "gan", "gan_session",
           "pretrain", "pretrain_session", "train"]


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        run_dir: the run folder.
        weights: ``{phase: {"G": path, "G_ema": path[, "D": path]}}`` of the phases completed.
        history: one dict per logged step (``phase``, ``step``, loss terms, ``lr_G``/``lr_D``,
            ``grad_norm_G``/``grad_norm_D``, ``seconds``), as in ``<phase>/log.jsonl``.
        validation: one dict per (phase, step, model, set) with ``psnr`` (dB), ``ssim``,
            ``gmsd`` (and ``niqe`` at the end of a phase), as in ``<phase>/val.jsonl``.
        bicubic: the same scores for bicubic upsampling, ``{set: {...}}`` (the baseline).
        seconds: wall-clock seconds spent training each phase, summed over the calls that
            resumed it (the time between an interruption and its resume is not counted).
        interrupted: True when Ctrl-C stopped training (resume with ``resume=True``).
        config: the configuration used.

    In a ``torchrun`` job only rank 0 logs, validates and writes files: on the other ranks
    ``history``, ``validation``, ``bicubic`` and ``weights`` stay empty.
    """

    run_dir: Path
    config: TrainConfig
    weights: dict[str, dict[str, Path]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)
    bicubic: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def generator(self) -> Path | None:
        """The final generator of the last completed phase (the EMA weights when there are)."""
        for phase in ("gan", "pretrain"):
            if phase in self.weights:
                return self.weights[phase].get("G_ema", self.weights[phase]["G"])
        return None


# ---------------------------------------------------------------------- building blocks

def build_generator(cfg: TrainConfig, phase: str = "gan") -> RRDBNet:
    """A freshly initialised RRDBNet of the configured size, as ``phase`` trains it: the
    noise options (``noise_inject``, ``noise_head``) only in phase 2. Phase 1 trains the
    noise-free generator (the pixel MSE would only learn to switch a noise input off), and
    phase 2 adds them to it with zero strength (:func:`initial_generator`)."""
    noise = phase == "gan"
    return RRDBNet(3, 3, num_feat=cfg.num_feat, num_block=cfg.num_block, num_grow=cfg.num_grow,
                   scale=cfg.scale, noise_inject=noise and cfg.noise_inject,
                   noise_head=cfg.noise_head if noise else 0)


def pretrained_path(cfg: TrainConfig, env: Env) -> Path:
    """The phase-1 generator that phase 2 starts from: ``cfg.pretrained_g``, else this run's
    ``pretrain/G_ema.safetensors`` (or ``G.safetensors`` without EMA); the file may not exist."""
    if cfg.pretrained_g:
        return Path(cfg.pretrained_g).expanduser()
    folder = env.phase_dir("pretrain")
    return next((p for p in (folder / "G_ema.safetensors", folder / "G.safetensors") if p.is_file()),
                folder / "G_ema.safetensors")


def initial_generator(cfg: TrainConfig, env: Env) -> RRDBNet:
    """Phase 2 starts from the phase-1 generator (:func:`pretrained_path`)."""
    path = pretrained_path(cfg, env)
    if not cfg.pretrained_g:
        folder = env.phase_dir("pretrain")
        if not path.is_file():
            raise FileNotFoundError(
                f"phase 'gan' starts from the phase-1 generator, but {folder} has no G_ema.safetensors "
                f"or G.safetensors. Run phase 'pretrain' (or 'both') first, or pass pretrained_g=PATH "
                f"(e.g. ESRGAN's RRDB_PSNR_x4.pth).")
    model = load_generator(path)
    want = build_generator(cfg).config
    def without_noise(config: dict) -> dict:
        return {k: v for k, v in config.items() if not k.startswith("noise")}

    if model.config != want and without_noise(model.config) == without_noise(want):
        # A phase-1 model without the configured noise inputs: add them, freshly seeded.
        model = with_noise(model, noise_inject=cfg.noise_inject,
                           noise_head=cfg.noise_head, seed=cfg.seed)
    if model.config != want:
        diff = ", ".join(f"{k}={model.config[k]} (config: {want[k]})" for k in want
                         if model.config[k] != want[k])
        raise ValueError(f"{path} does not match the configured generator: {diff}. Set num_feat/"
                         f"num_block/num_grow/scale to the checkpoint's values.")
    return model


def perceptual_network(cfg: TrainConfig) -> torch.nn.Module | bool:
    """The l_P network from ``cfg.perceptual_weights``
    (:attr:`TrainConfig.perceptual_mode`): ``imagenet``, a file, ``random`` (tests), or
    False for no perceptual loss."""
    mode = cfg.perceptual_mode
    if mode == "none":
        return False
    if mode == "random":  # seeded by the run's seed: the same network on every resume
        return PerceptualLoss(layer=cfg.perceptual_layer, weights=None, seed=cfg.seed)
    weights = "imagenet" if mode == "imagenet" else cfg.perceptual_weights
    return PerceptualLoss(layer=cfg.perceptual_layer, weights=weights)


def balances_perceptual(cfg: TrainConfig) -> bool:
    """Whether phase 2 rescales beta for a random VGG19 (:func:`balanced_beta`)."""
    return cfg.balance_random_vgg and cfg.perceptual_mode == "random"


@torch.no_grad()
def balanced_beta(cfg: TrainConfig, G: torch.nn.Module, perceptual: torch.nn.Module,
                  lr: torch.Tensor, hr: torch.Tensor) -> tuple[float, float, float]:
    """The weight of a random VGG19's l_P: ``beta * l_Q / l_P`` on the first batch of phase 2,
    through the generator phase 2 starts from. Returns ``(weight, l_Q, l_P)``.

    A random VGG19 is a stand-in for the paper's ImageNet network (whose weights may not be
    reachable): its filters respond weakly, so its raw l_P is 60-130x smaller than l_Q (the
    ``teach`` preset's three seeds) and phase 2 would in effect drop it. With this weight,
    beta * l_P starts equal to beta * l_Q (the unweighted l_Q, so that the "without l_Q" ablation
    gets the same weight as GMGAN), which is the role l_P plays in the paper's loss. Both are
    measured on the same images, so the rule does not depend on the run's length or on a resume;
    the ImageNet l_P of the ``paper`` preset is never rescaled.
    """
    sr = G(lr).float()
    l_q = float(QualityLoss()(sr, hr))
    l_p = float(perceptual(sr, hr))
    if not (l_p > 0 and math.isfinite(l_p)):
        raise ValueError(f"balanced_beta: l_P of the first batch is {l_p}; cannot balance it")
    return cfg.beta * l_q / l_p, l_q, l_p


#: Adam's default epsilon (torch.optim.Adam), the term added to the root of the second moment.
ADAM_EPS = 1e-8


def critic_optimizer(D: torch.nn.Module, cfg: TrainConfig, plan: SpeedPlan | None = None) -> torch.optim.Adam:
    """The critic's Adam for l_D = delta * l_DA, with epsilon scaled by delta as well.

    Adam's step does not change when the loss is multiplied by a constant k, except through eps:
    the update is m / (sqrt(v) + eps), and scaling the loss by k scales m and sqrt(v) by k. With
    delta = 5e-3 most of the critic's gradients are below 1e-8 at initialisation (on the paper-size
    critic 83 %, median 1.9e-9: notebook 06), so an unscaled eps, not the gradient, would set the step
    size and the critic would hardly learn. eps * delta makes the delta-weighted critic follow
    exactly the trajectory of the unweighted l_DA with the default eps (BasicSR leaves the critic
    loss unweighted), while l_D stays the paper's delta * l_DA in the logs.
    ``plan``: the run's speed plan (foreach Adam in the fast modes); None: torch's default Adam.
    """
    eps = ADAM_EPS * cfg.delta if cfg.delta > 0 else ADAM_EPS
    lr = cfg.gan_lr if cfg.critic_lr is None else cfg.critic_lr
    if plan is not None:
        return plan.adam(D.parameters(), lr=lr, betas=cfg.gan_betas, eps=eps)
    return torch.optim.Adam(D.parameters(), lr=lr, betas=cfg.gan_betas, eps=eps)


def training_patches(cfg: TrainConfig, env: Env, seed: int):
    """The training set as random (LR, HR) patch pairs (:class:`gmgan.data.PatchPairs`); the LR
    images are made (MATLAB bicubic) and cached on first use, by the main process first."""
    def prepare():
        return prepare_training_set(cfg.train_set, scale=cfg.scale, subimages=cfg.subimages,
                                    augment8=cfg.augment8, progress=cfg.progress and env.is_main)

    prepared = prepare() if env.is_main else None
    env.barrier()
    if prepared is None:
        prepared = prepare()
    return PatchPairs(prepared.hr_dir, prepared.lr_dir, patch_size=cfg.patch_size, scale=cfg.scale,
                      seed=seed, augment=cfg.augment)


def _phase_run(phase: str, cfg: TrainConfig, env: Env, stop: GracefulStop, **kwargs) -> PhaseRun:
    return PhaseRun(phase, cfg, env, stop, dataset_factory=lambda seed: training_patches(cfg, env, seed),
                    **kwargs)


def speed_plan(cfg: TrainConfig, env: Env) -> SpeedPlan:
    """How this run computes its updates (``cfg.speed``, see :mod:`gmgan.speed`)."""
    return plan_speed(cfg, env.device, distributed=env.distributed)


def _to_format(plan: SpeedPlan, *modules: torch.nn.Module) -> None:
    """Put the networks in the plan's memory format (``Env.place`` did the rest)."""
    if plan.channels_last:
        for module in modules:
            module.to(memory_format=torch.channels_last)


@dataclass
class PhaseSession:
    """One phase set up for training: ``run`` (the :class:`PhaseRun`) and ``update``, the update
    rule the trainer's loop calls once per step: ``update(lr, hr) -> terms``, with ``lr`` and
    ``hr`` float32 (N, 3, h, w) / (N, 3, h*scale, w*scale) batches in [0, 1] on the device;
    ``terms`` are the loss terms to log (0-d tensors and floats). ``plan`` is the speed plan."""

    run: PhaseRun
    update: Callable[[torch.Tensor, torch.Tensor], dict[str, Any]]
    plan: SpeedPlan


def _train_loop(session: PhaseSession) -> PhaseResult:
    run = session.run
    for step, lr, hr in run.batches():
        run.finish_step(step, session.update(lr, hr))
    return run.finish()


# ---------------------------------------------------------------------- the two phases

def pretrain_session(cfg: TrainConfig, env: Env, stop: GracefulStop) -> PhaseSession:
    """Phase 1 set up (networks, optimiser, resume): the update on the pixel MSE only."""
    plan = speed_plan(cfg, env)
    torch.manual_seed(cfg.seed)
    G = env.place(build_generator(cfg, "pretrain"))
    _to_format(plan, G)
    opt_g = plan.adam(G.parameters(), lr=cfg.pretrain_lr, betas=cfg.pretrain_betas)
    run = _phase_run("pretrain", plan.apply(cfg), env, stop, nets={"G": G},
                     optimizers={"G": opt_g}, halve_every=cfg.pretrain_lr_halve_every)
    G = run.nets["G"]  # the same weights, wrapped for training (DDP, torch.compile)

    def update(lr: torch.Tensor, hr: torch.Tensor) -> dict[str, Any]:
        with run.autocast():
            sr = G(lr)
        l_mse = mse_loss(sr, hr)  # l_MSE = mean of (G(LR) - HR)^2: phase 1's only loss
        run.update("G", l_mse)
        return {"mse": l_mse}

    return PhaseSession(run, update, plan)


def pretrain(cfg: TrainConfig, env: Env, stop: GracefulStop) -> PhaseResult:
    """Phase 1: PSNR-oriented pre-training of G with the pixel MSE only."""
    return _train_loop(pretrain_session(cfg, env, stop))


def gan_session(cfg: TrainConfig, env: Env, stop: GracefulStop,
                perceptual: torch.nn.Module | bool | None = None) -> PhaseSession:
    """Phase 2 set up (G from phase 1, the critic, the losses, optimisers, resume): the update
    of G against the WGAN-GP critic D with GMGAN's generator loss.
    ``perceptual``: the l_P network if already built (default: :func:`perceptual_network`)."""
    plan = speed_plan(cfg, env)
    torch.manual_seed(cfg.seed + 1)
    G = env.place(initial_generator(cfg, env))
    D = env.place(Discriminator(3, num_feat=cfg.d_num_feat, input_size=cfg.patch_size, norm=cfg.d_norm))
    if perceptual is None:
        perceptual = perceptual_network(cfg)
    criterion = GMGANLoss(alpha=cfg.alpha, beta=cfg.beta, gamma=cfg.gamma, delta=cfg.delta,
                          lam=cfg.lam, perceptual=perceptual).to(env.device)
    if balances_perceptual(cfg):
        # A random VGG19 stands in for the ImageNet one: weigh its l_P like the paper's (see
        # balanced_beta), measured on the phase's first batch through the initial generator.
        seed = phase_seed(cfg.seed, "gan")
        lr0, hr0 = first_batch(training_patches(cfg, env, seed), cfg.batch_size, seed)
        criterion.beta, l_q, l_p = balanced_beta(cfg, G, criterion.perceptual, lr0.to(env.device),
                                                 hr0.to(env.device))
        if env.is_main:
            LOG.info(f"[gan] l_P uses a random VGG19: beta = {cfg.beta:g} x l_Q / l_P "
                     f"= {cfg.beta:g} x {l_q:.4f} / {l_p:.5f} = {criterion.beta:.2f} "
                     f"(balance_random_vgg)")
    _to_format(plan, G, D, criterion)
    opt_g = plan.adam(G.parameters(), lr=cfg.gan_lr, betas=cfg.gan_betas)
    opt_d = critic_optimizer(D, cfg, plan)
    run = _phase_run("gan", plan.apply(cfg), env, stop, nets={"G": G, "D": D},
                     optimizers={"G": opt_g, "D": opt_d}, halve_every=cfg.gan_lr_halve_every)
    G, D = run.nets["G"], plan.critic(run.nets["D"])

    def update(lr: torch.Tensor, hr: torch.Tensor) -> dict[str, Any]:
        # 1. The critic: n_critic updates on l_D = delta * (E[D(SR)] - E[D(HR)] + lambda * GP),
        #    with G fixed. (With n_critic > 1 the critic sees this batch again: G has not moved.)
        # With one_generator_forward this SR keeps its graph for step 2 as well: G's weights do not
        # change before it, the critic reads SR detached (GMGANLoss.critic detaches).
        graph = contextlib.nullcontext() if plan.one_generator_forward else torch.no_grad()
        with graph, run.autocast():
            sr = G(lr)
        for _ in range(cfg.n_critic):
            # (auto's bf16 leaves the critic's step, double backward included, in fp32.)
            with contextlib.nullcontext() if plan.fp32_critic else run.autocast():
                l_d, d_terms = criterion.critic(D, sr, hr, scaler=run.scalers["D"],
                                                batched=plan.critic_batch)
            run.update("D", l_d)

        # 2. The generator: one update on l_G = alpha*l_MSE + beta*l_P + gamma*l_Q + delta*l_GA.
        #    D's weights are frozen: the gradient of l_GA flows through D into G only.
        with run.autocast(), frozen(run.raw["D"]) as critic:
            if not plan.one_generator_forward:
                sr = G(lr)
            l_g, g_terms = criterion.generator(sr, hr, critic=plan.critic(critic))
        run.update("G", l_g)
        return {**{k: v for k, v in g_terms.items() if k != "total"}, "l_G": g_terms["total"],
                "wasserstein": d_terms["wasserstein"], "gp": d_terms["gp"],
                "l_D": d_terms["total"], "beta": criterion.beta}

    return PhaseSession(run, update, plan)


def gan(cfg: TrainConfig, env: Env, stop: GracefulStop,
        perceptual: torch.nn.Module | bool | None = None) -> PhaseResult:
    """Phase 2: G (from phase 1) against a WGAN-GP critic D, with GMGAN's generator loss.
    ``perceptual``: the l_P network if already built (default: :func:`perceptual_network`)."""
    return _train_loop(gan_session(cfg, env, stop, perceptual))


# ---------------------------------------------------------------------- the entry point

def _threads_text() -> str:
    n = torch.get_num_threads()
    return f"{n} thread{'s' if n != 1 else ''}"


def _check_run_dir(cfg: TrainConfig, env: Env) -> None:
    """Refuse to mix a new run into the checkpoints of an old one unless resuming."""
    if cfg.resume:
        return
    for phase in cfg.phases():
        if list_checkpoints(env.phase_dir(phase) / "checkpoints"):
            raise FileExistsError(
                f"{env.phase_dir(phase)} already holds checkpoints of an earlier run. Continue it with "
                f"resume=True (gmgan train ... --resume), or choose another name / out_dir.")


def _check_train_set(cfg: TrainConfig) -> None:
    """Refuse a training set that names nothing before anything is written or downloaded (the
    set itself is fetched later, by :func:`gmgan.data.prepare.prepare_training_set`)."""
    resolve_image_source(cfg.train_set, field="train_set")


def train(cfg: TrainConfig, **overrides: Any) -> TrainResult:
    """Train GMGAN: phase 1, phase 2 or both (``cfg.phase``), as described in the module doc.

    Args:
        cfg: a :class:`~gmgan.config.TrainConfig`, e.g. ``get_preset("teach")``.
        overrides: fields to change, e.g. ``train(cfg, pretrain_iters=100)``.

    Returns:
        a :class:`TrainResult` (run folder, weight files, losses, validation, seconds per phase).
        After Ctrl-C it returns normally with ``interrupted=True`` and a checkpoint written.

    Raises:
        TrainingDiverged: ``cfg.max_bad_steps`` consecutive non-finite losses or gradients.
        BatchTooLarge: the batch does not fit in the device's memory; the message gives the
            device's memory and the largest halved batch whose probe step fits.
        FileExistsError: the run folder holds checkpoints and ``cfg.resume`` is false.
        FileNotFoundError: ``cfg.train_set`` is neither a registered set nor a folder (raised
            before the run folder is created).
        gmgan.pretrained.WeightsUnavailable: phase 2 with ``perceptual_weights="imagenet"`` while
            torchvision's VGG19 is neither cached nor downloadable (raised before anything runs).
        CheckpointError: a checkpoint could not be written and ``on_save_error="stop"``.
    """
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    _check_train_set(cfg)
    if "gan" in cfg.phases() and cfg.perceptual_mode != "none":
        # l_P's VGG19: fetched now or refused now, not at phase 2
        require_perceptual_weights(cfg.perceptual_weights, progress=cfg.progress)
    env = setup(cfg)
    try:
        _check_run_dir(cfg, env)
        env.barrier()
        if env.is_main:
            env.run_dir.mkdir(parents=True, exist_ok=True)
            try:
                cfg.to_yaml(env.run_dir / "config.yaml")
            except OSError as err:  # a write error does not name its file by itself
                path = env.run_dir / "config.yaml"
                error = OSError(f"could not write {path}: {err.strerror or err}")
                error.errno = err.errno
                raise error from err
            processes = f" x {env.world_size} processes" if env.distributed else ""
            threads = f", {_threads_text()}" if env.device.type == "cpu" else ""
            SETUP_LOG.info(f"training {', '.join(cfg.phases())} in {env.run_dir} on "
                           f"{env.device}{processes} ({speed_plan(cfg, env).describe()}"
                           f"{threads})")
        result = TrainResult(run_dir=env.run_dir, config=cfg)
        if env.is_main and cfg.val_sets:
            result.bicubic = bicubic_scores(env.val_images(), scale=cfg.scale)
        # Build the VGG of l_P now: missing ImageNet weights should stop the run before phase 1,
        # not hours later at the start of phase 2.
        phases = {"pretrain": pretrain, "gan": gan}
        if "gan" in cfg.phases():
            phases["gan"] = functools.partial(gan, perceptual=perceptual_network(cfg))
        with GracefulStop() as stop:
            for phase in cfg.phases():
                # The probe steps of a batch that does not fit start phase 2 from the same weights.
                probe = {"pretrained_g": str(pretrained_path(cfg, env))} if phase == "gan" else {}
                out = run_phase(phase, functools.partial(phases[phase], stop=stop), cfg, env,
                                probe_overrides=probe)
                result.history += out.history
                result.validation += out.validation
                result.seconds[phase] = out.seconds
                if out.interrupted:
                    result.interrupted = True
                    break
                result.weights[phase] = out.weights
        return result
    finally:
        env.close()

