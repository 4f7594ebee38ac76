"""Pictures for the notebooks: before/after sliders and a few plotting helpers.

The centre piece is :func:`compare`, a before/after slider between super-resolved images and their
ground truth. It shows itself twice over, so that it works wherever a notebook is read:

- a **static** slider, self-contained HTML and JavaScript (images as base64 PNG data URIs, no kernel,
  no CDN): the one the book shows. Drag the divider (or use the range input's arrow keys), pick the
  image and the two sides with buttons, zoom with the zoom buttons or a double-click;
- a **live** ipywidgets control for a running kernel (JupyterLab, Colab): dropdowns for the image and
  the two sides, sliders for the split, the zoom and its centre, and the metrics of the region on
  screen, recomputed by :mod:`gmgan.metrics` whenever the view changes.

The static view's metrics are those of the whole image (with the usual border shave); the live view's
are those of the visible region. Plot helpers (:func:`show_images`, :func:`diff_map`,
:func:`show_diff`, :func:`plot_curves`, :func:`show_gms_map`) return matplotlib figures;
:func:`markdown_table` returns a table for display.

matplotlib and ipywidgets are imported only when a function needs them, so ``import gmgan.viz`` is cheap.
Only notebooks import this module; the rest of the package never does.
"""
from __future__ import annotations

import base64
import hashlib
import html
import inspect
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

__all__ = [
    "BeforeAfter",
    "Region",
    "compare",
    "diff_map",
    "display_scale",
    "markdown_table",
    "plot_curves",
    "png_data_uri",
    "show_diff",
    "show_gms_map",
    "show_images",
    "to_uint8",
    "view_region",
]

# Format of each metric's readout: (format spec, unit). Unknown metrics get 4 decimals.
_FORMATS = {"psnr": (".2f", " dB"), "ssim": (".4f", ""), "gmsd": (".4f", "")}
_ZOOMS = (1, 2, 4, 8)
_DISPLAY_SIDE = 512  # small images are drawn enlarged (whole multiples, sharp pixels) up to this size
_MIN_METRIC_SIDE = 11  # SSIM's Gaussian window is 11x11: a smaller region has no SSIM.


# --------------------------------------------------------------------------------------------------
# Image conversion
# --------------------------------------------------------------------------------------------------

def to_uint8(img: Any, name: str = "image") -> np.ndarray:
    """Bring an image into numpy uint8 form, HxW (grey) or HxWx3 (RGB), without resampling.

    Accepts numpy uint8 HxW / HxWx1 / HxWx3 (values 0..255, returned as is, HxWx1 squeezed to HxW),
    numpy float HxW / HxWx3 in [0, 1], and torch float tensors 3xHxW / 1x3xHxW / HxW in [0, 1]
    (rounded to the nearest level). ``name`` appears in error messages.
    """
    if hasattr(img, "detach") and hasattr(img, "cpu"):  # a torch tensor, without importing torch
        arr = img.detach().cpu().numpy()
        if arr.ndim == 4:
            if arr.shape[0] != 1:
                raise ValueError(f"{name}: a batch of {arr.shape[0]} images; pass one image (1x3xHxW)")
            arr = arr[0]
        if arr.ndim == 3:
            if arr.shape[0] not in (1, 3):
                raise ValueError(f"{name}: tensor of shape {tuple(img.shape)} is not CxHxW with C in (1, 3)")
            arr = np.moveaxis(arr, 0, -1)
    else:
        arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3):
        raise ValueError(f"{name}: shape {arr.shape} is not HxW or HxWx3")
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and (np.nanmin(arr) < -1e-6 or np.nanmax(arr) > 1 + 1e-6):
            raise ValueError(f"{name}: float image with values outside [0, 1] "
                             f"(min {np.nanmin(arr):.3g}, max {np.nanmax(arr):.3g})")
        return np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
    raise ValueError(f"{name}: dtype {arr.dtype} is neither uint8 nor float in [0, 1]")


def _rgb(img: np.ndarray) -> np.ndarray:
    """HxW grey or HxWx3 uint8 -> HxWx3 uint8 (grey repeated), for display only."""
    return np.repeat(img[..., None], 3, axis=-1) if img.ndim == 2 else img


def png_data_uri(img: np.ndarray) -> str:
    """Encode a uint8 HxW / HxWx3 image as a ``data:image/png;base64,...`` URI (lossless, deterministic)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# --------------------------------------------------------------------------------------------------
# Metrics of a region
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Region:
    """A rectangle of pixels: rows ``top:top+height``, columns ``left:left+width``."""

    top: int
    left: int
    height: int
    width: int

    def slice(self, img: np.ndarray) -> np.ndarray:
        """The part of ``img`` (HxW or HxWxC) inside the rectangle."""
        return img[self.top:self.top + self.height, self.left:self.left + self.width]


def view_region(shape: tuple[int, int], zoom: float, cx: float, cy: float) -> Region:
    """The region a view shows: ``1/zoom`` of each side, centred on (cx, cy) (fractions of the width and
    height), pushed back inside the image at the borders."""
    height, width = shape
    h = max(1, round(height / zoom))
    w = max(1, round(width / zoom))
    top = round(cy * height - h / 2)
    left = round(cx * width - w / 2)
    return Region(min(max(top, 0), height - h), min(max(left, 0), width - w), h, w)


def _metric_functions(names: Sequence[str]) -> dict[str, Any]:
    from gmgan import metrics

    fns = {}
    for name in names:
        fn = getattr(metrics, name, None)
        if fn is None:
            raise ValueError(f"unknown metric {name!r}: gmgan.metrics has no such function")
        fns[name] = fn
    return fns


def _call_metric(fn: Any, sr: np.ndarray, hr: np.ndarray, crop_border: int, y_channel: bool) -> float:
    """Call a gmgan.metrics function with the keyword arguments it accepts."""
    params = inspect.signature(fn).parameters
    kwargs = {}
    if "crop_border" in params:
        kwargs["crop_border"] = crop_border
    if "y_channel" in params:
        kwargs["y_channel"] = y_channel
    return float(fn(sr, hr, **kwargs))


def _format_metric(name: str, value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return f"{name.upper()} n/a" if value is None else f"{name.upper()} {value}"
    spec, unit = _FORMATS.get(name, (".4f", ""))
    return f"{name.upper()} {format(value, spec)}{unit}"


# --------------------------------------------------------------------------------------------------
# The before/after comparison
# --------------------------------------------------------------------------------------------------

@dataclass
class BeforeAfter:
    """A before/after comparison of several images, each seen through several methods.

    Made by :func:`compare`; see there for the arguments. ``images`` maps image name -> method name ->
    uint8 image (HxW or HxWx3, all methods of one image the same shape). ``scores`` maps image -> method
    -> metric -> value for the whole image (computed by :mod:`gmgan.metrics`, ``crop_border`` pixels
    shaved, on Y when ``y_channel``); the reference gets no scores.

    In a notebook it displays the static HTML slider and/or the live widget (``mode``). ``to_html()``
    gives the static slider, ``widget`` the ipywidgets control (built once, then reused).
    """

    images: dict[str, dict[str, np.ndarray]]
    reference: str
    left: str
    right: str
    metrics: tuple[str, ...] = ("psnr", "ssim")
    crop_border: int = 4
    y_channel: bool = True
    mode: str = "both"
    title: str = ""
    scores: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    _widget: Any = field(default=None, repr=False)

    # ---- names -------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Image names, in the order given."""
        return list(self.images)

    @property
    def methods(self) -> list[str]:
        """Method names (the reference included), in the order of the first image."""
        return list(next(iter(self.images.values())))

    def _uid(self) -> str:
        # Deterministic element id: the same images give the same HTML (notebook outputs stay stable
        # for nbval), two different comparisons on one page do not clash.
        digest = hashlib.sha1()
        for name, views in self.images.items():
            for method, img in views.items():
                digest.update(f"{name}/{method}/{img.shape}".encode())
                digest.update(img.tobytes())
        digest.update(f"{self.left}|{self.right}|{self.title}".encode())
        return "gmgan-ba-" + digest.hexdigest()[:12]

    # ---- metrics -----------------------------------------------------------------------------
    def region_scores(self, image: str, method: str, region: Region) -> dict[str, float | None]:
        """Metrics of ``method`` against the reference inside ``region`` of ``image``.

        The region is first intersected with the image shaved by ``crop_border`` pixels (the border is
        never scored, as in the whole-image numbers); the metric functions then get ``crop_border=0``.
        A metric is ``None`` when the remaining region is smaller than 11x11 pixels.
        """
        if method == self.reference:
            return {}
        hr = self.images[image][self.reference]
        sr = self.images[image][method]
        b = self.crop_border
        top, left = max(region.top, b), max(region.left, b)
        bottom = min(region.top + region.height, hr.shape[0] - b)
        right = min(region.left + region.width, hr.shape[1] - b)
        if bottom - top < _MIN_METRIC_SIDE or right - left < _MIN_METRIC_SIDE:
            return {name: None for name in self.metrics}
        inner = Region(top, left, bottom - top, right - left)
        fns = _metric_functions(self.metrics)
        return {name: _call_metric(fn, inner.slice(sr), inner.slice(hr), 0, self.y_channel)
                for name, fn in fns.items()}

    def _readout(self, image: str, left: str, right: str, region: Region | None) -> str:
        """HTML with the metrics of the left and right sides (whole image when region is None)."""
        parts = []
        for side, method in (("left", left), ("right", right)):
            if method == self.reference:
                text = "reference"
            else:
                values = (self.scores[image][method] if region is None
                          else self.region_scores(image, method, region))
                text = ", ".join(_format_metric(k, v) for k, v in values.items())
            parts.append(f"<b>{side}</b> {html.escape(method)}: {text}")
        return " &nbsp;|&nbsp; ".join(parts)

    # ---- static HTML -------------------------------------------------------------------------
    def to_html(self) -> str:
        """The static slider: one self-contained HTML fragment (style, data, script), no kernel needed.

        Every image is embedded as a base64 PNG data URI; the whole-image metrics are in the page.
        Element ids derive from the content, so the same comparison always gives the same HTML.
        """
        uid = self._uid()
        payload = {
            "reference": self.reference,
            "methods": self.methods,
            "left": self.left,
            "right": self.right,
            "images": [
                {"name": name, "height": int(views[self.reference].shape[0]),
                 "width": int(views[self.reference].shape[1]),
                 "scale": display_scale(views[self.reference].shape[:2]),
                 "src": {m: png_data_uri(_rgb(img)) for m, img in views.items()},
                 "scores": {m: ", ".join(_format_metric(k, v) for k, v in self.scores[name][m].items())
                            for m in views if m != self.reference}}
                for name, views in self.images.items()
            ],
            "zooms": list(_ZOOMS),
        }
        first = payload["images"][0]
        note = (f"whole image, {self.crop_border}-pixel border excluded"
                + (", on the Y channel" if self.y_channel else ", on RGB"))
        data = json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")

        def buttons(kind: str, options: Sequence[str], active: str) -> str:
            return "".join(
                f'<button type="button" class="gmgan-ba-btn{" gmgan-ba-on" if o == active else ""}" '
                f'data-{kind}="{html.escape(o)}" aria-pressed="{"true" if o == active else "false"}">'
                f'{html.escape(o)}</button>' for o in options)

        title = f'<div class="gmgan-ba-title">{html.escape(self.title)}</div>' if self.title else ""
        return _STATIC_TEMPLATE.format(
            uid=uid, title=title,
            image_buttons=buttons("image", self.names, first["name"]),
            left_buttons=buttons("left", self.methods, self.left),
            right_buttons=buttons("right", self.methods, self.right),
            zoom_buttons=buttons("zoom", [f"{z}x" for z in _ZOOMS], "1x"),
            width=first["width"], height=first["height"], display_width=first["width"] * first["scale"],
            src_left=first["src"][self.left], src_right=first["src"][self.right],
            alt_left=html.escape(f"{first['name']}: {self.left}"),
            alt_right=html.escape(f"{first['name']}: {self.right}"),
            readout=self._readout(first["name"], self.left, self.right, None), note=html.escape(note),
            data=data, script=_STATIC_SCRIPT.replace("__UID__", uid),
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    # ---- live widget -------------------------------------------------------------------------
    @property
    def widget(self):
        """The ipywidgets control (a VBox), built on first use and reused afterwards.

        Its ``controls`` attribute maps ``image``, ``left``, ``right``, ``split``, ``zoom``, ``cx``,
        ``cy`` to the control widgets, ``view`` is the Image widget and ``readout`` the HTML widget with
        the metrics of the visible region. Changing a control's value updates view and readout.
        """
        if self._widget is None:
            self._widget = _build_widget(self)
        return self._widget

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        if self.mode in ("both", "static"):
            display(HTML(self.to_html()))
        if self.mode in ("both", "widget"):
            display(self.widget)


def compare(images: Mapping[str, Mapping[str, Any]], *, reference: str = "HR", left: str | None = None,
            right: str | None = None, metrics: Sequence[str] = ("psnr", "ssim"), crop_border: int = 4,
            y_channel: bool = True, max_side: int | None = None, mode: str = "both",
            title: str = "") -> BeforeAfter:
    """A before/after slider between methods of super-resolution and the ground truth.

    Args:
        images: ``{image name: {method name: image}}``. Every image must have the ``reference`` method
            and the same set of methods; all methods of one image must have the same height and width.
            An image is numpy uint8 HxW / HxWx3 (0..255), numpy float in [0, 1], or a torch float
            tensor 3xHxW / 1x3xHxW in [0, 1] (see :func:`to_uint8`). Never resampled.
        reference: the method that is the ground truth (metrics are computed against it).
        left, right: the methods shown left and right of the divider at first; default: the first
            non-reference method on the left and the reference on the right.
        metrics: names of :mod:`gmgan.metrics` functions. Each is called on the images shaved by
            ``crop_border`` as ``fn(sr, hr, crop_border=0, y_channel=...)`` (keywords it does not take
            are left out), which for psnr/ssim equals ``fn(sr, hr, crop_border=crop_border, ...)``.
        crop_border: pixels shaved from each side before scoring (4 for x4, as in the papers).
        y_channel: score the luminance Y (BT.601) rather than RGB.
        max_side: if given, each image (all methods alike) is centre-cropped to at most
            ``max_side`` x ``max_side`` pixels to keep notebooks small; metrics are then those of the crop.
        mode: what a notebook displays: ``"both"`` (static HTML then live widget), ``"static"``,
            ``"widget"``.
        title: a caption shown above the static slider.

    Returns:
        a :class:`BeforeAfter`; display it (last line of a cell) to show it.

    Raises:
        ValueError: no images, a missing reference or method, shapes that differ (naming the image,
            the method and both shapes), an unknown metric or mode.
    """
    if mode not in ("both", "static", "widget"):
        raise ValueError(f"mode must be 'both', 'static' or 'widget', not {mode!r}")
    if not images:
        raise ValueError("compare() needs at least one image")
    clean: dict[str, dict[str, np.ndarray]] = {}
    methods: list[str] | None = None
    for name, views in images.items():
        if reference not in views:
            raise ValueError(f"image {name!r} has no reference {reference!r} (methods: {list(views)})")
        if methods is None:
            methods = list(views)
            if len(methods) < 2:
                raise ValueError(f"image {name!r} has only {methods}: nothing to compare with")
        elif set(views) != set(methods):
            raise ValueError(f"image {name!r} has methods {sorted(views)}, the first image {sorted(methods)}")
        arrays = {m: to_uint8(views[m], f"{name}/{m}") for m in methods}
        ref_shape = arrays[reference].shape[:2]
        for m, arr in arrays.items():
            if arr.shape[:2] != ref_shape:
                raise ValueError(f"image {name!r}: method {m!r} is {arr.shape[1]}x{arr.shape[0]} (WxH) but "
                                 f"{reference!r} is {ref_shape[1]}x{ref_shape[0]}; crop or upscale to match")
        if max_side is not None:
            arrays = {m: _centre_crop(a, max_side) for m, a in arrays.items()}
        clean[str(name)] = arrays
    assert methods is not None
    others = [m for m in methods if m != reference]
    left = left if left is not None else others[0]
    right = right if right is not None else reference
    for side, value in (("left", left), ("right", right)):
        if value not in methods:
            raise ValueError(f"{side}={value!r} is not one of the methods {methods}")
    _metric_functions(metrics)  # unknown names fail here, before any work
    ba = BeforeAfter(clean, reference, left, right, tuple(metrics), crop_border, y_channel, mode, title)
    # Whole-image scores go through the same path as the live view's (shave, then score), so that a
    # metric without a crop_border argument (gmsd) is shaved too and the two views agree.
    for name, views in clean.items():
        whole = Region(0, 0, *views[reference].shape[:2])
        ba.scores[name] = {m: ba.region_scores(name, m, whole) for m in methods if m != reference}
    return ba


def display_scale(shape: tuple[int, int]) -> int:
    """Whole factor by which an image of ``shape`` (H, W) is drawn: the largest that keeps its longer
    side within 512 pixels, at least 1."""
    return max(1, _DISPLAY_SIDE // max(shape))


def _centre_crop(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    ch, cw = min(h, side), min(w, side)
    top, left = (h - ch) // 2, (w - cw) // 2
    return img[top:top + ch, left:left + cw]


# --------------------------------------------------------------------------------------------------
# Live widget
# --------------------------------------------------------------------------------------------------

@cache
def _box_class():
    import ipywidgets as widgets

    class BeforeAfterBox(widgets.VBox):
        """A VBox whose text form is short (the default repr would print every PNG byte)."""

        def __repr__(self) -> str:
            c = self.controls
            return (f"BeforeAfter(image={c['image'].value!r}, left={c['left'].value!r}, "
                    f"right={c['right'].value!r}, zoom={c['zoom'].value})")

    return BeforeAfterBox


def _composite(ba: BeforeAfter, image: str, left_method: str, right_method: str, split: float,
               region: Region, enlarge: int) -> np.ndarray:
    """The picture on screen: left method left of the divider, right method right of it, the visible
    region enlarged ``enlarge`` times by pixel repetition (so pixels stay sharp), a white divider."""
    left = _rgb(region.slice(ba.images[image][left_method]))
    right = _rgb(region.slice(ba.images[image][right_method]))
    out = right.copy()
    cut = round(split * out.shape[1])
    out[:, :cut] = left[:, :cut]
    if enlarge > 1:
        out = np.repeat(np.repeat(out, enlarge, axis=0), enlarge, axis=1)
    x = min(max(cut * enlarge, 1), out.shape[1] - 1)
    out[:, x - 1:x + 1] = 255
    return out


def _build_widget(ba: BeforeAfter):
    import ipywidgets as widgets

    style = {"description_width": "initial"}
    controls = {
        "image": widgets.Dropdown(options=ba.names, value=ba.names[0], description="image", style=style),
        "left": widgets.Dropdown(options=ba.methods, value=ba.left, description="left", style=style),
        "right": widgets.Dropdown(options=ba.methods, value=ba.right, description="right", style=style),
        "split": widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.01, description="split",
                                     readout_format=".2f", continuous_update=True, style=style),
        "zoom": widgets.SelectionSlider(options=list(_ZOOMS), value=1, description="zoom", style=style),
        "cx": widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.01, description="centre x",
                                  readout_format=".2f", style=style),
        "cy": widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.01, description="centre y",
                                  readout_format=".2f", style=style),
    }
    view = widgets.Image(format="png")
    readout = widgets.HTML()
    box = _box_class()([
        widgets.HBox([controls["image"], controls["left"], controls["right"]]),
        widgets.HBox([controls["split"], controls["zoom"]]),
        widgets.HBox([controls["cx"], controls["cy"]]),
        view,
        readout,
    ])
    box.controls, box.view, box.readout = controls, view, readout

    def update(_change=None) -> None:
        left, right = controls["left"].value, controls["right"].value
        image, zoom = controls["image"].value, int(controls["zoom"].value)
        ref = ba.images[image][ba.reference]
        region = view_region(ref.shape[:2], zoom, controls["cx"].value, controls["cy"].value)
        from PIL import Image

        buf = io.BytesIO()
        scale = display_scale(ref.shape[:2])
        picture = _composite(ba, image, left, right, controls["split"].value, region, zoom * scale)
        Image.fromarray(picture).save(buf, format="PNG")
        view.value = buf.getvalue()
        view.layout.width = f"{picture.shape[1]}px"  # drawn pixel for pixel, not stretched
        where = (f"rows {region.top}-{region.top + region.height - 1}, "
                 f"columns {region.left}-{region.left + region.width - 1}")
        readout.value = (f"{ba._readout(image, left, right, region)}<br><small>visible region of {html.escape(image)}: "
                         f"{where}; {ba.crop_border}-pixel image border excluded"
                         f"{', Y channel' if ba.y_channel else ', RGB'}</small>")

    for control in controls.values():
        control.observe(update, names="value")
    update()
    return box


# --------------------------------------------------------------------------------------------------
# Static slider: HTML and JavaScript (runs in the book, JupyterLab, Colab; no libraries)
# --------------------------------------------------------------------------------------------------

_STATIC_TEMPLATE = """<div class="gmgan-ba" id="{uid}">
<style>
#{uid} {{font: 13px/1.4 system-ui, sans-serif; margin: 0.5em 0;}}
#{uid} .gmgan-ba-title {{font-weight: 600; margin-bottom: 0.3em;}}
#{uid} .gmgan-ba-row {{margin: 0.15em 0;}}
#{uid} .gmgan-ba-label {{display: inline-block; min-width: 3.5em; color: #555;}}
#{uid} .gmgan-ba-btn {{font: inherit; padding: 1px 8px; margin: 1px; border: 1px solid #999;
  border-radius: 3px; background: #f4f4f4; cursor: pointer;}}
#{uid} .gmgan-ba-btn.gmgan-ba-on {{background: #2a6fdb; border-color: #2a6fdb; color: #fff;}}
#{uid} .gmgan-ba-frame {{max-width: 100%;}}
#{uid} .gmgan-ba-stage {{position: relative; overflow: hidden; width: 100%; cursor: ew-resize;
  touch-action: none; user-select: none; background: #000; margin-top: 0.3em;}}
#{uid} .gmgan-ba-inner {{position: absolute; inset: 0; transform-origin: 0 0;}}
#{uid} .gmgan-ba-inner img {{position: absolute; inset: 0; width: 100%; height: 100%; max-width: none;
  margin: 0; image-rendering: pixelated; pointer-events: none;}}
#{uid} .gmgan-ba-divider {{position: absolute; top: 0; bottom: 0; width: 2px; margin-left: -1px;
  background: #fff; box-shadow: 0 0 2px #000; pointer-events: none;}}
#{uid} .gmgan-ba-tag {{position: absolute; top: 4px; padding: 0 4px; background: rgba(0,0,0,.55);
  color: #fff; font-size: 12px; pointer-events: none;}}
#{uid} .gmgan-ba-split {{display: block; width: 100%; margin: 0.3em 0 0;}}
#{uid} .gmgan-ba-note {{color: #666; font-size: 12px;}}
</style>
{title}<div class="gmgan-ba-row"><span class="gmgan-ba-label">image</span>{image_buttons}</div>
<div class="gmgan-ba-row"><span class="gmgan-ba-label">left</span>{left_buttons}</div>
<div class="gmgan-ba-row"><span class="gmgan-ba-label">right</span>{right_buttons}</div>
<div class="gmgan-ba-row"><span class="gmgan-ba-label">zoom</span>{zoom_buttons}</div>
<div class="gmgan-ba-frame" style="width: {display_width}px;">
<div class="gmgan-ba-stage" style="aspect-ratio: {width} / {height};">
<div class="gmgan-ba-inner">
<img class="gmgan-ba-right" alt="{alt_right}" src="{src_right}">
<img class="gmgan-ba-left" alt="{alt_left}" src="{src_left}" style="clip-path: inset(0 50% 0 0);">
</div>
<div class="gmgan-ba-divider" style="left: 50%;"></div>
<span class="gmgan-ba-tag gmgan-ba-tag-left" style="left: 4px;"></span>
<span class="gmgan-ba-tag gmgan-ba-tag-right" style="right: 4px;"></span>
</div>
<input class="gmgan-ba-split" type="range" min="0" max="1000" step="1" value="500" aria-label="split position">
</div>
<div class="gmgan-ba-metrics">{readout}</div>
<div class="gmgan-ba-note">Metrics: {note}. Drag the image or the slider to move the split;
double-click to zoom in there (shift + double-click zooms out).</div>
<script type="application/json" class="gmgan-ba-data">{data}</script>
<script>{script}</script>
</div>
"""

# Plain ES2015, no libraries. State: image, left/right method, split (0..1 of the view's width),
# zoom and its centre (fractions of the image). The view shows 1/zoom of the image; the left image is
# clipped at the split, converted from view to image coordinates.
_STATIC_SCRIPT = r"""
(function () {
  var root = document.getElementById("__UID__");
  if (!root || root.getAttribute("data-ready")) { return; }
  root.setAttribute("data-ready", "1");
  var data = JSON.parse(root.querySelector("script.gmgan-ba-data").textContent);
  var frame = root.querySelector(".gmgan-ba-frame"), stage = root.querySelector(".gmgan-ba-stage");
  var inner = root.querySelector(".gmgan-ba-inner");
  var imgL = root.querySelector("img.gmgan-ba-left"), imgR = root.querySelector("img.gmgan-ba-right");
  var divider = root.querySelector(".gmgan-ba-divider"), range = root.querySelector(".gmgan-ba-split");
  var tagL = root.querySelector(".gmgan-ba-tag-left"), tagR = root.querySelector(".gmgan-ba-tag-right");
  var readout = root.querySelector(".gmgan-ba-metrics");
  var s = {image: 0, left: data.left, right: data.right, split: 0.5, zoom: 1, cx: 0.5, cy: 0.5};

  function clamp(v, lo, hi) { return Math.min(Math.max(v, lo), hi); }
  function esc(t) { var d = document.createElement("span"); d.textContent = t; return d.innerHTML; }
  function origin() {  // top-left corner of the view, as fractions of the image
    var f = 1 / s.zoom;
    return [clamp(s.cx - f / 2, 0, 1 - f), clamp(s.cy - f / 2, 0, 1 - f)];
  }
  function side(name, method) {
    var im = data.images[s.image];
    var text = method === data.reference ? "reference" : im.scores[method];
    return "<b>" + name + "</b> " + esc(method) + ": " + text;
  }
  function mark(kind, value) {
    root.querySelectorAll("button[data-" + kind + "]").forEach(function (b) {
      var on = b.getAttribute("data-" + kind) === String(value);
      b.classList.toggle("gmgan-ba-on", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }
  function draw() {
    var im = data.images[s.image], o = origin();
    var u = o[0] + s.split / s.zoom;  // the split in image coordinates
    inner.style.transform = "translate(" + (-o[0] * s.zoom * 100) + "%," + (-o[1] * s.zoom * 100) +
      "%) scale(" + s.zoom + ")";
    imgL.style.clipPath = "inset(0 " + ((1 - u) * 100) + "% 0 0)";
    divider.style.left = (s.split * 100) + "%";
    range.value = String(Math.round(s.split * 1000));
    tagL.textContent = s.left; tagR.textContent = s.right;
    readout.innerHTML = side("left", s.left) + " &nbsp;|&nbsp; " + side("right", s.right);
  }
  function show() {  // new image or methods: swap sources and the stage's size
    var im = data.images[s.image];
    imgL.src = im.src[s.left]; imgR.src = im.src[s.right];
    imgL.alt = im.name + ": " + s.left; imgR.alt = im.name + ": " + s.right;
    frame.style.width = (im.width * im.scale) + "px";
    stage.style.aspectRatio = im.width + " / " + im.height;
    mark("image", im.name); mark("left", s.left); mark("right", s.right); mark("zoom", s.zoom + "x");
    draw();
  }
  root.addEventListener("click", function (e) {
    var b = e.target.closest("button");
    if (!b || !root.contains(b)) { return; }
    if (b.hasAttribute("data-image")) {
      var name = b.getAttribute("data-image");
      s.image = data.images.findIndex(function (im) { return im.name === name; });
      s.zoom = 1; s.cx = 0.5; s.cy = 0.5;
    } else if (b.hasAttribute("data-left")) { s.left = b.getAttribute("data-left");
    } else if (b.hasAttribute("data-right")) { s.right = b.getAttribute("data-right");
    } else if (b.hasAttribute("data-zoom")) { s.zoom = parseInt(b.getAttribute("data-zoom"), 10); }
    show();
  });
  range.addEventListener("input", function () { s.split = range.value / 1000; draw(); });
  var dragging = false;
  function follow(e) {
    var r = stage.getBoundingClientRect();
    s.split = clamp((e.clientX - r.left) / r.width, 0, 1);
    draw();
  }
  stage.addEventListener("pointerdown", function (e) {
    dragging = true; stage.setPointerCapture(e.pointerId); follow(e); e.preventDefault();
  });
  stage.addEventListener("pointermove", function (e) { if (dragging) { follow(e); } });
  stage.addEventListener("pointerup", function () { dragging = false; });
  stage.addEventListener("pointercancel", function () { dragging = false; });
  stage.addEventListener("dblclick", function (e) {
    var r = stage.getBoundingClientRect(), o = origin();
    s.cx = o[0] + (e.clientX - r.left) / r.width / s.zoom;
    s.cy = o[1] + (e.clientY - r.top) / r.height / s.zoom;
    var i = data.zooms.indexOf(s.zoom) + (e.shiftKey ? -1 : 1);
    s.zoom = data.zooms[clamp(i, 0, data.zooms.length - 1)];
    show();
  });
  show();
})();
"""


# --------------------------------------------------------------------------------------------------
# Plot helpers (matplotlib)
# --------------------------------------------------------------------------------------------------

def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def show_images(images: Sequence[Any], titles: Sequence[str] | None = None, *, ncols: int | None = None,
                size: float = 3.0, suptitle: str = ""):
    """Show images side by side, at the same scale, without interpolation.

    Args:
        images: images as accepted by :func:`to_uint8` (uint8 HxW / HxWx3, float in [0, 1],
            torch 3xHxW / 1x3xHxW in [0, 1]); grey images are drawn in grey.
        titles: one title per image, or None.
        ncols: images per row (default: all in one row).
        size: height of a row in inches; the width follows from the images' aspect ratios.
        suptitle: a title over the whole figure.

    Returns:
        the matplotlib Figure (in a notebook end the line with ``;`` or assign it, to draw it once).
    """
    arrays = [to_uint8(img, f"images[{i}]") for i, img in enumerate(images)]
    if not arrays:
        raise ValueError("show_images() needs at least one image")
    if titles is not None and len(titles) != len(arrays):
        raise ValueError(f"{len(titles)} titles for {len(arrays)} images")
    ncols = ncols or len(arrays)
    nrows = -(-len(arrays) // ncols)
    aspect = max(a.shape[1] / a.shape[0] for a in arrays)
    plt = _pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size * aspect, nrows * size + (0.3 if suptitle else 0)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, arr) in enumerate(zip(axes.flat, arrays)):
        ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=10)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def diff_map(a: Any, b: Any) -> np.ndarray:
    """Per-pixel absolute difference of two images, in grey levels (0..255).

    Args:
        a, b: images as accepted by :func:`to_uint8`, same height and width (and channels).

    Returns:
        float64 HxW: the largest absolute difference over the channels at each pixel.

    Raises:
        ValueError: when the shapes differ (both shapes named).
    """
    x, y = to_uint8(a, "a"), to_uint8(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"diff_map: shapes differ, a is {x.shape} and b is {y.shape}")
    d = np.abs(x.astype(np.int16) - y.astype(np.int16)).astype(np.float64)
    return d.max(axis=-1) if d.ndim == 3 else d


def _map_axes(shape: tuple[int, ...], ax):
    """``(figure, axes)`` for drawing an H x W map with a colour bar: ``ax``'s own figure, or a new
    figure about 4 inches on its longer side (plus room for the colour bar)."""
    if ax is not None:
        return ax.figure, ax
    h, w = shape[:2]
    return _pyplot().subplots(figsize=(4.0 * w / max(h, w) + 1.0, 4.0 * h / max(h, w)))


def show_diff(a: Any, b: Any, *, title: str = "", vmax: float | None = None, ax=None, cmap: str = "magma"):
    """Draw :func:`diff_map` of two images with a colour bar in grey levels.

    Args:
        a, b: images of the same shape (see :func:`to_uint8`).
        title: axes title; the number of differing pixels and the largest difference are appended.
        vmax: top of the colour scale (default: the largest difference, at least 1).
        ax: draw into these axes (a new figure otherwise).
        cmap: matplotlib colour map.

    Returns:
        the matplotlib Figure.
    """
    d = diff_map(a, b)
    fig, ax = _map_axes(d.shape, ax)
    im = ax.imshow(d, cmap=cmap, vmin=0, vmax=vmax if vmax is not None else max(float(d.max()), 1.0),
                   interpolation="nearest")
    ax.axis("off")
    n = int((d > 0).sum())
    stats = f"{n} of {d.size} pixels differ ({100.0 * n / d.size:.2f}%), max {int(d.max())}"
    ax.set_title(f"{title}\n{stats}" if title else stats, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="|difference| (grey levels)")
    return fig


def plot_curves(curves: Mapping[str, Sequence[float]] | Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                xlabel: str = "iteration", ylabel: str = "", title: str = "", logy: bool = False,
                smooth: int = 1, ax=None):
    """Plot loss or metric curves.

    Args:
        curves: ``{label: values}`` (x = 0, 1, 2, ...) or ``{label: (x, values)}``.
        xlabel, ylabel, title: axis labels and title.
        logy: logarithmic y axis (for losses).
        smooth: width of a moving average (1 = raw values); the raw curve is drawn faintly behind.
        ax: draw into these axes (a new figure otherwise).

    Returns:
        the matplotlib Figure.
    """
    if smooth < 1:
        raise ValueError(f"smooth must be >= 1, not {smooth}")
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.0, 3.5))
    else:
        fig = ax.figure
    for label, curve in curves.items():
        if isinstance(curve, tuple) and len(curve) == 2:
            x, y = np.asarray(curve[0], dtype=float), np.asarray(curve[1], dtype=float)
        else:
            y = np.asarray(curve, dtype=float)
            x = np.arange(len(y), dtype=float)
        if x.shape != y.shape:
            raise ValueError(f"curve {label!r}: {x.size} x values for {y.size} y values")
        if smooth > 1 and y.size >= smooth:
            line, = ax.plot(x, y, alpha=0.25)
            kernel = np.ones(smooth) / smooth
            ax.plot(x[smooth - 1:], np.convolve(y, kernel, mode="valid"), color=line.get_color(), label=label)
        else:
            ax.plot(x, y, label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def show_gms_map(gms: Any, *, title: str = "GMS map", ax=None, cmap: str = "viridis"):
    """Draw a gradient-magnitude-similarity map (values in [0, 1], 1 = identical local structure).

    Args:
        gms: the GMS map, numpy or torch, HxW (or 1x1xHxW / 1xHxW, squeezed), floats in [0, 1].
        title: axes title; GMSM (the mean) and GMSD (the standard deviation, N - 1) are appended.
        ax: draw into these axes (a new figure otherwise).
        cmap: matplotlib colour map.

    Returns:
        the matplotlib Figure.
    """
    arr = gms.detach().cpu().numpy() if hasattr(gms, "detach") else np.asarray(gms)
    arr = np.asarray(arr, dtype=np.float64).squeeze()
    if arr.ndim != 2:
        raise ValueError(f"show_gms_map: expected an HxW map, got shape {np.shape(gms)}")
    fig, ax = _map_axes(arr.shape, ax)
    im = ax.imshow(arr, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.axis("off")
    std = arr.std(ddof=1) if arr.size > 1 else 0.0
    ax.set_title(f"{title}\nGMSM {arr.mean():.4f}, GMSD {std:.4f}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="GMS")
    return fig


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]], *, caption: str = ""):
    """A table as ``IPython.display.Markdown``: rendered as a table both in a live notebook and in
    the book, and compared as text by nbval.

    Args:
        header: the column titles.
        rows: one sequence of cells per row (anything; ``str()`` of each is written as it is, so
            format numbers before, e.g. ``f"{psnr:.2f}"``).
        caption: an optional paragraph above the table (Markdown).
    """
    from IPython.display import Markdown

    lines = ["| " + " | ".join(str(c) for c in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return Markdown((f"{caption}\n\n" if caption else "") + "\n".join(lines))
