"""Moved to :mod:`gmgan.config` (the module that holds :class:`TrainConfig`); this name
re-exports its public names for one release."""
from __future__ import annotations

from gmgan.config import CHOICES, PRESETS, TrainConfig, apply_overrides, get_preset

__all__ = ["CHOICES", "PRESETS", "TrainConfig", "apply_overrides", "get_preset"]
