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
"""
from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["WeightsUnavailable", "fetch_vgg19", "require_perceptual_weights", "vgg19_cached",
           "vgg19_file", "vgg19_url"]


class WeightsUnavailable(RuntimeError):
    """Pretrained weights that are neither cached nor downloadable now; the message says how to fix it."""


def vgg19_url() -> str:
    """Download URL of torchvision's ImageNet VGG19 weights (``VGG19_Weights.IMAGENET1K_V1``)."""
    from torchvision.models import VGG19_Weights

    return VGG19_Weights.IMAGENET1K_V1.url


def vgg19_file() -> Path:
    """Where torch's hub cache keeps those weights (``<torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / vgg19_url().rsplit("/", 1)[-1]


def vgg19_cached() -> bool:
    """True when the weights file is in the torch hub cache. Never touches the network."""
    return vgg19_file().is_file()


def _unavailable(why: str) -> WeightsUnavailable:
    path, url = vgg19_file(), vgg19_url()
    return WeightsUnavailable(
        f"the perceptual loss l_P needs torchvision's ImageNet VGG19 weights ({path.name}, 548 MB), which "
        f"are not in the torch hub cache and cannot be downloaded now ({why}).\n"
        f"  expected file: {path}\n"
        f"  download URL:  {url}\n"
        "Fix: download that file where the network is reachable and copy it to the path above (the "
        "TORCH_HOME environment variable moves the torch hub cache), or give its location with "
        "perceptual_weights=/path/to/vgg19-dcbb9e9d.pth. To train l_P on a randomly initialised VGG19 "
        "instead (not the paper's loss), say so explicitly: perceptual_weights=random.")


def fetch_vgg19(*, progress: bool = True) -> Path:
    """The cached weights file, downloaded first when it is missing and the network allows.

    Raises:
        WeightsUnavailable: not cached and the download server cannot be reached (or
        ``GMGAN_OFFLINE=1``), or the download failed (the message says why and how to fix it).
    """
    from gmgan.online import OFFLINE_ENV, forced_offline, network_available

    path = vgg19_file()
    if path.is_file():
        return path
    url = vgg19_url()
    if forced_offline():
        raise _unavailable(f"{OFFLINE_ENV} is set")
    if not network_available(url):
        raise _unavailable(f"{url.split('/')[2]} cannot be reached")
    path.parent.mkdir(parents=True, exist_ok=True)
    hash_prefix = torch.hub.HASH_REGEX.search(path.name)
    try:
        # torchvision's own download: a temporary file, the sha256 prefix in the name checked,
        # then moved into place.
        torch.hub.download_url_to_file(url, str(path), hash_prefix.group(1) if hash_prefix else None,
                                       progress=progress)
    except Exception as err:  # network errors, a wrong hash
        raise _unavailable(f"the download failed: {type(err).__name__}: {err}") from err
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
