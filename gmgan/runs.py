"""Finished training runs found by their configuration: shipped with the package,
cached in the derived-data folder, or trained now (:func:`ensure_run`,
:class:`RunInfo`).

At the ``teach`` scale the experiment notebooks' models come with the package
(:data:`SHIPPED_DIR`, ``gmgan/teaching_models/teach/<run>``). Any other model (another
preset, a changed field, ``retrain=True``) is trained once into
``gmgan.cache.derived_dir("models", preset, name)`` and reused from there.
:func:`ensure_run` says in one printed line which of the three happened.

A model is found only when its configuration matches the one asked for. The comparison uses
:func:`config_key`: the fields that change the trained weights or the logged curves (not the run's
name, folder, device, progress bar and the like), with paths written so that they are the same on
every machine (:func:`_portable_path`). A folder that holds a run of another configuration is left
alone; the new run goes to ``<name>-<hash>``, ``hash`` being 8 hex digits of the key.

Files of a run folder (besides the trainer's own, see :mod:`gmgan.train`): ``run.json``, written
when training finished, with the configuration key, the bicubic baseline, the weights used for l_P
and the seconds each phase took. Only a folder with ``run.json`` counts as a finished run.
:func:`export_run` copies a run into the shipped layout. Re-exported by
:mod:`gmgan.experiments`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock

from gmgan.cache import derived_dir
from gmgan.config import TrainConfig
from gmgan.nets import load_generator
from gmgan.sizing import duration_text, estimate_seconds
from gmgan.threads import torch_threads
from gmgan.train import train
from gmgan.training import read_jsonl
from gmgan.training.console import SETUP_LOG

__all__ = [
    "SHIPPED_DIR",
    "RunInfo",
    "config_differences",
    "config_hash",
    "config_key",
    "ensure_run",
    "export_run",
    "load_run",
    "load_run_generator",
]

# Fields that do not change what a run learns or logs (where and how it runs), left out of the key.
# ``speed`` picks how an update is computed (gmgan.speed): its modes agree to float rounding, and
# leaving it out keeps the keys of the models trained before the field existed.
_MECHANICS = frozenset({"name", "out_dir", "resume", "device", "num_workers", "progress", "tensorboard",
                        "ckpt_every", "keep_last", "on_save_error", "max_bad_steps", "speed"})
# Fields that only one phase reads: left out of the key of a run without that phase.
_PRETRAIN_ONLY = frozenset({"pretrain_iters", "pretrain_lr", "pretrain_lr_halve_every", "pretrain_betas"})
# Fields added after the shipped models were trained: in a key only where they differ
# from these defaults, so that the keys of the runs made before them stay the same.
_KEY_ONLY_IF_SET: dict[str, Any] = {"noise_inject": False, "noise_head": 0, "gan_ema_decay": None}
_GAN_ONLY = frozenset({"gan_iters", "gan_lr", "critic_lr", "gan_lr_halve_every", "gan_betas", "pretrained_g", "n_critic",
                       "alpha", "beta", "gamma", "delta", "lam", "perceptual_layer", "perceptual_weights", "balance_random_vgg",
                       "d_num_feat", "d_norm", "noise_inject", "noise_head", "gan_ema_decay"})

#: The teaching models shipped with the package
#: (``gmgan/teaching_models/<preset>/<run name>``): finished runs of the ``teach``
#: preset (weights, configuration, logs), trained once on a CPU by
#: :func:`gmgan.experiments.train_teaching_models` and reused by the notebooks instead
#: of training again. They are found by their configuration (:func:`config_key`),
#: exactly like the runs of the derived-data cache, so a notebook that changes a field
#: trains its own model. ``GMGAN_TEACHING_MODELS`` points elsewhere (a copy on shared storage, a
#: test's folder).
SHIPPED_DIR = Path(os.environ.get("GMGAN_TEACHING_MODELS") or Path(__file__).with_name("teaching_models"))

_RUN_FILE = "run.json"


# ---------------------------------------------------------------------------------------------
# Configuration keys
# ---------------------------------------------------------------------------------------------

def _portable_path(value: str | None) -> str | None:
    """A path written so that keys do not depend on the machine: a trained model's file as
    ``<models>/<preset>/<run>/...`` whether it lies in the shipped models or in the derived-data
    cache's ``models`` folder, any other file of the derived-data cache as ``<derived>/...``.
    Anything else (a registry name, a folder elsewhere, an already portable path) is kept."""
    if not value or str(value).startswith("<"):
        return value
    path = Path(value).expanduser().resolve()
    derived = derived_dir(create=False)
    for root, tag in ((SHIPPED_DIR.resolve(), "<models>"), (derived / "models", "<models>"), (derived, "<derived>")):
        try:
            return f"{tag}/" + path.relative_to(root).as_posix()
        except ValueError:
            continue
    return str(value)


def config_key(cfg: TrainConfig) -> dict[str, Any]:
    """The fields of ``cfg`` that decide what a run learns and logs, as a plain dict.

    Left out: where and how it runs (name, out_dir, device, workers, progress bar, TensorBoard,
    checkpoint cadence) and the fields of a phase the run does not have. ``pretrained_g``
    and ``train_set`` are written machine-independently (:func:`_portable_path`).
    """
    phases = cfg.phases()
    skip = set(_MECHANICS)
    if "pretrain" not in phases:
        skip |= _PRETRAIN_ONLY
    if "gan" not in phases:
        skip |= _GAN_ONLY
    key = {k: v for k, v in cfg.to_dict().items() if k not in skip
           and not (k in _KEY_ONLY_IF_SET and v == _KEY_ONLY_IF_SET[k])}
    # The moving average as each phase uses it: a phase-2-only run's ema_decay is phase 2's,
    # however it was written (ema_decay, or gan_ema_decay over another ema_decay); a run of
    # both phases keys gan_ema_decay only where it differs from ema_decay.
    if phases == ["gan"]:
        key["ema_decay"] = cfg.ema_decay_of("gan")
        key.pop("gan_ema_decay", None)
    elif key.get("gan_ema_decay") == key["ema_decay"]:
        key.pop("gan_ema_decay")
    for name in ("pretrained_g", "train_set"):
        if name in key:
            key[name] = _portable_path(key[name])
    return key


def config_hash(cfg: TrainConfig) -> str:
    """8 hex digits of the SHA-256 of :func:`config_key` (as sorted JSON)."""
    text = json.dumps(config_key(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _key_of_folder(folder: Path) -> dict[str, Any] | None:
    """The key of the configuration saved in a run folder (None if there is none readable)."""
    path = folder / "config.yaml"
    if not path.is_file():
        return None
    try:
        return config_key(TrainConfig.from_yaml(path))
    except (ValueError, OSError):
        return None


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The fields where two configuration keys differ, sorted, each as ``"field old -> new"``."""
    return [f"{k} {old.get(k)!r} -> {new.get(k)!r}"
            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def _diff(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 4) -> str:
    parts = config_differences(old, new)
    more = f" and {len(parts) - limit} more" if len(parts) > limit else ""
    return ", ".join(parts[:limit]) + more


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------

@dataclass
class RunInfo:
    """A finished training run in the cache (what :func:`ensure_run` returns).

    Attributes:
        name: the run's name (its folder name under ``models/<preset>``, e.g. ``"gmgan"``).
        preset: the preset it belongs to (``"teach"``, ``"paper"``).
        run_dir: the run folder.
        config: the configuration it was trained with.
        cached: True when it was found (shipped or in the cache), False when it was trained in
            this call.
        shipped: True for a model shipped with the package (:data:`SHIPPED_DIR`).
        weights: ``{phase: {"G": path, "G_ema": path[, "D": path]}}`` (safetensors files).
        history: one dict per logged step, as in ``<phase>/log.jsonl`` (``phase``, ``step``, the
            loss terms: ``mse`` in phase 1; ``mse``, ``perceptual``, ``quality``, ``adversarial``,
            ``l_G``, ``wasserstein``, ``gp``, ``l_D`` in phase 2; learning rates, gradient norms).
        validation: one dict per (phase, step, model, set): ``psnr`` (dB), ``ssim``, ``gmsd``, and
            at a phase's end ``niqe``; ``model`` is ``"G_ema"`` or ``"G"``.
        bicubic: the bicubic baseline on the validation sets, ``{set: {"psnr", "ssim", "gmsd"}}``.
        perceptual: the VGG19 weights l_P used (``"imagenet"``, ``"random"``, a file, ``"none"``),
            or None for a run without phase 2.
        seconds: wall-clock seconds per phase when it was trained (machine-dependent).
        parent: the run whose generator phase 2 started from, if any.
    """

    name: str
    preset: str
    run_dir: Path
    config: TrainConfig
    cached: bool
    shipped: bool = False
    weights: dict[str, dict[str, Path]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)
    bicubic: dict[str, dict[str, float]] = field(default_factory=dict)
    perceptual: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    parent: RunInfo | None = None

    @property
    def relative_dir(self) -> str:
        """The run folder relative to the derived-data cache (``models/teach/gmgan-s0``) or to the
        package (``gmgan/teaching_models/teach/gmgan-s0``) when it lies in one of them."""
        for root in (derived_dir(create=False), SHIPPED_DIR.parent.parent):
            try:
                return self.run_dir.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                continue
        return str(self.run_dir)

    @property
    def minutes(self) -> float:
        """Wall-clock minutes its phases took when it was trained (machine-dependent)."""
        return sum(self.seconds.values()) / 60

    def generator_path(self, ema: bool = True, phase: str | None = None) -> Path:
        """The final generator file of ``phase`` (default: the run's last phase): the moving
        average ``G_ema`` when ``ema`` and the run kept one, else the raw ``G``."""
        phase = phase or self.config.phases()[-1]
        if phase not in self.weights:
            raise KeyError(f"run {self.name!r} has no weights of phase {phase!r} "
                           f"(it has: {', '.join(self.weights) or 'none'})")
        files = self.weights[phase]
        return files["G_ema"] if ema and "G_ema" in files else files["G"]

    @property
    def generator(self) -> Path:
        """The final EMA generator of the last phase (see :meth:`generator_path`)."""
        return self.generator_path()

    def curve(self, key: str, phase: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A logged training quantity against the step: ``(steps int64, values float64)``.
        ``phase`` None: every phase of this run that logged ``key``."""
        rows = [r for r in self.history if key in r and (phase is None or r["phase"] == phase)]
        return (np.array([r["step"] for r in rows], dtype=np.int64),
                np.array([r[key] for r in rows], dtype=np.float64))

    def val_curve(self, set_name: str, metric: str, model: str = "G_ema",
                  phase: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A validation score against the step: ``(steps int64, values float64)`` for one set,
        metric (``psnr`` dB, ``ssim``, ``gmsd``, ``niqe``) and model (``G_ema`` or ``G``)."""
        rows = [r for r in self.validation if r["set"] == set_name and r["model"] == model
                and metric in r and (phase is None or r["phase"] == phase)]
        return (np.array([r["step"] for r in rows], dtype=np.int64),
                np.array([r[metric] for r in rows], dtype=np.float64))

    def final_scores(self, model: str = "G_ema") -> dict[str, dict[str, float]]:
        """The validation scores at the end of the last phase: ``{set: {metric: value}}``."""
        phase = self.config.phases()[-1]
        total = self.config.iters(phase)
        return {r["set"]: {k: v for k, v in r.items() if isinstance(v, float)}
                for r in self.validation
                if r["phase"] == phase and r["step"] == total and r["model"] == model}


def _phase_weights(folder: Path, phase: str) -> dict[str, Path]:
    return {k: folder / phase / f"{k}.safetensors" for k in ("G", "G_ema", "D")
            if (folder / phase / f"{k}.safetensors").is_file()}


def load_run(folder: str | os.PathLike, *, preset: str = "", cached: bool = True,
             shipped: bool = False) -> RunInfo:
    """Read a finished run from its folder (one with ``run.json``), without training.

    Raises ``FileNotFoundError`` naming the folder when it holds no finished run.
    """
    folder = Path(folder)
    record_path = folder / _RUN_FILE
    if not record_path.is_file():
        raise FileNotFoundError(f"{folder} holds no finished run ({_RUN_FILE} is missing)")
    record = json.loads(record_path.read_text())
    cfg = TrainConfig.from_yaml(folder / "config.yaml")
    history, validation = [], []
    for phase in cfg.phases():
        history += read_jsonl(folder / phase / "log.jsonl")
        validation += read_jsonl(folder / phase / "val.jsonl")
    parent = None
    if record.get("parent"):
        parent = load_run(folder.parent / record["parent"], preset=preset, cached=True, shipped=shipped)
    return RunInfo(name=folder.name, preset=preset or record.get("preset", ""), run_dir=folder, config=cfg,
                   cached=cached, shipped=shipped, weights={p: _phase_weights(folder, p) for p in cfg.phases()},
                   history=history, validation=validation, bicubic=record.get("bicubic", {}),
                   perceptual=record.get("perceptual"), seconds=record.get("seconds", {}), parent=parent)


def _folder_state(folder: Path, key: dict[str, Any], phases: list[str]) -> str:
    """``"done"`` (finished run of this key), ``"partial"`` (this key, unfinished), ``"free"``
    (nothing there) or ``"other"`` (a run of another configuration)."""
    saved = _key_of_folder(folder)
    if saved is None:
        has_files = folder.is_dir() and any(folder.iterdir())
        return "other" if has_files else "free"
    if saved != key:
        return "other"
    finished = (folder / _RUN_FILE).is_file() and all(
        _phase_weights(folder, p).keys() & {"G", "G_ema"} for p in phases)
    return "done" if finished else "partial"


@contextlib.contextmanager
def _quiet_trainer(random_vgg: bool) -> Iterator[None]:
    """Keep the trainer's start-up line (it names an absolute path: logger
    ``gmgan.train.setup``) and the random-VGG warning (announced by :func:`ensure_run`
    instead) out of notebook outputs. The trainer's other messages are printed as
    usual."""
    level = SETUP_LOG.level
    SETUP_LOG.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            if random_vgg:
                warnings.filterwarnings("ignore",
                                        message=r"PerceptualLoss\(weights=None\)")
            yield
    finally:
        SETUP_LOG.setLevel(level)


def _announce_training(label: str, cfg: TrainConfig, reason: str) -> None:
    steps = [f"{cfg.iters(phase)} {'MSE' if phase == 'pretrain' else 'GAN'} updates"
             for phase in cfg.phases()]
    device = "gpu" if (cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())) \
        else "cpu"
    where = "on 2 CPU cores" if device == "cpu" else "on one GPU"
    print(f"no cached model {label}{reason} - training it now: {' + '.join(steps)}, "
          f"{duration_text(estimate_seconds(cfg, device))} {where}", flush=True)


def ensure_run(name: str, cfg: TrainConfig, *, preset: str = "", parent: str | None = None,
               verbose: bool = True, threads: int | None = 1, retrain: bool = False) -> RunInfo:
    """The run ``name`` of ``cfg``: shipped with the package, from the cache, or trained now.

    Looks first among the shipped teaching models (:data:`SHIPPED_DIR`, unless ``retrain``), then
    in ``gmgan.cache.derived_dir("models", preset, name)`` (``preset`` default:
    ``cfg.name``) for a finished run whose saved configuration has the same :func:`config_key`;
    then in ``<name>-<config_hash(cfg)>``. If neither holds it, trains ``cfg`` with
    :func:`gmgan.train.train` into the first of the two that is free (or that holds an unfinished
    run of the same configuration, which is resumed) and writes ``run.json``.

    Prints one line (``verbose``): ``using the shipped model 'NAME' (PRESET), trained in ...``,
    ``using the cached model 'NAME' (PRESET) from models/...`` or
    ``no cached model 'NAME' (PRESET) - training it now: N updates, about T min on 2 CPU cores``.
    Training runs with seed ``cfg.seed`` set for everything, including a random VGG19 (so repeated
    runs on one CPU give identical weights and losses), without a progress bar and TensorBoard.

    Args:
        name: folder name (letters, digits, ``_ . + -``).
        cfg: the configuration (its ``name`` and ``out_dir`` are replaced).
        preset: the folder level above ``name``.
        parent: the name of the run (same ``preset`` folder) whose generator phase 2 starts from;
            recorded so that :func:`load_run` can return it with the run.
        verbose: print the line above.
        retrain: ignore the shipped models (train into the derived-data cache, or reuse a model
            trained there before).
        threads: CPU threads torch may use while training (restored afterwards); None leaves
            torch's setting. One thread by default, for two reasons: the result is then the same
            bits on machines with different core counts (CI re-runs the notebooks and compares
            their printed losses), and the teaching networks are so small that a second OpenMP
            thread gains little on an idle machine and loses a lot on a busy one (on the shared
            2-core machine the notebooks were made on, a teach-preset phase-1 update took 0.18 s
            with one thread and 0.89 s with two).

    Returns:
        a :class:`RunInfo`.

    Raises:
        ValueError: a bad name. Errors of training (:func:`gmgan.train.train`) pass through.
    """
    if not re.fullmatch(r"[\w.+-]+", name):
        raise ValueError(f"ensure_run: name must be a folder name (letters, digits, _ . + -), got {name!r}")
    preset = preset or cfg.name
    key = config_key(cfg)
    label = f"'{name}' ({preset})"
    if not retrain:
        for folder in (SHIPPED_DIR / preset / name, SHIPPED_DIR / preset / f"{name}-{config_hash(cfg)}"):
            if _folder_state(folder, key, cfg.phases()) == "done":
                run = load_run(folder, preset=preset, cached=True, shipped=True)
                if verbose:
                    print(f"using the shipped model {label}, trained in {run.minutes:.0f} min "
                          f"(retrain=True retrains)", flush=True)
                return run
    base = derived_dir("models", preset, create=False) / name
    hashed = base.with_name(f"{name}-{config_hash(cfg)}")
    base.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(base.parent / f".{name}.lock")):  # two notebooks never train one run at once
        states = {folder: _folder_state(folder, key, cfg.phases()) for folder in (base, hashed)}
        for folder, state in states.items():
            if state == "done":
                run = load_run(folder, preset=preset, cached=True)
                if verbose:
                    print(f"using the cached model {label} from {run.relative_dir}", flush=True)
                return run
        target = next((f for f, s in states.items() if s == "partial"), None) or \
            next((f for f, s in states.items() if s == "free"), None)
        if target is None:
            raise FileExistsError(f"ensure_run: {base} and {hashed} both hold runs of other configurations; "
                                  f"remove one")
        reason = ""
        if states[base] == "other" and base.is_dir() and (saved := _key_of_folder(base)) is not None:
            reason = f" with this configuration (the one in {base.parent.name}/{base.name} differs: {_diff(saved, key)})"
        resume = states[target] == "partial"
        if verbose:
            if resume:
                print(f"found an unfinished run of {label} - resuming it", flush=True)
            else:
                _announce_training(label, cfg, reason)
        run_cfg = dataclasses.replace(cfg, name=name, out_dir=str(target), resume=resume,
                                      progress=False, tensorboard=False)
        random_vgg = "gan" in cfg.phases() and cfg.perceptual_mode == "random"
        torch.manual_seed(cfg.seed)  # the trainer re-seeds its phases; this covers a random VGG19
        with _quiet_trainer(random_vgg), torch_threads(threads):
            result = train(run_cfg)
        if result.interrupted:
            raise KeyboardInterrupt(f"training of {label} was interrupted; run the cell again to resume it")
        record = {
            "name": name, "preset": preset, "key": key, "hash": config_hash(cfg),
            "perceptual": cfg.perceptual_weights if "gan" in cfg.phases() else None,
            "bicubic": result.bicubic, "seconds": result.seconds, "parent": parent,
        }
        tmp = target / f".{_RUN_FILE}.tmp"
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(target / _RUN_FILE)
    return load_run(target, preset=preset, cached=False)


def export_run(run: RunInfo, dst: str | os.PathLike, *, raw: bool = False) -> Path:
    """Copy a finished run to ``dst`` in the layout :func:`load_run` reads, keeping what the
    notebooks use: ``config.yaml`` (paths written portably), ``run.json``, each phase's
    ``log.jsonl``, ``val.jsonl`` and ``G_ema.safetensors`` (and ``G.safetensors`` with ``raw``).
    Checkpoints, the critic and TensorBoard files stay behind. Written under a temporary name and
    renamed, replacing an older copy."""
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cfg = run.config
    portable = dataclasses.replace(cfg, out_dir=None, resume=False, pretrained_g=_portable_path(cfg.pretrained_g),
                                   train_set=_portable_path(cfg.train_set))
    portable.to_yaml(tmp / "config.yaml")
    shutil.copy2(run.run_dir / _RUN_FILE, tmp / _RUN_FILE)
    for phase in cfg.phases():
        (tmp / phase).mkdir()
        for name in ("log.jsonl", "val.jsonl", "G_ema.safetensors", *(("G.safetensors",) if raw else ())):
            if (run.run_dir / phase / name).is_file():
                shutil.copy2(run.run_dir / phase / name, tmp / phase / name)
    if dst.exists():
        shutil.rmtree(dst)
    tmp.rename(dst)
    return dst


def load_run_generator(run: RunInfo, ema: bool = True, phase: str | None = None,
                       device: str | torch.device = "cpu"):
    """The trained generator of a run as an :class:`gmgan.nets.RRDBNet` in eval mode: the final
    ``G_ema`` (``ema=True``) or raw ``G`` of ``phase`` (default: the run's last phase). It maps
    float (N, 3, h, w) RGB in [0, 1] to (N, 3, scale*h, scale*w), unclamped."""
    return load_generator(run.generator_path(ema=ema, phase=phase), device=device).eval()
