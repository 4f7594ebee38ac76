"""Timing helpers shared by the benchmark suites.

Every row compares our code with a reference in the same process, on the same inputs, and carries a
correctness check beside the timing: a speed-up means nothing if the outputs disagree.
"""
from __future__ import annotations

import json
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch


def time_call(fn: Callable[[], object], *, repeat: int = 7, warmup: int = 2, sync: bool = False) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeat`` runs after ``warmup`` runs.

    The median, not the mean, because CPU timings here swing when another process runs.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if sync:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


@dataclass
class Row:
    """One benchmark row: our time against a reference's, with the check that they agree."""

    suite: str
    name: str
    ours_ms: float
    ref_name: str
    ref_ms: float | None
    check: str  # what was compared, e.g. "max |ours - pyiqa| = 3e-7"
    ok: bool  # the correctness check passed
    goal: str = ""  # e.g. ">= 2x faster than pyiqa"
    goal_met: bool | None = None
    extra: dict = field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        """Reference time / our time (> 1 means we are faster)."""
        return None if not self.ref_ms else self.ref_ms / self.ours_ms


def machine_info() -> dict:
    """What the numbers were measured on."""
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
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


def to_markdown(rows: list[Row], machine: dict) -> str:
    """The rows as a markdown table, with the machine they ran on."""
    lines = [
        f"Machine: {machine.get('cpu')}, {machine.get('threads')} threads, torch {machine.get('torch')}"
        + (f", GPU {machine['gpu']}" if "gpu" in machine else ""),
        "",
        "| suite | benchmark | ours (ms) | reference | ref (ms) | speed-up | check | goal |",
        "|---|---|---:|---|---:|---:|---|---|",
    ]
    for r in rows:
        ref_ms = f"{r.ref_ms:.1f}" if r.ref_ms else "—"
        speed = f"{r.speedup:.2f}x" if r.speedup else "—"
        check = ("ok: " if r.ok else "FAIL: ") + r.check
        goal = r.goal + ("" if r.goal_met is None else (" ✓" if r.goal_met else " ✗"))
        lines.append(f"| {r.suite} | {r.name} | {r.ours_ms:.1f} | {r.ref_name} | {ref_ms} | {speed} | {check} | {goal} |")
    return "\n".join(lines) + "\n"


def write_results(rows: list[Row], out_dir: Path, stem: str, machine: dict, extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` into ``out_dir``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": machine,
        "rows": [dict(asdict(r), speedup=r.speedup) for r in rows],
        **(extra or {}),
    }
    json_path = out_dir / f"{stem}.json"
    md_path = out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    md_path.write_text(to_markdown(rows, machine))
    return json_path, md_path
