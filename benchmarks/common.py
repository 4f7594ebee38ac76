"""Timing, result rows and report writing shared by the benchmark suites.

Every row compares our code with a reference measured in the same process, on the same inputs,
and carries a correctness check beside the timing: a speed-up means nothing if the outputs
disagree. The machine is shared, so timings swing with other people's work. Three things keep
the *ratios* trustworthy anyway: a fixed thread count, medians instead of means, and interleaving
(our function and the reference take turns, so a burst of load hits both alike).
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["Row", "Timing", "load_average", "machine_info", "measure", "time_call", "to_markdown",
           "write_results"]


@dataclass
class Timing:
    """Wall times of one function, in milliseconds: the median and the spread of the samples."""

    samples_ms: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def min_ms(self) -> float:
        return min(self.samples_ms)


def _sync(device: str | torch.device | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def measure(fns: Mapping[str, Callable[..., object]], *, repeat: int = 5, warmup: int = 1,
            setup: Mapping[str, Callable[[], object]] | None = None,
            device: str | torch.device | None = None) -> dict[str, Timing]:
    """Time several functions against each other, interleaved: round r runs every function once.

    Args:
        fns: name -> function. A function with a ``setup`` entry is called as ``fn(setup())``,
            and only ``fn`` is timed (e.g. setup builds an autograd graph, fn runs backward).
        repeat: timed rounds; warmup: untimed rounds before them (allocations, caches, lazy init).
        device: a CUDA device makes every timing synchronise before and after the call.

    Returns:
        name -> :class:`Timing` with ``repeat`` samples in milliseconds. The order inside a round
        rotates, so no function always runs right after the same neighbour.
    """
    setup = setup or {}
    names = list(fns)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + repeat):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            arg = (setup[name](),) if name in setup else ()
            _sync(device)
            t0 = time.perf_counter()
            fns[name](*arg)
            _sync(device)
            if r >= warmup:
                samples[name].append((time.perf_counter() - t0) * 1e3)
            del arg
    return {n: Timing(s) for n, s in samples.items()}


def time_call(fn: Callable[[], object], *, repeat: int = 5, warmup: int = 1,
              device: str | torch.device | None = None) -> float:
    """Median wall time of ``fn()`` in milliseconds (one function; see :func:`measure`)."""
    return measure({"fn": fn}, repeat=repeat, warmup=warmup, device=device)["fn"].median_ms


@dataclass
class Row:
    """One benchmark row: our time against a reference's, with the check that they agree.

    ``ours_ms`` / ``ref_ms`` are medians in milliseconds (``ref_ms`` None when a row has no
    timed reference). ``ratio`` is ref / ours, so > 1 means ours is faster. ``ok`` is the
    correctness check; ``goal_met`` is None when the row has no goal or ran in smoke mode.
    """

    suite: str
    name: str
    ours_ms: float
    ref_name: str
    ref_ms: float | None
    check: str
    ok: bool
    goal: str = ""
    goal_met: bool | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:  # numpy bools and floats would not serialise to JSON
        self.ok = bool(self.ok)
        self.goal_met = None if self.goal_met is None else bool(self.goal_met)
        self.ours_ms = float(self.ours_ms)
        self.ref_ms = None if self.ref_ms is None else float(self.ref_ms)

    @property
    def ratio(self) -> float | None:
        """Reference time / our time (> 1: ours is faster)."""
        if not self.ref_ms or not self.ours_ms:
            return None
        ratio = self.ref_ms / self.ours_ms
        return ratio if math.isfinite(ratio) else None


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none)."""
    try:
        return tuple(round(v, 2) for v in os.getloadavg())  # type: ignore[return-value]
    except (AttributeError, OSError):
        return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, threads, load, library versions, GPU."""
    info: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": _git_commit(),
        "versions": {d: _version(d) for d in ("torch", "numpy", "pyiqa", "piq", "spandrel", "gmgan")},
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _fmt_ms(ms: float | None) -> str:
    if ms is None or not math.isfinite(ms) or ms == 0:
        return "—"
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def to_markdown(rows: list[Row], machine: Mapping[str, Any], *, title: str = "",
                notes: list[str] | None = None) -> str:
    """The rows as a markdown table under a line naming the machine and its load."""
    load = machine.get("load_average")
    end_load = machine.get("load_average_end")
    lines = [f"# {title}", ""] if title else []
    lines.append(
        f"Machine: {machine.get('cpu')}, {machine.get('cpu_count')} cores, "
        f"{machine.get('torch_threads')} torch threads, torch {machine.get('versions', {}).get('torch')}"
        + (f", GPU {machine['gpu']}" if machine.get("gpu") else "")
        + (f"; load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min) at the start" if load else "")
        + (f", {end_load[0]:.2f} at the end" if end_load else "")
        + f"; {machine.get('date_utc')} UTC"
        + (f", commit {machine['git_commit']}" if machine.get("git_commit") else "") + "."
    )
    lines += ["", "Times are medians in ms; ratio = reference time / ours (> 1: ours is faster).", "",
              "| suite | benchmark | ours (ms) | reference | ref (ms) | ratio | check | goal |",
              "|---|---|---:|---|---:|---:|---|---|"]
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio else "—"
        check = ("ok: " if r.ok else "**FAIL**: ") + r.check
        goal = r.goal + ("" if r.goal_met is None else (" ✓" if r.goal_met else " ✗ (missed)"))
        lines.append(f"| {r.suite} | {r.name} | {_fmt_ms(r.ours_ms)} | {r.ref_name} | {_fmt_ms(r.ref_ms)} "
                     f"| {ratio} | {check} | {goal} |")
    for note in notes or []:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def _jsonable(obj: Any) -> Any:
    """Plain JSON types from numpy scalars, tuples, paths and non-finite floats (as null)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_results(rows: list[Row], out_dir: Path, stem: str, machine: Mapping[str, Any], *,
                  extra: Mapping[str, Any] | None = None, title: str = "",
                  notes: list[str] | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.json`` (machine, rows, extra) and ``<stem>.md`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine,
               "rows": [dict(asdict(r), ratio=r.ratio) for r in rows],
               **(extra or {})}
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(_jsonable(payload), indent=2, allow_nan=False) + "\n")
    md_path.write_text(to_markdown(rows, machine, title=title, notes=notes))
    return json_path, md_path
