"""Benchmark HR/LR pairs, checked against the files and facts of the data README."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gmgan.data.benchmark import BENCHMARK_SETS, BenchmarkImage, load_benchmark


def _pil(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def test_set5_pairs_are_the_files(data_dir):
    images = load_benchmark("Set5")
    assert [im.name for im in images] == ["baby", "bird", "butterfly", "head", "woman"]
    root = data_dir / "benchmark" / "Set5"
    for im in images:
        assert isinstance(im, BenchmarkImage)
        assert im.hr.dtype == im.lr.dtype == np.uint8
        assert im.hr.shape == (4 * im.lr.shape[0], 4 * im.lr.shape[1], 3)
        np.testing.assert_array_equal(im.hr, _pil(root / "HR" / f"{im.name}.png"))
        np.testing.assert_array_equal(im.lr, _pil(root / "LR_bicubic" / "X4" / f"{im.name}x4.png"))
    assert images[4].hr.shape == (344, 228, 3)  # woman is 228 wide, 344 high


def test_set14_keeps_grey_and_modcrops(data_dir):
    images = {im.name: im for im in load_benchmark("set14")}  # any case
    assert len(images) == 14
    assert images["bridge"].hr.shape == (512, 512) and images["bridge"].lr.shape == (128, 128)
    assert images["man"].hr.ndim == 3  # RGB with R = G = B stays RGB
    # comic is 250x361 (w x h): cropped to 248x360, its LR is 62x90
    assert images["comic"].hr.shape == (360, 248, 3) and images["comic"].lr.shape == (90, 62, 3)
    full = _pil(data_dir / "benchmark" / "Set14" / "HR" / "zebra.png")
    np.testing.assert_array_equal(images["zebra"].hr, full[:388, :584])


def test_matlab_lr_uses_matlab_files_when_present(data_dir):
    a = load_benchmark("Set5", lr="matlab", limit=2)
    b = load_benchmark("Set5", limit=2)
    assert len(a) == 2 and all(np.array_equal(x.lr, y.lr) for x, y in zip(a, b))


def test_bsd100_selfexsr_differs_from_matlab_by_a_few_levels(data_dir):
    """The README: SelfExSR's BSD100 LR matches MATLAB bicubic on 0 of 100 images, at most 9
    levels off. lr="matlab" makes (and caches) the MATLAB-exact version instead."""
    dataset = load_benchmark("BSD100", limit=2)
    matlab = load_benchmark("BSD100", limit=2, lr="matlab")
    assert [im.name for im in matlab] == ["101085", "101087"]
    for d, m in zip(dataset, matlab):
        np.testing.assert_array_equal(d.hr, m.hr)
        assert d.lr.shape == m.lr.shape == (120, 80, 3)
        diff = np.abs(d.lr.astype(int) - m.lr.astype(int))
        assert 0 < diff.max() <= 9
        assert diff.mean() < 0.5
    cache = Path(os.environ["GMGAN_DERIVED"]) / "benchmark" / "BSD100" / "LR_matlab" / "X4"
    files = sorted(p.name for p in cache.glob("*.png"))
    assert files == ["101085.png", "101087.png"]  # only what was asked for
    stamp = (cache / "101085.png").stat().st_mtime_ns
    again = load_benchmark("BSD100", limit=1, lr="matlab")
    assert (cache / "101085.png").stat().st_mtime_ns == stamp  # cached, not remade
    np.testing.assert_array_equal(again[0].lr, matlab[0].lr)


def test_urban100_limit(data_dir):
    images = load_benchmark("Urban100", limit=1)
    assert len(images) == 1 and images[0].name == "img_001"
    assert images[0].hr.shape == (644, 1024, 3) and images[0].lr.shape == (161, 256, 3)


def test_missing_set_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GMGAN_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"GMGAN_DATA.*gmgan data fetch Set14"):
        load_benchmark("Set14")


def test_bad_options():
    assert BENCHMARK_SETS == ("Set5", "Set14", "BSD100", "Urban100")
    with pytest.raises(ValueError, match="lr must be"):
        load_benchmark("Set5", lr="selfexsr")
