"""The benchmark suites in their quick modes: every correctness column must pass and the reports
must be written. No timing is asserted (timings belong to the benchmark runs, not to CI).

``benchmarks.run --smoke`` compares gmgan with pyiqa, piq and spandrel at tiny sizes; ``gpu_profile
--dry-run`` runs the GPU profile's code paths on whatever device there is.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `benchmarks` is a folder of the checkout, not an installed package
    sys.path.insert(0, str(ROOT))

pytest.importorskip("pyiqa")
pytest.importorskip("piq")
pytest.importorskip("spandrel")


def _rows(path: Path) -> list[dict]:
    payload = json.loads(path.read_text())
    assert payload["machine"]["cpu_count"] >= 1
    return payload["rows"]


def test_cpu_suite_smoke(tmp_path):
    """All six suites run at tiny sizes, every check passes, JSON + markdown + chart are written.
    (Without the image sets, synthetic images stand in; with them, imresize is also checked against
    the MATLAB-made LR files.)"""
    from benchmarks import run
    from gmgan.cache import data_dir

    status = run.main(["--smoke", "--out", str(tmp_path)])
    rows = _rows(tmp_path / "cpu-smoke.json")
    failed = [f"{r['suite']} / {r['name']}: {r['check']}" for r in rows if not r["ok"]]
    assert not failed, failed
    assert status == 0
    assert {r["suite"] for r in rows} == {"gmsd", "imresize", "rrdb", "train-step", "loader", "cpu-train"}
    # Every comparison row has a reference timed in the same run, and its times are real numbers.
    for r in rows:
        assert r["ours_ms"] is not None and r["ours_ms"] > 0, r
        if r["suite"] in ("gmsd", "imresize", "rrdb"):
            assert r["ref_ms"] > 0 and math.isclose(r["ratio"], r["ref_ms"] / r["ours_ms"]), r
    if (data_dir() / "benchmark" / "Set5" / "HR").is_dir():  # the MATLAB-made LR files were checked
        assert any("bit-exact: 19/19" in r["check"] for r in rows if r["suite"] == "imresize")
    # Smoke mode reports no goals as met or missed: tiny sizes say nothing about speed.
    assert all(r["goal_met"] is None for r in rows)
    md = (tmp_path / "cpu-smoke.md").read_text()
    assert "| gmsd |" in md and "Phase-2 iteration" in md and "load average" in md
    png = tmp_path / "cpu-smoke-train-step.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cpu_train_suite_has_checked_rows_per_phase_and_recipe(tmp_path):
    """``--only cpu-train``: a phase-1 and a phase-2 row for the teach preset at the chosen threads
    and at 1 thread (the shipped models' recipe), each timed against eager fp32 in the same run
    and carrying its check and tolerance; the other suites' rows of an earlier run stay."""
    from benchmarks import run
    from benchmarks.common import Row, machine_info, write_results

    earlier = Row("gmsd", "an earlier row", 1.0, "a reference", 2.0, "equal (tol 0)", True)
    write_results([earlier], tmp_path, "cpu-smoke", machine_info(), extra={"command": "earlier"})
    status = run.main(["--smoke", "--only", "cpu-train", "--threads", "2", "--out", str(tmp_path)])
    rows = _rows(tmp_path / "cpu-smoke.json")
    assert [r["name"] for r in rows if r["suite"] == "gmsd"] == ["an earlier row"]
    train_rows = [r for r in rows if r["suite"] == "cpu-train"]
    for recipe in ("teach, 2 threads", "teach, 1 thread (the shipped models' recipe)"):
        for phase, goal in (("phase-1", ">= 1.3x"), ("phase-2", ">= 1.5x")):
            match = [r for r in train_rows if r["name"].startswith(f"{recipe}: {phase} update")]
            assert len(match) == 1, (recipe, phase, [r["name"] for r in train_rows])
            r = match[0]
            assert r["ok"], r["check"]
            assert "speed fast" in r["name"] and r["ref_name"].startswith("eager fp32")
            assert "losses rel." in r["check"] and "weight update rel. L2" in r["check"]
            assert "(tol " in r["check"] and r["goal"].startswith(goal) and r["goal_met"] is None
            assert r["ref_ms"] > 0 and r["ours_ms"] > 0
    assert status == 0
    md = (tmp_path / "cpu-smoke.md").read_text()
    assert "kept from the run" in md and "default mode against eager fp32" in md


def test_gpu_profile_dry_run(tmp_path):
    """The GPU profile's code runs end to end at tiny sizes; FLOPs of the real trainer = mirror's."""
    from benchmarks import gpu_profile

    status = gpu_profile.main(["--dry-run", "--out", str(tmp_path)])
    payload = json.loads((tmp_path / "gpu-dry-run.json").read_text())
    failed = [f"{r['suite']} / {r['name']}: {r['check']}" for r in payload["rows"] if not r["ok"]]
    assert not failed, failed
    assert status == 0
    assert payload["flops_per_iteration"] > 0
    # the mirror times the reference update; the default (fast) shares one G forward
    assert payload["flops_per_iteration_reference"] == payload["flops_per_iteration_mirror"]
    assert payload["flops_per_iteration"] < payload["flops_per_iteration_reference"]
    modes = [t["mode"] for t in payload["training"]]
    assert modes == ["eager fp32", "bf16 autocast", "bf16 + channels_last"]
    assert all(t["it_per_s"] > 0 for t in payload["training"])
    assert payload["inference"] and (tmp_path / "gpu-dry-run.md").is_file()


def test_peak_table_picks_the_longest_match():
    from benchmarks.gpu_profile import peak_tflops

    assert peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert peak_tflops("NVIDIA L40S") == 362.0 and peak_tflops("NVIDIA L4") == 121.0
    assert peak_tflops("Some Future GPU") is None


def test_interleaved_timing_and_json_safety(tmp_path):
    """measure() runs every function repeat times after warm-up, calls setup untimed; numpy types
    and non-finite numbers survive write_results as plain JSON."""
    import numpy as np

    from benchmarks.common import Row, measure, write_results

    calls = {"a": 0, "b": 0, "setup": 0}

    def setup():
        calls["setup"] += 1
        return 3

    def a(x):
        calls["a"] += x

    def b():
        calls["b"] += 1

    t = measure({"a": a, "b": b}, setup={"a": setup}, repeat=4, warmup=2)
    assert calls == {"a": 18, "b": 6, "setup": 6}
    assert len(t["a"].samples_ms) == 4 and t["b"].median_ms >= 0
    row = Row("s", "n", np.float32(2.0), "ref", np.float64(4.0), "c", np.bool_(True), goal_met=np.bool_(False))
    nan_row = Row("s", "m", float("nan"), "ref", 1.0, "c", True)
    js, md = write_results([row, nan_row], tmp_path, "x", {"cpu": "test", "load_average": None})
    payload = json.loads(js.read_text())
    assert payload["rows"][0]["ratio"] == 2.0 and payload["rows"][0]["ok"] is True
    assert payload["rows"][1]["ours_ms"] is None and payload["rows"][1]["ratio"] is None
    assert "2.00x" in md.read_text()


def test_natural_pilot_recipe_and_checkpoint_generators(tmp_path):
    """benchmarks.natural_pilot names a run by what it changed in the teach preset, and
    scores a run's newest checkpoint (its G_ema) where it has no final weights yet."""
    import torch

    from benchmarks import natural_pilot as npilot
    from gmgan.checkpoint import save_checkpoint
    from gmgan.nets import RRDBNet
    from gmgan.config import get_preset

    cfg = get_preset("teach", phase="gan", delta=0.02, noise_head=8, name="x",
                     val_every=7)
    assert npilot.recipe(cfg) == {"phase": "gan", "delta": 0.02, "noise_head": 8}
    torch.manual_seed(0)
    g = RRDBNet(num_feat=8, num_block=1, num_grow=4, noise_inject=True)
    zeros = {k: v * 0 for k, v in g.state_dict().items()}
    save_checkpoint(tmp_path / "gan" / "checkpoints", 200,
                    models={"G": g, "G_ema": zeros, "D": {"w": torch.zeros(1)}})
    found = npilot._generators(tmp_path, newest_checkpoint=False)
    assert [(label, step) for label, _, step in found] == [("gan/G_ema@200", 200),
                                                            ("gan/G@200", 200)]
    assert set(found[0][1]) == set(g.state_dict())
    assert all(float(v.abs().sum()) == 0 for v in found[0][1].values())
