"""gmgan.viz: the before/after comparison (static HTML and live widget) and the plot helpers.

Metric values shown must be the ones gmgan.metrics gives when called directly on the same pixels;
images embedded in the HTML must decode back to the input pixels.
"""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from gmgan import metrics, viz

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def _pair(h: int = 48, w: int = 40, seed: int = 0, grey: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """An HR image with structure and a noisy 'SR' version of it (uint8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 3.0) * np.cos(yy / 5.0)
    hr = base if grey else np.stack([base, base[::-1], 255 - base], axis=-1)
    hr = np.clip(hr + rng.normal(0, 10, hr.shape), 0, 255).astype(np.uint8)
    sr = np.clip(hr.astype(float) + rng.normal(0, 12, hr.shape), 0, 255).astype(np.uint8)
    return sr, hr


def _payload(html: str) -> dict:
    m = re.search(r'<script type="application/json" class="gmgan-ba-data">(.*?)</script>', html, re.DOTALL)
    assert m, "the static HTML has no data block"
    return json.loads(m.group(1).replace("<\\/", "</"))


def _decode(uri: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):]))))


def _decode_bytes(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


@pytest.fixture
def two_images():
    sr_a, hr_a = _pair(48, 40, seed=1)
    sr_b, hr_b = _pair(36, 52, seed=2)
    return {"a": {"SR": sr_a, "HR": hr_a}, "b": {"SR": sr_b, "HR": hr_b}}


# --------------------------------------------------------------------------------------------------
# Static HTML

def test_html_embeds_every_image_losslessly(two_images):
    html = viz.compare(two_images).to_html()
    data = _payload(html)
    assert [im["name"] for im in data["images"]] == ["a", "b"]
    for im in data["images"]:
        for method in ("SR", "HR"):
            np.testing.assert_array_equal(_decode(im["src"][method]), two_images[im["name"]][method])
    # the first pair is also in the <img> tags, so the page shows something before the script runs
    srcs = re.findall(r'<img class="gmgan-ba-(left|right)"[^>]*src="([^"]+)"', html)
    assert {side for side, _ in srcs} == {"left", "right"}
    left_src = dict(srcs)["left"]
    np.testing.assert_array_equal(_decode(left_src), two_images["a"]["SR"])


def test_html_metrics_equal_direct_calls(two_images):
    ba = viz.compare(two_images, metrics=("psnr", "ssim"))
    html = ba.to_html()
    data = _payload(html)
    for im in data["images"]:
        sr, hr = two_images[im["name"]]["SR"], two_images[im["name"]]["HR"]
        p = metrics.psnr(sr, hr, crop_border=4, y_channel=True)
        s = metrics.ssim(sr, hr, crop_border=4, y_channel=True)
        assert ba.scores[im["name"]]["SR"]["psnr"] == pytest.approx(p, abs=1e-9)
        assert ba.scores[im["name"]]["SR"]["ssim"] == pytest.approx(s, abs=1e-9)
        assert im["scores"]["SR"] == f"PSNR {p:.2f} dB, SSIM {s:.4f}"
    # the first image's values are printed in the page itself (no script needed)
    p_a = metrics.psnr(two_images["a"]["SR"], two_images["a"]["HR"])
    readout = re.search(r'<div class="gmgan-ba-metrics">(.*?)</div>', html, re.DOTALL).group(1)
    assert f"PSNR {p_a:.2f} dB" in readout and "HR: reference" in readout


def test_rgb_and_crop_options_reach_the_metric(two_images):
    ba = viz.compare(two_images, y_channel=False, crop_border=2)
    sr, hr = two_images["b"]["SR"], two_images["b"]["HR"]
    assert ba.scores["b"]["SR"]["psnr"] == pytest.approx(metrics.psnr(sr, hr, crop_border=2, y_channel=False))
    assert ba.scores["b"]["SR"]["psnr"] != pytest.approx(metrics.psnr(sr, hr, crop_border=4, y_channel=True))


def test_gmsd_is_scored_on_the_shaved_image(two_images):
    ba = viz.compare(two_images, metrics=("psnr", "gmsd"))
    sr, hr = two_images["a"]["SR"], two_images["a"]["HR"]
    assert ba.scores["a"]["SR"]["gmsd"] == pytest.approx(metrics.gmsd(sr[4:-4, 4:-4], hr[4:-4, 4:-4]))
    assert "GMSD" in ba.to_html()


def test_grey_reference_beside_an_rgb_method_is_scored_as_r_equals_g_equals_b():
    """The metric table pairs a grey HR with an RGB SR as R = G = B, GMSD included (which
    needs equal shapes: gmgan.metrics.gmsd alone refuses the pair)."""
    sr_grey, hr = _pair(40, 40, seed=5, grey=True)
    sr = np.stack([sr_grey, sr_grey, np.clip(sr_grey.astype(int) + 9, 0, 255)], axis=-1)
    sr = sr.astype(np.uint8)
    ba = viz.compare({"g": {"SR": sr, "HR": hr}}, metrics=("psnr", "gmsd"))
    shaved_sr, shaved_hr = sr[4:-4, 4:-4], hr[4:-4, 4:-4]
    hr_rgb = np.repeat(shaved_hr[:, :, None], 3, axis=2)
    assert ba.scores["g"]["SR"]["gmsd"] == metrics.gmsd(shaved_sr, hr_rgb)
    assert ba.scores["g"]["SR"]["psnr"] == pytest.approx(metrics.psnr(sr, hr))
    assert re.search(r"PSNR \d+\.\d\d dB, GMSD 0\.\d{4}\W", ba.to_html())


def test_html_is_deterministic_and_ids_differ(two_images):
    one, two = viz.compare(two_images).to_html(), viz.compare(two_images).to_html()
    assert one == two
    other = viz.compare({"a": two_images["a"]}).to_html()
    id_one = re.search(r'id="(gmgan-ba-[0-9a-f]+)"', one).group(1)
    id_other = re.search(r'id="(gmgan-ba-[0-9a-f]+)"', other).group(1)
    assert id_one != id_other
    assert f'getElementById("{id_one}")' in one  # the script addresses its own block


def test_grey_and_tensor_inputs():
    sr, hr = _pair(40, 40, seed=3, grey=True)
    ba = viz.compare({"g": {"SR": sr, "HR": hr}})
    decoded = _decode(_payload(ba.to_html())["images"][0]["src"]["HR"])
    assert decoded.shape == (40, 40, 3) and all((decoded[..., c] == hr).all() for c in range(3))
    assert ba.scores["g"]["SR"]["psnr"] == pytest.approx(metrics.psnr(sr, hr))

    sr_rgb, hr_rgb = _pair(32, 32, seed=4)
    as_tensor = torch.from_numpy(sr_rgb).permute(2, 0, 1)[None].double() / 255
    bt = viz.compare({"t": {"SR": as_tensor, "HR": hr_rgb}})
    np.testing.assert_array_equal(bt.images["t"]["SR"], sr_rgb)  # float [0,1] -> uint8, rounded


def test_max_side_centre_crops_all_methods(two_images):
    ba = viz.compare(two_images, max_side=24)
    sr, hr = two_images["a"]["SR"], two_images["a"]["HR"]  # 48 x 40
    np.testing.assert_array_equal(ba.images["a"]["HR"], hr[12:36, 8:32])
    np.testing.assert_array_equal(ba.images["a"]["SR"], sr[12:36, 8:32])
    assert ba.scores["a"]["SR"]["psnr"] == pytest.approx(metrics.psnr(sr[12:36, 8:32], hr[12:36, 8:32]))


def _shown(monkeypatch) -> list:
    """Collect what a display call shows: (object, keyword arguments)."""
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append((obj, kw)))
    return shown


def test_one_output_holds_the_static_slider_and_the_live_widget(monkeypatch, two_images):
    """The book picks text/html, a running kernel the widget: both in ONE output, never two."""
    pytest.importorskip("ipywidgets")
    shown = _shown(monkeypatch)
    ba = viz.compare(two_images, mode="both")
    ba._ipython_display_()
    assert len(shown) == 1
    bundle, kw = shown[0]
    assert kw == {"raw": True}
    assert set(bundle) == {"text/plain", "text/html", "application/vnd.jupyter.widget-view+json"}
    assert "gmgan-ba-split" in bundle["text/html"]
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == ba.widget.model_id
    assert bundle["text/plain"] == "BeforeAfter(image='a', left='SR', right='HR', methods=['SR', 'HR'])"

    shown.clear()
    viz.compare(two_images, mode="static")._ipython_display_()
    assert len(shown) == 1 and set(shown[0][0]) == {"text/plain", "text/html"}
    shown.clear()
    viz.compare(two_images, mode="widget")._ipython_display_()
    assert len(shown) == 1 and type(shown[0][0]).__name__ == "BeforeAfterBox"


def test_without_ipywidgets_the_output_is_static(monkeypatch, two_images):
    shown = _shown(monkeypatch)
    monkeypatch.setattr(viz.output, "live_widget_available", lambda: False)
    viz.compare(two_images)._ipython_display_()
    assert len(shown) == 1 and set(shown[0][0]) == {"text/plain", "text/html"}


def _luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_buttons_set_both_colours_with_readable_contrast(two_images):
    """A button must not inherit the page's text colour (white on light grey in dark mode)."""
    css = viz.output.asset("buttons.css").replace("__UID__", "x").replace("__BUTTON__", "gmgan-ba-btn")
    plain = re.search(r"\.gmgan-ba-btn \{[^}]*background: (#[0-9a-f]{6}); color: (#[0-9a-f]{6})", css)
    on = re.search(r"\.gmgan-on \{background: (#[0-9a-f]{6})[^}]*; color: (#[0-9a-f]{6})", css)
    assert plain and on, css
    assert _contrast(*plain.groups()) >= 7 and _contrast(*on.groups()) >= 4.5
    html_text = viz.compare(two_images).to_html()
    assert "#gmgan-ba-" in html_text and "color: #555" not in html_text and "color: #666" not in html_text
    # labels and notes follow the output area's own text colour, in every slider's CSS
    assert viz.output.MUTED == "inherit"
    for kind in ("compare", "sweep"):
        css = viz.output.asset(f"{kind}.css")
        text_rules = re.findall(r"-(?:label|note|key|name) \{[^}]*[^-]color: ([^;}]+)", css)
        assert text_rules and set(text_rules) == {viz.output.MUTED}, (kind, text_rules)


# --------------------------------------------------------------------------------------------------
# Sweep: a slider over a parameter

def _render(choice, level):
    img = np.full((12, 16, 3), int(level * 10), np.uint8)
    img[0, 0] = (1, 2, 3) if choice == "a" else (4, 5, 6)
    return [img, np.full((6, 8), 200, np.uint8)], f"{choice} at {level:g}"


def test_sweep_static_frames_are_the_rendered_images():
    sw = viz.sweep(_render, {"a": [1, 2, 3], "b": [5, 6]}, panels=("image", "map"), label="sigma",
                   fmt="{:.1f} px", start=1, title="t")
    html_text = sw.to_html()
    m = re.search(r'<script type="application/json" class="gmgan-sw-data">(.*?)</script>', html_text, re.DOTALL)
    data = json.loads(m.group(1).replace("<\\/", "</"))
    assert data["choices"] == ["a", "b"] and data["values"] == {"a": ["1.0 px", "2.0 px", "3.0 px"],
                                                                "b": ["5.0 px", "6.0 px"]}
    for choice, levels in (("a", [1, 2, 3]), ("b", [5, 6])):
        for frame, level in zip(data["frames"][choice], levels):
            want, caption = _render(choice, level)
            np.testing.assert_array_equal(_decode(frame["src"][0]), want[0])
            np.testing.assert_array_equal(_decode(frame["src"][1])[..., 0], want[1])
            assert frame["caption"] == caption
    # the first picture is the start frame, with real alt text, drawn whole multiples tall
    assert 'alt="image: a, sigma 2.0 px"' in html_text and "a at 2" in html_text
    assert 'style="height: 312px;"' in html_text  # 12 px * 26
    assert sw.to_html() == html_text  # deterministic
    per_choice = viz.sweep(_render, {"a": [1], "b": [5]}, panels=("i", "m"), fmt={"a": "{:g} px", "b": "q{:g}"})
    assert '"values":{"a":["1 px"],"b":["q5"]}' in per_choice.to_html()
    assert repr(sw) == "Sweep('sigma', panels=['image', 'map'], levels per choice {a: 3, b: 2})"


def test_sweep_widget_redraws_with_render():
    pytest.importorskip("ipywidgets")
    calls = []

    def render(choice, level):
        calls.append((choice, level))
        return _render(choice, level)

    sw = viz.sweep(render, {"a": [1, 3], "b": [5, 6]}, panels=("image", "map"),
                   live_levels={"a": [1, 2, 3], "b": [5, 5.5, 6]})
    w = sw.widget
    w.controls["level"].value = 2.0                       # a level the static slider does not have
    assert calls[-1] == ("a", 2.0) and w.caption.value == "a at 2"
    view = _decode_bytes(w.views[0].value)
    k = 312 // 12
    assert view.shape == (12 * k, 16 * k, 3) and view[-1, -1, 0] == 20
    w.controls["choice"].value = "b"                      # nearest level of the new choice
    assert calls[-1] == ("b", 5.0) and w.caption.value == "b at 5"


def test_sweep_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one choice"):
        viz.sweep(_render, {})
    with pytest.raises(ValueError, match="choice 'a' has no levels"):
        viz.sweep(_render, {"a": []})
    with pytest.raises(ValueError, match="mode must be"):
        viz.sweep(_render, {"a": [1]}, mode="movie")
    with pytest.raises(ValueError, match=r"gave 2 images for the 1 panels \['image'\]"):
        viz.sweep(_render, {"a": [1]})
    with pytest.raises(ValueError, match="fmt must give a format"):
        viz.sweep(_render, {"a": [1]}, panels=("i", "m"), fmt={"b": "{}"})
    with pytest.raises(ValueError, match="live_levels must give levels"):
        viz.sweep(_render, {"a": [1]}, panels=("i", "m"), live_levels={"b": [1]})


# --------------------------------------------------------------------------------------------------
# Live widget

def test_widget_readout_follows_the_view(two_images):
    pytest.importorskip("ipywidgets")
    ba = viz.compare(two_images)
    w = ba.widget
    assert ba.widget is w  # built once
    sr, hr = two_images["a"]["SR"], two_images["a"]["HR"]
    whole = metrics.psnr(sr, hr)
    assert f"PSNR {whole:.2f} dB" in w.readout.value

    # zoom in on the lower right: the readout must now give the metrics of that region only
    w.controls["zoom"].value = 2
    w.controls["cx"].value, w.controls["cy"].value = 0.75, 0.75
    region = viz.view_region(hr.shape[:2], 2, 0.75, 0.75)
    assert (region.top, region.left, region.height, region.width) == (24, 20, 24, 20)
    # shave the image's 4-pixel border where the region touches it: rows 24..43, columns 20..35
    sr_c, hr_c = sr[24:44, 20:36], hr[24:44, 20:36]
    p = metrics.psnr(sr_c, hr_c, crop_border=0)
    s = metrics.ssim(sr_c, hr_c, crop_border=0)
    assert f"PSNR {p:.2f} dB, SSIM {s:.4f}" in w.readout.value
    assert f"{whole:.2f} dB" not in w.readout.value
    assert "rows 24-47, columns 20-39" in w.readout.value

    # the picture is the region, enlarged 2x (zoom) times the display scale by pixel repetition
    k = 2 * viz.display_scale(hr.shape[:2])
    view = _decode_bytes(w.view.value)
    assert view.shape == (24 * k, 20 * k, 3) and w.view.layout.width == f"{20 * k}px"
    np.testing.assert_array_equal(view[::k, ::k][:, 12:], hr[24:48, 32:40])  # right of the divider: HR


def test_widget_split_and_sides(two_images):
    pytest.importorskip("ipywidgets")
    ba = viz.compare(two_images)
    w = ba.widget
    sr, hr = two_images["b"]["SR"], two_images["b"]["HR"]  # 36 x 52
    w.controls["image"].value = "b"
    w.controls["split"].value = 0.25
    k = viz.display_scale(hr.shape[:2])  # 512 // 52 = 9
    assert k == 9
    view = _decode_bytes(w.view.value)
    assert view.shape == (36 * k, 52 * k, 3)
    cut = 13 * k  # round(0.25 * 52) image pixels, drawn k times wider
    np.testing.assert_array_equal(view[::k, :cut - 1:k], sr[:, :(cut - 1 + k - 1) // k])  # left: SR
    np.testing.assert_array_equal(view[::k, cut + 1::k][:, 1:], hr[:, 14:])             # right: HR
    assert (view[:, cut - 1:cut + 1] == 255).all()                                      # the divider
    assert f"PSNR {metrics.psnr(sr, hr):.2f} dB" in w.readout.value

    w.controls["left"].value = "HR"
    assert w.readout.value.count("reference") == 2 and "PSNR" not in w.readout.value
    assert repr(w) == "BeforeAfter(image='b', left='HR', right='HR', zoom=1)"


def test_tiny_region_has_no_metrics():
    sr, hr = _pair(40, 40, seed=5)
    ba = viz.compare({"x": {"SR": sr, "HR": hr}})
    scores = ba.region_scores("x", "SR", viz.view_region((40, 40), 8, 0.5, 0.5))  # 5 x 5 pixels
    assert scores == {"psnr": None, "ssim": None}
    assert "PSNR n/a" in ba._readout("x", "SR", "HR", viz.view_region((40, 40), 8, 0.5, 0.5))


# --------------------------------------------------------------------------------------------------
# Bad input

def test_shape_mismatch_names_image_method_and_shapes():
    sr, hr = _pair(48, 40)
    with pytest.raises(ValueError, match=r"image 'cat': method 'SR' is 39x48 \(WxH\) but 'HR' is 40x48"):
        viz.compare({"cat": {"SR": sr[:, :39], "HR": hr}})


@pytest.mark.parametrize("images, kwargs, message", [
    ({}, {}, "at least one image"),
    ({"a": {"SR": np.zeros((16, 16, 3), np.uint8)}}, {}, "no reference 'HR'"),
    ({"a": {"HR": np.zeros((16, 16, 3), np.uint8)}}, {}, "nothing to compare"),
    ({"a": {"SR": np.zeros((16, 16, 3), np.uint8), "HR": np.zeros((16, 16, 3), np.uint8)},
      "b": {"X": np.zeros((16, 16, 3), np.uint8), "HR": np.zeros((16, 16, 3), np.uint8)}}, {}, "image 'b' has methods"),
    ({"a": {"SR": np.zeros((16, 16, 3), np.uint8), "HR": np.zeros((16, 16, 3), np.uint8)}},
     {"metrics": ("psnr", "nope")}, "unknown metric 'nope'"),
    ({"a": {"SR": np.zeros((16, 16, 3), np.uint8), "HR": np.zeros((16, 16, 3), np.uint8)}},
     {"metrics": ("psnr", "niqe")}, "'niqe' scores an image without its reference"),
    ({"a": {"SR": np.zeros((16, 16, 3), np.uint8), "HR": np.zeros((16, 16, 3), np.uint8)}},
     {"left": "EDSR"}, "left='EDSR' is not one of"),
    ({"a": {"SR": np.zeros((16, 16, 3), np.uint8), "HR": np.zeros((16, 16, 3), np.uint8)}},
     {"mode": "video"}, "mode must be"),
    ({"a": {"SR": np.full((16, 16, 3), 2.0), "HR": np.zeros((16, 16, 3), np.uint8)}}, {}, r"a/SR: float image"),
    ({"a": {"SR": np.zeros((16, 16, 4), np.uint8), "HR": np.zeros((16, 16, 3), np.uint8)}}, {}, r"a/SR: shape"),
    ({"a": {"SR": torch.zeros(2, 3, 16, 16), "HR": np.zeros((16, 16, 3), np.uint8)}}, {}, "batch of 2"),
])
def test_bad_input_is_named(images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        viz.compare(images, **kwargs)


# --------------------------------------------------------------------------------------------------
# Plot helpers

def test_diff_map_is_the_largest_channel_difference():
    a = np.zeros((4, 5, 3), np.uint8)
    b = a.copy()
    b[1, 2] = (3, 250, 7)
    b[3, 4, 0] = 1
    d = viz.diff_map(a, b)
    assert d.shape == (4, 5) and d[1, 2] == 250 and d[3, 4] == 1 and d.sum() == 251
    with pytest.raises(ValueError, match=r"shapes differ, a is \(4, 5, 3\) and b is \(4, 4, 3\)"):
        viz.diff_map(a, b[:, :4])


def test_show_diff_reports_counts():
    a = np.zeros((10, 10), np.uint8)
    b = a.copy()
    b[0, :3] = 9
    fig = viz.show_diff(a, b, title="t")
    assert "3 of 100 pixels differ (3.00%), max 9" in fig.axes[0].get_title()


def test_show_images_and_curves_and_gms():
    sr, hr = _pair(20, 30)
    fig = viz.show_images([sr, hr, hr[..., 0]], ["sr", "hr", "grey"])
    shown = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(shown) == 3 and np.array_equal(np.asarray(shown[1]), hr)
    with pytest.raises(ValueError, match="2 titles for 3 images"):
        viz.show_images([sr, hr, hr], ["a", "b"])

    fig = viz.plot_curves({"loss": [3.0, 2.0, 1.5, 1.2], "val": ([0, 2], [2.5, 1.4])}, smooth=2, logy=True)
    assert fig.axes[0].get_yscale() == "log"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["loss", "val"]
    with pytest.raises(ValueError, match="curve 'bad'"):
        viz.plot_curves({"bad": ([0, 1, 2], [1.0, 2.0])})

    gms = np.linspace(0.5, 1.0, 12).reshape(3, 4)
    fig = viz.show_gms_map(torch.from_numpy(gms)[None, None])
    assert f"GMSM {gms.mean():.4f}, GMSD {gms.std(ddof=1):.4f}" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="HxW map"):
        viz.show_gms_map(np.zeros((2, 3, 4)))
    import matplotlib.pyplot as plt

    plt.close("all")


def test_book_style_sets_readable_fonts_on_white():
    import matplotlib as mpl

    with mpl.rc_context():
        viz.book_style()
        sizes = [mpl.rcParams[k] for k in ("font.size", "axes.titlesize", "axes.labelsize",
                                            "xtick.labelsize", "ytick.labelsize", "legend.fontsize")]
        assert all(isinstance(v, (int, float)) and v >= 9 for v in sizes), sizes
        assert tuple(mpl.rcParams["figure.figsize"])[0] == viz.COLUMN_WIDTH
        assert mpl.rcParams["figure.dpi"] == 96 and mpl.rcParams["figure.facecolor"] == "white"


def test_show_images_keeps_panels_readable_and_within_the_column():
    import matplotlib.pyplot as plt

    sr, hr = _pair(64, 64)
    for n, kwargs in ((8, {"ncols": 8, "size": 1.6}), (5, {"size": 2.1}), (2, {}), (1, {"size": 2.5})):
        fig = viz.show_images([hr] * n, [f"image {i}\nsecond line" for i in range(n)], **kwargs)
        width = fig.get_figwidth()
        assert width <= viz.COLUMN_WIDTH + 1e-9, (n, kwargs, width)
        panels = [ax.get_position().width * width for ax in fig.axes if ax.images]
        assert len(panels) == n and min(panels) >= 0.85 * viz.MIN_PANEL_WIDTH, (n, kwargs, panels)
        plt.close(fig)


def test_colorize_maps_values_through_the_colour_map():
    from matplotlib import colormaps

    rgb = viz.colorize(torch.tensor([[[[0.0, 0.5], [1.0, 2.0]]]]))
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0], colormaps["viridis"](0.0, bytes=True)[:3])
    np.testing.assert_array_equal(rgb[1, 1], rgb[1, 0])  # clipped at vmax
    with pytest.raises(ValueError, match="HxW map"):
        viz.colorize(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="must be larger"):
        viz.colorize(np.zeros((2, 2)), vmin=1, vmax=1)


def test_import_is_light():
    code = ("import sys, gmgan.viz; "
            "print(any(m in sys.modules for m in ('matplotlib', 'ipywidgets', 'IPython')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_plot_pilots_draws_each_recipe_as_a_path_and_the_shipped_models_as_stars():
    def pilot(run, model, updates, images, recipe, hf, source="pilot"):
        return {"source": source, "run": run, "model": model, "updates": updates,
                "images": images, "recipe": recipe, "hf_median": hf, "niqe_mean": 7 - 4 * hf,
                "psnr_set5": 30.5 - 5 * hf}

    gan = {"phase": "gan", "delta": 0.1}
    pilots = [pilot("bicubic", "-", None, 30, {}, 0.03),
              pilot("psnr-s0", "pretrain/G_ema", 5000, 100, {"phase": "pretrain"}, 0.17),
              pilot("d", "gan/G_ema@1000", 1000, 30, gan, 0.3),
              pilot("d", "gan/G_ema", 4000, 100, gan, 0.5),
              pilot("d", "gan/G@1000", 1000, 30, gan, 0.4),
              pilot("head", "gan/G_ema", 600, 30, {**gan, "noise_head": True}, 0.9),
              pilot("gmgan-s0", "gan/G_ema", 4000, 100, gan, 0.53, "production/gmgan-s0"),
              pilot("gmgan-s0", "gan/G", 4000, 100, gan, 0.54, "production/gmgan-s0")]
    fig = viz.plot_pilots(pilots)
    hf_axes, niqe_axes = fig.axes
    # three paths (PSNR model; delta 0.1 moving average; its raw G), the noise head left out
    paths = [line for line in hf_axes.lines if len(line.get_xdata())]
    assert sorted(len(line.get_xdata()) for line in paths) == [1, 1, 2]
    ema = next(line for line in paths if len(line.get_xdata()) == 2)
    assert list(ema.get_xdata()) == [0.3, 0.5] and ema.get_linestyle() == "-"
    points = np.concatenate([c.get_offsets() for c in hf_axes.collections])
    assert 0.9 not in points[:, 0] and 0.03 not in points[:, 0]
    stars = [c for c in hf_axes.collections if c.get_sizes()[0] > 100]  # the large markers
    assert sorted(float(c.get_offsets()[0, 0]) for c in stars) == [0.53, 0.54]
    assert [t.get_text() for t in hf_axes.texts] == ["1,000", "4,000"]
    assert niqe_axes.get_xlabel().startswith("NIQE")
    assert "shipped (EMA; raw hollow)" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_markdown_table_renders_a_table_with_a_caption():
    table = viz.markdown_table(["model", "PSNR (dB)"], [("bicubic", "28.43"), ("GMGAN", 26.7)],
                               caption="**Set5**")
    assert table.data == ("**Set5**\n\n| model | PSNR (dB) |\n|---|---|\n"
                          "| bicubic | 28.43 |\n| GMGAN | 26.7 |")
    assert viz.markdown_table(["a"], []).data == "| a |\n|---|"


def test_static_slider_offers_a_pixel_and_a_smooth_zoom(two_images):
    page = viz.compare(two_images, max_side=32).to_html()
    assert 'data-render="pixels"' in page and 'data-render="smooth"' in page
    assert '"renderings":{"pixels":"pixelated","smooth":"auto"}' in page



# --------------------------------------------------------------------------------------------------
# The static views' HTML, CSS and JavaScript are package files that tools can read

@pytest.mark.parametrize("kind", ["compare", "sweep"])
def test_static_assets_are_plain_files_that_parse(kind, tmp_path):
    css = viz.output.asset(f"{kind}.css") + viz.output.asset("buttons.css")
    # plain CSS: balanced rule blocks, every rule scoped to the slider's element id
    assert css.count("{") == css.count("}") > 5
    rules = [r.strip() for r in re.findall(r"([^{}]+)\{", re.sub(r"/\*.*?\*/", "", css))]
    assert all(r.startswith("#__UID__") for r in rules), rules
    html_text = viz.output.asset(f"{kind}.html")
    assert html_text.count("<div") == html_text.count("</div>")
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: JavaScript syntax not checked")
    script = tmp_path / f"{kind}.js"
    script.write_text(viz.output.asset(f"{kind}.js"))
    subprocess.run([node, "--check", str(script)], check=True, capture_output=True)
