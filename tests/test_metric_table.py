"""gmgan.metric_table: each row calls its metric as published references compute it
(pyiqa, piq, MATLAB's NIQE), says rightly whether lower is better, and prints with the
paper's precision; an unknown name is refused by name."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from gmgan import metrics
from gmgan.data import load_benchmark
from gmgan.imageio import read_image
from gmgan.metric_table import METRIC_TABLE, get_metric
from gmgan.resize import imresize

NIQE_BABOON_MATLAB = 5.7296  # MATLAB R2021a, baboon.png, crop 0 (tests/test_metrics.py)


@functools.cache
def _bird() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Set5 bird: HR, bicubic x4 of its LR file, a worse SR (bicubic x8 of HR / 8)."""
    bird = next(im for im in load_benchmark("Set5") if im.name == "bird")
    worse = imresize(imresize(bird.hr, 1 / 8), 8)
    return bird.hr, imresize(bird.lr, 4), worse


def _nchw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None]


def test_the_table_lists_the_five_metrics_of_the_paper_in_table_order_then_hf():
    assert list(METRIC_TABLE) == ["psnr", "ssim", "gmsd", "niqe", "pi", "hf"]
    labels = [m.label for m in METRIC_TABLE.values()]
    assert labels == ["PSNR", "SSIM", "GMSD", "NIQE", "PI", "HF ratio"]
    functions = {**{n: n for n in METRIC_TABLE}, "hf": "hf_energy_ratio"}
    assert all(m.function is getattr(metrics, functions[m.name])
               for m in METRIC_TABLE.values())


def test_lower_better_says_which_way_a_worse_image_moves(data_dir):
    """A blurrier SR image (x8 instead of x4 bicubic) scores worse on every metric:
    lower PSNR and SSIM, higher GMSD and NIQE; lower_better must say so."""
    hr, good, bad = _bird()
    for metric in METRIC_TABLE.values():
        if metric.name == "pi" and not metrics.pi_available():
            continue  # Ma et al.'s model is not available offline
        better, worse = (metric.score(x, hr, border=4) for x in (good, bad))
        assert (better < worse) == metric.lower_better, (metric.name, better, worse)
    lower = {m.name for m in METRIC_TABLE.values() if m.lower_better}
    assert lower == {"gmsd", "niqe", "pi"}


def test_psnr_and_ssim_rows_agree_with_pyiqa_on_y_with_the_border_cropped(data_dir):
    pyiqa = pytest.importorskip("pyiqa")
    hr, sr, _ = _bird()
    reference = pyiqa.create_metric("psnr", test_y_channel=True, crop_border=4,
                                    color_space="ycbcr", device="cpu")
    ours = get_metric("psnr").score(sr, hr, border=4)
    assert ours == pytest.approx(reference(_nchw(sr), _nchw(hr)).item(), abs=1e-3)
    # a 4-pixel crop moves bird's PSNR by 0.12 dB, RGB instead of Y by 2 dB: both caught
    assert abs(ours - metrics.psnr(sr, hr, crop_border=0)) > 0.1
    assert get_metric("psnr").score(sr, hr, border=4, y_channel=False) < ours - 1


def test_gmsd_row_scores_the_whole_image_as_piq_does(data_dir):
    """The table's GMSD takes no border (the paper's), so it matches piq on the whole
    image; cropping 4 pixels would move bird's value by 8e-4."""
    piq = pytest.importorskip("piq")
    hr, sr, _ = _bird()
    ours = get_metric("gmsd").score(sr, hr, border=4)
    theirs = piq.gmsd(_nchw(sr).double(), _nchw(hr).double()).item()
    assert ours == pytest.approx(theirs, abs=2e-5)
    assert abs(ours - metrics.gmsd(sr[4:-4, 4:-4], hr[4:-4, 4:-4])) > 4e-4


def test_niqe_row_reproduces_matlab_on_baboon(data_dir):
    pytest.importorskip("pyiqa")
    baboon = read_image(data_dir / "benchmark" / "Set14" / "HR" / "baboon.png")
    value = get_metric("niqe").score(baboon, border=0)
    assert value == pytest.approx(NIQE_BABOON_MATLAB, abs=0.01)


def test_grey_image_beside_an_rgb_one_is_taken_as_r_equals_g_equals_b():
    rng = np.random.default_rng(0)
    grey_hr = rng.integers(0, 256, (40, 48), dtype=np.uint8)
    rgb_hr = np.repeat(grey_hr[:, :, None], 3, axis=2)
    sr = np.clip(rgb_hr.astype(int) + rng.integers(-20, 21, rgb_hr.shape), 0, 255)
    sr = sr.astype(np.uint8)
    for name in ("psnr", "ssim"):  # through grey="as_rgb" (a broadcast: last bits vary)
        metric = get_metric(name)
        assert metric.score(sr, grey_hr, border=4) == pytest.approx(
            metric.score(sr, rgb_hr, border=4), rel=1e-12)
    # GMSD needs equal shapes: the table repeats the grey image, exactly
    gmsd = get_metric("gmsd")
    assert gmsd.score(sr, grey_hr, border=4) == gmsd.score(sr, rgb_hr, border=4)
    assert gmsd.score(grey_hr, sr, border=4) == gmsd.score(rgb_hr, sr, border=4)
    with pytest.raises(ValueError, match="same shape"):
        metrics.gmsd(sr, grey_hr)  # what the table spares its callers


def test_format_uses_the_papers_precision():
    assert get_metric("psnr").format(28.4349) == "28.43"
    assert get_metric("ssim").format(0.81114) == "0.8111"
    assert get_metric("gmsd").format(0.084249) == "0.0842"
    assert get_metric("niqe").format(7.823) == "7.82"
    assert get_metric("pi").format(None) == "-"
    assert get_metric("hf").format(0.5249) == "0.52"
    assert get_metric("psnr").format(float("nan")) == "-"


def test_axis_label_names_unit_and_direction():
    labels = {name: m.axis_label for name, m in METRIC_TABLE.items()}
    assert labels == {
        "psnr": "PSNR (dB)",
        "ssim": "SSIM",
        "gmsd": "GMSD (lower is better)",
        "niqe": "NIQE (lower is better)",
        "pi": "PI (lower is better)",
        "hf": "HF ratio",
    }
    assert get_metric("psnr").unit == "dB" and get_metric("ssim").unit == ""


def test_unknown_metric_is_named_with_the_known_ones():
    known = "psnr, ssim, gmsd, niqe, pi, hf"
    with pytest.raises(ValueError, match=f"unknown metric 'lpips'; known: {known}"):
        get_metric("lpips")
    with pytest.raises(ValueError, match="unknown metric 'PSNR'"):
        get_metric("PSNR")  # names are lower case, as gmgan eval takes them


def test_full_reference_metric_without_reference_is_refused():
    img = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="PSNR compares with a reference image"):
        get_metric("psnr").score(img, border=4)

