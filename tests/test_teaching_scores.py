"""Tests of gmgan.teaching_scores: scoring shipped models image by image, the CSV round
trip with per-image rows, the live spot check, and the errors that name what is missing."""
from __future__ import annotations

import csv
import json
import math

import pytest

from gmgan.cli import main
from gmgan.evaluate import EvalResult, evaluate
from gmgan.teaching_scores import (
    describe_recipe,
    load_pilots,
    load_teaching_scores,
    pilots_path,
    score_teaching_models,
    shipped_generators,
    spot_check,
)


def test_per_image_csv_round_trip_keeps_scores_and_recomputes_means(data_dir, tmp_path):
    result = evaluate({"Bicubic": None}, sets=["Set5"], metrics=["psnr", "hf"], limit=3)
    back = EvalResult.from_csv(result.to_csv(tmp_path / "s.csv", per_image=True))
    assert back.per_image == result.per_image
    assert (back.methods, back.sets, back.metrics) == (["Bicubic"], ["Set5"], ["psnr", "hf"])
    assert back.counts == {("Bicubic", "Set5"): 3}
    for metric in ("psnr", "hf"):
        assert math.isclose(back.mean("Bicubic", "Set5", metric),
                            result.mean("Bicubic", "Set5", metric), rel_tol=1e-12)
    # bicubic draws little fine detail: well below HR's high-frequency energy
    assert 0 < back.mean("Bicubic", "Set5", "hf") < 0.3


def test_from_csv_refuses_a_file_of_another_kind(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="other.csv: not a file of EvalResult.to_csv"):
        EvalResult.from_csv(path)


def test_shipped_generators_are_the_moving_averages_of_every_run():
    generators = shipped_generators("teach")
    assert "psnr-s0" in generators and "gmgan-s0" in generators
    assert all(path.name == "G_ema.safetensors" and path.is_file()
               for path in generators.values())
    with pytest.raises(FileNotFoundError, match="no shipped 'nope' models"):
        shipped_generators("nope")


def test_score_then_spot_check_and_a_stale_file_is_caught(data_dir, tmp_path):
    out = tmp_path / "teach.csv"
    scores = score_teaching_models(runs=["psnr-s0"], sets=["Set5"], metrics=["psnr", "hf"],
                                   limit=2, out=out, progress=False)
    assert scores.methods == ["Bicubic", "psnr-s0"]
    loaded = load_teaching_scores(path=out)
    assert len(loaded.per_image) == 2 * 2 * 2  # methods x images x metrics
    # the PSNR model beats bicubic in PSNR and draws more fine detail on both images
    for metric in ("psnr", "hf"):
        model = loaded.per_image_scores("psnr-s0", ["Set5"], metric)
        bicubic = loaded.per_image_scores("Bicubic", ["Set5"], metric)
        assert (model > bicubic).all(), metric
    assert spot_check(loaded, images=1) < 1e-9
    # a file that no longer matches its models is named, with the command that remakes it
    rows = list(csv.reader(out.open()))
    rows[-1][-1] = repr(float(rows[-1][-1]) * 1.5)  # the last score: psnr-s0, image 2, hf
    with out.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    stale = load_teaching_scores(path=out)
    with pytest.raises(AssertionError, match=r"psnr-s0.*hf.*gmgan teaching-models score"):
        spot_check(stale, images=2)


def test_missing_scores_and_unknown_runs_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="gmgan teaching-models score --preset teach"):
        load_teaching_scores(path=tmp_path / "none.csv")
    with pytest.raises(ValueError, match="no shipped 'teach' run named gmgan-s9"):
        score_teaching_models(runs=["gmgan-s9"], out=tmp_path / "x.csv", progress=False)


def test_cli_scores_one_run(data_dir, tmp_path, capsys):
    out = tmp_path / "cli.csv"
    code = main(["teaching-models", "score", "--runs", "psnr-s0", "--sets", "Set5",
                 "--metrics", "psnr", "--limit", "1", "--out", str(out), "--no-progress"])
    assert code == 0
    assert "wrote 2 per-image scores" in capsys.readouterr().err
    assert EvalResult.from_csv(out).counts == {("Bicubic", "Set5"): 1,
                                               ("psnr-s0", "Set5"): 1}


def test_the_shipped_pilot_records_are_the_benchmark_records(tmp_path):
    """The package's copy (notebook 06) is what ``benchmarks.natural_pilot --collect``
    makes from the records in benchmarks/results/natural_pilot, and it reads back."""
    from benchmarks.natural_pilot import collect

    made = collect(out=tmp_path / "teach.jsonl")
    assert made.read_text() == pilots_path("teach").read_text()
    pilots = load_pilots("teach")
    assert {p["images"] for p in pilots} == {30, 100}
    psnr = next(p for p in pilots if p["run"] == "psnr-s0" and p["images"] == 100)
    assert psnr["model"] == "pretrain/G_ema" and 0 < psnr["hf_median"] < 0.3


def test_collect_takes_a_rows_image_count_else_its_tables_title(tmp_path):
    from benchmarks.natural_pilot import collect

    records = tmp_path / "records"
    records.mkdir()
    row = {"run": "r", "model": "gan/G_ema", "updates": 10, "recipe": {}, "hf_median": 0.5}
    (records / "a_new.jsonl").write_text(json.dumps({**row, "images": 7}) + "\n")
    (records / "b_old.jsonl").write_text(json.dumps(row) + "\n")
    (records / "b_old.md").write_text("# Natural-image pilots: BSD100 first 30 images, Set5\n")
    production = tmp_path / "production"
    production.mkdir()
    for name in ("gmgan-s10", "gmgan-s2", "gmgan_s0_s1", "notes"):  # only gmgan-s<seed>
        (production / f"{name}.jsonl").write_text(json.dumps({**row, "images": 100}) + "\n")
    made = [json.loads(x) for x in collect(records, tmp_path / "t.jsonl", production)
            .read_text().splitlines()]
    assert [(r["source"], r["images"]) for r in made] == [
        ("a_new", 7), ("b_old", 30), ("production/gmgan-s2", 100), ("production/gmgan-s10", 100)]
    (records / "b_old.md").write_text("# something else\n")
    with pytest.raises(ValueError, match="b_old.md: no 'BSD100 first N images'"):
        collect(records, tmp_path / "t.jsonl", production=None)


def test_a_recipe_reads_as_words():
    recipe = {"phase": "gan", "gan_iters": 4000, "gan_lr": 2e-4, "delta": 0.1,
              "perceptual_layer": "conv5_4", "noise_inject": True, "ema_decay": 0.999}
    assert describe_recipe(recipe) == (
        "lr 0.0002, delta 0.1, l_P at conv5_4, noise inputs, EMA 0.999")
    assert describe_recipe({"phase": "pretrain"}) == "teach preset"
    assert describe_recipe({"n_critic": 5}) == "n critic 5"
    # a column of what the pilots varied: only the fields asked for, in the record's order
    assert describe_recipe(recipe, fields=("ema_decay", "delta", "noise_inject")) == (
        "delta 0.1, noise inputs, EMA 0.999")
    assert describe_recipe({"phase": "gan"}, fields=("delta",)) == "teach preset"


def test_missing_pilot_records_say_how_to_make_them(monkeypatch, tmp_path):
    import gmgan.teaching_scores as ts

    monkeypatch.setattr(ts, "SHIPPED_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="benchmarks.natural_pilot --collect"):
        load_pilots("teach")


def test_update_scores_run_by_run_into_one_file(data_dir, tmp_path, capsys):
    """Models scored one by one (``--update``) make the file that scoring them together
    makes: bicubic once, the other runs' rows kept, a run scored again replaced."""
    together = score_teaching_models(runs=["psnr-s0", "psnr-s1"], sets=["Set5"],
                                     metrics=["psnr"], limit=2, out=tmp_path / "all.csv",
                                     progress=False)
    out = tmp_path / "one_by_one.csv"
    for runs in (["psnr-s1"], ["psnr-s0"], ["psnr-s1"]):
        assert main(["teaching-models", "score", "--runs", *runs, "--sets", "Set5",
                     "--metrics", "psnr", "--limit", "2", "--out", str(out), "--update",
                     "--no-progress"]) == 0
    assert "wrote 6 per-image scores" in capsys.readouterr().err
    assert out.read_text() == (tmp_path / "all.csv").read_text()
    assert EvalResult.from_csv(out).rows == together.rows
    with pytest.raises(ValueError, match="one_by_one.csv holds sets Set5 and metrics psnr, "
                                         "not Set5 and ssim"):
        score_teaching_models(runs=["psnr-s0"], sets=["Set5"], metrics=["ssim"], limit=2,
                              out=out, update=True, progress=False)
    with pytest.raises(ValueError, match="one_by_one.csv: its images are not those"):
        score_teaching_models(runs=["psnr-s0"], sets=["Set5"], metrics=["psnr"], limit=1,
                              out=out, update=True, progress=False)
