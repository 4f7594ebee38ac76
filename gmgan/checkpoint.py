"""Atomic, verifiable training checkpoints.

A checkpoint is a folder ``<run_dir>/step_00001000/`` holding

* ``weights.safetensors``: every model's state dict, keys prefixed by the model's name
  (``G.conv_first.weight``, ``G_ema.conv_first.weight``, ``D.features.0.weight``, ...);
* ``state.pt``: optimiser, scheduler and AMP-scaler states, RNG states (torch, CUDA, numpy,
  python), the step and whatever ``extra`` the trainer adds (phase, config, counters). It holds
  only tensors, numbers, strings, lists and dicts, so ``torch.load(weights_only=True)`` reads it
  and a checkpoint can never run code when loaded;
* ``manifest.json``: the sha256 and size of both files, written last.

Writing is atomic: everything goes to a hidden temporary folder in ``run_dir``, is fsynced, and
the folder is renamed into place with ``os.replace``. A crash (even ``kill -9``) leaves either the
complete new checkpoint or none, never a half-written one under a ``step_*`` name; leftovers of a
crash are hidden ``.tmp-*`` folders that the next save removes. Old checkpoints that ``keep_last``
drops are first renamed to such a hidden name and then deleted, so a crash during the deletion
cannot leave a half-deleted ``step_*`` folder either.

Both files are serialised in memory first (safetensors bytes and ``torch.save`` bytes; this takes
RAM for one checkpoint, about the size of its two files) and then written with plain file writes,
so that a full disk or a file-size limit surfaces as the operating system's error ("No space left
on device") instead of a library's internal one. On such an ``OSError`` the temporary folder is
removed, older checkpoints are untouched, and :class:`CheckpointError` is raised, saying how much
space is free; the trainer then stops or carries on without that checkpoint (``on_save_error``).
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import random
import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from gmgan.errors import CheckpointError

__all__ = [
    "CheckpointError",
    "capture_rng",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "restore_rng",
    "save_checkpoint",
]

WEIGHTS, STATE, MANIFEST = "weights.safetensors", "state.pt", "manifest.json"
_NAME = re.compile(r"^step_(\d{8,})$")
_FORMAT = "gmgan.checkpoint/1"


def checkpoint_name(step: int) -> str:
    """``step_00001000`` for step 1000 (8 digits, so names sort like steps)."""
    return f"step_{int(step):08d}"


# ---------------------------------------------------------------------- RNG states

def capture_rng() -> dict[str, Any]:
    """The states of python's ``random``, numpy's global generator, torch's CPU generator and
    every CUDA device's generator, as tensors / lists / ints (``weights_only``-loadable)."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "mt": list(mt), "gauss": gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Set the generators back to a state from :func:`capture_rng`. CUDA states are restored
    when the number of visible devices matches; otherwise they are left alone (with a warning)."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["mt"]), py["gauss"]))
    npst = state["numpy"]
    np.random.set_state((npst["kind"], npst["keys"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    cuda = list(state.get("cuda", []))
    if cuda and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            warnings.warn(f"checkpoint has RNG states of {len(cuda)} CUDA devices, this machine "
                          f"has {torch.cuda.device_count()}: CUDA RNG not restored", stacklevel=2)


# ---------------------------------------------------------------------- saving

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and fsync it; disk errors come out as ``OSError``."""
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable. Not possible on Windows (no O_DIRECTORY): skip there.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _state_dict(obj: Any) -> dict[str, Any]:
    return obj.state_dict() if hasattr(obj, "state_dict") else dict(obj)


def _flat_weights(models: Mapping[str, nn.Module | Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for name, model in models.items():
        if "." in name:
            raise ValueError(f"model names must not contain '.', got {name!r}")
        for key, value in _state_dict(model).items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{name}.{key} is a {type(value).__name__}, not a tensor")
            # safetensors refuses tensors that share memory: clone detaches them from each other.
            tensors[f"{name}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
    return tensors


def _remove_stale_temps(run_dir: Path) -> None:
    for tmp in run_dir.glob(".tmp-step_*"):
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_checkpoint(path: Path) -> None:
    """Hide a checkpoint folder (an atomic rename), then delete it: a crash in between leaves a
    hidden ``.tmp-*`` folder that the next save removes, never a half-deleted ``step_*``."""
    hidden = path.with_name(f".tmp-{path.name}-removed-{os.getpid()}")
    try:
        os.replace(path, hidden)
    except FileNotFoundError:
        return
    shutil.rmtree(hidden, ignore_errors=True)


def _bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _space_note(run_dir: Path, err: OSError, needed: int) -> str:
    """For a full disk: how much room there is and how much was needed; for a size limit: which."""
    if err.errno == errno.EFBIG:
        return (f" (a file-size limit: the process's `ulimit -f` or the file system's largest file; "
                f"the checkpoint's files total {_bytes(needed)})")
    if err.errno not in (errno.ENOSPC, errno.EDQUOT):
        return ""
    try:
        free = shutil.disk_usage(run_dir).free
    except OSError:
        return ""
    return f" ({_bytes(free)} free on that file system; the checkpoint needs {_bytes(needed)})"


def save_checkpoint(run_dir: str | os.PathLike, step: int, *,
                    models: Mapping[str, nn.Module | Mapping[str, torch.Tensor]],
                    optimizers: Mapping[str, Any] | None = None,
                    schedulers: Mapping[str, Any] | None = None,
                    extra: Mapping[str, Any] | None = None,
                    keep_last: int | None = None) -> Path:
    """Write ``<run_dir>/step_<step:08d>/`` atomically and return its path.

    Args:
        run_dir: folder of the checkpoints (created if missing).
        step: number of completed updates; names the folder. Saving a step that already has a
            checkpoint replaces it.
        models: ``{"G": g, "G_ema": ema, "D": d}``: modules or state dicts of tensors.
        optimizers: ``{"G": opt_g, ...}``: anything with ``state_dict()`` (optimisers, GradScaler).
        schedulers: ``{"G": sched_g, ...}``: anything with ``state_dict()``.
        extra: more state for ``state.pt``: numbers, strings, lists, dicts, tensors only.
        keep_last: afterwards delete all but the ``keep_last`` newest checkpoints in ``run_dir``.
    Raises:
        CheckpointError: an ``OSError`` while writing (disk full, size limit, permissions; the
            message says which, and for a full disk how much space is free); the temporary folder
            is removed and earlier checkpoints are left as they were.
    """
    run_dir = Path(run_dir)
    name = checkpoint_name(step)
    final = run_dir / name
    tmp = run_dir / f".tmp-{name}-{os.getpid()}"
    state = {
        "format": _FORMAT,
        "step": int(step),
        "optimizers": {k: _state_dict(v) for k, v in (optimizers or {}).items()},
        "schedulers": {k: _state_dict(v) for k, v in (schedulers or {}).items()},
        "rng": capture_rng(),
        "extra": dict(extra or {}),
    }
    blobs: dict[str, bytes] = {}
    try:
        # Serialise, then write plain bytes: safetensors and torch.save report a full disk as
        # their own errors ("I/O error", "unexpected pos"), a plain write as the OSError it is.
        buffer = io.BytesIO()
        torch.save(state, buffer)
        blobs[STATE] = buffer.getvalue()
        del buffer
        blobs[WEIGHTS] = safetensors_bytes(_flat_weights(models),
                                           metadata={"format": _FORMAT, "step": str(step)})
        run_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(run_dir)
        tmp.mkdir()
        for fname in (WEIGHTS, STATE):
            _write_durably(tmp / fname, blobs[fname])
        # The manifest, written last, marks the checkpoint complete; its digests are of the files
        # as they are on disk.
        manifest = {"format": _FORMAT, "step": int(step),
                    "files": {f: {"sha256": _sha256(tmp / f), "bytes": (tmp / f).stat().st_size}
                              for f in (WEIGHTS, STATE)}}
        _write_durably(tmp / MANIFEST, json.dumps(manifest, indent=1).encode())
        _fsync_dir(tmp)
        if final.exists():  # the same step saved again (e.g. after a resume): swap it out
            old = run_dir / f".tmp-{name}-old-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(run_dir)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        needed = sum(len(data) for data in blobs.values())
        raise CheckpointError(f"could not write checkpoint {final}: {err}"
                              f"{_space_note(run_dir, err, needed)}. Earlier checkpoints in "
                              f"{run_dir} are unchanged.") from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep_last is not None:
        _prune(run_dir, keep_last)
    return final


def _prune(run_dir: Path, keep_last: int) -> None:
    if keep_last < 1:
        raise ValueError(f"keep_last must be >= 1, got {keep_last}")
    for old in list_checkpoints(run_dir)[:-keep_last]:
        _remove_checkpoint(old)


# ---------------------------------------------------------------------- loading

def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """All ``step_*`` folders in ``run_dir`` (complete or not), oldest step first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir()
             if p.is_dir() and (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def verify_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Check a checkpoint folder against its manifest; return the manifest.

    Raises:
        CheckpointError: no such folder, no / unreadable manifest, a missing file, or a size or
            sha256 that differs (a truncated or corrupted file).
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {path}")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        files = manifest["files"]
    except FileNotFoundError:
        raise CheckpointError(f"{path} has no {MANIFEST}: an incomplete checkpoint") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path / MANIFEST} is unreadable: {err}") from err
    for fname in (WEIGHTS, STATE):
        fpath = path / fname
        if fname not in files:
            raise CheckpointError(f"{path / MANIFEST} does not list {fname}")
        if not fpath.is_file():
            raise CheckpointError(f"{fpath} is missing: an incomplete checkpoint")
        if fpath.stat().st_size != files[fname]["bytes"]:
            raise CheckpointError(f"{fpath} has {fpath.stat().st_size} bytes, the manifest says "
                                  f"{files[fname]['bytes']}: truncated or replaced")
        if _sha256(fpath) != files[fname]["sha256"]:
            raise CheckpointError(f"{fpath} does not match the sha256 in its manifest: corrupt")
    return manifest


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint folder written by :func:`save_checkpoint`, after verifying it.

    Returns:
        ``{"path", "step", "models": {name: state_dict}, "optimizers", "schedulers", "rng",
        "extra"}``; tensors on ``map_location``. Nothing is unpickled beyond plain data
        (``torch.load(weights_only=True)``; weights from safetensors).
    Raises:
        CheckpointError: incomplete, corrupt (sha256 mismatch) or not a gmgan checkpoint.
    """
    path = Path(path)
    verify_checkpoint(path)
    try:
        flat = load_file(str(path / WEIGHTS), device=str(map_location))
        state = torch.load(path / STATE, map_location=map_location, weights_only=True)
    except Exception as err:  # the manifest matched, so this is a file we did not write
        raise CheckpointError(f"{path}: cannot read the checkpoint files: {err}") from err
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise CheckpointError(f"{path / STATE} is not a {_FORMAT} state file")
    models: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in flat.items():
        model, _, param = key.partition(".")
        models.setdefault(model, {})[param] = tensor
    return {"path": path, "step": state["step"], "models": models,
            "optimizers": state["optimizers"], "schedulers": state["schedulers"],
            "rng": state["rng"], "extra": state["extra"]}


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest checkpoint in ``run_dir`` that passes :func:`verify_checkpoint`, or ``None``.
    Invalid ones (e.g. from a crash or a corrupted disk) are skipped with a warning."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            verify_checkpoint(path)
        except CheckpointError as err:
            warnings.warn(f"skipping invalid checkpoint: {err}", stacklevel=2)
            continue
        return path
    return None
