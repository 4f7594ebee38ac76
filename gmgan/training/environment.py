"""Where training runs: the device, ``torch.distributed`` and the run folder
(:class:`Env`, :func:`setup`)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from gmgan.config import TrainConfig
from gmgan.data import load_benchmark
from gmgan.training.console import use_stderr
from gmgan.training.run_folder import RunFolderBusy, RunFolderLock

__all__ = ["Env", "setup"]


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

    def val_images(self) -> dict[str, list]:
        """The validation sets ``cfg.val_sets`` as ``{set name: [HR/LR image pairs]}``
        (:func:`gmgan.data.load_benchmark`: uint8 HxWx3 or HxW arrays, ``cfg.val_limit``
        images a set), read once per :class:`Env`."""
        for name in self.cfg.val_sets:
            if name not in self._benchmarks:
                self._benchmarks[name] = load_benchmark(name, scale=self.cfg.scale,
                                                        limit=self.cfg.val_limit)
        return {name: self._benchmarks[name] for name in self.cfg.val_sets}

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
    :meth:`Env.close` to release it. The trainer's messages go to stderr from here on
    (:func:`gmgan.training.console.use_stderr`).

    Raises:
        RunFolderBusy: another process trains in the run folder (on every rank of a job).
    """
    use_stderr()
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
