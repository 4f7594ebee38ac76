"""gmgan: GMGAN 4x perceptual super-resolution (Zhu et al., 2020) in PyTorch.

Public API::

    gmgan.RRDBNet, gmgan.Discriminator, gmgan.load_generator     # networks
    gmgan.imresize, gmgan.modcrop                                # MATLAB-exact bicubic
    gmgan.upscale, gmgan.interpolate                             # inference
    gmgan.metrics, gmgan.losses, gmgan.data                      # modules

Images are numpy uint8 HxW / HxWxC arrays (as read from files) or torch float NCHW tensors in
[0, 1], RGB. Attributes are imported lazily so that ``import gmgan`` stays cheap.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_ATTRS = {
    "RRDBNet": "gmgan.nets",
    "Discriminator": "gmgan.nets",
    "load_generator": "gmgan.nets",
    "imresize": "gmgan.resize",
    "modcrop": "gmgan.resize",
    "upscale": "gmgan.infer",
    "interpolate": "gmgan.infer",
}
_MODULES = {"metrics", "losses", "data", "nets", "resize", "color", "cache", "imageio", "presets",
            "checkpoint", "train", "infer", "evaluate", "viz", "cli", "iqa_maps", "toy2d"}

__all__ = sorted(_ATTRS) + ["metrics", "losses", "data", "__version__"]


def __getattr__(name: str):
    if name in _ATTRS:
        return getattr(importlib.import_module(_ATTRS[name]), name)
    if name in _MODULES:
        return importlib.import_module(f"gmgan.{name}")
    raise AttributeError(f"module 'gmgan' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
