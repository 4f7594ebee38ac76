"""Training configuration: the :class:`TrainConfig` dataclass and its presets.

(This module was ``gmgan.presets``; that name re-exports it for one release.)

* ``paper``: the published recipe. GMGAN's own numbers (Zhu et al. 2020, Sec. 3-4; see PAPER.md):
  23 RRDBs with 64 features, batch 16, 128 px HR patches, loss weights alpha = 1e-2, beta = 1,
  gamma = 1, delta = 5e-3, lambda = 10; phase 1 (MSE) lr 2e-4 halved every 2e5 updates; phase 2
  (GAN) Adam betas (0, 0.9), lr 2e-4 halved every 1e5 updates. The paper gives no iteration
  counts, so those follow ESRGAN (Wang et al. 2018; BasicSR's ``train_RRDBNet_PSNR_x4`` and
  ``train_ESRGAN_x4`` options): 1,000,000 phase-1 and 400,000 phase-2 updates, phase-1 Adam betas
  (0.9, 0.99), an EMA of the generator with decay 0.999, and VGG19 features before the activation
  of ``conv5_4``. The paper trains on DIV2K with 8x augmentation: ``train_set="DIV2K"`` (800 images,
  3.3 GiB, downloaded on first use where the network allows, refused with a clear error where it
  does not; ``GMGAN_DATA_MIRROR`` serves it from elsewhere) cut into 480 px sub-images, with
  ``augment8=True`` (each sub-image in its 8 dihedral versions, made once on disk). Table 3's other
  sets are the registry names ``DF2K`` (DIV2K + Flickr2K) and ``DF2K-OST`` (plus 1,342 OST images).
  ImageNet VGG19 weights are required (fetched by torchvision where possible; see
  :mod:`gmgan.pretrained`): without them a run refuses to start unless ``perceptual_weights=random``
  is given explicitly.
* ``colab``: both phases in about an hour on a Colab T4 (16 GB, 65 TFLOP/s fp16 peak), by the
  ESTIMATE below: no T4 has run it yet. An 8-block, 64-feature RRDBNet (the paper's width, a third
  of its 23 blocks; the teaching model has 2 blocks of 32), the paper's batch of 16 on 96 px HR
  patches (paper: 128), DIV2K sub-images (fetched on first use; no offline 8x set: it would be
  8 times the disk and preparation time), ImageNet VGG19 at ``conv5_4``, fp16 autocast with a
  GradScaler (the T4 has no bf16) and channels-last, 5,000 MSE + 2,000 GAN updates with the
  learning rates halved once half way (the paper's rates, 1e-4 in phase 2). Not tuned on a GPU.
  Sizing: ``gmgan.experiments.estimate_seconds(cfg, "t4")`` scales the paper preset's measured
  H200 seconds per update (fp32: 0.113 s phase 1, 0.154 s phase 2) by the ratio of the two GPUs'
  peak throughputs, 989 / 65 = 15.2 (their memory bandwidths have the same ratio), assuming the
  T4 reaches the same fraction of its peak (see ``gmgan.experiments.H200_TO_T4``), then by this
  preset's FLOPs relative to the paper's: about 0.39 s per phase-1 and 0.83 s per phase-2 update,
  32 + 28 = 60 min (estimate; the paper preset would take about 31 days there). Not included:
  downloading DIV2K and cutting it into about 32,000 sub-images once, on Colab's 2 CPU cores.
* ``teach``: the same procedure shrunk to a 2-core CPU (the shipped teaching models
  of :mod:`gmgan.experiments`): a 2-block, 32-feature generator, 48 px HR patches,
  T91 in its 8 dihedral versions, 5,000 MSE + 4,000 GAN updates (about 14 + 39 min
  by ``gmgan.sizing.estimate_seconds`` on 2 CPU cores), the GAN phase with l_P at conv5_4, a
  20x adversarial weight and noise inputs, so that it draws texture (see the comment at
  ``PRESETS`` for the reasons).

Notebooks choose with ``gmgan.experiments.pick_preset()``: ``colab`` on a CUDA device, else
``teach``; ``gmgan.experiments.print_estimate(cfg)`` prints the estimated time before training.

Every field can be overridden: ``get_preset("teach", batch_size=8)``,
``apply_overrides(cfg, ["gan_iters=200", "val_sets=Set5"])``, or a YAML file
(:meth:`TrainConfig.to_yaml` / :meth:`TrainConfig.from_yaml`). Values are checked when the config
is built; a bad value raises ``ValueError`` naming the field.

``batch_size`` is the GLOBAL batch: with ``torchrun --nproc_per_node K`` each process gets
``batch_size / K`` samples per step, so the optimisation is the same as one process.
"""
from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gmgan.cache import derived_dir

__all__ = ["CHOICES", "PRESETS", "TrainConfig", "apply_overrides", "get_preset"]

# Fields whose value must be one of a few strings.
CHOICES: dict[str, tuple[str, ...]] = {
    "phase": ("pretrain", "gan", "both"),
    "amp": ("none", "bf16", "fp16"),
    "speed": ("fast", "reference", "auto"),
    "d_norm": ("none", "layer", "batch"),
    "on_save_error": ("stop", "continue"),
    "perceptual_layer": tuple(f"conv{b}_{i}" for b, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
                              for i in range(1, n + 1)),
}


def _f(default: Any, help: str) -> Any:
    """A dataclass field with a help text (the CLI shows it as the option's help)."""
    if isinstance(default, (list, dict)):
        raise TypeError("mutable defaults: use a tuple")
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Everything :func:`gmgan.train.train` needs; defaults are the paper's (see the module doc).

    Units: iterations and ``*_every`` count optimiser updates of the generator (one per
    mini-batch); learning rates are Adam step sizes; ``patch_size`` is the HR patch side in pixels
    (the LR patch is ``patch_size / scale``).
    """

    # -- the run
    name: str = _f("gmgan", "run name; the default out_dir is <GMGAN_DERIVED>/runs/<name>")
    phase: str = _f("both", "which phases to run: pretrain (MSE), gan, or both in turn")
    out_dir: str | None = _f(None, "run folder (default: gmgan.cache.derived_dir('runs', name))")
    resume: bool = _f(False, "continue from the newest valid checkpoint in out_dir")
    seed: int = _f(0, "seed of the data order, crops, initial weights and every random draw")
    device: str = _f("auto", "auto (cuda if available, else cpu), cpu, cuda, cuda:N, mps")

    # -- data
    train_set: str = _f("samples", "training set: a registry name (T91, BSDS200, DIV2K, ...) or a folder of HR images")
    subimages: bool | None = _f(None, "cut large images into 480 px sub-images first (None: only for DIV2K-sized images)")
    augment8: bool = _f(False, "offline 8x dihedral augmentation of the training set (the paper's 'augmentation')")
    augment: bool = _f(True, "on-the-fly augmentation: a random rotation/flip of every patch (BasicSR's default); "
                             "off, the plain and the offline 8x set differ as in the paper's Table 3")
    val_sets: tuple[str, ...] = _f(("Set5", "Set14"), "benchmark sets for validation (empty: none)")
    val_limit: int | None = _f(None, "validate on the first N images of each set (None: all)")
    scale: int = _f(4, "upscaling factor (2 or 4)")
    patch_size: int = _f(128, "HR training patch side in pixels (also the critic's input size)")
    batch_size: int = _f(16, "GLOBAL mini-batch size (split over the processes of a torchrun job)")
    num_workers: int = _f(4, "DataLoader worker processes per training process")

    # -- networks
    num_feat: int = _f(64, "generator trunk features")
    num_block: int = _f(23, "generator RRDB blocks")
    num_grow: int = _f(32, "generator dense-block growth channels")
    d_num_feat: int = _f(64, "critic features of its first conv")
    d_norm: str = _f("none", "critic normalisation: none (WGAN-GP), layer, or batch (SRGAN)")

    # -- phase 1: PSNR-oriented pre-training with MSE
    pretrain_iters: int = _f(1_000_000, "phase-1 generator updates (ESRGAN: 1e6)")
    pretrain_lr: float = _f(2e-4, "phase-1 Adam learning rate")
    pretrain_lr_halve_every: int = _f(200_000, "halve the phase-1 learning rate every N updates")
    pretrain_betas: tuple[float, float] = _f((0.9, 0.99), "phase-1 Adam betas (ESRGAN/BasicSR)")

    # -- phase 2: GAN with the GMGAN losses
    gan_iters: int = _f(400_000, "phase-2 generator updates (ESRGAN: 4e5)")
    gan_lr: float = _f(2e-4, "phase-2 Adam learning rate (generator and critic)")
    critic_lr: float | None = _f(None, "the critic's phase-2 learning rate if it differs from gan_lr (None: gan_lr, as the paper)")
    gan_lr_halve_every: int = _f(100_000, "halve the phase-2 learning rates every N updates")
    gan_betas: tuple[float, float] = _f((0.0, 0.9), "phase-2 Adam betas (paper, after WGAN-GP)")
    pretrained_g: str | None = _f(None, "phase-2 initial generator (default: <out_dir>/pretrain/G_ema.safetensors)")
    n_critic: int = _f(1, "critic updates per generator update")
    alpha: float = _f(1e-2, "weight of the pixel MSE loss")
    beta: float = _f(1.0, "weight of the VGG19 perceptual loss")
    gamma: float = _f(1.0, "weight of the GMSD quality loss")
    delta: float = _f(5e-3, "weight of the adversarial losses (generator and critic)")
    lam: float = _f(10.0, "WGAN-GP gradient-penalty weight")
    perceptual_layer: str = _f("conv5_4", "VGG19 layer of the perceptual loss (features before its ReLU)")
    balance_random_vgg: bool = _f(True, "with perceptual_weights=random: scale beta at the start of phase 2 so that beta*l_P equals beta*l_Q on the first batch (a random VGG19's raw l_P is 60-130x smaller than l_Q at the teach preset); ImageNet weights are never rescaled")
    perceptual_weights: str = _f("imagenet", "VGG19 weights: imagenet, a .pth/.safetensors path, random (tests), or none (no perceptual loss)")

    # -- mechanics
    ema_decay: float = _f(0.999, "decay of the generator's exponential moving average (0: no EMA)")
    amp: str = _f("none", "mixed precision: none, bf16 (autocast), fp16 (autocast + GradScaler)")
    channels_last: bool = _f(False, "channels-last memory format (faster convs on recent GPUs)")
    compile: bool = _f(False, "torch.compile the generator (not the critic: its gradient penalty needs double backward)")
    speed: str = _f("fast", "how updates are computed (gmgan.speed): fast (fp32; one generator forward per GAN "
                            "update, foreach Adam, channels-last on a CPU), reference (eager fp32 as the shipped "
                            "models were trained), or auto (fast, with bf16 autocast on CPUs with native bf16)")
    log_every: int = _f(100, "log losses, learning rates and gradient norms every N updates")
    val_every: int = _f(5_000, "validate every N updates (0: only at the end of a phase)")
    ckpt_every: int = _f(5_000, "checkpoint every N updates (0: only at the end of a phase)")
    keep_last: int = _f(3, "checkpoints kept per phase (the newest N)")
    max_bad_steps: int = _f(10, "stop after N consecutive steps with a non-finite loss or gradient")
    on_save_error: str = _f("stop", "when a checkpoint or a log line cannot be written (disk full): stop with the error, or warn and continue without it")
    progress: bool = _f(True, "show a tqdm progress bar")
    tensorboard: bool = _f(True, "write TensorBoard scalars and images to <out_dir>/<phase>/tb")

    # -- added after the shipped teaching models (gmgan.runs keeps them out of a config
    #    key while they hold their defaults, so the old keys stay valid)
    noise_inject: bool = _f(False, "StyleGAN noise inputs in the generator's upsampled "
                                   "feature maps (gmgan.nets.RRDBNet), a phase-2 option: "
                                   "phase 1 trains without, phase 2 adds them")
    noise_head: int = _f(0, "channels of an additive HR noise head in the generator "
                            "(0: none; gmgan.nets.RRDBNet), a phase-2 option like noise_inject")
    gan_ema_decay: float | None = _f(None, "phase 2's moving-average decay if it differs from "
                                           "ema_decay (None: ema_decay)")

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ checks

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field with a bad value."""
        for name, options in CHOICES.items():
            if getattr(self, name) not in options:
                raise ValueError(f"TrainConfig.{name} must be one of {', '.join(options)}; "
                                 f"got {getattr(self, name)!r}")
        _check(isinstance(self.name, str) and re.fullmatch(r"[\w.+-]+", self.name) is not None,
               "name", self.name, "a non-empty folder name (letters, digits, _ . + -)")
        _check(self.scale in (2, 4), "scale", self.scale, "2 or 4")
        _check(self.patch_size >= 16 and self.patch_size % 16 == 0 and self.patch_size % self.scale == 0,
               "patch_size", self.patch_size, "a positive multiple of 16 (the critic halves it four times)")
        for name in ("batch_size", "num_feat", "num_block", "num_grow", "d_num_feat", "n_critic",
                     "log_every", "keep_last", "max_bad_steps", "pretrain_lr_halve_every",
                     "gan_lr_halve_every"):
            _check(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        for name in ("pretrain_iters", "gan_iters", "val_every", "ckpt_every", "num_workers", "seed"):
            _check(getattr(self, name) >= 0, name, getattr(self, name), ">= 0")
        for name in ("pretrain_lr", "gan_lr"):
            _check(0 < getattr(self, name) < 1, name, getattr(self, name), "in (0, 1)")
        _check(self.critic_lr is None or 0 < self.critic_lr < 1, "critic_lr", self.critic_lr,
               "None (gan_lr) or in (0, 1)")
        for name in ("alpha", "beta", "gamma", "delta", "lam"):
            _check(getattr(self, name) >= 0, name, getattr(self, name), ">= 0")
        for name in ("pretrain_betas", "gan_betas"):
            betas = getattr(self, name)
            _check(len(betas) == 2 and all(0 <= b < 1 for b in betas), name, betas,
                   "two numbers in [0, 1)")
        _check(self.noise_head >= 0, "noise_head", self.noise_head, ">= 0")
        _check(0 <= self.ema_decay < 1, "ema_decay", self.ema_decay, "in [0, 1)")
        _check(self.gan_ema_decay is None or 0 <= self.gan_ema_decay < 1, "gan_ema_decay",
               self.gan_ema_decay, "None (ema_decay) or in [0, 1)")
        _check(self.val_limit is None or self.val_limit >= 1, "val_limit", self.val_limit,
               "None (all images) or >= 1")
        _check(re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device) is not None, "device",
               self.device, "auto, cpu, mps, cuda or cuda:N")
        _check(self.alpha + self.beta + self.gamma + self.delta > 0, "alpha+beta+gamma+delta",
               0, "> 0 (the generator needs some loss)")

    # ------------------------------------------------------------------ derived values

    def run_dir(self) -> Path:
        """The run folder: ``out_dir`` or ``gmgan.cache.derived_dir("runs", name)``."""
        if self.out_dir:
            return Path(self.out_dir).expanduser()
        return derived_dir("runs", self.name, create=False)

    def phases(self) -> list[str]:
        """The phases to run, in order: ``["pretrain"]``, ``["gan"]`` or ``["pretrain", "gan"]``."""
        return ["pretrain", "gan"] if self.phase == "both" else [self.phase]

    def ema_decay_of(self, phase: str) -> float:
        """The generator's moving-average decay in ``phase``: ``gan_ema_decay`` in
        ``"gan"`` where it is set, else ``ema_decay`` (0: no moving average)."""
        _check_phase(phase)
        if phase == "gan" and self.gan_ema_decay is not None:
            return self.gan_ema_decay
        return self.ema_decay

    def iters(self, phase: str) -> int:
        """The generator updates of ``phase``: ``pretrain_iters`` for ``"pretrain"``,
        ``gan_iters`` for ``"gan"``. Raises ``ValueError`` for another name."""
        _check_phase(phase)
        return self.pretrain_iters if phase == "pretrain" else self.gan_iters

    @property
    def perceptual_mode(self) -> str:
        """Where phase 2's l_P gets its VGG19, read from ``perceptual_weights`` and
        ``beta``: ``"none"`` (no perceptual loss: ``beta`` is 0, or the weights are
        ``none`` / ``off`` / ``false``), ``"random"`` (a VGG19 initialised from the
        run's seed), ``"imagenet"`` (torchvision's ImageNet weights) or ``"file"``
        (``perceptual_weights`` is the path of a .pth / .safetensors file). Case and
        surrounding spaces do not matter."""
        spec = self.perceptual_weights.strip().lower()
        if self.beta == 0 or spec in _NO_PERCEPTUAL:
            return "none"
        if spec in ("random", "imagenet"):
            return spec
        return "file"

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` of the fields (tuples become lists): YAML / JSON / ``torch.save`` safe."""
        return {f.name: list(v) if isinstance(v, tuple) else v
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        """The config as YAML text (field order kept); also written to ``path`` when given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: TrainConfig | None = None) -> TrainConfig:
        """Build a config from a mapping (values are coerced to the field types; unknown keys and
        bad values raise ``ValueError``); fields not in ``data`` come from ``base`` or the defaults."""
        return apply_overrides(base if base is not None else cls(), dict(data))

    @classmethod
    def from_yaml(cls, text_or_path: str | os.PathLike,
                  preset: str | None = None) -> TrainConfig:
        """Read a config from YAML text or a ``.yaml`` / ``.yml`` file. A file may also hold
        ``preset: NAME`` to start from that preset instead of the defaults; ``preset``
        given here takes precedence (the file's key is then ignored). Every error names
        the file."""
        source = "YAML text"
        text = text_or_path
        if isinstance(text_or_path, os.PathLike) or (
                isinstance(text_or_path, str) and "\n" not in text_or_path
                and (text_or_path.strip().endswith((".yaml", ".yml")) or os.path.isfile(text_or_path))):
            path = Path(text_or_path)
            if not path.is_file():
                raise FileNotFoundError(f"config file not found: {path}")
            source, text = str(path), path.read_text()
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"{source}: not valid YAML: {err}") from err
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a mapping of field: value, got {type(data).__name__}")  # noqa: TRY004
        named = data.pop("preset", None)
        try:
            name = preset if preset is not None else named
            base = get_preset(name) if name is not None else None
            return cls.from_dict(data, base)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from err


#: ``perceptual_weights`` values that switch the perceptual loss off.
_NO_PERCEPTUAL = frozenset({"none", "off", "false"})


def _check_phase(phase: str) -> None:
    """A ``ValueError`` unless ``phase`` names one phase (``"pretrain"`` or ``"gan"``)."""
    if phase not in ("pretrain", "gan"):
        raise ValueError(f"phase must be 'pretrain' or 'gan'; got {phase!r}")


def _check(ok: bool, name: str, value: Any, want: str) -> None:
    if not ok:
        raise ValueError(f"TrainConfig.{name} must be {want}; got {value!r}")


# ---------------------------------------------------------------------- overrides and coercion

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}
_NONE = {"none", "null", "~", ""}


def _field_types() -> dict[str, Any]:
    # Annotations are strings (``from __future__ import annotations``); resolve them once.
    return typing.get_type_hints(TrainConfig)


def _coerce(name: str, tp: Any, value: Any) -> Any:
    """Convert ``value`` (a string from the command line, or a YAML / Python value) to ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):  # X | None
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, inner[0], value)
    if origin is tuple:
        if isinstance(value, str):
            items = [v.strip() for v in value.strip().strip("[]()").split(",") if v.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            items = [value]
        item_type = args[0]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(name, item_type, v) for v in items)
        if len(items) != len(args):
            raise ValueError(f"TrainConfig.{name} needs {len(args)} comma-separated values; got {value!r}")
        return tuple(_coerce(name, a, v) for a, v in zip(args, items))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError(f"TrainConfig.{name} must be true or false; got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ValueError(f"TrainConfig.{name} must be an integer; got {value!r}")
        try:
            number = float(value) if isinstance(value, str) else value  # accepts "2e5"
        except ValueError:
            raise ValueError(f"TrainConfig.{name} must be an integer; got {value!r}") from None
        if not isinstance(number, (int, float)) or float(number) != int(number):
            raise ValueError(f"TrainConfig.{name} must be an integer; got {value!r}")
        return int(number)
    if tp is float:
        try:
            if isinstance(value, bool):
                raise ValueError  # noqa: TRY004 (caught just below)
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"TrainConfig.{name} must be a number; got {value!r}") from None
    if tp is str:
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"TrainConfig.{name} must be a string; got {value!r}")
    raise TypeError(f"TrainConfig.{name}: unsupported field type {tp!r}")


def _parse_overrides(overrides: Mapping[str, Any] | Sequence[str]) -> dict[str, Any]:
    if isinstance(overrides, Mapping):
        return dict(overrides)
    parsed = {}
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        parsed[key.strip().replace("-", "_")] = value
    return parsed


def apply_overrides(cfg: TrainConfig, overrides: Mapping[str, Any] | Sequence[str]) -> TrainConfig:
    """A copy of ``cfg`` with some fields replaced; ``cfg`` itself is not changed.

    Args:
        cfg: the starting config.
        overrides: ``{"batch_size": 8, "val_sets": "Set5,Set14"}`` or
            ``["batch_size=8", "gan_betas=0,0.9"]``. Strings are converted to the field's type:
            ints accept ``2e5``, bools ``true/false/yes/no/1/0``, optional fields ``none``,
            tuples comma-separated values.
    Returns:
        a new, validated :class:`TrainConfig`.
    Raises:
        ValueError: an unknown key (the message lists the known ones), a value that does not
            convert, or one that fails :meth:`TrainConfig.validate`.
    """
    values = _parse_overrides(overrides)
    types_ = _field_types()
    unknown = sorted(k for k in values if k not in types_)
    if unknown:
        raise ValueError(f"unknown TrainConfig field(s) {', '.join(unknown)}; known fields: "
                         f"{', '.join(types_)}")
    coerced = {k: _coerce(k, types_[k], v) for k, v in values.items()}
    return dataclasses.replace(cfg, **coerced)


# ---------------------------------------------------------------------- presets

PRESETS: dict[str, TrainConfig] = {
    # The paper's data: DIV2K (fetched on first use where the network allows; refused with a clear
    # error where it does not) cut into 480 px sub-images, in its 8 dihedral versions (the paper's
    # "augmentation", Table 3), with no further random flips of the patches: the offline set IS the
    # paper's augmentation (augment=True on top would make every Table 3 row see all 8 versions).
    # DF2K and DF2K-OST are the registry names of Table 3's other sets.
    "paper": TrainConfig(name="paper", train_set="DIV2K", augment8=True, augment=False),
    # The shipped teaching models (gmgan.experiments): the paper's procedure shrunk to a 2-core CPU.
    # A 2-block, 32-feature RRDBNet on 48 px HR patches (12 px LR); T91 in its 8 dihedral versions
    # (the paper's augmentation, as its DIV2K x 8) with no further random flips. Phase 1: 5,000
    # updates at lr 1e-3, halved every 1,000 (Set5 +2 dB over bicubic). Phase 2 (chosen by the
    # pilots of benchmarks/results/natural_pilot, notebook 06 "What was tried"): 4,000 updates at
    # lr 2e-4, halved every 1,500; the critic learns at 1e-3 (at the generator's rate a 16-feature
    # critic barely separates SR from HR); the adversarial weight delta = 0.1, twenty times the
    # paper's 5e-3, which a phase 2 a hundred times shorter than the paper's needs to draw texture;
    # l_P at conv5_4 like the paper's, always on the seeded random VGG19 with its weight balanced
    # against l_Q (balance_random_vgg), so that the teach preset trains the same model on every
    # machine, offline or not (perceptual_weights="imagenet" gives the paper's l_P); StyleGAN noise
    # inputs in phase 2, so that the generator has randomness to draw texture from. Moving average:
    # 0.995 in phase 1, 0.997 in phase 2 (a window of about 330 updates: between the raw generator,
    # the most texture, and 0.999, which keeps 2 % of the PSNR start after 4,000 updates).
    "teach": TrainConfig(
        name="teach", train_set="T91", augment8=True, augment=False,
        num_feat=32, num_block=2, num_grow=16, d_num_feat=16, patch_size=48, batch_size=16, num_workers=0,
        pretrain_iters=5000, pretrain_lr=1e-3, pretrain_lr_halve_every=1000,
        gan_iters=4000, gan_lr=2e-4, critic_lr=1e-3, gan_lr_halve_every=1500, delta=0.1,
        perceptual_layer="conv5_4", perceptual_weights="random", noise_inject=True,
        ema_decay=0.995, gan_ema_decay=0.997, log_every=10, val_every=500, ckpt_every=500, keep_last=2,
    ),
    # A Colab T4 in about an hour for both phases: see the module docstring for the sizing. Its
    # short phase 2 takes two lessons of the teach preset (not yet tried on a GPU): a critic that
    # learns faster than the generator, and an EMA window (0.995) that forgets the PSNR start.
    "colab": TrainConfig(
        name="colab", train_set="DIV2K", num_feat=64, num_block=8, num_grow=32, d_num_feat=64,
        patch_size=96, batch_size=16, num_workers=2,
        pretrain_iters=5000, pretrain_lr=2e-4, pretrain_lr_halve_every=2500,
        gan_iters=2000, gan_lr=1e-4, critic_lr=1e-3, gan_lr_halve_every=1000, ema_decay=0.995,
        amp="fp16", channels_last=True, val_every=1000, ckpt_every=500, keep_last=2,
    ),
}


def get_preset(preset: str, /, **overrides: Any) -> TrainConfig:
    """A copy of the preset ``preset`` (``"paper"``, ``"colab"`` or ``"teach"``) with ``overrides`` applied
    (e.g. ``get_preset("teach", name="my-run", gan_iters=500)``).

    Raises ``ValueError`` for an unknown preset (listing the known ones) or a bad override.
    """
    if not isinstance(preset, str) or preset not in PRESETS:  # a YAML list: unhashable
        raise ValueError(f"unknown preset {preset!r}; known presets: {', '.join(PRESETS)}")
    return apply_overrides(PRESETS[preset], overrides)
