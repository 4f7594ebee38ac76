"""The before/after slider: :func:`compare` and the :class:`BeforeAfter` it returns.

A comparison of super-resolved images with their ground truth, displayed as ONE output with two
views (see :mod:`gmgan.viz.output`): a static slider (``assets/compare.*``: drag the divider or use
the range input's arrow keys, pick the image and the two sides with buttons, zoom with the zoom
buttons or a double-click) whose metrics are those of the whole image, and a live ipywidget
(dropdowns, sliders for the split, the zoom and its centre) whose metrics are those of the visible
region, recomputed by :mod:`gmgan.metrics` whenever the view changes.
"""
from __future__ import annotations

import hashlib
import html
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from gmgan.metric_table import Metric, get_metric
from gmgan.viz import output
from gmgan.viz.images import (
    Region,
    as_rgb,
    centre_crop,
    display_scale,
    png_data_uri,
    to_uint8,
    view_region,
)

__all__ = ["BeforeAfter", "compare"]

_ZOOMS = (1, 2, 4, 8)
#: How the static slider draws a zoomed view: CSS image-rendering of each choice of its buttons.
_RENDERINGS = {"pixels": "pixelated", "smooth": "auto"}
_MIN_METRIC_SIDE = 11  # SSIM's Gaussian window is 11x11: a smaller region has no SSIM.


def _reference_metrics(names: Sequence[str]) -> dict[str, Metric]:
    """The rows of :data:`gmgan.metric_table.METRIC_TABLE` for ``names``; a slider
    compares with the reference, so only full-reference metrics (PSNR, SSIM, GMSD)."""
    table = {name: get_metric(name) for name in names}
    for metric in table.values():
        if not metric.full_reference:
            raise ValueError(f"metric {metric.name!r} scores an image without its "
                             "reference; compare() shows full-reference metrics only "
                             "(psnr, ssim, gmsd)")
    return table


def _format_metric(name: str, value: float | None) -> str:
    """A readout such as ``"PSNR 28.43 dB"``: the table's label, decimals and unit."""
    metric = get_metric(name)
    if value is None or not np.isfinite(value):
        return f"{metric.label} n/a" if value is None else f"{metric.label} {value}"
    unit = f" {metric.unit}" if metric.unit else ""
    return f"{metric.label} {metric.format(value)}{unit}"


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
        A metric is ``None`` when the remaining region is smaller than 11x11 pixels. The
        metrics are called as :data:`gmgan.metric_table.METRIC_TABLE` says (PSNR and
        SSIM on Y when :attr:`y_channel`, GMSD on the luminance).
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
        table = _reference_metrics(self.metrics)
        return {name: metric.score(inner.slice(sr), inner.slice(hr), border=0,
                                   y_channel=self.y_channel)
                for name, metric in table.items()}

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
                 "src": {m: png_data_uri(as_rgb(img)) for m, img in views.items()},
                 "scores": {m: ", ".join(_format_metric(k, v) for k, v in self.scores[name][m].items())
                            for m in views if m != self.reference}}
                for name, views in self.images.items()
            ],
            "zooms": list(_ZOOMS),
            "renderings": dict(_RENDERINGS),
        }
        first = payload["images"][0]
        # the scores of each picture as a whole (a view may be a crop), not of the zoom
        border = f", {self.crop_border}-pixel border excluded" if self.crop_border else ""
        note = ("each picture as a whole" + border
                + (", on the Y channel" if self.y_channel else ", on RGB"))
        data = json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")

        def buttons(kind: str, options: Sequence[str], active: str) -> str:
            return "".join(
                f'<button type="button" class="gmgan-ba-btn{" gmgan-on" if o == active else ""}" '
                f'data-{kind}="{html.escape(o)}" aria-pressed="{"true" if o == active else "false"}">'
                f'{html.escape(o)}</button>' for o in options)

        title = f'<div class="gmgan-ba-title">{html.escape(self.title)}</div>' if self.title else ""
        return output.static_html(
            "compare", uid, title=title,
            image_buttons=buttons("image", self.names, first["name"]),
            left_buttons=buttons("left", self.methods, self.left),
            right_buttons=buttons("right", self.methods, self.right),
            zoom_buttons=buttons("zoom", [f"{z}x" for z in _ZOOMS], "1x"),
            # a zoomed view drawn with sharp pixels (what the network produced, pixel by pixel) or
            # smoothly interpolated by the browser (how the picture looks enlarged)
            render_buttons=" &nbsp;" + buttons("render", list(_RENDERINGS), "pixels"),
            width=first["width"], height=first["height"], display_width=first["width"] * first["scale"],
            src_left=first["src"][self.left], src_right=first["src"][self.right],
            alt_left=html.escape(_side_alt(first["name"], self.left, "left")),
            alt_right=html.escape(_side_alt(first["name"], self.right, "right")),
            readout=self._readout(first["name"], self.left, self.right, None), note=html.escape(note),
            data=data,
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

    def __repr__(self) -> str:
        return (f"BeforeAfter(image={self.names[0]!r}, left={self.left!r}, right={self.right!r}, "
                f"methods={self.methods!r})")

    def _ipython_display_(self) -> None:
        """One output: the static slider (HTML) and, unless ``mode="static"``, the live widget's view
        in the same bundle (``mode="widget"``: the widget alone)."""
        if self.mode == "widget":
            from IPython.display import display

            display(self.widget)
            return
        live = self.mode == "both" and output.live_widget_available()
        output.publish(self.to_html(), repr(self), self.widget if live else None)


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
        metrics: full-reference metrics of :data:`gmgan.metric_table.METRIC_TABLE`
            (psnr, ssim, gmsd). Each is scored on the images shaved by ``crop_border``,
            with ``border=0`` (:meth:`gmgan.metric_table.Metric.score`), which for
            PSNR and SSIM equals their own ``crop_border=crop_border``; GMSD sees the
            shaved images too.
        crop_border: pixels shaved from each side before scoring (4 for x4, as in the papers).
        y_channel: score the luminance Y (BT.601) rather than RGB.
        max_side: if given, each image (all methods alike) is centre-cropped to at most
            ``max_side`` x ``max_side`` pixels to keep notebooks small; metrics are then those of the crop.
        mode: what a notebook displays: ``"both"`` (one output holding the static HTML and the live
            widget; each front end shows the one it can), ``"static"`` (the HTML alone),
            ``"widget"`` (the widget alone).
        title: a caption shown above the static slider.

    Returns:
        a :class:`BeforeAfter`; display it (last line of a cell) to show it.

    Raises:
        ValueError: no images, a missing reference or method, shapes that differ (naming the image,
            the method and both shapes), an unknown or no-reference metric, an unknown
            mode.
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
            arrays = {m: centre_crop(a, max_side) for m, a in arrays.items()}
        clean[str(name)] = arrays
    assert methods is not None
    others = [m for m in methods if m != reference]
    left = left if left is not None else others[0]
    right = right if right is not None else reference
    for side, value in (("left", left), ("right", right)):
        if value not in methods:
            raise ValueError(f"{side}={value!r} is not one of the methods {methods}")
    _reference_metrics(metrics)  # unknown names fail here, before any work
    ba = BeforeAfter(clean, reference, left, right, tuple(metrics), crop_border, y_channel, mode, title)
    # Whole-image scores go through the same path as the live view's (shave, then score), so that a
    # metric without a crop_border argument (gmsd) is shaved too and the two views agree.
    for name, views in clean.items():
        whole = Region(0, 0, *views[reference].shape[:2])
        ba.scores[name] = {m: ba.region_scores(name, m, whole) for m in methods if m != reference}
    return ba


def _side_alt(image: str, method: str, side: str) -> str:
    """Alt text of one side of the static slider, e.g. "baby: bicubic x4, left of the divider"."""
    return f"{image}: {method}, {side} of the divider"


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
    left = as_rgb(region.slice(ba.images[image][left_method]))
    right = as_rgb(region.slice(ba.images[image][right_method]))
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
