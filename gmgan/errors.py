"""The one exception for a checkpoint or weights file that gmgan cannot or will not use.

:class:`CheckpointError` is raised by :mod:`gmgan.checkpoint` (training checkpoints that could
not be written, or are incomplete or corrupt on reading), :mod:`gmgan.nets` (generator weights:
not a checkpoint, an unsafe pickle, another architecture, another scale) and
:mod:`gmgan.pretrained` (VGG19 weights files that are not torchvision's vgg19). Both of those
modules re-export it, so ``from gmgan.nets import CheckpointError`` and
``from gmgan.checkpoint import CheckpointError`` name this same class.
"""
from __future__ import annotations

__all__ = ["CheckpointError"]


class CheckpointError(ValueError, RuntimeError):
    """A checkpoint or weights file that could not be written, read or used; the message names
    the file (or folder).

    It is a ``ValueError`` (bad content, as the generator loader raised before) and a
    ``RuntimeError`` (as the training checkpoints raised before), so that code catching either
    of the two classes this one replaces still catches it.
    """
