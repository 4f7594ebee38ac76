"""gmgan.degrade: the low-quality and mixed training sets of the Table-3 notebook."""
from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from gmgan.degrade import IMAGENET_LIKE, degrade, make_set, set_sources
from gmgan.imageio import list_images, read_image, write_image
from gmgan.metrics import psnr


def _blockiness(img: np.ndarray) -> float:
    """Mean |step| across 8x8 JPEG block borders divided by the mean |step| inside blocks (grey)."""
    g = img.astype(np.float64).mean(axis=2) if img.ndim == 3 else img.astype(np.float64)
    d = np.abs(np.diff(g, axis=1))  # d[:, j] = |g[:, j+1] - g[:, j]|
    border = d[:, 7::8].mean()
    inside = np.delete(d, np.s_[7::8], axis=1).mean()
    return border / inside


def test_downscale_only_is_matlab_imresize(data_dir):
    # Set5's LR files were made by MATLAB imresize(HR, 1/4): the outside reference.
    hr = read_image(data_dir / "benchmark/Set5/HR/baby.png")
    lr = read_image(data_dir / "benchmark/Set5/LR_bicubic/X4/babyx4.png")
    assert np.array_equal(degrade(hr, downscale=4, jpeg_quality=None), lr)


def test_no_degradation_is_identity():
    img = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    out = degrade(img, downscale=1, jpeg_quality=None)
    assert out.dtype == np.uint8 and np.array_equal(out, img)


def test_jpeg_matches_a_pillow_round_trip_and_is_deterministic(data_dir):
    hr = read_image(data_dir / "benchmark/Set5/HR/bird.png")
    buf = io.BytesIO()
    Image.fromarray(hr).save(buf, format="JPEG", quality=30)
    expected = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    out = degrade(hr, downscale=1, jpeg_quality=30)
    assert np.array_equal(out, expected)
    assert np.array_equal(out, degrade(hr, downscale=1, jpeg_quality=30))


def test_lower_quality_means_more_loss_and_visible_8x8_blocks(data_dir):
    hr = read_image(data_dir / "benchmark/Set14/HR/lenna.png")
    scores = [psnr(degrade(hr, downscale=1, jpeg_quality=q), hr, crop_border=0)
              for q in (90, 50, 10)]
    assert scores[0] > scores[1] > scores[2]
    assert scores[0] > 35 and scores[2] < 32
    # JPEG codes 8x8 blocks independently: steps across block borders outgrow those inside blocks.
    assert _blockiness(degrade(hr, downscale=1, jpeg_quality=10)) > 1.5
    assert _blockiness(hr) < 1.1


def test_output_size_follows_matlab_ceil():
    img = np.zeros((101, 50, 3), np.uint8)
    assert degrade(img, downscale=2, jpeg_quality=50).shape == (51, 25, 3)
    assert degrade(img[..., 0], downscale=2, jpeg_quality=50).shape == (51, 25)


@pytest.mark.parametrize("kw", [{"downscale": 0.5}, {"downscale": float("nan")}, {"downscale": "x"},
                                {"jpeg_quality": 0}, {"jpeg_quality": 101}, {"jpeg_quality": 50.5},
                                {"jpeg_quality": True}])
def test_bad_parameters_are_named(kw):
    with pytest.raises(ValueError, match="downscale" if "downscale" in kw else "jpeg_quality"):
        degrade(np.zeros((8, 8, 3), np.uint8), **kw)


def test_bad_images_are_refused():
    with pytest.raises(TypeError, match="uint8"):
        degrade(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        degrade(np.zeros((8, 8, 4), np.uint8))


def _folder(tmp_path, name, count, size=(40, 48)):
    rng = np.random.default_rng(count)
    for i in range(count):
        img = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        write_image(tmp_path / name / f"im{i}.png", img)
    return tmp_path / name


def test_make_set_gathers_labels_and_degrades(tmp_path):
    a, b = _folder(tmp_path, "setA", 3), _folder(tmp_path, "setB", 2)
    single = b / "im1.png"
    stems = [s for _, s in set_sources([a, single])]
    assert stems == ["setA_im0", "setA_im1", "setA_im2", "setB_im1"]

    copy = make_set([a, b], name="mix", dst=tmp_path / "out" / "copy")
    assert sorted(p.name for p in list_images(copy)) == sorted(
        ["setA_im0.png", "setA_im1.png", "setA_im2.png", "setB_im0.png", "setB_im1.png"])
    assert np.array_equal(read_image(copy / "setB_im0.png"), read_image(b / "im0.png"))

    lq = make_set([a], name="lq", **IMAGENET_LIKE, dst=tmp_path / "out" / "lq")
    src = read_image(a / "im2.png")
    assert np.array_equal(read_image(lq / "setA_im2.png"), degrade(src, **IMAGENET_LIKE))
    assert read_image(lq / "setA_im2.png").shape == (20, 24, 3)


def test_make_set_is_cached_and_rebuilt_when_a_source_changes(tmp_path):
    a = _folder(tmp_path, "setA", 2)
    out = make_set([a], name="c", jpeg_quality=40, dst=tmp_path / "o")
    first = (out / "setA_im0.png").stat().st_mtime_ns
    assert make_set([a], name="c", jpeg_quality=40, dst=tmp_path / "o") == out
    assert (out / "setA_im0.png").stat().st_mtime_ns == first  # not rewritten
    write_image(a / "im0.png", np.zeros((40, 48, 3), np.uint8))
    os.utime(a / "im0.png", ns=(1, 1))  # a different mtime whatever the clock's resolution
    make_set([a], name="c", jpeg_quality=40, dst=tmp_path / "o")
    assert read_image(out / "setA_im0.png").max() <= 8  # rebuilt from the new (black) image


def test_make_set_default_folder_chains_with_prepare(tmp_path):
    from gmgan.data import prepare_training_set

    a = _folder(tmp_path, "setA", 2, size=(64, 64))
    out = make_set([a], name="demo", downscale=2, jpeg_quality=75)
    assert out.name == "demo" and out.parent.name.startswith("demo-")
    assert make_set([a], name="demo", downscale=2, jpeg_quality=60).parent != out.parent
    prepared = prepare_training_set(out, progress=False)
    assert prepared.count == 2 and prepared.hr_dir.parent.name == "demo+x4"
    assert read_image(prepared.lr_dir / "setA_im0.png").shape == (8, 8, 3)


def test_min_side_leaves_out_small_images(tmp_path):
    a = _folder(tmp_path, "setA", 2)                      # 40 x 48
    write_image(a / "tiny.png", np.zeros((30, 60, 3), np.uint8))
    out = make_set([a], name="m", downscale=2, min_side=20, dst=tmp_path / "m")
    assert sorted(p.name for p in list_images(out)) == ["setA_im0.png", "setA_im1.png"]
    marker = json.loads((out / ".gmgan-prepared.json").read_text())
    assert [name for name, _ in marker["skipped"]] == ["tiny.png"]   # 30x15 after x1/2
    with pytest.raises(ValueError, match="min_side"):
        make_set([a], name="m", downscale=2, min_side=100, dst=tmp_path / "m2")
    with pytest.raises(ValueError, match="min_side"):
        make_set([a], name="m", min_side=0)


def test_make_set_errors(tmp_path):
    a = _folder(tmp_path, "setA", 1)
    with pytest.raises(ValueError, match="name"):
        make_set([a], name="a b")
    with pytest.raises(ValueError, match="non-empty list"):
        make_set(str(a), name="x")
    with pytest.raises(FileNotFoundError, match="nope"):
        make_set([tmp_path / "nope"], name="x")
    dup = _folder(tmp_path / "other", "setA", 1)
    with pytest.raises(ValueError, match="setA_im0"):
        set_sources([a, dup])


def test_registered_names_are_resolved(data_dir):
    files = set_sources(["OST300-samples"])
    assert [s for _, s in files] == ["OST300-samples_OST_013", "OST300-samples_OST_215"]
