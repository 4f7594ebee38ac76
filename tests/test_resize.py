"""gmgan.resize against the MATLAB-made benchmark LR files, pyiqa's MATLAB-style imresize and closed forms."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gmgan.resize import cubic, imresize, modcrop, resize_weights

MATLAB_SETS = ("Set5", "Set14")


@functools.cache
def _read(path: Path) -> np.ndarray:
    """Pixels as stored: no mode conversion, so Set14 bridge stays a single-channel (PNG mode L) array."""
    with Image.open(path) as im:
        arr = np.asarray(im)
    arr.setflags(write=False)
    return arr


def _hr_lr_pairs(data_dir: Path, set_name: str):
    root = data_dir / "benchmark" / set_name
    for hr_path in sorted((root / "HR").glob("*.png")):
        yield hr_path.stem, _read(hr_path), _read(root / "LR_bicubic" / "X4" / f"{hr_path.stem}x4.png")


def _pyiqa_imresize():
    return pytest.importorskip("pyiqa.matlab_utils").imresize


def _to_nchw(img: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    x = torch.from_numpy(img.astype(np.float64) / 255.0).to(dtype)
    return (x.permute(2, 0, 1) if img.ndim == 3 else x[None])[None]


def test_bit_exact_with_matlab_lr_files(data_dir):
    """imresize(modcrop(HR, 4), 1/4) equals every MATLAB-made x4 LR file of Set5 and Set14."""
    exact, names = 0, []
    for set_name in MATLAB_SETS:
        for name, hr, lr in _hr_lr_pairs(data_dir, set_name):
            out = imresize(modcrop(hr, 4), 1 / 4)
            assert out.dtype == np.uint8 and out.shape == lr.shape, (name, out.shape, lr.shape)
            if np.array_equal(out, lr):
                exact += 1
            else:
                names.append(f"{name}: {(out != lr).sum()} pixels differ")
    assert exact == 19, names


def test_bridge_is_single_channel_and_exact(data_dir):
    hr = _read(data_dir / "benchmark" / "Set14" / "HR" / "bridge.png")
    assert hr.ndim == 2  # PNG mode L, read without conversion
    lr = imresize(hr, 0.25)
    assert lr.shape == (128, 128)


def test_float_matches_pyiqa_down_and_up(data_dir):
    pyiqa_imresize = _pyiqa_imresize()
    hr = _read(data_dir / "benchmark" / "Set14" / "HR" / "comic.png")  # 361 x 250: not multiples of 4
    x = _to_nchw(hr)
    for scale in (1 / 4, 1 / 3, 1 / 2, 2, 3, 4):
        ours, theirs = imresize(x, scale), pyiqa_imresize(x, scale)
        assert ours.shape == theirs.shape
        assert (ours - theirs).abs().max().item() < 1e-5, scale
    # MATLAB's output size is ceil(scale * size): 361 x 250 -> 91 x 63 at x1/4
    assert imresize(x, 1 / 4).shape[-2:] == (91, 63)


def test_upscale_x4_of_matlab_lr_matches_pyiqa(data_dir):
    pyiqa_imresize = _pyiqa_imresize()
    for _, _, lr in list(_hr_lr_pairs(data_dir, "Set5"))[:2]:
        x = _to_nchw(lr)
        ours, theirs = imresize(x, 4), pyiqa_imresize(x, 4)
        assert ours.shape == (1, 3, 4 * lr.shape[0], 4 * lr.shape[1])
        assert (ours - theirs).abs().max().item() < 1e-5


def test_torch_path_equals_numpy_path():
    rng = np.random.default_rng(1)
    img = rng.random((37, 29, 3))
    for scale in (0.25, 4.0):
        from_numpy = imresize(img, scale)
        from_torch = imresize(torch.from_numpy(img).permute(2, 0, 1)[None], scale)[0].permute(1, 2, 0)
        np.testing.assert_allclose(from_torch.numpy(), from_numpy, atol=1e-12)
        assert from_numpy.dtype == np.float64
    img8 = rng.integers(0, 256, (37, 29), dtype=np.uint8)
    out8 = imresize(torch.from_numpy(img8), 0.25)
    assert out8.dtype == torch.uint8 and np.array_equal(out8.numpy(), imresize(img8, 0.25))
    assert imresize(img.astype(np.float32), 0.5).dtype == np.float32


def test_float_path_is_not_rounded_or_clipped():
    # A step edge overshoots with the cubic kernel: float output goes outside [0, 1], uint8 is clipped.
    img = np.zeros((8, 16), np.float64)
    img[:, 8:] = 1.0
    up = imresize(img, 2)
    assert up.min() < 0 and up.max() > 1
    up8 = imresize((img * 255).astype(np.uint8), 2)
    assert up8.min() == 0 and up8.max() == 255


def test_gradients_flow():
    x = torch.rand(1, 2, 7, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, 0.5), (x,))
    assert torch.autograd.gradcheck(lambda t: imresize(t, 2), (x,))


def test_autocast_computes_in_float32():
    x = torch.rand(1, 3, 20, 24)
    reference = imresize(x, 0.25)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = imresize(x, 0.25)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, reference, atol=1e-6, rtol=0)
    half = imresize(x.to(torch.bfloat16), 0.25)
    assert half.dtype == torch.bfloat16


def test_kernel_and_weights_closed_forms():
    # Keys' cubic, a = -0.5: 1 at 0, 0 at the integers, 9/16 at 1/2, -1/16 at 3/2, 0 beyond 2.
    np.testing.assert_allclose(cubic(np.array([0, 0.5, 1, 1.5, 2, 2.5])), [1, 0.5625, 0, -0.0625, 0, 0])
    m = resize_weights(100, 25, 0.25)
    assert m.shape == (25, 100)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-12)  # MATLAB normalises each row
    assert (np.count_nonzero(m[12]) == 16)  # an interior pixel uses 16 input pixels at x1/4
    # Upscaling x4 of a constant and of a linear ramp (away from the borders) is exact.
    ramp = np.tile(np.arange(20, dtype=np.float64), (6, 1))
    up = imresize(ramp, 4)
    expected = (np.arange(80) + 0.5) / 4 - 0.5  # output pixel centres in input coordinates
    np.testing.assert_allclose(up[3, 8:-8], expected[8:-8], atol=1e-12)
    const = np.full((9, 11, 3), 77, np.uint8)
    assert np.array_equal(imresize(const, 0.25), np.full((3, 3, 3), 77, np.uint8))
    assert resize_weights(100, 25, 0.25) is m  # cached


def test_size_argument_and_dimension_order():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (24, 32), dtype=np.uint8)
    out = imresize(img, size=(48, 8))  # scales 2 (height) and 1/4 (width)
    assert out.shape == (48, 8)
    # MATLAB resizes along the dimension with the smaller scale first: here the width.
    width_first = imresize(imresize(img, size=(24, 8)), size=(48, 8))
    height_first = imresize(imresize(img, size=(48, 32)), size=(48, 8))
    assert np.array_equal(out, width_first)
    assert not np.array_equal(out, height_first)


def test_modcrop_shapes():
    assert modcrop(np.zeros((361, 250, 3)), 4).shape == (360, 248, 3)
    assert modcrop(np.zeros((391, 586)), 4).shape == (388, 584)
    assert modcrop(torch.zeros(2, 3, 361, 250), 4).shape == (2, 3, 360, 248)
    assert modcrop(np.zeros((8, 8)), 4).shape == (8, 8)
    with pytest.raises(ValueError, match="positive integer"):
        modcrop(np.zeros((8, 8)), 0)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="exactly one of scale"):
        imresize(np.zeros((8, 8)), 0.5, size=(4, 4))
    with pytest.raises(ValueError, match="positive number"):
        imresize(np.zeros((8, 8)), -2)
    with pytest.raises(TypeError, match="uint8 or float"):
        imresize(np.zeros((8, 8), np.int16), 0.5)
    with pytest.raises(ValueError, match="H x W"):
        imresize(np.zeros((2, 8, 8, 3)), 0.5)
