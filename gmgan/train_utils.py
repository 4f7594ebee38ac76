"""The mechanics of training, kept out of :mod:`gmgan.train` so that file reads like the paper.

Here: device and ``torch.distributed`` set-up (:func:`setup`), one trainer per run folder
(:class:`RunFolderLock`, taken by :func:`setup` and released by :meth:`Env.close`), a step-indexed data order that
survives a resume (:class:`StepSampler`), the generator's moving average (:class:`EMA`), mixed
precision, the non-finite-loss guard, the out-of-memory guard of the first steps
(:func:`run_phase`: a batch that does not fit is named, with one that does), logging (JSON lines,
TensorBoard, tqdm), validation on the benchmark sets, Ctrl-C / SIGTERM handling, and
:class:`PhaseRun`, which ties them together for one phase:
``for step, lr, hr in run.batches(): ...; run.update("G", loss); run.finish_step(step, terms)``.

Reproducibility: everything random in step ``s`` is a pure function of ``(seed, phase, s)``. The
data order and crops come from :class:`StepSampler` and the dataset's per-index generator, and
the global torch generator is re-seeded at the start of every step (``step_seed``), so the
gradient penalty's random mixing weights do not depend on what ran before. A run resumed from a
checkpoint therefore repeats the uninterrupted run exactly on a CPU (GPU kernels may not be
bitwise deterministic).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import errno
import gc
import json
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from gmgan.checkpoint import (
    CheckpointError,
    checkpoint_name,
    latest_checkpoint,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from gmgan.evaluate import score_sets
from gmgan.presets import TrainConfig

__all__ = [
    "EMA",
    "BatchTooLarge",
    "Env",
    "GracefulStop",
    "PhaseRun",
    "RunFolderBusy",
    "RunFolderLock",
    "StepSampler",
    "TrainingDiverged",
    "first_batch",
    "phase_seed",
    "run_phase",
    "setup",
    "step_seed",
    "validate_model",
]

PHASE_INDEX = {"pretrain": 0, "gan": 1}


class TrainingDiverged(RuntimeError):
    """Too many consecutive steps had a non-finite loss or gradient (``max_bad_steps``)."""


class BatchTooLarge(RuntimeError):
    """The configured batch does not fit in the device's memory (an out-of-memory error in the
    first training steps). ``batch_size`` is the configured batch, ``fits`` the largest batch
    (``batch_size / 2**k``) whose probe step succeeded, or None when not even 1 did."""

    def __init__(self, message: str, *, batch_size: int, fits: int | None) -> None:
        super().__init__(message)
        self.batch_size, self.fits = batch_size, fits


# ---------------------------------------------------------------------- one trainer per run folder

class RunFolderBusy(RuntimeError):
    """Another training process (or this one) holds the run folder; the message names it."""


class RunFolderLock:
    """An exclusive lock of a run folder, so that one trainer at a time writes into it.

    Two trainers in one folder (say a ``--resume`` while the first run is still alive) would
    overwrite each other's config and logs and delete each other's temporary checkpoint folders.
    :meth:`acquire` takes an operating-system lock on ``<run_dir>/.gmgan-train.lock`` without
    waiting and writes the holder into the file (pid, host, start time, command line); a second
    trainer fails at once with :class:`RunFolderBusy` naming that holder.

    The lock is a POSIX record lock (``fcntl.lockf``), not ``flock``: a record lock belongs to
    the process that took it, is not inherited by ``fork()`` (DataLoader workers), and the
    kernel drops it the moment that process ends, also by ``kill -9``. So a file left behind by
    a killed trainer is only a note: the next trainer takes the lock and overwrites it; with
    ``flock`` the killed trainer's forked workers would hold the lock on until they noticed their
    parent's death. Record locks do not conflict within one process, and closing any descriptor
    of the file drops them, so this process keeps a table of the folders it holds (a second
    lock of one of them is refused) and opens the file only here. The file is never deleted
    (deleting a lock file lets two processes lock two different files of one name); it is
    emptied on :meth:`release`. Where ``fcntl`` does not exist (Windows) no lock is taken; on a
    file system without locks (some network / FUSE mounts) neither, with a warning.

    Use ``lock = RunFolderLock(run_dir).acquire(); ...; lock.release()`` or ``with
    RunFolderLock(run_dir): ...``. :func:`setup` takes it on rank 0 of a training run.
    """

    FILE_NAME = ".gmgan-train.lock"
    _held: ClassVar[dict[str, RunFolderLock]] = {}  # realpath of a folder -> its lock, this process

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / self.FILE_NAME
        self._key = os.path.realpath(self.run_dir)
        self._fd: int | None = None

    def acquire(self) -> RunFolderLock:
        """Take the lock (creating the folder if needed) or raise :class:`RunFolderBusy`."""
        try:
            import fcntl
        except ImportError:  # Windows: no record locks through fcntl
            return self
        if self._key in self._held:
            raise RunFolderBusy(f"{self.run_dir} is already in use by this process (pid {os.getpid()}): "
                                f"{self._advice()}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # no O_TRUNC: keep the holder's note
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.pread(fd, 4096, 0)
            os.close(fd)
            if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                # Some network and FUSE file systems have no locks: train, but say what is missing.
                warnings.warn(f"{self.path}: the file system cannot lock files ({err.strerror}); "
                              f"nothing stops a second trainer from using {self.run_dir} at the "
                              f"same time", RuntimeWarning, stacklevel=3)
                return self
            if err.errno not in (errno.EACCES, errno.EAGAIN):
                raise OSError(f"could not lock {self.path}: {err.strerror or err}") from err
            raise RunFolderBusy(f"{self.run_dir} is in use by another training process "
                                f"({self._describe(holder)}): {self._advice()}") from None
        note = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(note) + "\n").encode(), 0)
        self._fd = fd
        self._held[self._key] = self
        return self

    def release(self) -> None:
        """Empty the file and drop the lock (closing the descriptor drops it); idempotent."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)
        self._fd = None
        self._held.pop(self._key, None)

    def __enter__(self) -> RunFolderLock:  # noqa: PYI034
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    @staticmethod
    def _describe(raw: bytes) -> str:
        """'pid 123 on host h, started ..., command ...' from the holder's note."""
        try:
            note = json.loads(raw.decode())
            where = f"pid {note['pid']} on host {note['host']}"
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return "it has not written its pid yet"
        command = str(note.get("command", "?"))
        if len(command) > 160:
            command = command[:157] + "..."
        return f"{where}, started {note.get('started', '?')}: {command}"

    def _advice(self) -> str:
        return ("two trainers in one run folder delete each other's checkpoints. Wait for that "
                "run to end (or stop it), then continue it with --resume (resume=True); or train "
                "into another folder (--name / --out-dir).")


# ---------------------------------------------------------------------- device and processes

@dataclass
class Env:
    """Where training runs: the device, this process's rank and the world size, the run folder."""

    cfg: TrainConfig
    device: torch.device
    run_dir: Path
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_process_group: bool = False
    _benchmarks: dict[str, list] = field(default_factory=dict)
    steps_done: int = 0  # training steps completed in this process (all phases, this call)
    lock: RunFolderLock | None = None  # held by the main process from setup() to close()

    @property
    def is_main(self) -> bool:
        """True on the process that logs, validates and writes checkpoints (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_true(self, flag: bool) -> bool:
        """``flag`` and-ed over all processes (every process must call this at the same point)."""
        if not self.distributed:
            return bool(flag)
        t = torch.tensor([0 if flag else 1], device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item()) == 0

    def all_true_each(self, flags: list[bool]) -> list[bool]:
        """Each flag and-ed over all processes, in one collective."""
        if not self.distributed:
            return [bool(f) for f in flags]
        t = torch.tensor([0 if f else 1 for f in flags],
                         device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [v == 0 for v in t.tolist()]

    def any_true(self, flag: bool) -> bool:
        return not self.all_true(not flag)

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Average a tensor over processes (for logging losses measured on each process's share)."""
        if not self.distributed:
            return values
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values / self.world_size

    def phase_dir(self, phase: str) -> Path:
        """``<run_dir>/<phase>``: the folder of one phase's weights, logs and checkpoints."""
        return self.run_dir / phase

    def place(self, module: nn.Module) -> nn.Module:
        """Move a freshly built network to the device (and to channels-last if configured)."""
        module = module.to(self.device)
        if self.cfg.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def close(self) -> None:
        """Release the run folder and leave the process group this Env created."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        if self.owns_process_group and dist.is_initialized():
            dist.destroy_process_group()


def _pick_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={name!r} but CUDA is not available; use device=auto or cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def setup(cfg: TrainConfig) -> Env:
    """Pick the device and, when launched by ``torchrun`` (``WORLD_SIZE`` > 1), join the process
    group: NCCL on CUDA, gloo on CPU. One process per GPU: ``cuda:LOCAL_RANK``. The main process
    then locks the run folder (:class:`RunFolderLock`, creating the folder); call
    :meth:`Env.close` to release it.

    Raises:
        RunFolderBusy: another process trains in the run folder (on every rank of a job).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _pick_device(cfg.device, local_rank)
    owns = False
    if world_size > 1:
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            owns = True
        rank, world_size = dist.get_rank(), dist.get_world_size()
        if cfg.batch_size % world_size:
            raise ValueError(f"batch_size={cfg.batch_size} is the global batch and must divide "
                             f"evenly over {world_size} processes")
    env = Env(cfg, device, cfg.run_dir(), rank, world_size, local_rank, owns)
    refused = None
    if env.is_main:
        try:
            env.lock = RunFolderLock(env.run_dir).acquire()
        except RunFolderBusy as err:
            refused = err
    if not env.all_true(refused is None):  # every rank of a job stops, not only rank 0
        env.close()
        raise refused or RunFolderBusy(f"rank 0 could not lock the run folder {env.run_dir}: "
                                       f"another training process holds it (see rank 0's error)")
    return env


def phase_seed(seed: int, phase: str) -> int:
    """The seed of a phase's data order and crops (:class:`StepSampler`, the dataset)."""
    return 2 * seed + PHASE_INDEX[phase]


def step_seed(seed: int, phase: str, step: int, rank: int = 0) -> int:
    """The seed of all random draws of one step, a pure function of its arguments (63 bits)."""
    ss = np.random.SeedSequence([seed, PHASE_INDEX[phase], step, rank])
    return int(ss.generate_state(2, dtype=np.uint32).astype(np.uint64) @ np.array([1 << 31, 1], np.uint64))


# ---------------------------------------------------------------------- data order

class StepSampler:
    """A batch sampler whose batch for step ``s`` depends on ``(seed, s)`` only, so that training
    can restart at any step and see the same data as an uninterrupted run.

    Samples form an endless stream: pass ``e`` over the ``num_images`` images visits them in the
    order ``perm_e`` (a permutation seeded by ``(seed, e)``); the global batch of step ``s``
    (0-based) is stream positions ``s*B .. s*B+B-1``. Position ``p`` becomes the dataset index
    ``e*num_images + perm_e[p % num_images]`` with ``e = p // num_images``: image
    ``index % num_images`` as :class:`gmgan.data.PatchPairs` reads it, and a new random crop in
    every pass (the dataset seeds its crops by index). The dataset must therefore have
    ``len >= num_images * passes`` (:meth:`dataset_length`).

    With ``world_size`` K, process ``rank`` takes the ``rank``-th of K equal slices of each
    global batch, so K processes together see exactly the single-process batches.

    Iterating yields lists of indices for steps ``start .. end-1``.
    """

    def __init__(self, num_images: int, batch_size: int, *, seed: int = 0, start: int = 0,
                 end: int | None = None, rank: int = 0, world_size: int = 1) -> None:
        if num_images < 1 or batch_size < 1:
            raise ValueError(f"StepSampler needs num_images >= 1 and batch_size >= 1, got "
                             f"{num_images}, {batch_size}")
        if batch_size % world_size:
            raise ValueError(f"global batch {batch_size} does not split over {world_size} processes")
        self.n, self.batch, self.seed = num_images, batch_size, seed
        self.start, self.end = start, end
        self.rank, self.world = rank, world_size
        self._perms: dict[int, np.ndarray] = {}

    def dataset_length(self, steps: int) -> int:
        """The dataset length that covers ``steps`` steps."""
        passes = (steps * self.batch + self.n - 1) // self.n + 1
        return self.n * passes

    def _perm(self, e: int) -> np.ndarray:
        if e not in self._perms:
            if len(self._perms) > 4:
                self._perms.pop(min(self._perms))
            self._perms[e] = np.random.default_rng([self.seed, e]).permutation(self.n)
        return self._perms[e]

    def global_batch(self, step: int) -> list[int]:
        """Dataset indices of the whole batch of 0-based ``step``."""
        out = []
        for p in range(step * self.batch, (step + 1) * self.batch):
            e, j = divmod(p, self.n)
            out.append(e * self.n + int(self._perm(e)[j]))
        return out

    def __iter__(self) -> Iterator[list[int]]:
        share = self.batch // self.world
        step = self.start
        while self.end is None or step < self.end:
            yield self.global_batch(step)[self.rank * share:(self.rank + 1) * share]
            step += 1

    def __len__(self) -> int:
        if self.end is None:
            raise TypeError("an endless StepSampler has no length")
        return max(0, self.end - self.start)


def first_batch(dataset: Dataset, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole (global) batch of a phase's first step as :meth:`PhaseRun.batches` serves it:
    ``(lr, hr)`` stacked on the CPU. ``seed`` is the phase's (:func:`phase_seed`), and ``dataset``
    must be made with it; its crops depend on the index only, so this is the training batch."""
    sampler = StepSampler(len(dataset), batch_size, seed=seed)
    items = [dataset[i] for i in sampler.global_batch(0)]
    return torch.stack([lr for lr, _ in items]), torch.stack([hr for _, hr in items])


def _leave_sigterm_to_the_trainer(worker_id: int) -> None:
    """DataLoader workers ignore SIGTERM. Slurm and ``kill -- -PGID`` signal every process
    of a job: a worker ended by it would stop the trainer with an error before
    :class:`GracefulStop` wrote its checkpoint. The trainer ends its workers itself, and
    they exit when it dies."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(dataset: Dataset, sampler: StepSampler, *, num_workers: int, pin_memory: bool) -> DataLoader:
    """A DataLoader over ``sampler``'s batches: workers prefetch, pinned memory for fast copies."""
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs = {"prefetch_factor": 4, "persistent_workers": False,
                  "worker_init_fn": _leave_sigterm_to_the_trainer}
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                      pin_memory=pin_memory, **kwargs)


# ---------------------------------------------------------------------- EMA

class EMA:
    """Exponential moving average of a model's weights (Polyak averaging).

    After every optimiser step: ``ema = decay * ema + (1 - decay) * param`` for each parameter;
    buffers are copied. ``decay`` 0.999 averages over roughly the last 1000 updates; the averaged
    generator is smoother and usually scores higher than the raw one (BasicSR does the same).
    ``self.module`` is a frozen copy in eval mode, ready for validation or saving.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema = list(self.module.parameters())
        new = [p.detach() for p in model.parameters()]
        # lerp(ema, p, w) = ema + w * (p - ema) = (1 - w) * ema + w * p with w = 1 - decay
        torch._foreach_lerp_(ema, new, 1.0 - self.decay)
        for b_ema, b in zip(self.module.buffers(), model.buffers()):
            b_ema.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)


# ---------------------------------------------------------------------- small helpers

def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``log.jsonl`` / ``val.jsonl`` file ([] when there is none); a line cut short
    by a crash is left out."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            rows.append(json.loads(line))
    return rows


def grad_norm(params: list[nn.Parameter]) -> torch.Tensor:
    """The L2 norm of all gradients together (a 0-d tensor; inf or nan if any gradient is)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros((), device=params[0].device if params else "cpu")
    total_norm = getattr(torch.nn.utils, "get_total_norm", None)
    if total_norm is not None:
        return total_norm(grads, 2.0)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Switch off ``requires_grad`` of a module's parameters inside the block (the critic while
    the generator learns: gradients still flow through it to its input, none are stored)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


# The signals that stop training gracefully, and how messages name them.
_STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class GracefulStop:
    """Context manager: the first Ctrl-C (SIGINT) or SIGTERM only sets ``requested``;
    the trainer finishes the step, writes a checkpoint and returns. A second Ctrl-C
    interrupts at once. SIGTERM is what ``kill``, ``docker stop`` and Slurm preemption
    send (torchrun passes it on to every rank, each of which stops here; the ranks agree
    on the step through ``env.any_true``). A repeated SIGTERM changes nothing: senders
    repeat it (Slurm signals the workers and torchrun forwards its own copy) and follow
    it with SIGKILL when they will wait no longer. The previous handlers are restored on
    exit. Outside the main thread (where signals cannot be caught) it does nothing."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:
        if self.requested:
            if signum == signal.SIGINT:
                signal.signal(signal.SIGINT, self._previous.get(signal.SIGINT)
                              or signal.default_int_handler)
                raise KeyboardInterrupt
            return  # a repeated SIGTERM: the checkpoint is already on its way
        self.requested = True
        name = _STOP_SIGNALS.get(signum, f"signal {signum}")
        again = ("Ctrl-C again to abort without one" if signum == signal.SIGINT
                 else "Ctrl-C to abort without one")
        print(f"\n{name}: finishing this step and writing a checkpoint ({again})",
              file=sys.stderr, flush=True)

    def __enter__(self) -> GracefulStop:  # noqa: PYI034
        if threading.current_thread() is threading.main_thread():
            for signum in _STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            # None: a handler not installed from Python; the default is the best guess
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous = {}


def _to_float(value: Any) -> float:
    return float(value.detach().float().cpu()) if isinstance(value, torch.Tensor) else float(value)


# ---------------------------------------------------------------------- logging

class RunLog:
    """``log.jsonl`` / ``val.jsonl`` in a phase folder, TensorBoard next to them, and the
    in-memory history. Only the main process writes; the others get ``enabled=False``."""

    def __init__(self, phase_dir: Path, *, enabled: bool, tensorboard: bool, resume_step: int | None,
                 on_error: str = "stop") -> None:
        self.enabled = enabled
        self.on_error = on_error  # "stop" or "continue", as TrainConfig.on_save_error
        self._write_failed = False
        self.history: list[dict[str, Any]] = []
        self.validation: list[dict[str, Any]] = []
        self.train_path, self.val_path = phase_dir / "log.jsonl", phase_dir / "val.jsonl"
        self.writer = None
        if not enabled:
            return
        phase_dir.mkdir(parents=True, exist_ok=True)
        # On resume, keep what the checkpoint covers and drop rows written after it.
        keep = -1 if resume_step is None else resume_step
        self.history = self._rewrite(self.train_path, keep)
        self.validation = self._rewrite(self.val_path, keep)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(phase_dir / "tb"), purge_step=None if resume_step is None
                                            else resume_step + 1)
            except ImportError:
                warnings.warn("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)",
                              stacklevel=2)

    @staticmethod
    def _rewrite(path: Path, keep_until: int) -> list[dict[str, Any]]:
        rows = [r for r in read_jsonl(path) if r.get("step", 0) <= keep_until] if keep_until >= 0 else []
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return rows

    def _append(self, path: Path, row: dict[str, Any]) -> None:
        """Append one JSON line. A write error (disk full) names the file; with
        ``on_save_error="continue"`` it is a warning (once) and the row stays in memory only."""
        try:
            with open(path, "a") as f:
                f.write(json.dumps(row) + "\n")
        except OSError as err:
            message = f"could not write the training log {path}: {err.strerror or err}"
            if self.on_error != "continue":
                error = OSError(message)  # one argument: str() is the message, no "[Errno N]"
                error.errno = err.errno
                raise error from err
            if not self._write_failed:
                warnings.warn(f"{message}. Training continues; the log rows are kept in memory "
                              f"only (on_save_error='continue').", RuntimeWarning, stacklevel=3)
            self._write_failed = True

    def train_row(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.history.append(row)
        self._append(self.train_path, row)
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("step", "phase") and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"train/{key}", value, row["step"])

    def val_row(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.validation.append(row)
        self._append(self.val_path, row)
        if self.writer is not None:
            for key, value in row.items():
                if isinstance(value, float) and math.isfinite(value):
                    self.writer.add_scalar(f"val_{row['model']}/{row['set']}/{key}", value, row["step"])

    def image(self, tag: str, grid: torch.Tensor, step: int) -> None:
        if self.enabled and self.writer is not None:
            self.writer.add_image(tag, grid, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


# ---------------------------------------------------------------------- validation

def _load_val_sets(env: Env) -> dict[str, list]:
    from gmgan.data import load_benchmark

    for name in env.cfg.val_sets:
        if name not in env._benchmarks:
            env._benchmarks[name] = load_benchmark(name, scale=env.cfg.scale, limit=env.cfg.val_limit)
    return {name: env._benchmarks[name] for name in env.cfg.val_sets}


@torch.no_grad()
def super_resolve(model: nn.Module, lr: np.ndarray, device: torch.device) -> np.ndarray:
    """Run ``model`` on one LR image: numpy uint8 H x W x 3 (or H x W grey, fed as R = G = B) ->
    uint8 sH x sW x 3, in float32, whole image at once."""
    from gmgan.imageio import image_to_tensor, tensor_to_image

    x = image_to_tensor(lr).to(device)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    sr = model(x).float().nan_to_num_(0.0)
    return tensor_to_image(sr)


def validate_model(model: nn.Module, sets: Mapping[str, list], device: torch.device, *,
                   scale: int, niqe: bool = False) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Mean PSNR (dB), SSIM and GMSD of ``model`` on each benchmark set (and NIQE if asked and
    its parameter file is available).

    PSNR/SSIM on the Y channel with a ``scale``-pixel border removed (:mod:`gmgan.metrics`);
    grey images (Set14 ``bridge``) go through the model as R = G = B and are scored as R = G = B
    (:data:`gmgan.metrics.GREY_DEFAULT`, as ``gmgan eval`` does), the GMGAN paper's convention
    (bicubic Set14: 26.09 dB).

    Returns ``({set: {"psnr", "ssim", "gmsd"[, "niqe"]}}, notes)``, notes saying why a metric
    was skipped. ``model`` is put in eval mode and back.
    """
    was_training = model.training
    model.eval()
    try:
        return _score_sets(sets, lambda lr: super_resolve(model, lr, device), scale=scale, niqe=niqe)
    finally:
        model.train(was_training)


def bicubic_scores(sets: Mapping[str, list], *, scale: int, niqe: bool = False) -> dict[str, dict[str, float]]:
    """The same scores for MATLAB-style bicubic upsampling (:func:`gmgan.imresize`): the baseline."""
    from gmgan.resize import imresize

    def upsample(lr: np.ndarray) -> np.ndarray:
        return imresize(np.repeat(lr[:, :, None], 3, axis=2) if lr.ndim == 2 else lr, scale)

    return _score_sets(sets, upsample, scale=scale, niqe=niqe)[0]


def _score_sets(sets: Mapping[str, list], upsample: Callable[[np.ndarray], np.ndarray], *, scale: int,
                niqe: bool) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """The scores of :func:`validate_model` for any ``upsample(lr) -> sr`` (uint8 RGB
    images), through :func:`gmgan.evaluate.score_sets`. NIQE of an image where it fails
    (the flat output of an untrained model) is NaN, with a note; without its parameter
    file or pyiqa NIQE is skipped, with a note."""
    metrics = ("psnr", "ssim", "gmsd") + (("niqe",) if niqe else ())
    scores = score_sets(upsample, sets, metrics, border=scale, nan_on_failure={"niqe"})
    return scores.means(), scores.notes


def _preview(model: nn.Module, image, device: torch.device, scale: int, size: int = 128) -> torch.Tensor:
    """A 3-panel image for TensorBoard: LR (nearest-upsampled) | SR | HR, a centre crop."""
    from torchvision.utils import make_grid

    from gmgan.imageio import image_to_tensor

    lr = image.lr if image.lr.ndim == 3 else np.repeat(image.lr[:, :, None], 3, axis=2)
    hr = image.hr if image.hr.ndim == 3 else np.repeat(image.hr[:, :, None], 3, axis=2)
    p = min(size // scale, lr.shape[0], lr.shape[1])
    y, x = (lr.shape[0] - p) // 2, (lr.shape[1] - p) // 2
    lr_t = image_to_tensor(np.ascontiguousarray(lr[y:y + p, x:x + p])).to(device)
    hr_t = image_to_tensor(np.ascontiguousarray(hr[scale * y:scale * (y + p), scale * x:scale * (x + p)]))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        sr_t = model(lr_t).float().clamp(0, 1).cpu()
    model.train(was_training)
    up = torch.nn.functional.interpolate(lr_t.cpu(), scale_factor=scale, mode="nearest")
    return make_grid(torch.cat([up, sr_t, hr_t]), nrow=3, padding=2)


# ---------------------------------------------------------------------- a batch that does not fit

#: An out-of-memory error before this many steps of a phase have completed (in this call) means the
#: batch does not fit; later ones (fragmentation, validation) are raised as they are.
FIT_STEPS = 3


def _release_memory(device: torch.device) -> None:
    """Free what a failed step left behind (its tensors die with the traceback: collect them)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _memory_text(device: torch.device) -> str:
    if device.type != "cuda":
        return str(device)
    free, total = torch.cuda.mem_get_info(device)
    return (f"{device} ({torch.cuda.get_device_name(device)}: {total / 2**30:.1f} GiB, "
            f"{free / 2**30:.1f} GiB free now)")


def _probe_fits(run: Callable[[TrainConfig, Env], Any], cfg: TrainConfig, env: Env, batch: int,
                overrides: Mapping[str, Any]) -> bool:
    """Run one step of the phase with ``batch`` samples in a throw-away folder; False on OOM."""
    folder = Path(tempfile.mkdtemp(prefix=".fit-probe-", dir=env.run_dir))
    probe = dataclasses.replace(cfg, batch_size=batch, out_dir=str(folder), resume=False,
                                pretrain_iters=1, gan_iters=1, ckpt_every=0, val_every=0,
                                val_sets=(), tensorboard=False, progress=False, **overrides)
    probe_env = dataclasses.replace(env, cfg=probe, run_dir=folder, _benchmarks={}, lock=None)
    fits = True
    try:
        run(probe, probe_env)
    except torch.cuda.OutOfMemoryError:
        fits = False
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _release_memory(env.device)
    return fits


def run_phase(phase: str, run: Callable[[TrainConfig, Env], dict[str, Any]], cfg: TrainConfig,
              env: Env, *, probe_overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``run(cfg, env)`` (one phase of :mod:`gmgan.train`), with a clear error for a batch that
    does not fit in memory.

    An out-of-memory error (``torch.cuda.OutOfMemoryError``) before :data:`FIT_STEPS` steps of the
    phase have completed stops the phase; the batch is then halved, and one probe step of the
    phase (in a temporary folder, removed afterwards) tried at a time, until one fits.
    ``probe_overrides`` are config fields for the probe runs (e.g. the phase-1 weights the
    ``gan`` phase starts from). In a ``torchrun`` job the error is raised as it is.

    Raises:
        BatchTooLarge: naming the batch, the device and its memory, and the batch that fits.
    """
    before = env.steps_done
    try:
        return run(cfg, env)
    except torch.cuda.OutOfMemoryError:
        if env.distributed or env.steps_done - before >= FIT_STEPS:
            raise
    # Outside the except block the failed step's traceback, and with it its tensors, are gone.
    _release_memory(env.device)
    tried: list[int] = []
    fits = None
    batch = cfg.batch_size // 2
    while batch >= 1 and fits is None:
        tried.append(batch)
        if _probe_fits(run, cfg, env, batch, probe_overrides or {}):
            fits = batch
        batch //= 2
    where = (f"batch_size={cfg.batch_size} does not fit in the memory of {_memory_text(env.device)} "
             f"in phase '{phase}' (num_feat={cfg.num_feat}, num_block={cfg.num_block}, "
             f"patch_size={cfg.patch_size}, amp={cfg.amp}): out of memory in its first steps")
    probes = f"one probe step each with {', '.join(map(str, tried))}" if tried else "no smaller batch"
    if fits is not None:
        advice = (f". A batch of {fits} fits ({probes}): run again with --batch-size {fits} "
                  f"(batch_size={fits}), or keep the batch and lower patch_size or use amp=bf16.")
    else:
        advice = (f"; even a batch of 1 does not fit ({probes}): lower patch_size, num_feat or "
                  f"num_block, use amp=bf16, or a device with more memory.")
    raise BatchTooLarge(where + advice, batch_size=cfg.batch_size, fits=fits)


# ---------------------------------------------------------------------- one phase

class PhaseRun:
    """Everything around the update rule of one phase.

    Give it the networks, their optimisers and a learning-rate halving period; it wraps the
    networks for training (DDP, ``torch.compile``), resumes from the newest checkpoint when
    ``cfg.resume``, and serves batches. The phase's code then only says what a step computes::

        for step, lr, hr in run.batches():      # step = 1 .. total (number of updates made)
            loss = ...
            run.update("G", loss)               # backward, NaN guard, optimiser step
            run.finish_step(step, terms)        # lr schedule, EMA, log, validate, checkpoint
        return run.finish()                     # final checkpoint, validation, weight files

    ``run.nets[name]`` is the network to call for training (wrapped), ``run.raw[name]`` the plain
    module (for frozen use and saving), ``run.ema`` the EMA of ``"G"`` (``None`` if
    ``cfg.ema_decay`` is 0).
    """

    def __init__(self, phase: str, cfg: TrainConfig, env: Env, stop: GracefulStop, *,
                 total: int, nets: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                 halve_every: int, dataset_factory) -> None:
        self.phase, self.cfg, self.env, self.stop, self.total = phase, cfg, env, stop, total
        self.dir = env.phase_dir(phase)
        self.ckpt_dir = self.dir / "checkpoints"
        self.raw = dict(nets)
        self.optimizers = optimizers
        self.schedulers = {k: torch.optim.lr_scheduler.StepLR(o, step_size=halve_every, gamma=0.5)
                           for k, o in optimizers.items()}
        # GradScaler only for fp16 (bf16 has float32's exponent range and needs no scaling);
        # disabled, it passes everything through unchanged.
        self.scalers = {k: torch.amp.GradScaler(env.device.type, enabled=cfg.amp == "fp16")
                        for k in optimizers}
        self.ema = EMA(self.raw["G"], cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.start = 0
        self.bad_in_a_row = 0
        self._step_bad = False
        self._norm_tensors: dict[str, torch.Tensor] = {}
        self._saved_step: int | None = None
        self._t0 = time.perf_counter()
        self.interrupted = False

        resume_from = self._resume_point()
        if resume_from is not None:
            self._load(resume_from)
        self.log = RunLog(self.dir, enabled=env.is_main, tensorboard=cfg.tensorboard,
                          resume_step=self.start if resume_from is not None else None,
                          on_error=cfg.on_save_error)
        self.nets = {k: self._wrap(k, m) for k, m in self.raw.items()}
        self.dataset_factory = dataset_factory
        self._bar = None

    # -- set-up

    def _wrap(self, name: str, module: nn.Module) -> nn.Module:
        module.train()
        # Only the generator is compiled: the critic's gradient penalty differentiates twice
        # (create_graph=True), which compiled graphs do not support.
        wrapped = torch.compile(module) if self.cfg.compile and name == "G" else module
        if self.env.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.env.device.index] if self.env.device.type == "cuda" else None
            wrapped = DDP(wrapped, device_ids=ids)
        return wrapped

    def _resume_point(self) -> Path | None:
        if not self.cfg.resume:
            return None
        return latest_checkpoint(self.ckpt_dir)

    def _check_networks(self, path: Path, ckpt: Mapping[str, Any]) -> None:
        """Refuse a checkpoint whose networks differ from this run's, naming the fields."""
        saved = ckpt["extra"].get("config") or {}
        fields = ("scale", "num_feat", "num_block", "num_grow") + (
            ("d_num_feat", "d_norm", "patch_size") if "D" in self.raw else ())
        diff = [f"{k}={saved[k]!r} (this run: {getattr(self.cfg, k)!r})" for k in fields
                if k in saved and saved[k] != getattr(self.cfg, k)]
        missing = [name for name in self.raw if name not in ckpt["models"]]
        if diff or missing:
            what = ", ".join(diff) if diff else f"no weights for {', '.join(missing)}"
            raise CheckpointError(f"{path} does not match this run's networks: it was written with "
                                  f"{what}. Resume with the checkpoint's values, or start a new run "
                                  f"(another name / out_dir).")

    def _load(self, path: Path) -> None:
        ckpt = load_checkpoint(path, map_location=self.env.device)
        if ckpt["extra"].get("phase") != self.phase:
            raise CheckpointError(f"{path} is a checkpoint of phase {ckpt['extra'].get('phase')!r}, "
                                  f"not {self.phase!r}")
        self._check_networks(path, ckpt)
        for name, module in self.raw.items():
            try:
                module.load_state_dict(ckpt["models"][name])
            except RuntimeError as err:  # a mismatch the config fields above do not show
                first = str(err).strip().splitlines()
                raise CheckpointError(f"{path}: the {name} weights do not fit this run's network: "
                                      f"{' '.join(first[:3])}") from err
        if self.ema is not None and "G_ema" in ckpt["models"]:
            self.ema.load_state_dict(ckpt["models"]["G_ema"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(ckpt["optimizers"][name])
            self.schedulers[name].load_state_dict(ckpt["schedulers"][name])
            self.scalers[name].load_state_dict(ckpt["optimizers"][f"scaler_{name}"])
        restore_rng(ckpt["rng"])
        self.start = int(ckpt["step"])
        self.bad_in_a_row = int(ckpt["extra"].get("bad_in_a_row", 0))
        # The phase's clock goes on from the checkpoint: its seconds are the time spent training,
        # summed over the calls that resumed it (not the time between a crash and its resume).
        self._t0 = time.perf_counter() - float(ckpt["extra"].get("seconds", 0.0))
        if self.env.is_main:
            print(f"[{self.phase}] resuming from {path} (step {self.start} of {self.total})",
                  file=sys.stderr, flush=True)

    @property
    def complete(self) -> bool:
        """True when this phase's checkpoint already covers all its steps (nothing to train)."""
        return self.start >= self.total

    # -- the loop

    def autocast(self):
        """Autocast for the configured mixed precision (a no-op for ``amp="none"``)."""
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.cfg.amp)
        return torch.autocast(self.env.device.type, dtype=dtype, enabled=dtype is not None)

    def batches(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(step, lr, hr)`` for the steps still to do; ``step`` counts from 1. Stops early after
        Ctrl-C (once the step in progress is done)."""
        if self.complete:
            return
        cfg, env = self.cfg, self.env
        seed = phase_seed(cfg.seed, self.phase)
        dataset = self.dataset_factory(seed)
        sampler = StepSampler(len(dataset), cfg.batch_size, seed=seed, start=self.start, end=self.total,
                              rank=env.rank, world_size=env.world_size)
        # PatchPairs draws a fresh crop for every index and reads image ``index % n``: stretch it
        # to as many passes over the images as the phase needs (see StepSampler).
        dataset.length = sampler.dataset_length(self.total)
        loader = make_loader(dataset, sampler, num_workers=cfg.num_workers,
                             pin_memory=env.device.type == "cuda")
        from tqdm.auto import tqdm

        self._bar = tqdm(total=self.total, initial=self.start, desc=self.phase, unit="it",
                         mininterval=1.0, dynamic_ncols=True, disable=not (env.is_main and cfg.progress))
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        try:
            for step, (lr, hr) in enumerate(loader, start=self.start + 1):
                torch.manual_seed(step_seed(cfg.seed, self.phase, step, env.rank))
                lr = lr.to(env.device, non_blocking=True).contiguous(memory_format=fmt)
                hr = hr.to(env.device, non_blocking=True).contiguous(memory_format=fmt)
                self._step_bad = False
                yield step, lr, hr
                if self.interrupted:
                    break
        finally:
            self._bar.close()

    def update(self, name: str, loss: torch.Tensor) -> bool:
        """One optimiser step of network ``name`` on ``loss``: backward (scaled for fp16), the
        gradient norm, and the step itself unless the loss or a gradient is inf/NaN (then the
        step counts as bad, see ``max_bad_steps``). Returns whether the update was made."""
        opt, scaler = self.optimizers[name], self.scalers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)  # true gradients, for the norm; a no-op without fp16
        norm = grad_norm([p for group in opt.param_groups for p in group["params"]])
        self._norm_tensors[name] = norm.detach()
        # One host sync for both checks; in DDP every process must take the same decision.
        flags = torch.stack([torch.isfinite(loss.detach().float()), torch.isfinite(norm.float())])
        loss_ok, grads_ok = self.env.all_true_each(flags.tolist())
        if scaler.is_enabled():
            # fp16: an overflow in the gradients is routine; GradScaler skips that step by itself
            # and lowers its scale. Only a non-finite *loss* counts as a bad step.
            scaler.step(opt)
            made, bad = grads_ok, not loss_ok
        else:
            made = bad_free = loss_ok and grads_ok
            if made:
                opt.step()
            bad = not bad_free
        scaler.update()
        if bad:
            self._step_bad = True
            warnings.warn(f"[{self.phase}] non-finite {name} loss or gradient (loss={_to_float(loss):.4g}, "
                          f"grad norm={_to_float(norm):.4g}): update skipped "
                          f"({self.bad_in_a_row + 1} bad step(s) in a row)", RuntimeWarning, stacklevel=2)
        if made and name == "G" and self.ema is not None:
            self.ema.update(self.raw["G"])
        return made

    def finish_step(self, step: int, terms: Mapping[str, Any]) -> None:
        """Book-keeping after step ``step``: the non-finite guard, the learning-rate schedule,
        logging, periodic validation and checkpoints, and Ctrl-C."""
        cfg, env = self.cfg, self.env
        env.steps_done += 1
        lrs = {name: opt.param_groups[0]["lr"] for name, opt in self.optimizers.items()}
        for sched in self.schedulers.values():
            with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()" after a skip
                warnings.simplefilter("ignore", UserWarning)
                sched.step()
        if self._step_bad:
            self.bad_in_a_row += 1
            if self.bad_in_a_row >= cfg.max_bad_steps:
                last = latest_checkpoint(self.ckpt_dir)
                raise TrainingDiverged(
                    f"[{self.phase}] {self.bad_in_a_row} consecutive steps (up to step {step}) had a "
                    f"non-finite loss or gradient; training stopped. Last good checkpoint: "
                    f"{last or 'none'}. Try a lower learning rate or amp='none'/'bf16', then resume.")
        else:
            self.bad_in_a_row = 0
        self._bar.update(1)
        if step % cfg.log_every == 0 or step == self.total:
            self._log(step, terms, lrs)
        self.interrupted = env.any_true(self.stop.requested)
        if self.interrupted:
            self.save(step)
            return
        if cfg.ckpt_every and step % cfg.ckpt_every == 0 and step != self.total:
            self.save(step)
        if cfg.val_every and step % cfg.val_every == 0 and step != self.total:
            self.validate(step)

    def _log(self, step: int, terms: Mapping[str, Any], lrs: Mapping[str, float]) -> None:
        keys = sorted(terms)
        values = torch.stack([terms[k].detach().float().reshape(()) if isinstance(terms[k], torch.Tensor)
                              else torch.tensor(float(terms[k])) for k in keys]).to(self.env.device)
        values = self.env.mean(values).cpu().tolist()
        row: dict[str, Any] = {"phase": self.phase, "step": step}
        row.update({k: v for k, v in zip(keys, values)})
        row.update({f"lr_{k}": v for k, v in lrs.items()})
        row.update({f"grad_norm_{k}": _to_float(v) for k, v in self._norm_tensors.items()})
        row["bad_in_a_row"] = self.bad_in_a_row
        row["seconds"] = round(time.perf_counter() - self._t0, 3)
        self.log.train_row(row)
        if self._bar is not None and self.env.is_main:
            self._bar.set_postfix({k: f"{row[k]:.4g}" for k in keys if k in ("total", "mse", "wasserstein")},
                                  refresh=False)

    # -- validation, checkpoints, the end

    def eval_model(self) -> nn.Module:
        """The generator to validate: the EMA copy when there is one, else the raw generator."""
        return self.ema.module if self.ema is not None else self.raw["G"]

    def validate(self, step: int, *, final: bool = False) -> None:
        """Score the generator(s) on ``cfg.val_sets`` (main process only; the others wait)."""
        cfg, env = self.cfg, self.env
        if cfg.val_sets and env.is_main:
            sets = _load_val_sets(env)
            models = {"G_ema": self.ema.module} if self.ema is not None else {}
            if final or self.ema is None:
                models["G"] = self.raw["G"]
            for tag, model in models.items():
                scores, notes = validate_model(model, sets, env.device, scale=cfg.scale, niqe=final)
                for set_name, values in scores.items():
                    self.log.val_row({"phase": self.phase, "step": step, "model": tag,
                                      "set": set_name, **values, **({"notes": notes} if notes else {})})
                if notes and final:
                    print(f"[{self.phase}] " + "; ".join(notes.values()), file=sys.stderr)
            first = sets[cfg.val_sets[0]]
            if first and self.log.writer is not None:
                self.log.image(f"{self.phase}/{cfg.val_sets[0]}_{first[0].name}",
                               _preview(self.eval_model(), first[0], env.device, cfg.scale), step)
        env.barrier()

    def save(self, step: int) -> Path | None:
        """Write a checkpoint of everything needed to resume (main process only)."""
        cfg, env = self.cfg, self.env
        if self._saved_step == step:
            return None
        error = None
        path = None
        if env.is_main:
            models = dict(self.raw)
            if self.ema is not None:
                models["G_ema"] = self.ema.module
            optimizers: dict[str, Any] = dict(self.optimizers)
            optimizers.update({f"scaler_{k}": s for k, s in self.scalers.items()})
            try:
                path = save_checkpoint(self.ckpt_dir, step, models=models, optimizers=optimizers,
                                       schedulers=self.schedulers, keep_last=cfg.keep_last,
                                       extra={"phase": self.phase, "config": cfg.to_dict(),
                                              "bad_in_a_row": self.bad_in_a_row,
                                              "world_size": env.world_size,
                                              "seconds": time.perf_counter() - self._t0})
            except CheckpointError as err:
                error = err
        failed = env.any_true(error is not None)
        if failed:
            if cfg.on_save_error == "stop":
                raise error if error is not None else CheckpointError(
                    f"[{self.phase}] the main process could not write the checkpoint of step {step}")
            if error is not None:
                warnings.warn(f"{error} Training continues without this checkpoint "
                              f"(on_save_error='continue').", RuntimeWarning, stacklevel=2)
            return None
        self._saved_step = step
        return path

    def finish(self) -> dict[str, Any]:
        """End of the phase (or of an interrupted run): checkpoint, final validation and the
        weight files ``G.safetensors``, ``G_ema.safetensors`` (and ``D.safetensors``)."""
        env = self.env
        seconds = time.perf_counter() - self._t0
        weights: dict[str, Path] = {}
        if self.interrupted:
            step = self._saved_step
            if env.is_main:
                print(f"\n[{self.phase}] stopped at step {step} of {self.total}; checkpoint in "
                      f"{self.ckpt_dir}. To continue, run the same command with --resume "
                      f"(gmgan train ... --resume), or train(dataclasses.replace(cfg, resume=True)).",
                      file=sys.stderr, flush=True)
        else:
            if not self.complete:
                self.save(self.total)
            # A phase finished in an earlier call was validated then (only rank 0 knows).
            already = env.any_true(any(r.get("step") == self.total and r.get("model") == "G"
                                       for r in self.log.validation))
            if not already:
                self.validate(self.total, final=True)
            if env.is_main:
                weights = self._write_weights()
            env.barrier()
        self.log.close()
        return {"weights": weights, "history": self.log.history, "validation": self.log.validation,
                "seconds": seconds, "interrupted": self.interrupted}

    def _write_weights(self) -> dict[str, Path]:
        try:
            return self._write_weight_files()
        except Exception as err:  # safetensors reports a full disk as its own error
            for leftover in self.dir.glob("*.safetensors.tmp"):
                leftover.unlink(missing_ok=True)
            last = latest_checkpoint(self.ckpt_dir)
            if last is not None and last.name == checkpoint_name(self.total):
                where = f"The checkpoint {last} holds them"
            else:  # the final checkpoint failed as well (on_save_error="continue")
                where = (f"The newest checkpoint is {last or 'none'}; the steps after it are "
                         f"done again")
            raise CheckpointError(f"[{self.phase}] could not write the final weights in {self.dir}: "
                                  f"{err}. {where}: make room and run the same command with "
                                  f"--resume.") from err

    def _write_weight_files(self) -> dict[str, Path]:
        from safetensors.torch import save_file

        from gmgan.nets import save_generator

        out = {"G": save_generator(self.raw["G"], self.dir / "G.safetensors")}
        if self.ema is not None:
            out["G_ema"] = save_generator(self.ema.module, self.dir / "G_ema.safetensors")
        if "D" in self.raw:
            d = self.raw["D"]
            path = self.dir / "D.safetensors"
            save_file({k: v.detach().cpu().contiguous() for k, v in d.state_dict().items()}, str(path),
                      metadata={"format": "gmgan.Discriminator", "in_channels": str(d.in_channels),
                                "num_feat": str(d.num_feat), "input_size": str(d.input_size),
                                "norm": d.norm})
            out["D"] = path
        return out
