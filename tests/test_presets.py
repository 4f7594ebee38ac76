"""TrainConfig: presets, YAML round trip, overrides with type coercion, validation errors."""
from __future__ import annotations

import dataclasses

import pytest

from gmgan.presets import PRESETS, TrainConfig, apply_overrides, get_preset


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


def test_colab_preset_is_sized_for_an_hour_on_a_t4():
    import gmgan.experiments as ex

    cfg = get_preset("colab")
    seconds = ex.estimate_seconds(cfg, "t4")
    assert 45 * 60 < seconds < 75 * 60
    teach, paper = get_preset("teach"), get_preset("paper")
    for phase in ("pretrain", "gan"):  # a generator between the teaching and the paper size
        assert ex._phase_flops(teach, phase) < ex._phase_flops(cfg, phase) < ex._phase_flops(paper, phase)
    assert teach.num_block < cfg.num_block < paper.num_block
    assert cfg.amp == "fp16" and cfg.train_set == "DIV2K" and cfg.perceptual_weights == "imagenet"
    assert cfg.perceptual_layer == paper.perceptual_layer and cfg.batch_size == paper.batch_size
    # the T4 table is the H200's scaled by the ratio of the peaks, and labelled an estimate
    assert ex.T4_SECONDS_PER_UPDATE["gan"] == pytest.approx(ex.GPU_SECONDS_PER_UPDATE["gan"] * 989 / 65)
    assert "ESTIMATE" in __import__("gmgan.presets").presets.__doc__
    assert ex.estimate_seconds(paper, "t4") > 20 * 86400  # weeks: why a colab preset exists


def test_pick_preset_and_print_estimate(monkeypatch, capsys):
    import torch

    import gmgan.experiments as ex

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert ex.pick_preset() == "teach" and ex.pick_preset("paper") == "paper"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert ex.pick_preset(None) == "colab"
    with pytest.raises(ValueError, match="known presets"):
        ex.pick_preset("huge")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla T4")
    assert ex.estimate_device() == "t4" and ex.estimate_device("cpu") == "cpu"
    seconds = ex.print_estimate(get_preset("colab"))
    out = capsys.readouterr().out
    assert seconds == pytest.approx(ex.estimate_seconds(get_preset("colab"), "t4"))
    assert out.startswith("colab: 5000 MSE updates + 2000 GAN updates, about ") and "Colab T4 (estimate)" in out
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H200")
    assert ex.estimate_device() == "gpu"
