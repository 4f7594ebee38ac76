"""What a phase writes down: ``log.jsonl`` and ``val.jsonl`` (:class:`RunLog`,
:func:`read_jsonl`), TensorBoard scalars and a preview image (:func:`preview_grid`)."""
from __future__ import annotations

import contextlib
import json
import logging
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.utils import make_grid

from gmgan.imageio import image_to_tensor
from gmgan.training.console import LOG

__all__ = ["RunLog", "preview_grid", "read_jsonl"]


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


def _debug(row: dict[str, Any]) -> None:
    """A log or validation row as a DEBUG message of ``gmgan.train`` (off by
    default)."""
    if LOG.isEnabledFor(logging.DEBUG):
        LOG.debug(f"[{row['phase']}] {json.dumps(row)}")


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
        _debug(row)
        self.history.append(row)
        self._append(self.train_path, row)
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("step", "phase") and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"train/{key}", value, row["step"])

    def val_row(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        _debug(row)
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


def preview_grid(model: nn.Module, image, device: torch.device, scale: int,
                 size: int = 128) -> torch.Tensor:
    """A 3-panel image for TensorBoard: LR (nearest-upsampled) | SR | HR, a centre crop
    of ``size`` HR pixels of a benchmark ``image`` (``.lr``, ``.hr``: uint8 arrays);
    returns a float (3, H, W) grid in [0, 1] on the CPU."""
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
