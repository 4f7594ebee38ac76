"""Finished runs found by their configuration (gmgan.runs): cache hits and misses,
configuration keys, resumed runs, and the lines ensure_run prints."""
from __future__ import annotations

import pytest
from run_helpers import losses, tiny

from gmgan import runs
from gmgan.config import apply_overrides


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh, empty GMGAN_DERIVED for each test, and no shipped models."""
    root = tmp_path / "derived"
    monkeypatch.setenv("GMGAN_DERIVED", str(root))
    monkeypatch.setattr(runs, "SHIPPED_DIR", tmp_path / "shipped")
    return root


def test_miss_trains_then_hit_reuses(cache, capsys):
    cfg = tiny(phase="pretrain")
    first = runs.ensure_run("tiny", cfg, preset="unit")
    out = capsys.readouterr()
    assert out.out.startswith("no cached model 'tiny' (unit) - training it now: 3 MSE updates, ")
    assert out.out.rstrip().endswith("on 2 CPU cores") and out.out.count("\n") == 1
    assert out.err == ""  # no trainer banner, no progress bar
    assert first.cached is False
    assert first.run_dir == cache / "models" / "unit" / "tiny"
    assert (first.run_dir / "run.json").is_file()
    assert first.generator_path().name == "G_ema.safetensors" and first.generator_path().is_file()
    assert [r["step"] for r in first.history] == [1, 2, 3]

    mtime = first.generator_path().stat().st_mtime_ns
    again = runs.ensure_run("tiny", cfg, preset="unit")
    out = capsys.readouterr()
    assert out.out == "using the cached model 'tiny' (unit) from models/unit/tiny\n"
    assert again.cached is True and again.run_dir == first.run_dir
    assert again.generator_path().stat().st_mtime_ns == mtime  # not retrained
    assert losses(again.history) == losses(first.history)
    assert again.config == first.config

    # Mechanics (progress bar, device, workers, TensorBoard) do not make a new run.
    runs.ensure_run("tiny", apply_overrides(cfg, {"progress": True, "device": "cpu", "tensorboard": True}),
                  preset="unit")
    assert capsys.readouterr().out.startswith("using the cached model 'tiny'")


def test_changed_config_goes_to_a_hashed_folder(cache, capsys):
    cfg = tiny(phase="pretrain")
    base = runs.ensure_run("tiny", cfg, preset="unit")
    capsys.readouterr()
    other_cfg = apply_overrides(cfg, {"pretrain_iters": 4})
    other = runs.ensure_run("tiny", other_cfg, preset="unit")
    out = capsys.readouterr().out
    assert other.cached is False
    assert other.run_dir.name == f"tiny-{runs.config_hash(other_cfg)}" != base.run_dir.name
    assert "the one in unit/tiny differs: pretrain_iters 3 -> 4" in out
    assert [r["step"] for r in other.history] == [1, 2, 3, 4]
    # both stay cached, each under its own folder
    assert runs.ensure_run("tiny", cfg, preset="unit").run_dir == base.run_dir
    assert runs.ensure_run("tiny", other_cfg, preset="unit").run_dir == other.run_dir
    assert capsys.readouterr().out.count("using the cached model") == 2


def test_unfinished_run_is_resumed(cache, capsys):
    cfg = tiny(phase="pretrain", ckpt_every=2, pretrain_iters=4)
    done = runs.ensure_run("tiny", cfg, preset="unit")
    reference = losses(done.history)
    # Make it look interrupted after the checkpoint of step 2: no final weights, no run.json.
    (done.run_dir / "run.json").unlink()
    for name in ("G", "G_ema"):
        (done.run_dir / "pretrain" / f"{name}.safetensors").unlink()
    capsys.readouterr()
    resumed = runs.ensure_run("tiny", cfg, preset="unit")
    assert capsys.readouterr().out == "found an unfinished run of 'tiny' (unit) - resuming it\n"
    assert resumed.generator_path().is_file()
    assert losses(resumed.history) == reference


def test_config_key_keeps_what_changes_the_result(cache):
    cfg = tiny(phase="pretrain")
    key = runs.config_key(cfg)
    assert "name" not in key and "progress" not in key and "out_dir" not in key
    assert "gamma" not in key and "gan_iters" not in key  # phase-2 fields of a phase-1 run
    assert key["pretrain_iters"] == 3 and key["train_set"] == "samples"
    gan = tiny(phase="gan", pretrained_g=str(cache / "models" / "teach" / "psnr" / "G.safetensors"))
    gkey = runs.config_key(gan)
    assert "pretrain_iters" not in gkey
    assert gkey["pretrained_g"] == "<models>/teach/psnr/G.safetensors"  # portable
    # a shipped parent has the same key as one trained into the cache, and so has a derived set
    shipped = tiny(phase="gan", pretrained_g=str(runs.SHIPPED_DIR / "teach" / "psnr" / "G.safetensors"))
    assert runs.config_key(shipped) == gkey
    made = tiny(train_set=str(cache / "prepared" / "imagenet-like-1234" / "imagenet-like"))
    assert runs.config_key(made)["train_set"] == "<derived>/prepared/imagenet-like-1234/imagenet-like"
    assert runs.config_hash(cfg) == runs.config_hash(apply_overrides(cfg, {"gamma": 0.5}))
    assert runs.config_hash(cfg) != runs.config_hash(apply_overrides(cfg, {"seed": 1}))
    assert len(runs.config_hash(cfg)) == 8


def test_a_bad_name_is_refused():
    with pytest.raises(ValueError, match="folder name"):
        runs.ensure_run("a/b", tiny())


def test_the_trainer_start_up_line_is_quiet_only_inside_ensure_run(cache, capsys):
    """ensure_run silences the start-up line through its logger, and gives the level
    back."""
    import logging

    setup_log = logging.getLogger("gmgan.train.setup")
    before = setup_log.level
    runs.ensure_run("tiny", tiny(phase="pretrain", pretrain_iters=1), preset="unit")
    assert "training pretrain in" not in capsys.readouterr().err
    assert setup_log.level == before


def test_a_phase_keys_only_what_it_uses(cache):
    """The noise options and gan_ema_decay are phase-2 fields: a phase-1 run's key leaves
    them out (its model is the same). A phase-2 run keys the moving average it uses, however
    the configuration writes it."""
    psnr = tiny(phase="pretrain")
    for other in ({"noise_inject": True}, {"noise_head": 8}, {"gan_ema_decay": 0.9}):
        assert runs.config_key(apply_overrides(psnr, other)) == runs.config_key(psnr), other
    gan = tiny(phase="gan", pretrained_g="<models>/teach/psnr/G.safetensors", ema_decay=0.997)
    split = apply_overrides(gan, {"ema_decay": 0.995, "gan_ema_decay": 0.997})
    assert runs.config_key(split) == runs.config_key(gan)
    assert runs.config_key(gan)["ema_decay"] == 0.997 and "gan_ema_decay" not in runs.config_key(gan)
    both = tiny(phase="both", ema_decay=0.995)
    assert "gan_ema_decay" not in runs.config_key(both)
    assert runs.config_key(apply_overrides(both, {"gan_ema_decay": 0.995})) == runs.config_key(both)
    assert runs.config_key(apply_overrides(both, {"gan_ema_decay": 0.997}))["gan_ema_decay"] == 0.997


def test_noise_fields_enter_the_key_only_when_set(cache):
    """The noise inputs (issue 19) came after the shipped models: at their defaults they
    are not in a key (the shipped keys stay valid), set they are (another model)."""
    cfg = tiny(phase="gan", pretrained_g="<models>/teach/psnr/G.safetensors")
    key = runs.config_key(cfg)
    assert "noise_inject" not in key and "noise_head" not in key
    for field, value in (("noise_inject", True), ("noise_head", 8)):
        other = apply_overrides(cfg, {field: value})
        assert runs.config_key(other)[field] == value
        assert runs.config_hash(other) != runs.config_hash(cfg)


def test_config_differences_lists_each_changed_field_once_sorted():
    old = {"gan_iters": 2000, "delta": 0.005, "seed": 0}
    new = {"gan_iters": 4000, "delta": 0.1, "seed": 0, "noise_inject": True}
    assert runs.config_differences(old, new) == [
        "delta 0.005 -> 0.1", "gan_iters 2000 -> 4000", "noise_inject None -> True"]
    assert runs.config_differences(old, dict(old)) == []
    # the message of ensure_run keeps the first four and counts the rest
    many = {f"f{i}": i for i in range(6)}
    assert runs._diff({}, many).endswith("and 2 more")
