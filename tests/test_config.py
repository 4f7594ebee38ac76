"""TrainConfig (gmgan.config): presets, YAML round trip, overrides with type coercion,
validation errors, the values derived from the fields, and the old module name."""
from __future__ import annotations

import dataclasses
import re

import pytest

import gmgan.config
from gmgan.config import PRESETS, TrainConfig, apply_overrides, get_preset
from gmgan.sizing import estimate_seconds


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_yaml_round_trip(name, tmp_path):
    cfg = get_preset(name)
    assert TrainConfig.from_yaml(cfg.to_yaml()) == cfg
    path = tmp_path / "cfg.yaml"
    cfg.to_yaml(path)
    assert TrainConfig.from_yaml(path) == cfg
    assert TrainConfig.from_yaml(str(path)) == cfg


def test_paper_preset_has_the_published_values():
    """Constants from the GMGAN paper (PAPER.md) and ESRGAN's iteration counts."""
    cfg = get_preset("paper")
    assert (cfg.num_block, cfg.num_feat, cfg.num_grow, cfg.scale) == (23, 64, 32, 4)
    assert (cfg.batch_size, cfg.patch_size) == (16, 128)
    assert (cfg.alpha, cfg.beta, cfg.gamma, cfg.delta, cfg.lam) == (1e-2, 1.0, 1.0, 5e-3, 10.0)
    assert (cfg.pretrain_lr, cfg.pretrain_lr_halve_every) == (2e-4, 200_000)
    assert (cfg.gan_lr, cfg.gan_lr_halve_every, cfg.gan_betas) == (2e-4, 100_000, (0.0, 0.9))
    assert (cfg.pretrain_iters, cfg.gan_iters) == (1_000_000, 400_000)
    assert cfg.perceptual_layer == "conv5_4" and cfg.perceptual_weights == "imagenet"


def test_every_field_documents_itself():
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f.name


def test_overrides_from_strings_are_coerced():
    cfg = apply_overrides(get_preset("teach"), [
        "pretrain_iters=2e3", "pretrain_lr=1e-3", "channels_last=yes", "val_sets=Set5, Set14 ,BSD100",
        "gan_betas=0.5,0.99", "val_limit=none", "subimages=true", "out-dir=/tmp/x", "amp=bf16"])
    assert cfg.pretrain_iters == 2000 and isinstance(cfg.pretrain_iters, int)
    assert cfg.pretrain_lr == 1e-3 and cfg.channels_last is True
    assert cfg.val_sets == ("Set5", "Set14", "BSD100") and cfg.gan_betas == (0.5, 0.99)
    assert cfg.val_limit is None and cfg.subimages is True and cfg.out_dir == "/tmp/x"
    assert get_preset("teach").channels_last is False  # the preset itself is untouched
    cfg2 = apply_overrides(cfg, {"val_sets": [], "val_limit": "3", "seed": 5})
    assert cfg2.val_sets == () and cfg2.val_limit == 3 and cfg2.seed == 5


def test_yaml_may_name_a_preset():
    cfg = TrainConfig.from_yaml("preset: teach\nbatch_size: 4\nval_sets: [Set5]\n")
    assert cfg.num_block == get_preset("teach").num_block and cfg.batch_size == 4
    assert cfg.val_sets == ("Set5",)


@pytest.mark.parametrize("override, message", [
    ({"pretrain_iters": -1}, "pretrain_iters must be >= 0"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"phase": "finetune"}, "phase must be one of"),
    ({"amp": "fp8"}, "amp must be one of"),
    ({"patch_size": 100}, "patch_size must be a positive multiple of 16"),
    ({"gan_betas": "0.9"}, "gan_betas needs 2"),
    ({"pretrain_iters": "1.5"}, "pretrain_iters must be an integer"),
    ({"channels_last": "maybe"}, "channels_last must be true or false"),
    ({"pretrain_lr": "fast"}, "pretrain_lr must be a number"),
    ({"ema_decay": 1.0}, r"ema_decay must be in \[0, 1\)"),
    ({"gan_ema_decay": -0.5}, r"gan_ema_decay must be None \(ema_decay\) or in \[0, 1\)"),
    ({"device": "tpu"}, "device must be"),
    ({"perceptual_layer": "conv6_1"}, "perceptual_layer must be one of"),
    ({"name": "a/b"}, "name must be"),
])
def test_bad_values_name_the_field(override, message):
    with pytest.raises(ValueError, match=message):
        get_preset("paper", **override)


def test_unknown_keys_and_presets_are_listed():
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\) batchsize; known fields: name, "):
        apply_overrides(TrainConfig(), ["batchsize=4"])
    with pytest.raises(ValueError, match="not of the form key=value"):
        apply_overrides(TrainConfig(), ["batch_size"])
    with pytest.raises(ValueError, match="known presets: paper, teach, colab"):
        get_preset("esrgan")
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        TrainConfig.from_yaml("learning_rate: 1\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        TrainConfig.from_yaml("a: [1,\n")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        TrainConfig(batch_size=-3)


# ---------------------------------------------------------------------- the paper's data, Colab

def test_paper_preset_trains_on_divk2_with_the_8x_augmentation():
    """Issue 11, item 2: not the 9 sample pictures, silently."""
    from gmgan.data.registry import get_info

    cfg = get_preset("paper")
    assert (cfg.train_set, cfg.augment8) == ("DIV2K", True)
    assert get_info(cfg.train_set).count == 800
    assert get_info("DF2K").parts == ("DIV2K", "Flickr2K") and get_info("DF2K-OST").count == 3450 + 1342


@pytest.mark.filterwarnings("ignore:PerceptualLoss\\(weights=None\\)")
def test_paper_preset_refuses_offline_without_its_data_or_vgg(tmp_path, monkeypatch):
    """Offline: the ImageNet VGG19 is refused before anything is written, then (with an explicit
    random VGG) the missing DIV2K is refused naming `gmgan data fetch DIV2K`."""
    from gmgan.pretrained import WeightsUnavailable
    from gmgan.train import train

    monkeypatch.setenv("GMGAN_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GMGAN_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("GMGAN_DERIVED", str(tmp_path / "derived"))
    run = tmp_path / "run"
    with pytest.raises(WeightsUnavailable, match=r"(?s)vgg19-dcbb9e9d.pth.*TORCH_HOME.*perceptual_weights=random"):
        train(get_preset("paper", out_dir=str(run), val_sets=(), progress=False, tensorboard=False))
    assert not run.exists()
    with pytest.raises(FileNotFoundError, match=r"'DIV2K' is not in the data cache.*gmgan data fetch DIV2K"):
        train(get_preset("paper", out_dir=str(run), val_sets=(), progress=False, tensorboard=False,
                         perceptual_weights="random", num_block=1, num_feat=8, num_grow=8, num_workers=0))


# ---------------------------------------------------------------------- derived values


def test_iters_of_a_phase():
    cfg = get_preset("teach", pretrain_iters=7, gan_iters=3)
    assert (cfg.iters("pretrain"), cfg.iters("gan")) == (7, 3)
    with pytest.raises(ValueError, match="must be 'pretrain' or 'gan'; got 'both'"):
        cfg.iters("both")


def test_the_moving_average_of_each_phase():
    cfg = TrainConfig(ema_decay=0.995)  # no gan_ema_decay: phase 2 averages like phase 1
    assert (cfg.ema_decay_of("pretrain"), cfg.ema_decay_of("gan")) == (0.995, 0.995)
    cfg = get_preset("teach")  # a shorter window in phase 2 (issue 19)
    assert (cfg.ema_decay_of("pretrain"), cfg.ema_decay_of("gan")) == (0.995, 0.997)
    assert get_preset("teach", gan_ema_decay="0").ema_decay_of("gan") == 0  # no EMA
    with pytest.raises(ValueError, match="got 'both'"):
        cfg.ema_decay_of("both")


@pytest.mark.parametrize("weights, beta, mode", [
    ("imagenet", 1.0, "imagenet"), (" ImageNet ", 1.0, "imagenet"),
    ("random", 1.0, "random"), ("RANDOM", 2.0, "random"), ("none", 1.0, "none"),
    ("off", 1.0, "none"), ("False", 1.0, "none"), ("imagenet", 0.0, "none"),
    ("random", 0.0, "none"), ("/w/vgg19.pth", 1.0, "file"),
])
def test_perceptual_mode(weights, beta, mode):
    assert TrainConfig(perceptual_weights=weights, beta=beta).perceptual_mode == mode


def test_the_presets_module_still_re_exports_the_config():
    import gmgan.presets

    for name in ("CHOICES", "PRESETS", "TrainConfig", "apply_overrides", "get_preset"):
        assert getattr(gmgan.presets, name) is getattr(gmgan.config, name)


def _minutes_in_doc(pattern: str) -> tuple[float, ...]:
    match = re.search(pattern, " ".join(gmgan.config.__doc__.split()))
    assert match, pattern
    return tuple(float(x.replace(",", "")) for x in match.groups())


def test_the_module_doc_states_the_presets_estimated_minutes():
    """The training times the module doc gives for the teach and colab presets are the
    ones gmgan.sizing computes now (to the minute), and the updates are the presets'."""
    teach, colab = get_preset("teach"), get_preset("colab")
    phases = ("pretrain", "gan")
    stated = _minutes_in_doc(r"(\d[\d,]*) MSE \+ (\d[\d,]*) GAN updates "
                             r"\(about (\d+) \+ (\d+) min")
    assert stated[:2] == (teach.pretrain_iters, teach.gan_iters)
    for phase, minutes in zip(phases, stated[2:]):
        seconds = estimate_seconds(get_preset("teach", phase=phase))
        assert round(seconds / 60) == minutes, phase
    stated = _minutes_in_doc(r"about ([\d.]+) s per phase-1 and ([\d.]+) s per phase-2 "
                             r"update, (\d+) \+ (\d+) = (\d+) min")
    per_phase = [estimate_seconds(get_preset("colab", phase=p), "t4") for p in phases]
    per_update = [round(s / colab.iters(p), 2) for s, p in zip(per_phase, phases)]
    assert per_update == list(stated[:2])
    assert [round(s / 60) for s in per_phase] == list(stated[2:4])
    assert round(estimate_seconds(colab, "t4") / 60) == stated[4]
    assert "5,000 MSE + 2,000 GAN updates" in " ".join(gmgan.config.__doc__.split())
    assert (colab.pretrain_iters, colab.gan_iters) == (5000, 2000)
