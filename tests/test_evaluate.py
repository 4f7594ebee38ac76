"""Tests of gmgan.evaluate: the bicubic row against published numbers, several models, unavailable
metrics, CSV / JSON round trips, the Table-1 layout, and score_sets (the one scoring path)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gmgan import metrics
from gmgan.data import load_benchmark
from gmgan.evaluate import (
    MEAN_MATCHED_VIEW,
    PAPER_TABLE1,
    SR_VIEW,
    EvalResult,
    evaluate,
    score_sets,
)
from gmgan.nets import RRDBNet, save_generator
from gmgan.resize import imresize

# ESRGAN supplementary Table 2 (PAPER.md): bicubic x4 on Set5, Y channel, 4-pixel crop.
PUBLISHED_SET5_PSNR, PUBLISHED_SET5_SSIM = 28.42, 0.8104


def test_bicubic_set5_matches_published(data_dir):
    result = evaluate({"Bicubic": None}, sets=["Set5"], metrics=["psnr", "ssim"])
    psnr, ssim = result.mean("Bicubic", "Set5", "psnr"), result.mean("Bicubic", "Set5", "ssim")
    # Tolerances as in tests/test_metrics.py (published values are rounded to 0.01 dB / 1e-4; the
    # data README measures 28.43 / 0.8111 with float Y).
    assert abs(psnr - PUBLISHED_SET5_PSNR) < 0.01
    assert abs(ssim - PUBLISHED_SET5_SSIM) < 0.001
    assert round(ssim, 4) == PAPER_TABLE1["Bicubic"]["Set5"][1]  # GMGAN's Table 1: 0.8111
    assert result.counts[("Bicubic", "Set5")] == 5
    per = [r for r in result.per_image if r["metric"] == "psnr"]
    assert len(per) == 5
    assert {r["image"] for r in per} == {"baby", "bird", "butterfly", "head", "woman"}
    assert math.isclose(sum(r["value"] for r in per) / 5, psnr)


def test_bicubic_set14_grey_conventions(data_dir):
    """Set14's single-channel bridge: as Y gives ESRGAN's 26.00 dB, as grey RGB GMGAN's 26.10."""
    def bicubic_psnr(grey: str) -> float:
        result = evaluate(None, sets=["Set14"], metrics=["psnr"], grey=grey)
        return result.mean("Bicubic", "Set14", "psnr")

    as_y, as_rgb = bicubic_psnr("as_y"), bicubic_psnr("as_rgb")
    assert abs(as_y - 26.00) < 0.01
    assert abs(as_rgb - PAPER_TABLE1["Bicubic"]["Set14"][2]) < 0.015  # 26.10 published, 26.09 here


def _tiny(seed: int) -> RRDBNet:
    torch.manual_seed(seed)
    model = RRDBNet(num_feat=4, num_grow=2, num_block=1)
    torch.nn.init.constant_(model.conv_last.bias, 0.5)
    return model


def test_two_weights_files_two_rows_and_json_csv_round_trip(data_dir, tmp_path):
    a = save_generator(_tiny(1), tmp_path / "a.safetensors")
    b = save_generator(_tiny(2), tmp_path / "b.safetensors")
    result = evaluate({"A": a, "B": str(b), "Bicubic": None}, sets=["Set5"],
                      metrics=["psnr", "gmsd"],
                      limit=2, device="cpu")
    assert result.methods == ["A", "B", "Bicubic"]
    assert {k[0] for k in result.rows} == {"A", "B", "Bicubic"}
    assert result.mean("A", "Set5", "psnr") != result.mean("B", "Set5", "psnr")
    # An untrained net is far worse than bicubic: the numbers are real measurements.
    assert result.mean("A", "Set5", "psnr") < result.mean("Bicubic", "Set5", "psnr") - 3
    assert len(result.per_image) == 3 * 2 * 2

    back = EvalResult.from_json(result.to_json(tmp_path / "r.json"))
    assert back.rows == result.rows and back.per_image == result.per_image
    assert back.counts == result.counts and back.methods == result.methods
    from_csv = EvalResult.from_csv(result.to_csv(tmp_path / "r.csv"))
    assert from_csv.rows == result.rows  # repr() floats round-trip exactly
    assert from_csv.methods == result.methods and from_csv.counts == result.counts
    lines = result.to_csv(tmp_path / "per.csv", per_image=True).read_text().splitlines()
    assert lines[0] == "method,set,image,metric,value" and len(lines) == 1 + 12


def test_unavailable_metric_is_reported_not_fatal(data_dir):
    from gmgan.metrics import NRQM_MODEL_FILE

    if (data_dir / "iqa" / NRQM_MODEL_FILE).is_file():
        pytest.skip("the NRQM model is present here, so PI is available")
    result = evaluate(None, sets=["Set5"], metrics=["pi", "psnr"], limit=1)
    assert "pi" in result.unavailable and NRQM_MODEL_FILE in result.unavailable["pi"]
    assert result.mean("Bicubic", "Set5", "pi") is None
    assert result.mean("Bicubic", "Set5", "psnr") > 20
    assert "PI unavailable" in result.to_table()


def test_unavailable_round_trips_through_csv(tmp_path):
    result = _hand_made()
    back = EvalResult.from_csv(result.to_csv(tmp_path / "r.csv"))
    assert back.unavailable == {"pi": "no NRQM model"}
    assert back.rows == result.rows


def _hand_made() -> EvalResult:
    rows = {("Ours", "Set5", "niqe"): 5.123, ("Ours", "Set5", "ssim"): 0.81234,
            ("Ours", "Set5", "psnr"): 28.4291, ("Ours", "Set14", "niqe"): 4.5,
            ("Ours", "Set14", "ssim"): 0.7, ("Ours", "Set14", "psnr"): 26.0}
    return EvalResult(rows=rows, unavailable={"pi": "no NRQM model"},
                      counts={("Ours", "Set5"): 5, ("Ours", "Set14"): 14}, methods=["Ours"],
                      sets=["Set5", "Set14"], metrics=["pi", "niqe", "ssim", "psnr"], scale=4)


def test_paper_table_layout():
    result = _hand_made()
    table = result.to_table(published="table1")
    lines = table.splitlines()
    assert "NIQE / SSIM / PSNR" in lines[0]  # PI unavailable: the first number is NIQE, as said
    assert lines[1].split("|")[1].strip() == "Set5" and lines[1].split("|")[2].strip() == "Set14"
    ours = next(line for line in lines if line.startswith("Ours"))
    cells = [c.strip() for c in ours.split("|")[1:]]
    assert cells == ["5.12 / 0.8123 / 28.43", "4.50 / 0.7000 / 26.00"]
    gmgan = next(line for line in lines if line.startswith("GMGAN (paper)"))
    assert "PI 3.25 / 0.8447 / 30.02" in gmgan  # published PI labelled as PI
    assert lines[-1] == "PI unavailable: no NRQM model"
    # With PI measured, the header says PI and published rows need no label.
    result.rows = {(m, s, "pi" if k == "niqe" else k): v for (m, s, k), v in result.rows.items()}
    result.unavailable = {}
    table = result.to_table(published={"X": {"Set5": (1.0, 0.5, 20.0)}})
    assert "PI / SSIM / PSNR" in table.splitlines()[0]
    assert "1.00 / 0.5000 / 20.00" in table and "PI 1.00" not in table
    long = result.to_table("long")
    assert "Ours" in long and "28.43" in long
    with pytest.raises(ValueError, match="layout"):
        result.to_table("wide")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(None, sets=["Set5"], metrics=["lpips"])
    with pytest.raises(TypeError, match="checkpoint path"):
        evaluate({"x": 3}, sets=["Set5"])
    with pytest.raises(FileNotFoundError):
        evaluate({"x": tmp_path / "missing.safetensors"}, sets=["Set5"])


def test_model_scale_must_match(data_dir):
    torch.manual_seed(0)
    x2 = RRDBNet(num_feat=4, num_grow=2, num_block=1, scale=2)
    with pytest.raises(ValueError, match="x2"):
        evaluate({"x2": x2}, sets=["Set5"], metrics=["psnr"], limit=1)


def test_mean_matched_scores_remove_a_colour_shift(data_dir):
    class Darker(torch.nn.Module):  # bicubic (PyTorch's), then 8 grey levels darker
        scale = 4

        def forward(self, x):
            return torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False) - 8 / 255

    result = evaluate({"dark": Darker()}, sets=["Set5"], metrics=["psnr"], limit=2, mean_matched=True)
    assert result.methods == ["dark", "dark (mean-matched)"]
    assert all(-8.5 < v < -7 for v in result.offsets[("dark", "Set5")])  # clipping at 0 trims a little
    assert all(abs(v) < 0.3 for v in result.offsets[("dark (mean-matched)", "Set5")])
    assert result.mean("dark (mean-matched)", "Set5", "psnr") > result.mean("dark", "Set5", "psnr") + 1.0


def test_over_seeds_gives_mean_and_range():
    from gmgan.evaluate import EvalResult

    result = EvalResult(rows={("a s0", "Set5", "psnr"): 30.0, ("a s1", "Set5", "psnr"): 30.3,
                              ("a s2", "Set5", "psnr"): 29.9})
    mean, spread = result.over_seeds(["a s0", "a s1", "a s2"], "Set5", "psnr")
    assert mean == pytest.approx(30.0666, abs=1e-3) and spread == pytest.approx(0.4)


# ------------------------------------------------------------------------------------
# score_sets, the one scoring path (evaluate, gmgan eval, the trainer's validation)

def _bicubic(lr: np.ndarray) -> np.ndarray:
    return imresize(lr, 4)


def test_score_sets_bicubic_set5_matches_the_independent_computation(data_dir):
    """The data README's independent computation of bicubic Set5 (Y, 4-pixel border):
    28.43 dB / 0.8111; metrics come back in the order asked, per image in scoring
    order."""
    images = load_benchmark("Set5")
    scores = score_sets(_bicubic, {"Set5": images}, ["ssim", "psnr"], border=4)
    means = scores.means()["Set5"]
    assert list(means) == ["ssim", "psnr"]
    assert means["psnr"] == pytest.approx(28.43, abs=0.01)
    assert means["ssim"] == pytest.approx(0.8111, abs=1e-4)
    assert [(s.image, s.metric) for s in scores.per_image[:4]] == [
        ("baby", "ssim"), ("baby", "psnr"), ("bird", "ssim"), ("bird", "psnr")]
    assert scores.counts == {(SR_VIEW, "Set5"): 5} and not scores.notes


def test_score_sets_nan_for_a_metric_that_fails_on_one_image(data_dir):
    """NIQE cannot score a flat image (pyiqa's linear algebra fails): with
    nan_on_failure its value is NaN and a note names the image, as the trainer logs it;
    without, it raises."""
    pytest.importorskip("pyiqa")
    images = {"Set5": load_benchmark("Set5", limit=1)}

    def flat(lr: np.ndarray) -> np.ndarray:
        return np.full((4 * lr.shape[0], 4 * lr.shape[1], 3), 128, np.uint8)

    scores = score_sets(flat, images, ["psnr", "niqe"], border=4,
                        nan_on_failure={"niqe"})
    means = scores.means()["Set5"]
    assert math.isnan(means["niqe"]) and 5 < means["psnr"] < 30
    assert list(scores.notes) == ["niqe_Set5_baby"]
    assert scores.notes["niqe_Set5_baby"].startswith("NIQE failed on Set5/baby: ")
    with pytest.raises(Exception):  # noqa: B017 - whatever pyiqa raises gets through
        score_sets(flat, images, ["niqe"], border=4)


def test_score_sets_unavailable_metric_is_tried_once_and_named(data_dir, monkeypatch):
    calls = []

    def missing(explicit):
        calls.append(explicit)
        raise metrics.MissingModelFile("no NIQE parameters here")

    monkeypatch.setattr(metrics, "_niqe_model", missing)
    images = {"Set5": load_benchmark("Set5", limit=2),
              "Set14": load_benchmark("Set14", limit=1)}
    scores = score_sets(_bicubic, images, ["niqe", "psnr"], border=4)
    assert len(calls) == 1
    assert scores.unavailable == {"niqe": "no NIQE parameters here"}
    assert scores.notes == {"niqe": "NIQE skipped: no NIQE parameters here"}
    assert {name: list(m) for name, m in scores.means().items()} == {"Set5": ["psnr"],
                                                                      "Set14": ["psnr"]}


def test_score_sets_mean_matched_view_scores_the_metrics_named(data_dir):
    images = {"Set5": load_benchmark("Set5", limit=2)}

    def darker(lr: np.ndarray) -> np.ndarray:
        return np.clip(imresize(lr, 4).astype(int) - 10, 0, 255).astype(np.uint8)

    scores = score_sets(darker, images, ["psnr", "gmsd"], border=4,
                        mean_matched={"psnr"})
    raw, matched = scores.means()["Set5"], scores.means(MEAN_MATCHED_VIEW)["Set5"]
    assert list(raw) == ["psnr", "gmsd"] and list(matched) == ["psnr"]
    assert matched["psnr"] > raw["psnr"] + 1.0  # the shift removed
    assert scores.counts == {(SR_VIEW, "Set5"): 2, (MEAN_MATCHED_VIEW, "Set5"): 2}
    # 10 levels darker, less where clipping at 0 trims (bird's blue); matched: about 0
    drift = {view: np.mean(scores.offsets[(view, "Set5")], axis=0)
             for view in (SR_VIEW, MEAN_MATCHED_VIEW)}
    assert all(-10.5 < v < -8.5 for v in drift[SR_VIEW])
    assert all(abs(v) < 0.5 for v in drift[MEAN_MATCHED_VIEW])


def test_score_sets_refuses_unknown_metrics_and_wrong_sizes(data_dir):
    images = {"Set5": load_benchmark("Set5", limit=1)}
    with pytest.raises(ValueError, match="unknown metric 'lpips'; known: psnr, ssim"):
        score_sets(_bicubic, images, ["psnr", "lpips"], border=4)
    with pytest.raises(ValueError, match=r"Set5/baby: SR shape \(508, 508, 3\) diff"):
        score_sets(lambda lr: imresize(lr, 4)[:-4, :-4], images, ["psnr"], border=4)


def test_paired_pools_sets_pairs_images_and_names_what_is_missing(data_dir, tmp_path):
    """Two 'seeds' of two tiny models on Set5 + Set14 (limit 2 each): the arrays pair by
    image in one order for every method, and paired() is gmgan.stats on those arrays."""
    from gmgan.stats import paired_comparison

    models = {f"{name} s{s}": _tiny(seed) for name, seeds in (("A", (1, 2)), ("B", (3, 4)))
              for s, seed in enumerate(seeds)}
    result = evaluate(models, sets=["Set5", "Set14"], metrics=["psnr"], limit=2,
                      device="cpu")
    a0 = result.per_image_scores("A s0", ["Set5", "Set14"], "psnr")
    assert a0.shape == (4,)
    images = [r["image"] for r in result.per_image if r["method"] == "A s0"]
    assert images == [r["image"] for r in result.per_image if r["method"] == "B s1"]
    assert a0[:2].mean() == pytest.approx(result.mean("A s0", "Set5", "psnr"))
    c = result.paired(["A s0", "A s1"], ["B s0", "B s1"], ["Set5", "Set14"], "psnr")
    ref = paired_comparison(
        [result.per_image_scores(f"A s{s}", ["Set5", "Set14"], "psnr") for s in (0, 1)],
        [result.per_image_scores(f"B s{s}", ["Set5", "Set14"], "psnr") for s in (0, 1)])
    assert c == ref and (c.n_seeds, c.n_images) == (2, 4)
    with pytest.raises(KeyError, match="no per-image ssim of 'A s0' on 'Set5'"):
        result.per_image_scores("A s0", ["Set5"], "ssim")
    with pytest.raises(ValueError, match="one per seed"):
        result.paired(["A s0"], ["B s0", "B s1"], ["Set5"], "psnr")


def test_noise_generator_scores_do_not_depend_on_what_ran_before(data_dir):
    torch.manual_seed(1)
    noisy = RRDBNet(num_feat=8, num_block=1, num_grow=4, noise_inject=True)
    with torch.no_grad():
        noisy.noise_strength_up1.fill_(1.0)
        noisy.noise_strength_up2.fill_(1.0)
    alone = evaluate({"noisy": noisy}, sets=["Set5"], metrics=["psnr"], limit=2)
    torch.rand(10)
    after = evaluate({"other": RRDBNet(num_feat=8, num_block=1, num_grow=4), "noisy": noisy},
                     sets=["Set5"], metrics=["psnr"], limit=2)
    assert np.array_equal(after.per_image_scores("noisy", ["Set5"], "psnr"),
                          alone.per_image_scores("noisy", ["Set5"], "psnr"))
