"""One phase of training around its update rule: :class:`PhaseRun` and what it returns,
:class:`PhaseResult`."""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from gmgan.checkpoint import (
    CheckpointError,
    checkpoint_name,
    latest_checkpoint,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from gmgan.config import TrainConfig
from gmgan.nets import save_generator
from gmgan.training.console import LOG
from gmgan.training.ema import EMA
from gmgan.training.environment import Env
from gmgan.training.graceful_stop import GracefulStop
from gmgan.training.gradients import grad_norm
from gmgan.training.run_log import RunLog, preview_grid
from gmgan.training.sampler import StepSampler, make_loader, phase_seed, step_seed
from gmgan.training.validation import validate_model

__all__ = ["PhaseResult", "PhaseRun", "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """Too many consecutive steps had a non-finite loss or gradient (``max_bad_steps``)."""



@dataclass
class PhaseResult:
    """What one phase of training returns (:meth:`PhaseRun.finish`).

    Attributes:
        weights: the final weight files, ``{"G": path, "G_ema": path[, "D": path]}``
            (safetensors); empty after an interruption and on ranks other than 0.
        history: one dict per logged step, as in ``<phase>/log.jsonl``.
        validation: one dict per (step, model, set), as in ``<phase>/val.jsonl``.
        seconds: wall-clock seconds spent training the phase, summed over the calls that
            resumed it.
        interrupted: True when Ctrl-C or SIGTERM stopped the phase (a checkpoint was
            written).
    """

    weights: dict[str, Path]
    history: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    seconds: float
    interrupted: bool


def _to_float(value: Any) -> float:
    return float(value.detach().float().cpu()) if isinstance(value, torch.Tensor) else float(value)


class PhaseRun:
    """Everything around the update rule of one phase.

    Give it the networks, their optimisers and a learning-rate halving period; it wraps the
    networks for training (DDP, ``torch.compile``), resumes from the newest checkpoint when
    ``cfg.resume``, and serves batches. The phase's code then only says what a step computes::

        for step, lr, hr in run.batches():      # step = 1 .. total (number of updates made)
            loss = ...
            run.update("G", loss)               # backward, NaN guard, optimiser step
            run.finish_step(step, terms)        # lr schedule, EMA, log, validate, checkpoint
        return run.finish()                     # final checkpoint, validation, weight files

    ``run.nets[name]`` is the network to call for training (wrapped), ``run.raw[name]`` the plain
    module (for frozen use and saving), ``run.ema`` the EMA of ``"G"`` (``None`` if
    the phase's decay, ``cfg.ema_decay_of(phase)``, is 0). ``total``: the phase's updates (default
    ``cfg.iters(phase)``); ``dataset_factory(seed)``: the training pairs of the phase,
    cropped with that seed.
    """

    def __init__(self, phase: str, cfg: TrainConfig, env: Env, stop: GracefulStop, *,
                 nets: dict[str, nn.Module],
                 optimizers: dict[str, torch.optim.Optimizer],
                 halve_every: int, dataset_factory: Callable[[int], Dataset],
                 total: int | None = None) -> None:
        self.phase, self.cfg, self.env, self.stop = phase, cfg, env, stop
        self.total = cfg.iters(phase) if total is None else total
        self.dir = env.phase_dir(phase)
        self.ckpt_dir = self.dir / "checkpoints"
        self.raw = dict(nets)
        self.optimizers = optimizers
        self.schedulers = {k: torch.optim.lr_scheduler.StepLR(o, step_size=halve_every, gamma=0.5)
                           for k, o in optimizers.items()}
        # GradScaler only for fp16 (bf16 has float32's exponent range and needs no scaling);
        # disabled, it passes everything through unchanged.
        self.scalers = {k: torch.amp.GradScaler(env.device.type, enabled=cfg.amp == "fp16")
                        for k in optimizers}
        decay = cfg.ema_decay_of(phase)
        self.ema = EMA(self.raw["G"], decay) if decay > 0 else None
        self.start = 0
        self.bad_in_a_row = 0
        self._step_bad = False
        self._norm_tensors: dict[str, torch.Tensor] = {}
        self._saved_step: int | None = None
        self._t0 = time.perf_counter()
        self.interrupted = False

        resume_from = self._resume_point()
        if resume_from is not None:
            self._load(resume_from)
        self.log = RunLog(self.dir, enabled=env.is_main, tensorboard=cfg.tensorboard,
                          resume_step=self.start if resume_from is not None else None,
                          on_error=cfg.on_save_error)
        self.nets = {k: self._wrap(k, m) for k, m in self.raw.items()}
        self.dataset_factory = dataset_factory
        self._bar = None

    # -- set-up

    def _wrap(self, name: str, module: nn.Module) -> nn.Module:
        module.train()
        # Only the generator is compiled: the critic's gradient penalty differentiates twice
        # (create_graph=True), which compiled graphs do not support.
        wrapped = torch.compile(module) if self.cfg.compile and name == "G" else module
        if self.env.distributed:
            ids = [self.env.device.index] if self.env.device.type == "cuda" else None
            wrapped = DistributedDataParallel(wrapped, device_ids=ids)
        return wrapped

    def _resume_point(self) -> Path | None:
        if not self.cfg.resume:
            return None
        return latest_checkpoint(self.ckpt_dir)

    def _check_networks(self, path: Path, ckpt: Mapping[str, Any]) -> None:
        """Refuse a checkpoint whose networks differ from this run's, naming the fields."""
        saved = ckpt["extra"].get("config") or {}
        fields = ("scale", "num_feat", "num_block", "num_grow") + (
            ("d_num_feat", "d_norm", "patch_size") if "D" in self.raw else ())
        diff = [f"{k}={saved[k]!r} (this run: {getattr(self.cfg, k)!r})" for k in fields
                if k in saved and saved[k] != getattr(self.cfg, k)]
        missing = [name for name in self.raw if name not in ckpt["models"]]
        if diff or missing:
            what = ", ".join(diff) if diff else f"no weights for {', '.join(missing)}"
            raise CheckpointError(f"{path} does not match this run's networks: it was written with "
                                  f"{what}. Resume with the checkpoint's values, or start a new run "
                                  f"(another name / out_dir).")

    def _load(self, path: Path) -> None:
        ckpt = load_checkpoint(path, map_location=self.env.device)
        if ckpt["extra"].get("phase") != self.phase:
            raise CheckpointError(f"{path} is a checkpoint of phase {ckpt['extra'].get('phase')!r}, "
                                  f"not {self.phase!r}")
        self._check_networks(path, ckpt)
        for name, module in self.raw.items():
            try:
                module.load_state_dict(ckpt["models"][name])
            except RuntimeError as err:  # a mismatch the config fields above do not show
                first = str(err).strip().splitlines()
                raise CheckpointError(f"{path}: the {name} weights do not fit this run's network: "
                                      f"{' '.join(first[:3])}") from err
        if self.ema is not None and "G_ema" in ckpt["models"]:
            self.ema.load_state_dict(ckpt["models"]["G_ema"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(ckpt["optimizers"][name])
            self.schedulers[name].load_state_dict(ckpt["schedulers"][name])
            self.scalers[name].load_state_dict(ckpt["optimizers"][f"scaler_{name}"])
        restore_rng(ckpt["rng"])
        self.start = int(ckpt["step"])
        self.bad_in_a_row = int(ckpt["extra"].get("bad_in_a_row", 0))
        # The phase's clock goes on from the checkpoint: its seconds are the time spent training,
        # summed over the calls that resumed it (not the time between a crash and its resume).
        self._t0 = time.perf_counter() - float(ckpt["extra"].get("seconds", 0.0))
        if self.env.is_main:
            LOG.info(f"[{self.phase}] resuming from {path} "
                     f"(step {self.start} of {self.total})")

    @property
    def complete(self) -> bool:
        """True when this phase's checkpoint already covers all its steps (nothing to train)."""
        return self.start >= self.total

    # -- the loop

    def autocast(self):
        """Autocast for the configured mixed precision (a no-op for ``amp="none"``)."""
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.cfg.amp)
        return torch.autocast(self.env.device.type, dtype=dtype, enabled=dtype is not None)

    def batches(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(step, lr, hr)`` for the steps still to do; ``step`` counts from 1. Stops early after
        Ctrl-C (once the step in progress is done)."""
        if self.complete:
            return
        cfg, env = self.cfg, self.env
        seed = phase_seed(cfg.seed, self.phase)
        dataset = self.dataset_factory(seed)
        sampler = StepSampler(len(dataset), cfg.batch_size, seed=seed, start=self.start, end=self.total,
                              rank=env.rank, world_size=env.world_size)
        # PatchPairs draws a fresh crop for every index and reads image ``index % n``: stretch it
        # to as many passes over the images as the phase needs (see StepSampler).
        dataset.length = sampler.dataset_length(self.total)
        loader = make_loader(dataset, sampler, num_workers=cfg.num_workers,
                             pin_memory=env.device.type == "cuda")
        self._bar = tqdm(total=self.total, initial=self.start, desc=self.phase, unit="it",
                         mininterval=1.0, dynamic_ncols=True, disable=not (env.is_main and cfg.progress))
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        try:
            for step, (lr, hr) in enumerate(loader, start=self.start + 1):
                torch.manual_seed(step_seed(cfg.seed, self.phase, step, env.rank))
                lr = lr.to(env.device, non_blocking=True).contiguous(memory_format=fmt)
                hr = hr.to(env.device, non_blocking=True).contiguous(memory_format=fmt)
                self._step_bad = False
                yield step, lr, hr
                if self.interrupted:
                    break
        finally:
            self._bar.close()

    def update(self, name: str, loss: torch.Tensor) -> bool:
        """One optimiser step of network ``name`` on ``loss``: backward (scaled for fp16), the
        gradient norm, and the step itself unless the loss or a gradient is inf/NaN (then the
        step counts as bad, see ``max_bad_steps``). Returns whether the update was made."""
        opt, scaler = self.optimizers[name], self.scalers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)  # true gradients, for the norm; a no-op without fp16
        norm = grad_norm([p for group in opt.param_groups for p in group["params"]])
        self._norm_tensors[name] = norm.detach()
        # One host sync for both checks; in DDP every process must take the same decision.
        flags = torch.stack([torch.isfinite(loss.detach().float()), torch.isfinite(norm.float())])
        loss_ok, grads_ok = self.env.all_true_each(flags.tolist())
        if scaler.is_enabled():
            # fp16: an overflow in the gradients is routine; GradScaler skips that step by itself
            # and lowers its scale. Only a non-finite *loss* counts as a bad step.
            scaler.step(opt)
            made, bad = grads_ok, not loss_ok
        else:
            made = bad_free = loss_ok and grads_ok
            if made:
                opt.step()
            bad = not bad_free
        scaler.update()
        if bad:
            self._step_bad = True
            warnings.warn(f"[{self.phase}] non-finite {name} loss or gradient (loss={_to_float(loss):.4g}, "
                          f"grad norm={_to_float(norm):.4g}): update skipped "
                          f"({self.bad_in_a_row + 1} bad step(s) in a row)", RuntimeWarning, stacklevel=2)
        if made and name == "G" and self.ema is not None:
            self.ema.update(self.raw["G"])
        return made

    def finish_step(self, step: int, terms: Mapping[str, Any]) -> None:
        """Book-keeping after step ``step``: the non-finite guard, the learning-rate schedule,
        logging, periodic validation and checkpoints, and Ctrl-C."""
        cfg, env = self.cfg, self.env
        env.steps_done += 1
        lrs = {name: opt.param_groups[0]["lr"] for name, opt in self.optimizers.items()}
        for sched in self.schedulers.values():
            with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()" after a skip
                warnings.simplefilter("ignore", UserWarning)
                sched.step()
        if self._step_bad:
            self.bad_in_a_row += 1
            if self.bad_in_a_row >= cfg.max_bad_steps:
                last = latest_checkpoint(self.ckpt_dir)
                raise TrainingDiverged(
                    f"[{self.phase}] {self.bad_in_a_row} consecutive steps (up to step {step}) had a "
                    f"non-finite loss or gradient; training stopped. Last good checkpoint: "
                    f"{last or 'none'}. Try a lower learning rate or amp='none'/'bf16', then resume.")
        else:
            self.bad_in_a_row = 0
        self._bar.update(1)
        if step % cfg.log_every == 0 or step == self.total:
            self._log(step, terms, lrs)
        self.interrupted = env.any_true(self.stop.requested)
        if self.interrupted:
            self.save(step)
            return
        if cfg.ckpt_every and step % cfg.ckpt_every == 0 and step != self.total:
            self.save(step)
        if cfg.val_every and step % cfg.val_every == 0 and step != self.total:
            self.validate(step)

    def _log(self, step: int, terms: Mapping[str, Any], lrs: Mapping[str, float]) -> None:
        keys = sorted(terms)
        values = torch.stack([terms[k].detach().float().reshape(()) if isinstance(terms[k], torch.Tensor)
                              else torch.tensor(float(terms[k])) for k in keys]).to(self.env.device)
        values = self.env.mean(values).cpu().tolist()
        row: dict[str, Any] = {"phase": self.phase, "step": step}
        row.update({k: v for k, v in zip(keys, values)})
        row.update({f"lr_{k}": v for k, v in lrs.items()})
        row.update({f"grad_norm_{k}": _to_float(v) for k, v in self._norm_tensors.items()})
        row["bad_in_a_row"] = self.bad_in_a_row
        row["seconds"] = round(time.perf_counter() - self._t0, 3)
        self.log.train_row(row)
        if self._bar is not None and self.env.is_main:
            self._bar.set_postfix({k: f"{row[k]:.4g}" for k in keys if k in ("total", "mse", "wasserstein")},
                                  refresh=False)

    # -- validation, checkpoints, the end

    def eval_model(self) -> nn.Module:
        """The generator to validate: the EMA copy when there is one, else the raw generator."""
        return self.ema.module if self.ema is not None else self.raw["G"]

    def validate(self, step: int, *, final: bool = False) -> None:
        """Score the generator(s) on ``cfg.val_sets`` (main process only; the others wait)."""
        cfg, env = self.cfg, self.env
        if cfg.val_sets and env.is_main:
            sets = env.val_images()
            models = {"G_ema": self.ema.module} if self.ema is not None else {}
            if final or self.ema is None:
                models["G"] = self.raw["G"]
            for tag, model in models.items():
                scores, notes = validate_model(model, sets, env.device, scale=cfg.scale, niqe=final)
                for set_name, values in scores.items():
                    self.log.val_row({"phase": self.phase, "step": step, "model": tag,
                                      "set": set_name, **values, **({"notes": notes} if notes else {})})
                if notes and final:
                    LOG.warning(f"[{self.phase}] " + "; ".join(notes.values()))
            first = sets[cfg.val_sets[0]]
            if first and self.log.writer is not None:
                grid = preview_grid(self.eval_model(), first[0], env.device, cfg.scale)
                tag = f"{self.phase}/{cfg.val_sets[0]}_{first[0].name}"
                self.log.image(tag, grid, step)
        env.barrier()

    def save(self, step: int) -> Path | None:
        """Write a checkpoint of everything needed to resume (main process only)."""
        cfg, env = self.cfg, self.env
        if self._saved_step == step:
            return None
        error = None
        path = None
        if env.is_main:
            models = dict(self.raw)
            if self.ema is not None:
                models["G_ema"] = self.ema.module
            optimizers: dict[str, Any] = dict(self.optimizers)
            optimizers.update({f"scaler_{k}": s for k, s in self.scalers.items()})
            try:
                path = save_checkpoint(self.ckpt_dir, step, models=models, optimizers=optimizers,
                                       schedulers=self.schedulers, keep_last=cfg.keep_last,
                                       extra={"phase": self.phase, "config": cfg.to_dict(),
                                              "bad_in_a_row": self.bad_in_a_row,
                                              "world_size": env.world_size,
                                              "seconds": time.perf_counter() - self._t0})
            except CheckpointError as err:
                error = err
        failed = env.any_true(error is not None)
        if failed:
            if cfg.on_save_error == "stop":
                raise error if error is not None else CheckpointError(
                    f"[{self.phase}] the main process could not write the checkpoint of step {step}")
            if error is not None:
                warnings.warn(f"{error} Training continues without this checkpoint "
                              f"(on_save_error='continue').", RuntimeWarning, stacklevel=2)
            return None
        self._saved_step = step
        return path

    def finish(self) -> PhaseResult:
        """End of the phase (or of an interrupted run): checkpoint, final validation and the
        weight files ``G.safetensors``, ``G_ema.safetensors`` (and ``D.safetensors``)."""
        env = self.env
        seconds = time.perf_counter() - self._t0
        weights: dict[str, Path] = {}
        if self.interrupted:
            step = self._saved_step
            if env.is_main:
                LOG.warning(f"\n[{self.phase}] stopped at step {step} of {self.total}; "
                            f"checkpoint in {self.ckpt_dir}. To continue, run the same "
                            f"command with --resume (gmgan train ... --resume), or "
                            f"train(dataclasses.replace(cfg, resume=True)).")
        else:
            if not self.complete:
                self.save(self.total)
            # A phase finished in an earlier call was validated then (only rank 0 knows).
            already = env.any_true(any(r.get("step") == self.total and r.get("model") == "G"
                                       for r in self.log.validation))
            if not already:
                self.validate(self.total, final=True)
            if env.is_main:
                weights = self._write_weights()
            env.barrier()
        self.log.close()
        return PhaseResult(weights=weights, history=self.log.history,
                           validation=self.log.validation, seconds=seconds,
                           interrupted=self.interrupted)

    def _write_weights(self) -> dict[str, Path]:
        try:
            return self._write_weight_files()
        except Exception as err:  # safetensors reports a full disk as its own error
            for leftover in self.dir.glob("*.safetensors.tmp"):
                leftover.unlink(missing_ok=True)
            last = latest_checkpoint(self.ckpt_dir)
            if last is not None and last.name == checkpoint_name(self.total):
                where = f"The checkpoint {last} holds them"
            else:  # the final checkpoint failed as well (on_save_error="continue")
                where = (f"The newest checkpoint is {last or 'none'}; the steps after it are "
                         f"done again")
            raise CheckpointError(f"[{self.phase}] could not write the final weights in {self.dir}: "
                                  f"{err}. {where}: make room and run the same command with "
                                  f"--resume.") from err

    def _write_weight_files(self) -> dict[str, Path]:
        out = {"G": save_generator(self.raw["G"], self.dir / "G.safetensors")}
        if self.ema is not None:
            out["G_ema"] = save_generator(self.ema.module, self.dir / "G_ema.safetensors")
        if "D" in self.raw:
            d = self.raw["D"]
            path = self.dir / "D.safetensors"
            save_file({k: v.detach().cpu().contiguous() for k, v in d.state_dict().items()}, str(path),
                      metadata={"format": "gmgan.Discriminator", "in_channels": str(d.in_channels),
                                "num_feat": str(d.num_feat), "input_size": str(d.input_size),
                                "norm": d.norm})
            out["D"] = path
        return out
