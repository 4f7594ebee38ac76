"""Shared trained models (gmgan.experiments): cache hits and misses, configuration keys, the
printed lines, reproducible training, and the VGG-weights rule."""
from __future__ import annotations

import json

import pytest
import torch
from run_helpers import TINY, losses

from gmgan import experiments as ex
from gmgan import runs
from gmgan.config import get_preset

SAMPLES = {"train_set": "samples", **TINY}  # for teaching_run: its runs are then named "<variant>-samples-s0"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh, empty GMGAN_DERIVED for each test, and no shipped models but those a test adds."""
    root = tmp_path / "derived"
    monkeypatch.setenv("GMGAN_DERIVED", str(root))
    monkeypatch.setattr(runs, "SHIPPED_DIR", tmp_path / "shipped")  # ensure_run's
    monkeypatch.setattr(ex, "SHIPPED_DIR", tmp_path / "shipped")
    return root


# ---------------------------------------------------------------------- cache hit and miss

def test_training_is_reproducible_with_a_random_vgg(tmp_path, monkeypatch):
    """Phase 2 with a random VGG19: two fresh caches give the same losses bit for bit (the VGG's
    initialisation is seeded by ensure_run, the rest by the trainer)."""
    runs = []
    for i in range(2):
        monkeypatch.setenv("GMGAN_DERIVED", str(tmp_path / f"cache{i}"))
        torch.manual_seed(1234 + i)  # whatever ran before must not matter
        runs.append(ex.teaching_run("gmgan", verbose=False, **SAMPLES))
    assert runs[0].perceptual == "random"
    assert losses(runs[0].history) == losses(runs[1].history)
    assert runs[0].history[-1]["perceptual"] > 0
    from safetensors.torch import load_file

    a, b = (load_file(str(r.generator_path())) for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------- the variants

def test_variants_share_one_phase_one_generator(cache, capsys):
    gm = ex.teaching_run("gmgan", **SAMPLES)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("no cached model 'psnr-samples-s0' (teach) - training it now: 3 MSE updates")
    assert out[1].startswith("no cached model 'gmgan-samples-s0' (teach) - training it now: 2 GAN updates")
    assert gm.parent is not None and gm.parent.name == "psnr-samples-s0"
    assert gm.config.phase == "gan" and gm.config.gamma == 1.0
    assert gm.config.pretrained_g == str(gm.parent.generator_path(ema=True))
    assert {r["phase"] for r in gm.history} == {"gan"}
    assert {"mse", "perceptual", "quality", "adversarial", "wasserstein", "gp"} <= set(gm.history[-1])

    no_lq = ex.teaching_run("gmgan-no-lq", **SAMPLES)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "using the cached model 'psnr-samples-s0' (teach) from models/teach/psnr-samples-s0"
    assert out[1].startswith("no cached model 'gmgan-no-lq-samples-s0' (teach) - training it now")
    assert no_lq.config.gamma == 0.0 and no_lq.config.pretrained_g == gm.config.pretrained_g
    row = no_lq.history[-1]
    assert "quality" not in row and "quality" in gm.history[-1]  # gamma = 0: l_Q is not computed
    cfg = no_lq.config
    # beta: the balanced weight of the random VGG19 (logged per row; cfg.beta before balancing)
    expected = cfg.alpha * row["mse"] + row["beta"] * row["perceptual"] + cfg.delta * row["adversarial"]
    assert row["l_G"] == pytest.approx(expected, rel=1e-5)

    # A phase-2 field does not change the phase-1 run: the same psnr model serves a longer GAN run.
    capsys.readouterr()
    ex.teaching_run("gmgan", **{**SAMPLES, "gan_iters": 3})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "using the cached model 'psnr-samples-s0' (teach) from models/teach/psnr-samples-s0"
    assert "gan_iters 2 -> 3" in out[1]

    # Reloaded from the cache, the parent comes back with the run.
    again = ex.teaching_run("gmgan", verbose=False, **SAMPLES)
    assert again.cached and again.parent is not None and again.parent.name == "psnr-samples-s0"
    model = ex.load_run_generator(again)
    assert model.config["num_block"] == 1 and not model.training
    sr = model(torch.rand(1, 3, 8, 8))
    assert sr.shape == (1, 3, 32, 32)


def test_run_names_say_set_augmentation_and_seed():
    assert ex.run_name("gmgan") == "gmgan-s0"
    assert ex.run_name("gmgan", train_set=get_preset("teach").train_set, seed=2) == "gmgan-s2"  # the preset's own
    assert ex.run_name("gmgan", train_set="BSDS200") == "gmgan-BSDS200-s0"
    assert ex.run_name("psnr", train_set="/data/my images/DIV2K_HR/") == "psnr-DIV2K_HR-s0"
    assert ex.run_name("psnr", preset="paper", train_set="DIV2K") == "psnr-s0"  # paper's default set
    assert ex.run_name("gmgan", augment8=False, seed=1) == "gmgan-x1-s1"  # teach is T91 x 8: x1 is news
    assert ex.run_name("gmgan", augment8=True) == "gmgan-s0"


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown variant 'esrgan'"):
        ex.teaching_run("esrgan")
    with pytest.raises(ValueError, match="unknown variant 'esrgan'"):
        ex.teaching_config("esrgan")


# ---------------------------------------------------------------------- keys and estimates

def test_perceptual_weights_rule(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert ex.perceptual_weights_available() is False
    assert ex.default_perceptual_weights() == "random"
    assert ex.teaching_config("gmgan", pretrained_g="x.safetensors").perceptual_weights == "random"
    ckpt = tmp_path / "torch" / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "vgg19-dcbb9e9d.pth").write_bytes(b"")
    assert ex.perceptual_weights_available() is True
    assert ex.default_perceptual_weights() == "imagenet"
    # teach trains the same (shipped) models everywhere: its seeded random VGG even with ImageNet at hand
    assert ex.teaching_config("gmgan", pretrained_g="x.safetensors").perceptual_weights == "random"
    assert ex.teaching_config("gmgan", preset="paper", pretrained_g="x").perceptual_weights == "imagenet"
    # an explicit choice wins
    assert ex.teaching_config("gmgan", perceptual_weights="none").perceptual_weights == "none"


def test_teaching_config_is_the_preset_with_the_variant_seed_and_overrides():
    teach = get_preset("teach")
    cfg = ex.teaching_config("psnr", seed=2)
    assert cfg.phase == "pretrain" and cfg.seed == 2 and cfg.num_block == teach.num_block
    assert cfg.pretrain_iters == teach.pretrain_iters and cfg.gan_iters == teach.gan_iters
    assert ex.teaching_config("psnr", pretrain_iters=7).pretrain_iters == 7  # overrides come last
    assert ex.teaching_config("gmgan-no-lq", preset="paper", pretrained_g="g.safetensors",
                              perceptual_weights="random").gamma == 0.0
    # the speed mode that trained the shipped models: reference for phase 1, fast for phase 2
    assert cfg.speed == "reference"
    assert ex.teaching_config("gmgan", pretrained_g="g.safetensors").speed == "fast"
    assert ex.teaching_config("gmgan", pretrained_g="g", speed="reference").speed == "reference"


def test_run_json_records_what_was_used(cache):
    run = ex.teaching_run("gmgan", verbose=False, **SAMPLES)
    record = json.loads((run.run_dir / "run.json").read_text())
    assert record["perceptual"] == "random" and record["parent"] == "psnr-samples-s0"
    assert record["hash"] == ex.config_hash(run.config)
    assert ex.load_run(run.run_dir).perceptual == "random"
    with pytest.raises(FileNotFoundError, match="run.json"):
        ex.load_run(cache)


def test_paper_table2_repeats_table1_where_the_paper_does():
    """Table 2's SRGAN and GMGAN rows are Table 1's (PAPER.md); the ablation row is its own."""
    from gmgan.evaluate import PAPER_TABLE1, PAPER_TABLE2

    assert PAPER_TABLE2["SRGAN"] == PAPER_TABLE1["SRGAN"]
    assert PAPER_TABLE2["GMGAN"] == PAPER_TABLE1["GMGAN"]
    assert PAPER_TABLE2["GMGAN w/o l_Q"]["Set5"] == (3.30, 0.8491, 31.41)
    assert set(PAPER_TABLE2["GMGAN w/o l_Q"]) == {"Set5", "Set14", "BSD100"}


# ---------------------------------------------------------------------- shipped models


def test_shipped_model_is_used_unless_retrain(cache, capsys):
    trained = ex.teaching_run("gmgan", verbose=False, **SAMPLES)
    for run in (trained.parent, trained):
        ex.export_run(run, ex.SHIPPED_DIR / "teach" / run.name, raw=run.name == "gmgan-samples-s0")
    # the shipped copy: portable config, logs, the moving average (and here the raw G); no checkpoints
    files = sorted(p.relative_to(ex.SHIPPED_DIR).as_posix() for p in ex.SHIPPED_DIR.rglob("*") if p.is_file())
    assert files == ["teach/gmgan-samples-s0/config.yaml", "teach/gmgan-samples-s0/gan/G.safetensors",
                     "teach/gmgan-samples-s0/gan/G_ema.safetensors", "teach/gmgan-samples-s0/gan/log.jsonl",
                     "teach/gmgan-samples-s0/gan/val.jsonl", "teach/gmgan-samples-s0/run.json",
                     "teach/psnr-samples-s0/config.yaml", "teach/psnr-samples-s0/pretrain/G_ema.safetensors",
                     "teach/psnr-samples-s0/pretrain/log.jsonl", "teach/psnr-samples-s0/pretrain/val.jsonl",
                     "teach/psnr-samples-s0/run.json"]
    text = (ex.SHIPPED_DIR / "teach" / "gmgan-samples-s0" / "config.yaml").read_text()
    assert "pretrained_g: <models>/teach/psnr-samples-s0/pretrain/G_ema.safetensors" in text
    assert str(cache) not in text
    import shutil

    shutil.rmtree(cache)  # a fresh machine: nothing in the derived-data cache
    capsys.readouterr()
    run = ex.teaching_run("gmgan", **SAMPLES)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("using the shipped model 'psnr-samples-s0' (teach), trained in")
    assert out[1].startswith("using the shipped model 'gmgan-samples-s0' (teach), trained in")
    assert run.shipped and run.parent.shipped and run.run_dir.parent == ex.SHIPPED_DIR / "teach"
    assert losses(run.history) == losses(trained.history)
    # the raw generator ships for this run (SHIP_RAW), the same network as the moving average
    assert ex.load_run_generator(run, ema=False).config == ex.load_run_generator(run).config
    # retrain: the shipped copy is ignored and the run trained again, with the same result
    again = ex.teaching_run("gmgan", retrain=True, **SAMPLES)
    assert not again.cached and not again.shipped and losses(again.history) == losses(trained.history)
    # another configuration is not the shipped one
    other = ex.teaching_run("gmgan", verbose=False, **{**SAMPLES, "gan_iters": 1})
    assert not other.shipped


def test_every_model_of_the_plan_is_shipped(data_dir):
    """Each model the notebooks compare is in gmgan/teaching_models with the configuration that
    teaching_run / table3_run ask for: the notebooks load them instead of training for hours."""
    seen = set()
    for what, kwargs in ex.teaching_plan("teach"):
        if what == "table3":
            run = ex.table3_run(kwargs["training_set"], seed=kwargs["seed"], verbose=False, threads=None)
        else:
            run = ex.teaching_run(what, seed=kwargs["seed"], verbose=False, threads=None)
        assert run.shipped, f"{run.name} is not shipped (or its configuration changed)"
        assert run.cached
        seen.add(run.name)
    assert len(seen) == 3 * 6 and "gmgan-s0" in seen and "psnr-s2" in seen
    shipped = {p.name for p in (ex.SHIPPED_DIR / "teach").iterdir() if p.is_dir()}
    assert shipped == seen  # nothing shipped that no notebook uses
    def size(folder):
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

    assert size(ex.SHIPPED_DIR / "teach") < 35e6  # about 1.8 MB a model, gmgan-s0 twice that
    assert size(ex.SHIPPED_DIR) < 40e6  # all teaching models: the repository stays small

