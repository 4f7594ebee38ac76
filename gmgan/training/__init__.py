"""The mechanics of training, kept out of :mod:`gmgan.train` so that it reads like the
paper.

One topic a module:

* :mod:`~gmgan.training.environment`: the device, ``torch.distributed`` and the run
  folder (:func:`setup`, :class:`Env`);
* :mod:`~gmgan.training.run_folder`: one trainer per run folder
  (:class:`RunFolderLock`);
* :mod:`~gmgan.training.sampler`: the step-indexed data order that survives a resume
  (:class:`StepSampler`, :func:`phase_seed`, :func:`step_seed`, :func:`first_batch`);
* :mod:`~gmgan.training.ema`: the generator's moving average (:class:`EMA`);
* :mod:`~gmgan.training.gradients`: :func:`grad_norm`, :func:`frozen`;
* :mod:`~gmgan.training.run_log`: ``log.jsonl``, ``val.jsonl``, TensorBoard
  (:class:`RunLog`);
* :mod:`~gmgan.training.console`: the trainer's messages through :mod:`logging` (logger
  ``gmgan.train``; ``gmgan.train.setup`` for the start-up line);
* :mod:`~gmgan.training.graceful_stop`: Ctrl-C and SIGTERM (:class:`GracefulStop`);
* :mod:`~gmgan.training.memory`: a batch that does not fit (:func:`run_phase`,
  :class:`BatchTooLarge`);
* :mod:`~gmgan.training.validation`: validation scores on the benchmark sets;
* :mod:`~gmgan.training.phase_run`: :class:`PhaseRun`, which ties them together for
  one phase, and the :class:`PhaseResult` it returns: ``for step, lr, hr in
  run.batches(): ...; run.update("G", loss); run.finish_step(step, terms)``.
"""
from __future__ import annotations

from gmgan.training.console import messages_to
from gmgan.training.ema import EMA
from gmgan.training.environment import Env, setup
from gmgan.training.graceful_stop import GracefulStop
from gmgan.training.gradients import frozen, grad_norm
from gmgan.training.memory import FIT_STEPS, BatchTooLarge, run_phase
from gmgan.training.phase_run import PhaseResult, PhaseRun, TrainingDiverged
from gmgan.training.run_folder import RunFolderBusy, RunFolderLock
from gmgan.training.run_log import RunLog, read_jsonl
from gmgan.training.sampler import (
    StepSampler,
    first_batch,
    make_loader,
    phase_seed,
    step_seed,
)
from gmgan.training.validation import bicubic_scores, validate_model

__all__ = [
    "EMA",
    "FIT_STEPS",
    "BatchTooLarge",
    "Env",
    "GracefulStop",
    "PhaseResult",
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
    "messages_to",
    "phase_seed",
    "read_jsonl",
    "run_phase",
    "setup",
    "step_seed",
    "validate_model",
]
