"""gmgan.synthetic.models: the generator starts at bicubic, the noise head, network
interpolation and the fp16 weight files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gmgan import synthetic as S
from gmgan.resize import imresize

SPECTRUM = S.TextureSpectrum(peak=0.2, width=0.06, std=0.06)


def test_small_generator_starts_near_bicubic_and_trains():
    torch.manual_seed(0)
    task = S.SyntheticSRTask(size=32, spectrum=SPECTRUM)
    stream = S.TrainingStream(task, batch_size=2, patch=16, pool=2)
    generator = S.small_generator(num_feat=8, num_block=1, num_grow=8, seed=0)
    lr, _ = next(stream)
    with torch.no_grad():
        start = generator(lr)
    assert (start - imresize(lr, 4)).abs().max() < 0.1
    log = S.train_sr(generator, stream, 2, threads=1)
    assert len(log) == 2 and np.isfinite(log[-1]["mse"])
    critic = S.small_critic(16, num_feat=4)
    log = S.train_sr(
        generator, stream, 2, mse=0.1, quality=1.0, adversarial=0.1, critic=critic,
        threads=1,
    )
    assert {"mse", "quality", "adversarial", "wasserstein"} <= log[-1].keys()
    with pytest.raises(ValueError, match="critic"):
        S.train_sr(generator, stream, 1, adversarial=1.0)

def test_noise_head_makes_a_stochastic_generator_that_starts_near_its_parent():
    parent = S.small_generator(num_feat=8, num_block=1, num_grow=8, seed=0)
    child = S.with_noise_head(parent, channels=4, seed=1)
    assert parent.noise_head is None and child.noise_head is not None
    lr = torch.rand(2, 3, 4, 4)
    with torch.no_grad():
        base, a, b = parent(lr), child(lr), child(lr)
    assert not torch.equal(a, b)  # fresh noise at every call
    assert (a - base).abs().max() < 0.1  # the head starts small
    torch.testing.assert_close(
        parent.body.conv_first.weight, child.body.conv_first.weight
    )
    with pytest.raises(ValueError, match="noise_channels"):
        S.BicubicResidualSR(parent.body, noise_channels=1)


def _trained_pair():
    psnr = S.small_generator(num_feat=8, num_block=1, num_grow=8, seed=0)
    gan = S.with_noise_head(psnr, channels=4, seed=1)
    with torch.no_grad():  # make the two ends differ everywhere
        for p in gan.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return psnr, gan


def test_interpolation_ends_are_the_two_models_and_the_middle_is_the_mean():
    psnr, gan = _trained_pair()
    lr = torch.rand(2, 3, 4, 4)
    with torch.no_grad():
        torch.manual_seed(3)
        at_zero = S.interpolate_generators(psnr, gan, 0.0)(lr)
        torch.manual_seed(3)
        at_one = S.interpolate_generators(psnr, gan, 1.0)(lr)
        torch.manual_seed(3)
        gan_out = gan(lr)
        torch.testing.assert_close(at_zero, psnr(lr), rtol=0, atol=1e-6)
    torch.testing.assert_close(at_one, gan_out)
    half = S.interpolate_generators(psnr, gan, 0.5)
    w = "body.conv_first.weight"
    torch.testing.assert_close(
        half.state_dict()[w], 0.5 * (psnr.state_dict()[w] + gan.state_dict()[w])
    )
    # The PSNR model itself is left without a head; the head's first conv is the GAN's.
    assert psnr.noise_head is None
    torch.testing.assert_close(half.noise_head[0].weight, gan.noise_head[0].weight)
    with pytest.raises(ValueError, match="alpha"):
        S.interpolate_generators(psnr, gan, 1.5)
    other = S.small_generator(num_feat=4, num_block=1, num_grow=4)
    with pytest.raises(ValueError, match="differ"):
        S.interpolate_generators(other, gan, 0.5)


def test_weights_round_trip_through_fp16(tmp_path):
    _, gan = _trained_pair()
    path = S.save_generator(gan, tmp_path / "g.safetensors")
    arch = {"num_feat": 8, "num_block": 1, "num_grow": 8}
    back = S.load_generator(path, noise_head=4, **arch)
    for name, value in gan.state_dict().items():
        loaded = back.state_dict()[name]
        assert loaded.dtype == torch.float32
        torch.testing.assert_close(loaded, value.half().float(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="does not fit"):
        S.load_generator(path, noise_head=0, **arch)
    with pytest.raises(FileNotFoundError, match="no weights file"):
        S.load_generator(tmp_path / "missing.safetensors", **arch)
    from safetensors.torch import save_file

    state = {k: v.clone() for k, v in gan.state_dict().items()}
    state["body.conv_first.bias"][0] = float("nan")
    save_file(state, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match="non-finite.*conv_first.bias"):
        S.load_generator(tmp_path / "bad.safetensors", noise_head=4, **arch)
