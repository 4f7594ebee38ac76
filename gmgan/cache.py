"""Where gmgan keeps data: one cache for the whole package.

Two locations, both set by environment variables:

- ``GMGAN_DATA``: the data cache, where image sets live in the layout that downloads produce
  (``benchmark/Set5/HR/*.png``, ``benchmark/Set5/LR_bicubic/X4/*.png``, ``train/T91/*.bmp``,
  ``iqa/niqe_modelparameters.mat``, ...). It may be read-only: a shared copy of the sets.
- ``GMGAN_DERIVED``: a writable place for everything gmgan makes from the data: LR images,
  sub-images, augmented sets, checkpoints and trained models.

Both default to folders under the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root", "data_dir", "derived_dir"]


def cache_root() -> Path:
    """The user's gmgan cache folder: ``$XDG_CACHE_HOME/gmgan`` or ``~/.cache/gmgan``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gmgan"


def data_dir() -> Path:
    """Root of the data cache (``GMGAN_DATA``, default ``<cache_root>/data``). Not created here."""
    env = os.environ.get("GMGAN_DATA")
    return Path(env).expanduser().resolve() if env else cache_root() / "data"


def derived_dir(*parts: str, create: bool = True) -> Path:
    """A writable folder for derived files (``GMGAN_DERIVED``, default ``<cache_root>/derived``).

    ``parts`` name a sub-folder, e.g. ``derived_dir("models", "teach")``. The folder is created
    unless ``create`` is false.
    """
    env = os.environ.get("GMGAN_DERIVED")
    root = Path(env).expanduser().resolve() if env else cache_root() / "derived"
    path = root.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
