"""Tests of gmgan.nets: RRDBNet against BasicSR's published layout and spandrel's ESRGAN (the
outside reference), count_parameters against hand counts, the residual_scale switch against
closed forms, the three checkpoint formats, safe loading, and the SRGAN critic."""

from __future__ import annotations

import math
import pickle
import re
import warnings

import pytest
import torch
import torch.nn as nn

from gmgan.nets import (
    RESIDUAL_SCALE,
    RRDB,
    CheckpointError,
    Discriminator,
    ResidualDenseBlock,
    RRDBNet,
    convert_state_dict,
    count_parameters,
    load_generator,
    save_generator,
)


# ------------------------------------------------------------------------------------------------
# Published key layouts, written out independently of gmgan.nets
# ------------------------------------------------------------------------------------------------


def basicsr_keys(num_block: int = 23, scale: int = 4) -> list[str]:
    """BasicSR RRDBNet keys in registration order (basicsr/archs/rrdbnet_arch.py)."""
    layers = ["conv_first"]
    layers += [
        f"body.{n}.rdb{r}.conv{c}" for n in range(num_block) for r in (1, 2, 3) for c in range(1, 6)
    ]
    layers += (
        ["conv_body", "conv_up1"] + (["conv_up2"] if scale == 4 else []) + ["conv_hr", "conv_last"]
    )
    return [f"{layer}.{p}" for layer in layers for p in ("weight", "bias")]


def to_esrgan_key(key: str) -> str:
    """BasicSR key -> original ESRGAN key (xinntao/ESRGAN RRDBNet_arch.py)."""
    layer, param = key.rsplit(".", 1)
    m = re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)", layer)
    if m:
        layer = f"RRDB_trunk.{m[1]}.RDB{m[2]}.conv{m[3]}"
    else:
        layer = {
            "conv_body": "trunk_conv",
            "conv_up1": "upconv1",
            "conv_up2": "upconv2",
            "conv_hr": "HRconv",
        }.get(layer, layer)
    return f"{layer}.{param}"


def to_old_key(key: str, num_block: int, scale: int) -> str:
    """BasicSR key -> old-arch ESRGAN key (model.0 / model.1.sub.N.RDBk.convj.0 / model.3 ...)."""
    layer, param = key.rsplit(".", 1)
    m = re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)", layer)
    if m:
        return f"model.1.sub.{m[1]}.RDB{m[2]}.conv{m[3]}.0.{param}"
    tail = (
        {"conv_up1": 3, "conv_up2": 6, "conv_hr": 8, "conv_last": 10}
        if scale == 4
        else {"conv_up1": 3, "conv_hr": 5, "conv_last": 7}
    )
    if layer == "conv_first":
        return f"model.0.{param}"
    if layer == "conv_body":
        return f"model.1.sub.{num_block}.{param}"
    return f"model.{tail[layer]}.{param}"


def renamed(sd: dict, fmt: str, num_block: int, scale: int) -> dict:
    if fmt == "basicsr":
        return dict(sd)
    if fmt == "esrgan":
        return {to_esrgan_key(k): v for k, v in sd.items()}
    return {to_old_key(k, num_block, scale): v for k, v in sd.items()}


def random_model(seed: int = 0, **kwargs) -> RRDBNet:
    """A small RRDBNet whose every tensor (biases included) is random, so renaming errors show."""
    torch.manual_seed(seed)
    model = RRDBNet(**kwargs).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.05)
    return model


SMALL = dict(num_feat=16, num_block=2, num_grow=8)


@pytest.fixture(scope="module")
def default_model() -> RRDBNet:
    torch.manual_seed(0)
    return RRDBNet()


@pytest.fixture
def lr_image() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(2, 3, 12, 10)


# ------------------------------------------------------------------------------------------------
# RRDBNet
# ------------------------------------------------------------------------------------------------



def test_state_dict_keys_are_basicsr(default_model):
    assert list(default_model.state_dict()) == basicsr_keys(23, 4)
    assert list(RRDBNet(num_block=3, scale=2).state_dict()) == basicsr_keys(3, 2)


@pytest.mark.parametrize("scale", [2, 4])
def test_output_shape(scale, lr_image):
    model = RRDBNet(scale=scale, **SMALL)
    out = model(lr_image)
    assert out.shape == (2, 3, 12 * scale, 10 * scale) and out.dtype == torch.float32


def test_other_channels_and_bad_arguments():
    gray_to_2 = RRDBNet(in_channels=1, out_channels=2, **SMALL)
    assert gray_to_2(torch.rand(1, 1, 5, 6)).shape == (1, 2, 20, 24)
    for bad in (1, 3, 8):
        with pytest.raises(ValueError, match="scale"):
            RRDBNet(scale=bad)
    with pytest.raises(ValueError, match="expects"):
        RRDBNet(**SMALL)(torch.rand(1, 4, 8, 8))


def test_scaled_kaiming_init(default_model):
    body = default_model.body
    for conv in (body[0].rdb1.conv1, body[5].rdb2.conv3, body[22].rdb3.conv5):
        fan_in = conv.weight[0].numel()
        expected_std = 0.1 * math.sqrt(2.0 / fan_in)  # He-normal (gain sqrt 2) times 0.1
        assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.05)
        assert conv.weight.mean().abs().item() < 0.1 * expected_std
        assert torch.count_nonzero(conv.bias) == 0
    # Convs outside the dense blocks keep PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    conv = default_model.conv_body
    assert conv.weight.std().item() == pytest.approx(
        1 / math.sqrt(3 * conv.weight[0].numel()), rel=0.05
    )


def test_residual_scale_closed_form():
    """conv5's weights zeroed, bias c: RDB(x) = x + s c; an RRDB of three such blocks gives
    x + 3 s c inside and returns x + s (x + 3 s c) = (1 + s) x + 3 s^2 c (s = 0.2 by default:
    1.2 x + 0.12 c)."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 5)
    c = torch.randn(8).view(1, -1, 1, 1)
    # the default (ESRGAN's 0.2), then two other scales
    for s, kwargs in ((0.2, {}), (1.0, {"residual_scale": 1.0}), (0.5, {"residual_scale": 0.5})):
        rdb = ResidualDenseBlock(8, 4, **kwargs)
        rrdb = RRDB(8, 4, **kwargs)
        with torch.no_grad():
            for block in (rdb, rrdb.rdb1, rrdb.rdb2, rrdb.rdb3):
                block.conv5.weight.zero_()
                block.conv5.bias.copy_(c.flatten())
            torch.testing.assert_close(rdb(x), x + s * c)
            torch.testing.assert_close(rrdb(x), (1 + s) * x + 3 * s * s * c)


def test_residual_scale_default_unchanged_and_round_trip(tmp_path):
    torch.manual_seed(0)
    default = RRDBNet(num_feat=8, num_block=1, num_grow=4)
    assert default.residual_scale == RESIDUAL_SCALE == 0.2
    assert "residual_scale" not in default.config
    unscaled = RRDBNet(num_feat=8, num_block=1, num_grow=4, residual_scale=1.0)
    assert unscaled.config["residual_scale"] == 1.0
    assert RRDBNet(**unscaled.config).residual_scale == 1.0
    unscaled.load_state_dict(default.state_dict())
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        assert not torch.allclose(unscaled(x), default(x))
        loaded = load_generator(save_generator(unscaled, tmp_path / "g.safetensors"))
        assert loaded.residual_scale == 1.0
        torch.testing.assert_close(loaded(x), unscaled(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="residual_scale"):
        RRDBNet(residual_scale=float("nan"))


# ------------------------------------------------------------------------------------------------
# count_parameters
# ------------------------------------------------------------------------------------------------


def conv_params(c_in: int, c_out: int, k: int = 3) -> int:
    return c_in * c_out * k * k + c_out


def test_count_parameters_by_hand():
    model = RRDBNet(num_feat=16, num_block=2, num_grow=8)
    rdb = sum(conv_params(16 + i * 8, 8) for i in range(4)) + conv_params(16 + 4 * 8, 16)
    want = {
        "conv_first": conv_params(3, 16),
        "body": 2 * 3 * rdb,
        "conv_body": conv_params(16, 16),
        "conv_up1": conv_params(16, 16),
        "conv_up2": conv_params(16, 16),
        "conv_hr": conv_params(16, 16),
        "conv_last": conv_params(16, 3),
    }
    want["total"] = sum(want.values())
    assert count_parameters(model) == want
    assert list(count_parameters(model)) == list(want)  # registration order, total last
    per_rrdb = {"rdb1": rdb, "rdb2": rdb, "rdb3": rdb, "total": 3 * rdb}
    assert count_parameters(model.body[0]) == per_rrdb


def test_count_parameters_published_totals(default_model):
    # ESRGAN's RRDB_ESRGAN_x4 has 16,697,987 parameters
    assert sum(p.numel() for p in default_model.parameters()) == 16_697_987
    assert count_parameters(default_model)["total"] == 16_697_987
    d = count_parameters(Discriminator())
    assert d["classifier"] == 512 * 8 * 8 * 1024 + 1024 + 1024 + 1
    assert d["total"] == d["features"] + d["classifier"]


def test_count_parameters_own_and_shared():
    lin = torch.nn.Linear(3, 2)
    assert count_parameters(lin) == {"(own)": 8, "total": 8}
    shared = torch.nn.Sequential(lin, lin)  # the same layer twice: counted once in the total
    assert count_parameters(shared)["total"] == 8


def test_channels_last_and_autocast(lr_image):
    model = random_model(**SMALL)
    with torch.no_grad():
        ref = model(lr_image)
        model_cl = random_model(**SMALL).to(memory_format=torch.channels_last)
        out_cl = model_cl(lr_image.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(out_cl, ref, rtol=1e-5, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out_bf = model_cl(lr_image.contiguous(memory_format=torch.channels_last))
    assert out_bf.shape == ref.shape and torch.isfinite(out_bf).all()
    assert (out_bf.float() - ref).abs().max() < 0.05 * ref.abs().max()


def test_backward_runs():
    model = RRDBNet(**SMALL)
    x = torch.rand(1, 3, 6, 6, requires_grad=True)
    model(x).square().mean().backward()
    assert x.grad is not None and all(p.grad is not None for p in model.parameters())


# ------------------------------------------------------------------------------------------------
# Checkpoint formats
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("fmt", ["basicsr", "esrgan", "old"])
def test_formats_round_trip(fmt, scale, lr_image):
    src = random_model(
        scale=scale, in_channels=3, out_channels=3, num_feat=16, num_block=3, num_grow=8
    )
    sd = renamed(src.state_dict(), fmt, num_block=3, scale=scale)
    kept = {
        "basicsr": set(sd),
        "esrgan": {f"conv_{a}.{b}" for a in ("first", "last") for b in ("weight", "bias")},
        "old": set(),
    }[fmt]
    assert set(sd) & set(src.state_dict()) == kept  # the test really renamed the keys it should
    converted = convert_state_dict(sd)
    assert list(converted) == basicsr_keys(3, scale)
    model = load_generator(sd)
    assert model.config == {
        "in_channels": 3,
        "out_channels": 3,
        "num_feat": 16,
        "num_block": 3,
        "num_grow": 8,
        "scale": scale,
    }
    with torch.no_grad():
        assert torch.equal(model(lr_image), src(lr_image))


def test_wrappers_and_module_prefix(lr_image):
    ema, plain = random_model(seed=1, **SMALL), random_model(seed=2, **SMALL)
    with torch.no_grad():
        want_ema, want_plain = ema(lr_image), plain(lr_image)
    both = {"params": plain.state_dict(), "params_ema": ema.state_dict()}
    only = {"params": {f"module.{to_esrgan_key(k)}": v for k, v in plain.state_dict().items()}}
    with torch.no_grad():
        assert torch.equal(load_generator(both)(lr_image), want_ema)  # EMA preferred
        assert torch.equal(load_generator(only)(lr_image), want_plain)


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".safetensors"])
@pytest.mark.parametrize("fmt", ["basicsr", "old"])
def test_files(tmp_path, suffix, fmt, lr_image):
    from safetensors.torch import save_file

    src = random_model(**SMALL)
    sd = renamed(src.state_dict(), fmt, num_block=SMALL["num_block"], scale=4)
    path = tmp_path / f"generator{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        torch.save({"params_ema": sd} if fmt == "basicsr" else sd, path)
    model = load_generator(path, scale=4)
    with torch.no_grad():
        assert torch.equal(model(lr_image), src(lr_image))


def test_save_generator_metadata_round_trip(tmp_path, lr_image):
    from safetensors import safe_open

    src = random_model(scale=2, **SMALL)
    with torch.no_grad():
        want = src(lr_image)
    # channels_last weights are not contiguous; save_generator must still write them correctly.
    path = save_generator(src.to(memory_format=torch.channels_last), tmp_path / "g.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        assert set(f.keys()) == set(basicsr_keys(SMALL["num_block"], 2))
    assert meta["format"] == "gmgan.RRDBNet"
    assert {k: meta[k] for k in ("num_feat", "num_block", "num_grow", "scale")} == {
        "num_feat": "16",
        "num_block": "2",
        "num_grow": "8",
        "scale": "2",
    }
    model = load_generator(str(path))
    assert model.config == src.config
    with torch.no_grad():
        assert torch.equal(model(lr_image), want)
    with pytest.raises(ValueError, match="safetensors"):
        save_generator(src, tmp_path / "g.pth")


def test_metadata_disagreeing_with_tensors(tmp_path):
    from safetensors.torch import save_file

    sd = random_model(**SMALL).state_dict()
    path = tmp_path / "lying.safetensors"
    save_file(sd, str(path), metadata={"format": "gmgan.RRDBNet", "num_block": "23"})
    with pytest.raises(CheckpointError, match="num_block"):
        load_generator(path)


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("fmt", ["esrgan", "old"])
def test_matches_spandrel(fmt, scale, lr_image):
    """Outside reference: spandrel's ESRGAN fed the same weights (its growth is fixed at 32)."""
    spandrel = pytest.importorskip("spandrel")
    src = random_model(seed=3, num_feat=32, num_block=2, num_grow=32, scale=scale)
    sd = renamed(src.state_dict(), fmt, num_block=2, scale=scale)
    desc = spandrel.ModelLoader().load_from_state_dict(sd)
    assert desc.architecture.id == "ESRGAN" and desc.scale == scale
    ours = load_generator(sd)
    with torch.no_grad():
        ref = desc.model.eval()(lr_image)
        out = ours(lr_image)
    assert out.shape == ref.shape == (2, 3, 12 * scale, 10 * scale)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    assert ref.std() > 0.01  # a non-trivial output, so the comparison means something


# ------------------------------------------------------------------------------------------------
# Bad checkpoints
# ------------------------------------------------------------------------------------------------


class _Payload:
    """Unpickling this runs code that creates a file: what a malicious checkpoint would do."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')",))


def test_payload_is_live(tmp_path):
    """Control: an unrestricted unpickler really runs the payload (so the next test can fail)."""
    target = tmp_path / "control"
    pickle.loads(pickle.dumps(_Payload(target)))
    assert target.exists()


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_refused(tmp_path, writer):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    obj = {"conv_first.weight": torch.zeros(1), "x": _Payload(target)}
    if writer == "torch.save":
        torch.save(obj, path)
    else:
        path.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(CheckpointError, match="refusing") as info:
        load_generator(path)
    assert str(path) in str(info.value)
    assert not target.exists()


def test_not_a_checkpoint(tmp_path):
    for name, data in (
        ("text.pth", b"hello, I am not a checkpoint"),
        ("empty.pt", b""),
        ("junk.safetensors", b"\x00\x01junk"),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(CheckpointError) as info:
            load_generator(path)
        assert str(path) in str(info.value)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_generator(tmp_path / "nope.pth")
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_generator(path)


def test_other_architecture_lists_keys():
    sd = Discriminator(num_feat=8, input_size=16).state_dict()
    with pytest.raises(CheckpointError) as info:
        load_generator(sd)
    msg = str(info.value)
    assert "missing keys: conv_first.weight" in msg
    assert "unexpected keys: features.0.weight" in msg


def test_missing_key_strict_and_not_strict(lr_image):
    sd = random_model(**SMALL).state_dict()
    del sd["conv_hr.bias"]
    with pytest.raises(CheckpointError, match=r"missing keys: conv_hr\.bias"):
        load_generator(sd)
    assert load_generator(sd, strict=False)(lr_image).shape == (2, 3, 48, 40)
    sd["conv_hr.weight"] = torch.zeros(16, 16, 1, 1)
    with pytest.raises(CheckpointError, match="shape mismatches: conv_hr.weight"):
        load_generator(sd, strict=False)


def test_pixel_unshuffle_model_refused():
    """Real-ESRGAN x2plus: BasicSR keys, but conv_first takes 4 x 3 channels (pixel-unshuffled)."""
    sd = random_model(in_channels=12, **SMALL).state_dict()
    with pytest.raises(CheckpointError, match="pixel-unshuffle"):
        load_generator(sd)


def test_wrong_scale():
    sd = random_model(**SMALL).state_dict()
    with pytest.raises(CheckpointError, match="checkpoint is x4, you asked for x2"):
        load_generator(sd, scale=2)
    old2 = renamed(random_model(scale=2, **SMALL).state_dict(), "old", SMALL["num_block"], 2)
    with pytest.raises(CheckpointError, match="checkpoint is x2, you asked for x4"):
        load_generator(old2, scale=4)


# ------------------------------------------------------------------------------------------------
# Discriminator
# ------------------------------------------------------------------------------------------------


def test_discriminator_shapes():
    d = Discriminator()
    assert d(torch.rand(2, 3, 128, 128)).shape == (2, 1)
    convs = [m for m in d.features if isinstance(m, nn.Conv2d)]
    assert [tuple(c.weight.shape) for c in convs] == [
        (64, 3, 3, 3),
        (64, 64, 3, 3),
        (128, 64, 3, 3),
        (128, 128, 3, 3),
        (256, 128, 3, 3),
        (256, 256, 3, 3),
        (512, 256, 3, 3),
        (512, 512, 3, 3),
    ]
    assert [c.stride for c in convs] == [(s, s) for s in (1, 2, 1, 2, 1, 2, 1, 2)]
    linears = [m for m in d.classifier if isinstance(m, nn.Linear)]
    assert [tuple(lin.weight.shape) for lin in linears] == [(1024, 512 * 8 * 8), (1, 1024)]
    assert not any(isinstance(m, (nn.Sigmoid, nn.BatchNorm2d, nn.GroupNorm)) for m in d.modules())
    acts = [m for m in d.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 9 and all(a.negative_slope == 0.2 for a in acts)
    small = Discriminator(in_channels=1, num_feat=8, input_size=48)
    assert small(torch.rand(3, 1, 48, 48)).shape == (3, 1)
    assert small.classifier[0].in_features == 64 * 3 * 3


def test_discriminator_norms_and_errors():
    with pytest.warns(UserWarning, match="batch norm"):
        d = Discriminator(num_feat=8, input_size=32, norm="batch")
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 7
    d = Discriminator(num_feat=8, input_size=32, norm="layer")
    assert sum(isinstance(m, nn.GroupNorm) and m.num_groups == 1 for m in d.modules()) == 7
    with pytest.raises(ValueError, match="norm"):
        Discriminator(norm="instance")
    with pytest.raises(ValueError, match="multiple of 16"):
        Discriminator(input_size=100)
    with pytest.raises(ValueError, match="input_size=32"):
        d(torch.rand(1, 3, 64, 64))


@pytest.mark.parametrize("norm", ["none", "layer", "batch"])
def test_discriminator_per_sample_gradients(norm):
    """WGAN-GP penalises ||grad_x D(x_i)|| per sample; that needs D(x_i) to depend on x_i only."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if norm == "batch" else "error")
        d = Discriminator(num_feat=8, input_size=32, norm=norm).train()
    x = torch.rand(3, 3, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(d(x)[0, 0], x, create_graph=True)
    grad.square().sum().backward()  # the penalty's double backward must work
    assert d.features[0].weight.grad is not None
    assert grad[0].abs().sum() > 0
    if norm == "batch":
        assert grad[1:].abs().sum() > 0  # batch statistics couple the samples
    else:
        assert torch.count_nonzero(grad[1:]) == 0


def test_save_generator_disk_full_names_the_file_and_leaves_nothing(tmp_path):
    """A write that fails (here: a file-size limit, as on a full disk) raises OSError naming the
    destination, and neither the destination nor its temporary file is left behind."""
    import subprocess
    import sys

    target = tmp_path / "G.safetensors"
    script = (
        "import resource, signal, sys\n"
        "from gmgan.nets import RRDBNet, save_generator\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "model = RRDBNet(num_feat=8, num_block=1, num_grow=4)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))\n"
        "try:\n"
        "    save_generator(model, sys.argv[1])\n"
        "except OSError as err:\n"
        "    print('OSError', err.errno, err)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(target)], check=False, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OSError 27"), out.stdout  # EFBIG: File too large
    assert f"could not write {target}" in out.stdout
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------
# Noise inputs (issue 19: a generator that can sample texture)
# ------------------------------------------------------------------------------------


def _small(**kwargs) -> RRDBNet:
    torch.manual_seed(0)
    return RRDBNet(num_feat=8, num_block=1, num_grow=4, **kwargs).eval()


def test_noise_options_add_only_their_keys():
    plain = set(_small().state_dict())
    assert set(_small(noise_inject=True).state_dict()) - plain == {
        "noise_strength_up1", "noise_strength_up2"}
    assert set(_small(noise_head=4).state_dict()) - plain == {
        "noise_head.0.weight", "noise_head.0.bias", "noise_head.2.weight"}
    assert set(_small(noise_inject=True, scale=2).state_dict()) - set(
        _small(scale=2).state_dict()) == {"noise_strength_up1"}
    with pytest.raises(ValueError, match="noise_head"):
        RRDBNet(num_feat=8, num_block=1, noise_head=-1)


def test_with_noise_starts_from_the_model_and_samples(lr_image):
    from gmgan.nets import with_noise

    plain = _small()
    x = lr_image[:, :, :12, :12]
    with torch.no_grad():
        clean = plain(x)
        inject = with_noise(plain, noise_inject=True, seed=1)
        torch.manual_seed(5)
        assert torch.equal(inject(x), clean)  # zero strengths: the PSNR model exactly
        inject.noise_strength_up2.data.fill_(1.0)
        torch.manual_seed(5)
        a = inject(x)
        b = inject(x)  # another draw
        torch.manual_seed(5)
        assert torch.equal(inject(x), a)  # a seeded draw repeats
        assert (a - b).abs().mean() > 1e-3 and (a - clean).abs().mean() > 1e-3
        inject.noise_scale = 0.0
        assert torch.equal(inject(x), clean)  # noise_scale 0: the noise-free output
        head = with_noise(plain, noise_head=4, seed=1)
        torch.manual_seed(5)
        diff = head(x) - clean
    # the head's noise is per HR pixel: neighbours 9 px apart (beyond its 9x9 reach) are
    # uncorrelated, unlike a smooth offset
    assert diff.shape == clean.shape and diff.abs().mean() > 0
    # and it adds texture only: no colour shift (mean over the image 0 in every channel)
    assert diff.mean(dim=(2, 3)).abs().max() < 1e-6
    d = diff[0, 0]
    far = torch.corrcoef(torch.stack([d[:, :-9].flatten(), d[:, 9:].flatten()]))[0, 1]
    assert abs(float(far)) < 0.2
    with pytest.raises(TypeError):
        with_noise(plain, noise_head=4, seed=1, extra=1)


def test_noise_options_round_trip(tmp_path, lr_image):
    from gmgan.nets import with_noise

    model = with_noise(_small(), noise_inject=True, noise_head=3, seed=2)
    model.noise_strength_up1.data.fill_(0.3)
    path = save_generator(model, tmp_path / "g.safetensors")
    loaded = load_generator(path)
    assert loaded.config == model.config == {
        **_small().config, "noise_inject": True, "noise_head": 3}
    x = lr_image[:, :, :8, :8]
    with torch.no_grad():
        torch.manual_seed(3)
        want = model(x)
        torch.manual_seed(3)
        assert torch.equal(loaded(x), want)
    # a checkpoint that lacks one of its noise strengths is refused, naming it
    with pytest.raises(CheckpointError, match="noise_strength_up2"):
        load_generator({k: v for k, v in model.state_dict().items()
                        if k != "noise_strength_up2"})
