"""Offline preparation: sub-images (BasicSR's rule), MATLAB-exact LR, the 8x dihedral set,
caching."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gmgan.data import prepare
from gmgan.data.prepare import (DIHEDRAL_NAMES, MARKER, PreparedSet, dihedral, dihedral_augment,
                                extract_subimages, make_lr, prepare_training_set)


def _save(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _rand(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def big(tmp_path) -> tuple[Path, np.ndarray]:
    """One synthetic 1000 (wide) x 700 (high) image, as BMP (sub-images come out as PNG)."""
    img = _rand(700, 1000)
    _save(tmp_path / "src" / "pic.bmp", img)
    return tmp_path / "src", img


# ------------------------------------------------------------------------------ sub-images

# BasicSR's rule worked by hand for crop 480, step 240: along 700 px the regular starts are [0]
# (0 + 480 <= 700, 240 + 480 > 700); 700 - 480 = 220 px are left, > thresh 0, so a crop flush
# with the border starts at 220. Along 1000 px: 0, 240, 480; 40 px left -> one more at 520.
ROWS, COLS = [0, 220], [0, 240, 480, 520]


def test_subimages_count_positions_and_pixels(big, tmp_path):
    src, img = big
    out = extract_subimages(src, tmp_path / "sub", crop_size=480, step=240, progress=False)
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [f"pic_s{i:03d}.png" for i in range(1, 9)]
    index = 0
    for y in ROWS:
        for x in COLS:  # numbered row by row
            index += 1
            crop = _load(out / f"pic_s{index:03d}.png")
            assert crop.shape == (480, 480, 3)
            np.testing.assert_array_equal(crop, img[y:y + 480, x:x + 480])


def test_subimages_thresh_size_drops_thin_border(big, tmp_path):
    # 40 px left along the width is not more than 50: no border crop there; 220 px along the
    # height is
    src, img = big
    out = extract_subimages(src, tmp_path / "sub", crop_size=480, step=240, thresh_size=50,
                            progress=False)
    assert len(list(out.glob("*.png"))) == 2 * 3
    np.testing.assert_array_equal(_load(out / "pic_s006.png"), img[220:700, 480:960])


def test_subimages_small_image_gives_one_whole_crop(tmp_path):
    img = _rand(100, 150)
    _save(tmp_path / "src" / "small.png", img)
    out = extract_subimages(tmp_path / "src", tmp_path / "sub", crop_size=480, progress=False)
    assert [p.name for p in out.glob("*.png")] == ["small_s001.png"]
    np.testing.assert_array_equal(_load(out / "small_s001.png"), img)


def test_second_call_does_no_work(big, tmp_path, monkeypatch):
    src, _ = big
    out = extract_subimages(src, crop_size=480, step=240, progress=False)  # default: derived_dir
    assert Path(os.environ["GMGAN_DERIVED"]) in out.resolve().parents
    marker = out / MARKER
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    def no_writes(*args, **kwargs):
        raise AssertionError("a cached step wrote a file")

    monkeypatch.setattr("gmgan.data.prepare.write_image", no_writes)
    assert extract_subimages(src, crop_size=480, step=240, progress=False) == out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    assert json.loads(marker.read_text())["count"] == 8
    monkeypatch.undo()

    # another parameter: another folder
    other = extract_subimages(src, crop_size=400, step=200, progress=False)
    # rows along 700: 0, 200, then 100 px left -> 300; cols along 1000: 0, 200, 400, 600, none left
    assert other != out and len(list(other.glob("*.png"))) == 3 * 4
    assert sorted(p.name for p in other.glob("*.png"))[-1] == "pic_s012.png"


def test_changed_source_or_parameter_rebuilds_explicit_dst(big, tmp_path):
    src, _ = big
    dst = tmp_path / "sub"
    extract_subimages(src, dst, crop_size=480, step=240, progress=False)
    assert len(list(dst.glob("*.png"))) == 8
    extract_subimages(src, dst, crop_size=480, step=240, thresh_size=50, progress=False)
    assert len(list(dst.glob("*.png"))) == 6  # rebuilt, old crops gone
    _save(src / "pic.bmp", _rand(480, 480, seed=3))  # the source changes
    extract_subimages(src, dst, crop_size=480, step=240, thresh_size=50, progress=False)
    assert sorted(p.name for p in dst.glob("*.png")) == ["pic_s001.png"]


def test_refuses_foreign_nonempty_dst(big, tmp_path):
    src, _ = big
    dst = tmp_path / "mine"
    dst.mkdir()
    (dst / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not made by gmgan"):
        extract_subimages(src, dst, progress=False)
    assert (dst / "notes.txt").read_text() == "keep me"


def test_bad_file_skipped_or_named(tmp_path):
    _save(tmp_path / "src" / "good.png", _rand(64, 64))
    (tmp_path / "src" / "bad.png").write_bytes(b"not an image at all")
    with pytest.warns(UserWarning, match="skipped 1 of 2 files.*bad.png"):
        out = dihedral_augment(tmp_path / "src", tmp_path / "d8", progress=False)
    assert len(list(out.glob("*.png"))) == 8
    assert json.loads((out / MARKER).read_text())["skipped"][0][0] == "bad.png"
    with pytest.raises(Exception, match="bad.png"):
        dihedral_augment(tmp_path / "src", tmp_path / "d8b", on_bad="error", progress=False)


# ------------------------------------------------------------------------------ LR images


def test_make_lr_matches_matlab_set5(data_dir, tmp_path):
    """The outside reference: the MATLAB-made LR files of Set5."""
    hr_dir = data_dir / "benchmark" / "Set5" / "HR"
    made = make_lr(hr_dir, scale=4, dst=tmp_path / "x4", progress=False)
    assert isinstance(made, PreparedSet) and made.count == 5
    for hr_path in sorted(hr_dir.glob("*.png")):
        lr = _load(made.lr_dir / f"{hr_path.stem}.png")
        ref = _load(data_dir / "benchmark" / "Set5" / "LR_bicubic" / "X4" / f"{hr_path.stem}x4.png")
        np.testing.assert_array_equal(lr, ref, err_msg=hr_path.name)
        np.testing.assert_array_equal(_load(made.hr_dir / f"{hr_path.stem}.png"), _load(hr_path))


@pytest.mark.filterwarnings("ignore::gmgan.imageio.ImageConversionWarning")
def test_make_lr_modcrops_odd_sizes_set14(data_dir, tmp_path):
    """comic (250x361) and zebra (586x391): HR cropped at the bottom/right, LR = MATLAB files;
    bridge is single-channel and comes out as grey RGB."""
    src = tmp_path / "hr"
    src.mkdir()
    set14 = data_dir / "benchmark" / "Set14"
    for stem in ("comic", "zebra", "bridge"):
        (src / f"{stem}.png").symlink_to(set14 / "HR" / f"{stem}.png")
    made = make_lr(src, dst=tmp_path / "x4", progress=False)
    for stem in ("comic", "zebra", "bridge"):
        hr = _load(made.hr_dir / f"{stem}.png")
        lr = _load(made.lr_dir / f"{stem}.png")
        full = _load(set14 / "HR" / f"{stem}.png")
        assert hr.shape[0] % 4 == 0 and hr.shape[1] % 4 == 0
        assert hr.shape[0] > full.shape[0] - 4 and hr.shape[1] > full.shape[1] - 4
        np.testing.assert_array_equal(hr, full[:hr.shape[0], :hr.shape[1]])
        np.testing.assert_array_equal(lr, _load(set14 / "LR_bicubic" / "X4" / f"{stem}x4.png"))
    assert _load(made.hr_dir / "comic.png").shape == (360, 248, 3)


# ------------------------------------------------------------------------------ dihedral


def _expected_8(img: np.ndarray) -> list[np.ndarray]:
    """Built from explicit index formulas, not from np.rot90: a counter-clockwise quarter turn
    maps output (i, j) to input (j, W-1-i)."""
    def ccw(a):
        h, w = a.shape[:2]
        i, j = np.meshgrid(np.arange(w), np.arange(h), indexing="ij")
        return a[j, w - 1 - i]
    turns = [img]
    for _ in range(3):
        turns.append(ccw(turns[-1]))
    return turns + [t[:, ::-1] for t in turns]


def test_dihedral_eight_distinct_and_named_correctly():
    img = _rand(5, 7)  # not square, not symmetric
    expected = _expected_8(img)
    outs = [dihedral(img, k) for k in range(8)]
    for k in range(8):
        np.testing.assert_array_equal(outs[k], expected[k], err_msg=DIHEDRAL_NAMES[k])
        assert outs[k].flags["C_CONTIGUOUS"]
    assert len({o.tobytes() + bytes(o.shape) for o in outs}) == 8
    assert outs[1].shape == (7, 5, 3)
    np.testing.assert_array_equal(outs[1], np.rot90(img))
    np.testing.assert_array_equal(outs[6], np.flip(np.rot90(img, 2), axis=1))
    np.testing.assert_array_equal(outs[4][:, :, 0], dihedral(img[:, :, 0], 4))  # HxW too


def test_dihedral_group_closes():
    img = _rand(4, 6)
    keys = {dihedral(img, k).tobytes() + bytes(dihedral(img, k).shape): k for k in range(8)}
    for a in range(8):
        inverses = 0
        for b in range(8):
            twice = dihedral(dihedral(img, a), b)
            key = twice.tobytes() + bytes(twice.shape)
            assert key in keys, (a, b)
            inverses += keys[key] == 0
        assert inverses == 1  # each element has exactly one inverse


def test_dihedral_torch_matches_numpy():
    img = _rand(5, 7)
    t = torch.from_numpy(img).permute(2, 0, 1)[None].float()  # NCHW
    for k in range(8):
        got = dihedral(t, k)[0].permute(1, 2, 0).numpy().astype(np.uint8)
        np.testing.assert_array_equal(got, dihedral(img, k))
    with pytest.raises(ValueError, match="0..7"):
        dihedral(img, 8)


def test_dihedral_augment_files(tmp_path):
    img = _rand(6, 9)
    _save(tmp_path / "src" / "a.png", img)
    out = dihedral_augment(tmp_path / "src", tmp_path / "d8", progress=False)
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == sorted(f"a_{s}.png" for s in
                           ("r0", "r90", "r180", "r270", "r0_f", "r90_f", "r180_f", "r270_f"))
    for k, exp in enumerate(_expected_8(img)):
        np.testing.assert_array_equal(_load(out / f"a_{DIHEDRAL_NAMES[k]}.png"), exp)


# ------------------------------------------------------------------------------ the trainer's call


def test_prepare_training_set_chain(tmp_path):
    for i, (h, w) in enumerate([(60, 90), (83, 70)]):
        _save(tmp_path / "src" / f"im{i}.png", _rand(h, w, seed=i))
    plain = prepare_training_set(tmp_path / "src", scale=4, progress=False)
    assert plain.count == 2  # small images: auto chose no sub-images
    assert sorted(p.name for p in plain.lr_dir.glob("*.png")) == ["im0.png", "im1.png"]
    assert _load(plain.hr_dir / "im1.png").shape == (80, 68, 3)
    assert _load(plain.lr_dir / "im1.png").shape == (20, 17, 3)

    aug = prepare_training_set(tmp_path / "src", scale=4, augment8=True, progress=False)
    assert aug.count == 16 and aug.hr_dir != plain.hr_dir
    assert aug.hr_dir.parent.name == "d8+x4"
    assert _load(aug.lr_dir / "im1_r90.png").shape == (17, 20, 3)

    # images with at least (2 * crop)^2 pixels: auto turns sub-images on
    sub = prepare_training_set(tmp_path / "src", crop_size=30, step=30, progress=False)
    assert sub.hr_dir.parent.name == "sub30s30t0+x4"
    # 60x90: rows 0,30 x cols 0,30,60;  83x70: rows 0,30,53 x cols 0,30,40
    assert sub.count == 2 * 3 + 3 * 3
    assert prepare_training_set(tmp_path / "src", crop_size=30, step=30, progress=False) == sub


def test_prepare_training_set_named_set(data_dir):
    got = prepare_training_set("Set5", progress=False)
    assert got.count == 5
    assert prepare._default_dst(Path("x"), "t").is_relative_to(
        Path(os.environ["GMGAN_DERIVED"]).resolve())


def test_sub_folders_give_prefixed_names(tmp_path):
    _save(tmp_path / "src" / "cats" / "a.png", _rand(16, 20, seed=1))
    _save(tmp_path / "src" / "dogs" / "a.png", _rand(16, 20, seed=2))
    made = make_lr(tmp_path / "src", dst=tmp_path / "x4", progress=False)
    assert made.count == 2
    assert sorted(p.name for p in made.hr_dir.glob("*.png")) == ["cats_a.png", "dogs_a.png"]
    np.testing.assert_array_equal(_load(made.hr_dir / "dogs_a.png"), _rand(16, 20, seed=2))
