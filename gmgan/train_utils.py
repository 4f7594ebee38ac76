"""Moved to the package :mod:`gmgan.training` (one module a topic); this name
re-exports what it held for one release."""
from __future__ import annotations

from gmgan.training import (
    EMA,
    FIT_STEPS,
    BatchTooLarge,
    Env,
    GracefulStop,
    PhaseRun,
    RunFolderBusy,
    RunFolderLock,
    RunLog,
    StepSampler,
    TrainingDiverged,
    bicubic_scores,
    first_batch,
    frozen,
    grad_norm,
    make_loader,
    phase_seed,
    read_jsonl,
    run_phase,
    setup,
    step_seed,
    validate_model,
)
from gmgan.training.sampler import PHASE_INDEX
from gmgan.training.validation import super_resolve

__all__ = [
    "EMA",
    "FIT_STEPS",
    "PHASE_INDEX",
    "BatchTooLarge",
    "Env",
    "GracefulStop",
    "PhaseRun",
    "RunFolderBusy",
    "RunFolderLock",
    "RunLog",
    "StepSampler",
    "TrainingDiverged",
    "bicubic_scores",
    "first_batch",
    "frozen",
    "grad_norm",
    "make_loader",
    "phase_seed",
    "read_jsonl",
    "run_phase",
    "setup",
    "step_seed",
    "super_resolve",
    "validate_model",
]
