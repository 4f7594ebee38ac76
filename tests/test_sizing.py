"""How long training takes, and the preset a machine runs (gmgan.sizing)."""
from __future__ import annotations

import pytest

from gmgan import sizing
from gmgan.config import apply_overrides, get_preset


def test_colab_preset_is_sized_for_an_hour_on_a_t4():
    cfg = get_preset("colab")
    seconds = sizing.estimate_seconds(cfg, "t4")
    assert 45 * 60 < seconds < 75 * 60
    teach, paper = get_preset("teach"), get_preset("paper")
    for phase in ("pretrain", "gan"):  # a generator between the teaching and the paper size
        assert sizing.phase_flops(teach, phase) < sizing.phase_flops(cfg, phase) < sizing.phase_flops(paper, phase)
    assert teach.num_block < cfg.num_block < paper.num_block
    assert cfg.amp == "fp16" and cfg.train_set == "DIV2K" and cfg.perceptual_weights == "imagenet"
    assert cfg.perceptual_layer == paper.perceptual_layer and cfg.batch_size == paper.batch_size
    # the T4 table is the H200's scaled by the ratio of the peaks, and labelled an estimate
    assert sizing.T4_SECONDS_PER_UPDATE["gan"] == pytest.approx(sizing.GPU_SECONDS_PER_UPDATE["gan"] * 989 / 65)
    assert sizing.estimate_seconds(paper, "t4") > 20 * 86400  # weeks: why a colab preset exists


def test_pick_preset_and_print_estimate(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert sizing.pick_preset() == "teach" and sizing.pick_preset("paper") == "paper"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert sizing.pick_preset(None) == "colab"
    with pytest.raises(ValueError, match="known presets"):
        sizing.pick_preset("huge")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla T4")
    assert sizing.estimate_device() == "t4" and sizing.estimate_device("cpu") == "cpu"
    seconds = sizing.print_estimate(get_preset("colab"))
    out = capsys.readouterr().out
    assert seconds == pytest.approx(sizing.estimate_seconds(get_preset("colab"), "t4"))
    assert out.startswith("colab: 5000 MSE updates + 2000 GAN updates, about ") and "Colab T4 (estimate)" in out
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H200")
    assert sizing.estimate_device() == "gpu"


def test_estimate_scales_with_iterations_and_size():
    teach = get_preset("teach")
    expected = (teach.pretrain_iters * sizing.CPU_SECONDS_PER_UPDATE["pretrain"]
                + teach.gan_iters * sizing.CPU_SECONDS_PER_UPDATE["gan"])
    assert sizing.estimate_seconds(teach) == pytest.approx(expected, rel=1e-9)
    half = apply_overrides(teach, {"pretrain_iters": teach.pretrain_iters // 2, "phase": "pretrain"})
    assert sizing.estimate_seconds(half) == pytest.approx(
        teach.pretrain_iters // 2 * sizing.CPU_SECONDS_PER_UPDATE["pretrain"], rel=1e-9)
    # twice the batch: twice the FLOPs of every network, so twice the time
    double = apply_overrides(teach, {"batch_size": 2 * teach.batch_size})
    assert sizing.estimate_seconds(double) == pytest.approx(2 * expected, rel=1e-6)
    assert sizing.estimate_seconds(get_preset("paper")) > 1000 * expected
    # a deeper VGG19 layer costs more: phase 2 at conv5_4 (the teach preset's) is 2.8x the
    # FLOPs of conv2_2 on 48-px patches (measured: 2.4x the seconds), and the estimate says so
    deep = apply_overrides(teach, {"phase": "gan"})
    shallow = apply_overrides(deep, {"perceptual_layer": "conv2_2"})
    assert deep.perceptual_layer == "conv5_4"
    assert 2.5 < sizing.estimate_seconds(deep) / sizing.estimate_seconds(shallow) < 3.2
    with pytest.raises(ValueError, match="device"):
        sizing.estimate_seconds(teach, device="tpu")


def test_durations_in_words():
    seconds = (None, 10, 45, 14 * 60, 1.5 * 3600, 30 * 3600)
    assert [sizing.duration_text(s) for s in seconds] == [
        "an unknown time", "under a minute", "about 1 min", "about 14 min",
        "about 1.5 h", "about 30 h"]
