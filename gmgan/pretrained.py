"""torchvision's ImageNet VGG19 for the perceptual loss: cached, fetched where the network allows,
or a clear refusal before a run starts.

l_P compares VGG19 features of SR and HR; the paper's VGG19 is torchvision's ``IMAGENET1K_V1``
(``vgg19-dcbb9e9d.pth``, 548 MB), which torch keeps in its hub cache
(``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``).

- :func:`vgg19_cached` looks at the file only (no network);
- :func:`fetch_vgg19` downloads it with torch's own downloader (the hash in the file name is
  checked, the file appears only when complete) when :func:`gmgan.online.network_available` says
  the server can be reached, and otherwise raises :class:`WeightsUnavailable` saying what is
  missing and how to fix it;
- :func:`require_perceptual_weights` is the trainer's check before anything runs: a config that
  asks for ``perceptual_weights="imagenet"`` either gets the file or stops at once, instead of
  failing when phase 2 starts or silently training against a random VGG19. Only an explicit
  ``perceptual_weights="random"`` trains l_P on a randomly initialised VGG19.
- :func:`load_vgg19_features` fills torchvision's VGG19 ``features`` (or its first
  layers) with the ImageNet weights (through :func:`fetch_vgg19`, so ``GMGAN_OFFLINE``
  holds) or with a ``.pth`` / ``.pt`` / ``.safetensors`` file: the one way gmgan loads
  VGG19 weights (:class:`gmgan.losses.PerceptualLoss` uses it).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Union

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from gmgan.errors import CheckpointError
from gmgan.online import OFFLINE_ENV, forced_offline, network_available

__all__ = ["WeightsUnavailable", "fetch_vgg19", "load_vgg19_features",
           "require_perceptual_weights", "vgg19_cached", "vgg19_file", "vgg19_url"]

#: What names VGG19 weights: ``"imagenet"`` or the path of a state-dict file.
WeightsSource = Union[str, "os.PathLike[str]"]

#: The label of the ImageNet weights in messages.
IMAGENET = "torchvision VGG19 IMAGENET1K_V1"

# How to get past missing ImageNet weights, in the trainer's words (TrainConfig and the
# CLI name the weights ``perceptual_weights``) and in PerceptualLoss's (``weights``).
_TRAINER_FIX = (
    "Fix: download that file where the network is reachable and copy it to the path "
    "above (the TORCH_HOME environment variable moves the torch hub cache), or give "
    "its location with perceptual_weights=/path/to/vgg19-dcbb9e9d.pth. To train l_P "
    "on a randomly initialised VGG19 instead (not the paper's loss), say so "
    "explicitly: perceptual_weights=random.")
_LOSS_FIX = (
    "Fix: download that file where the network is reachable, then either copy it to "
    "the path above (the torch hub cache; TORCH_HOME moves it) or pass its location, "
    "e.g. PerceptualLoss(weights='/path/to/vgg19-dcbb9e9d.pth'). A .pth or "
    ".safetensors state dict of torchvision's vgg19 (or of its `features` only) works. "
    "PerceptualLoss(weights=None) uses a randomly initialised VGG19 instead (not the "
    "paper's loss).")


class WeightsUnavailable(RuntimeError):
    """Pretrained weights that are neither cached nor downloadable now; the message says how to fix it."""


def vgg19_url() -> str:
    """Download URL of torchvision's ImageNet VGG19 weights (``VGG19_Weights.IMAGENET1K_V1``)."""
    # Deferred: importing torchvision.models took 2.3-3.1 s beside torch (2 busy
    # cores), and gmgan.losses imports this module: GMSD and WGAN-GP users (toy2d,
    # iqa_maps, metrics) should not pay for VGG19 unless they use it.
    from torchvision.models import VGG19_Weights

    return VGG19_Weights.IMAGENET1K_V1.url


def vgg19_file() -> Path:
    """Where torch's hub cache keeps those weights (``<torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / vgg19_url().rsplit("/", 1)[-1]


def vgg19_cached() -> bool:
    """True when the weights file is in the torch hub cache. Never touches the network."""
    return vgg19_file().is_file()


def _unavailable(why: str, fix: str) -> WeightsUnavailable:
    path, url = vgg19_file(), vgg19_url()
    return WeightsUnavailable(
        f"the perceptual loss l_P needs torchvision's ImageNet VGG19 weights ({path.name}, 548 MB), which "
        f"are not in the torch hub cache and cannot be downloaded now ({why}).\n"
        f"  expected file: {path}\n"
        f"  download URL:  {url}\n" + fix)


def fetch_vgg19(*, progress: bool = True) -> Path:
    """The cached weights file, downloaded first when it is missing and the network allows.

    Raises:
        WeightsUnavailable: not cached and the download server cannot be reached (or
        ``GMGAN_OFFLINE=1``), or the download failed (the message says why and how to fix it).
    """
    return _fetch(progress, _TRAINER_FIX)


def _fetch(progress: bool, fix: str) -> Path:
    """:func:`fetch_vgg19`, ``fix`` ending the message of a refusal."""
    path = vgg19_file()
    if path.is_file():
        return path
    url = vgg19_url()
    if forced_offline():
        raise _unavailable(f"{OFFLINE_ENV} is set", fix)
    if not network_available(url):
        raise _unavailable(f"{url.split('/')[2]} cannot be reached", fix)
    path.parent.mkdir(parents=True, exist_ok=True)
    hash_prefix = torch.hub.HASH_REGEX.search(path.name)
    try:
        # torchvision's own download: a temporary file, the sha256 prefix in the name checked,
        # then moved into place.
        torch.hub.download_url_to_file(url, str(path), hash_prefix.group(1) if hash_prefix else None,
                                       progress=progress)
    except Exception as err:  # network errors, a wrong hash
        why = f"the download failed: {type(err).__name__}: {err}"
        raise _unavailable(why, fix) from err
    return path


def require_perceptual_weights(spec: str, *, progress: bool = True) -> None:
    """Make sure the l_P weights that ``spec`` (``TrainConfig.perceptual_weights``) names exist.

    ``"imagenet"``: :func:`fetch_vgg19` (cached, or downloaded now). A file path: it must exist.
    ``"random"`` and ``"none"``: nothing to check.

    Raises:
        WeightsUnavailable: ImageNet weights that cannot be had now. FileNotFoundError: a path
        that does not exist.
    """
    key = spec.strip().lower()
    if key in ("random", "none", "off", "false"):
        return
    if key == "imagenet":
        fetch_vgg19(progress=progress)
        return
    path = Path(spec).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"perceptual_weights: VGG19 weights file not found: {path} (use imagenet, "
                                "a .pth/.safetensors file, random or none)")


# ------------------------------------------------------------------------------------
# Loading VGG19 weights into a network
# ------------------------------------------------------------------------------------

def _read_state_dict(path: Path) -> Mapping[str, Tensor]:
    """Tensors of a ``.safetensors`` file, or of a ``.pth`` / ``.pt`` one read with
    ``torch.load(weights_only=True)`` (a pickle never runs code), on the CPU."""
    try:
        if path.suffix.lower() == ".safetensors":
            return load_file(str(path), device="cpu")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, corrupt, not a weights file, an unsafe pickle
        raise CheckpointError(f"{path}: cannot read VGG19 weights from it "
                              f"({type(err).__name__}: {err})") from err
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: expected a state dict (names -> tensors), got "
                              f"{type(state).__name__}")
    return state


def _features_state(state: Mapping[str, Tensor], wanted: list[str],
                    source: str) -> dict[str, Tensor]:
    """Pick the ``features`` entries from a full vgg19 state dict or a ``features``-only
    one."""
    out, missing = {}, []
    for key in wanted:
        for candidate in (f"features.{key}", key):
            if candidate in state:
                out[key] = state[candidate]
                break
        else:
            missing.append(key)
    if missing:
        raise CheckpointError(
            f"{source}: not a torchvision vgg19 state dict; missing "
            f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} "
            "(looked for 'features.<i>.weight' and '<i>.weight')")
    return out


def load_vgg19_features(features: nn.Sequential, weights: WeightsSource, *,
                        progress: bool = True) -> None:
    """Fill torchvision's VGG19 ``features`` (or its first modules) with pretrained
    weights, in place.

    Args:
        features: ``torchvision.models.vgg19().features`` or a slice ``[: k]`` of it,
            with real (CPU) storage; its conv weights and biases are overwritten.
        weights: ``"imagenet"``: torchvision's ``IMAGENET1K_V1`` weights from the torch
            hub cache, downloaded first where :func:`fetch_vgg19` allows (never with
            ``GMGAN_OFFLINE=1``); otherwise the path of a ``.pth`` / ``.pt`` /
            ``.safetensors`` state dict of torchvision's ``vgg19`` or of its
            ``features``.
        progress: show torch's progress bar while downloading.

    Raises:
        WeightsUnavailable: ImageNet weights neither cached nor downloadable now (the
            message names the file, the URL and the ways out).
        FileNotFoundError: a weights file that does not exist.
        CheckpointError: a file that is not a state dict, lacks some of the layers, or
            holds tensors of other shapes (the message names the file).
    """
    if isinstance(weights, str) and weights == "imagenet":
        path = _fetch(progress, _LOSS_FIX)
        source = f"{path} ({IMAGENET})"
    elif isinstance(weights, (str, os.PathLike)):
        path = Path(weights).expanduser()
        source = str(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"VGG19 weights file not found: {path} (weights must be 'imagenet', a "
                ".pth/.safetensors file, or None for random weights)")
    else:
        raise TypeError(f"weights must be 'imagenet' or a file path, got {weights!r}")
    wanted = list(features.state_dict().keys())
    picked = _features_state(_read_state_dict(path), wanted, source)
    try:
        features.load_state_dict(picked)
    except RuntimeError as err:  # shape mismatch: some other network's weights
        raise CheckpointError(
            f"{source}: weights do not fit torchvision's vgg19: {err}") from err
