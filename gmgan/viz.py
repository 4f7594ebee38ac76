"""Pictures for the notebooks: the book's figure style, before/after sliders, parameter sweeps and
a few plotting helpers.

:func:`book_style` is the one place the look of the book's figures is set: every notebook calls it in
its import cell (fonts of at least 9 points at the size the book shows them, figures as wide as the
text column, high-resolution ``retina`` PNGs on a white background that stays readable in dark mode).

The centre piece is :func:`compare`, a before/after slider between super-resolved images and their
ground truth, and :func:`sweep`, a slider over a parameter that redraws a picture. Each displays as
ONE output that carries two views, and the reader's front end picks one:

- a **static** view, self-contained HTML and JavaScript (images as base64 PNG data URIs, no kernel,
  no CDN): the book shows this one (``nb_mime_priority_overrides`` in ``_config.yml`` drops the
  widget view for HTML). :func:`compare`'s: drag the divider (or use the range input's arrow keys),
  pick the image and the two sides with buttons, zoom with the zoom buttons or a double-click;
  :func:`sweep`'s: pick a choice with buttons, move the range input through precomputed frames;
- a **live** ipywidgets view, which JupyterLab and Colab prefer in a running kernel: for
  :func:`compare` dropdowns for the image and the two sides, sliders for the split, the zoom and its
  centre, and the metrics of the region on screen, recomputed by :mod:`gmgan.metrics` whenever the
  view changes; for :func:`sweep` the picture is recomputed for any level of a finer slider.

The static view's metrics are those of the whole image (with the usual border shave); the live view's
are those of the visible region. Plot helpers (:func:`show_images`, :func:`diff_map`,
:func:`show_diff`, :func:`plot_curves`, :func:`show_gms_map`, :func:`colorize`) return matplotlib
figures or images; :func:`markdown_table` returns a table for display.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

__all__ = [
    "BOOK_RC",
    "COLUMN_WIDTH",
    "MIN_PANEL_WIDTH",
    "BeforeAfter",
    "Region",
    "Sweep",
    "book_style",
    "colorize",
    "compare",
    "diff_map",
    "display_scale",
    "markdown_table",
    "plot_curves",
    "png_data_uri",
    "show_diff",
    "show_gms_map",
    "show_images",
    "sweep",
    "to_uint8",
    "view_region",
]

# Format of each metric's readout: (format spec, unit). Unknown metrics get 4 decimals.
_FORMATS = {"psnr": (".2f", " dB"), "ssim": (".4f", ""), "gmsd": (".4f", "")}
_ZOOMS = (1, 2, 4, 8)
#: How the static slider draws a zoomed view: CSS image-rendering of each choice of its buttons.
_RENDERINGS = {"pixels": "pixelated", "smooth": "auto"}
_DISPLAY_SIDE = 512  # small images are drawn enlarged (whole multiples, sharp pixels) up to this size
_MIN_METRIC_SIDE = 11  # SSIM's Gaussian window is 11x11: a smaller region has no SSIM.


# --------------------------------------------------------------------------------------------------
# The book's figure style
# --------------------------------------------------------------------------------------------------

#: Width of the book's text column in inches at 96 dpi (720 CSS pixels; the column is about 780).
#: A figure this wide is shown at its natural size, so a 9-point label reads as 9 points.
COLUMN_WIDTH = 7.5
#: The narrowest panel :func:`show_images` draws, in inches (about 210 CSS pixels).
MIN_PANEL_WIDTH = 2.2

#: matplotlib settings of every figure in the book (applied by :func:`book_style`). Sizes in points.
BOOK_RC: dict[str, Any] = {
    "figure.figsize": (COLUMN_WIDTH, 3.4),
    "figure.dpi": 96,                  # 1 inch = 96 CSS pixels: the figure is drawn at its real size
    "figure.facecolor": "white",       # opaque: black labels stay readable on the dark theme
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.5,
    "image.interpolation": "nearest",  # image pixels stay sharp squares
}


def book_style() -> None:
    """Set the book's figure style: :data:`BOOK_RC` and high-resolution (``retina``) inline PNGs.

    Call it once in a notebook's import cell, after the imports. Figures are then drawn
    :data:`COLUMN_WIDTH` inches wide by default with labels of 9 to 11 points, stored at twice their
    display resolution, and shown by the book at their natural size. Outside IPython only the
    matplotlib settings change.
    """
    import matplotlib
    import matplotlib.pyplot  # noqa: F401  (activates IPython's inline backend, which sets its own rc first)

    matplotlib.rcParams.update(BOOK_RC)
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # plain Python: nothing is displayed inline
        return
    if get_ipython() is not None:
        set_matplotlib_formats("retina")


def _publish(html_text: str, plain: str, widget: Any = None) -> None:
    """Display ONE output whose bundle holds the static HTML and, when given, the live widget's view.

    Front ends render the richest type they support: JupyterLab and Colab the widget (in a running
    kernel), the book the HTML (``_config.yml`` drops the widget type for HTML builds), plain
    viewers the HTML or the text.
    """
    from IPython.display import display

    data = {"text/plain": plain, "text/html": html_text}
    if widget is not None:
        data.update(widget._repr_mimebundle_())
        data["text/plain"] = plain
    display(data, raw=True)


def _live_widget_available() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


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
            "renderings": dict(_RENDERINGS),
        }
        first = payload["images"][0]
        note = (f"whole image, {self.crop_border}-pixel border excluded"
                + (", on the Y channel" if self.y_channel else ", on RGB"))
        data = json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")

        def buttons(kind: str, options: Sequence[str], active: str) -> str:
            return "".join(
                f'<button type="button" class="gmgan-ba-btn{" gmgan-on" if o == active else ""}" '
                f'data-{kind}="{html.escape(o)}" aria-pressed="{"true" if o == active else "false"}">'
                f'{html.escape(o)}</button>' for o in options)

        title = f'<div class="gmgan-ba-title">{html.escape(self.title)}</div>' if self.title else ""
        return _STATIC_TEMPLATE.format(
            uid=uid, title=title, muted=_MUTED, buttons_css=_buttons_css(uid, "gmgan-ba-btn"),
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
        live = self.mode == "both" and _live_widget_available()
        _publish(self.to_html(), repr(self), self.widget if live else None)


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
        mode: what a notebook displays: ``"both"`` (one output holding the static HTML and the live
            widget; each front end shows the one it can), ``"static"`` (the HTML alone),
            ``"widget"`` (the widget alone).
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


def _side_alt(image: str, method: str, side: str) -> str:
    """Alt text of one side of the static slider, e.g. "baby: bicubic x4, left of the divider"."""
    return f"{image}: {method}, {side} of the divider"


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
#{uid} .gmgan-ba-label {{display: inline-block; min-width: 3.5em; color: {muted};}}
{buttons_css}
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
#{uid} .gmgan-ba-note {{color: {muted}; font-size: 12px;}}
</style>
{title}<div class="gmgan-ba-row"><span class="gmgan-ba-label">image</span>{image_buttons}</div>
<div class="gmgan-ba-row"><span class="gmgan-ba-label">left</span>{left_buttons}</div>
<div class="gmgan-ba-row"><span class="gmgan-ba-label">right</span>{right_buttons}</div>
<div class="gmgan-ba-row"><span class="gmgan-ba-label">zoom</span>{zoom_buttons}{render_buttons}</div>
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

# Colours that read well on light and dark pages. Buttons carry both their background and their
# text colour (a button that inherited the dark theme's light text on a light background was
# unreadable). Labels and notes inherit the text colour of the output area: the book's dark theme
# draws HTML outputs on a light panel with dark text, JupyterLab's dark theme light text on dark, so
# any fixed or theme-variable grey is unreadable in one of them.
_MUTED = "inherit"


def _buttons_css(uid: str, cls: str) -> str:
    """CSS of the toggle buttons ``.{cls}`` inside ``#{uid}``: dark text on light grey, white on blue
    when selected (WCAG contrast 15:1 and 6.6:1), a visible keyboard focus ring."""
    return (f"#{uid} .{cls} {{font: inherit; padding: 1px 8px; margin: 1px; border: 1px solid #767676;\n"
            f"  border-radius: 3px; background: #f2f2f2; color: #1a1a1a; cursor: pointer;}}\n"
            f"#{uid} .{cls}:hover {{background: #e0e0e0;}}\n"
            f"#{uid} .{cls}.gmgan-on {{background: #1f5fbf; border-color: #1f5fbf; color: #ffffff;}}\n"
            f"#{uid} .{cls}:focus-visible {{outline: 2px solid #1f5fbf; outline-offset: 1px;}}")


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
  var s = {image: 0, left: data.left, right: data.right, split: 0.5, zoom: 1, cx: 0.5, cy: 0.5,
           render: "pixels"};

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
      b.classList.toggle("gmgan-on", on);
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
    imgL.alt = im.name + ": " + s.left + ", left of the divider";
    imgR.alt = im.name + ": " + s.right + ", right of the divider";
    frame.style.width = (im.width * im.scale) + "px";
    stage.style.aspectRatio = im.width + " / " + im.height;
    mark("image", im.name); mark("left", s.left); mark("right", s.right); mark("zoom", s.zoom + "x");
    mark("render", s.render);
    imgL.style.imageRendering = imgR.style.imageRendering = data.renderings[s.render];
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
    } else if (b.hasAttribute("data-zoom")) { s.zoom = parseInt(b.getAttribute("data-zoom"), 10);
    } else if (b.hasAttribute("data-render")) { s.render = b.getAttribute("data-render"); }
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
# A slider over a parameter: precomputed frames (static) and a live redraw (widget)
# --------------------------------------------------------------------------------------------------

_SWEEP_DISPLAY_SIDE = 320  # panels are drawn this tall at most (whole multiples, sharp pixels)


@dataclass
class Sweep:
    """A slider over a parameter that redraws a picture; made by :func:`sweep`, see there.

    ``frames`` maps each choice to one ``(panels, caption)`` per static level: ``panels`` a list of
    uint8 images (HxW / HxWx3), ``caption`` a line of text. ``to_html()`` gives the static slider over
    these frames, ``widget`` the ipywidgets control that calls ``render`` for every level it shows.
    """

    render: Callable[[str, float], tuple[Any, str]]
    levels: dict[str, list[float]]
    live_levels: dict[str, list[float]]
    panels: tuple[str, ...]
    label: str
    fmt: str | dict[str, str]
    title: str
    mode: str
    start: int
    frames: dict[str, list[tuple[list[np.ndarray], str]]] = field(default_factory=dict)
    _widget: Any = field(default=None, repr=False)

    @property
    def choices(self) -> list[str]:
        return list(self.levels)

    def __repr__(self) -> str:
        counts = ", ".join(f"{c}: {len(v)}" for c, v in self.levels.items())
        return f"Sweep({self.label!r}, panels={list(self.panels)!r}, levels per choice {{{counts}}})"

    def frame(self, choice: str, level: float) -> tuple[list[np.ndarray], str]:
        """``render(choice, level)`` checked and converted: (one uint8 image per panel, caption)."""
        images, caption = self.render(choice, level)
        if not isinstance(images, (list, tuple)):
            images = [images]
        if len(images) != len(self.panels):
            raise ValueError(f"render({choice!r}, {level!r}) gave {len(images)} images for the "
                             f"{len(self.panels)} panels {list(self.panels)}")
        return [to_uint8(img, f"{choice}/{name}") for img, name in zip(images, self.panels)], str(caption)

    def _display_height(self) -> int:
        tallest = max(img.shape[0] for frames in self.frames.values() for panels, _ in frames for img in panels)
        return tallest * max(1, _SWEEP_DISPLAY_SIDE // tallest)

    def _uid(self) -> str:
        digest = hashlib.sha1(f"{self.label}|{self.title}|{self.panels}".encode())
        for choice, frames in self.frames.items():
            for panels, caption in frames:
                digest.update(f"{choice}/{caption}".encode())
                for img in panels:
                    digest.update(img.tobytes())
        return "gmgan-sw-" + digest.hexdigest()[:12]

    def _value(self, choice: str, level: float) -> str:
        """A level as shown beside the slider (``fmt``, or ``fmt[choice]``)."""
        fmt = self.fmt[choice] if isinstance(self.fmt, dict) else self.fmt
        return fmt.format(level)

    def to_html(self) -> str:
        """The static slider: self-contained HTML (style, data, script) over the precomputed frames."""
        uid = self._uid()
        first = self.choices[0]
        payload = {
            "panels": list(self.panels),
            "label": self.label,
            "choices": self.choices,
            "values": {c: [self._value(c, v) for v in levels] for c, levels in self.levels.items()},
            "frames": {c: [{"src": [png_data_uri(_rgb(img)) for img in panels], "caption": caption}
                           for panels, caption in frames] for c, frames in self.frames.items()},
            "start": self.start,
        }
        data = json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")
        start = min(self.start, len(self.levels[first]) - 1)
        panels, caption = self.frames[first][start]
        height = self._display_height()
        imgs = "".join(
            f'<div class="gmgan-sw-panel"><img class="gmgan-sw-img" style="height: {height}px;" '
            f'alt="{html.escape(self._alt(name, first, self.levels[first][start]))}" '
            f'src="{payload["frames"][first][start]["src"][i]}">'
            f'<div class="gmgan-sw-name">{html.escape(name)}</div></div>'
            for i, name in enumerate(self.panels))
        buttons = "".join(
            f'<button type="button" class="gmgan-sw-btn{" gmgan-on" if c == first else ""}" '
            f'data-choice="{html.escape(c)}" aria-pressed="{"true" if c == first else "false"}">{html.escape(c)}</button>'
            for c in self.choices)
        choice_row = (f'<div class="gmgan-sw-row"><span class="gmgan-sw-key">show</span>{buttons}</div>'
                      if len(self.choices) > 1 else "")
        title = f'<div class="gmgan-sw-title">{html.escape(self.title)}</div>' if self.title else ""
        return _SWEEP_TEMPLATE.format(
            uid=uid, title=title, muted=_MUTED, buttons_css=_buttons_css(uid, "gmgan-sw-btn"),
            choice_row=choice_row, label=html.escape(self.label), n=len(self.levels[first]) - 1,
            start=start, value=html.escape(self._value(first, self.levels[first][start])), panels=imgs,
            caption=html.escape(caption), data=data, script=_SWEEP_SCRIPT.replace("__UID__", uid))

    def _alt(self, panel: str, choice: str, level: float) -> str:
        return f"{panel}: {choice}, {self.label} {self._value(choice, level)}"

    def _repr_html_(self) -> str:
        return self.to_html()

    @property
    def widget(self):
        """The ipywidgets control (a VBox), built on first use. ``controls`` maps ``choice`` (absent
        for a single choice) and ``level`` to their widgets, ``views`` are the panels' Image widgets,
        ``caption`` the HTML widget under them. Moving a control calls ``render`` again."""
        if self._widget is None:
            self._widget = _build_sweep_widget(self)
        return self._widget

    def _ipython_display_(self) -> None:
        if self.mode == "widget":
            from IPython.display import display

            display(self.widget)
            return
        live = self.mode == "both" and _live_widget_available()
        _publish(self.to_html(), repr(self), self.widget if live else None)


def sweep(render: Callable[[str, float], tuple[Any, str]], levels: Mapping[str, Sequence[float]], *,
          panels: Sequence[str] = ("image",), label: str = "level", fmt: str | Mapping[str, str] = "{:g}",
          live_levels: Mapping[str, Sequence[float]] | None = None, start: int = 0, title: str = "",
          mode: str = "both") -> Sweep:
    """A slider over a parameter that redraws a picture, e.g. a distortion's strength and its GMS map.

    Args:
        render: ``render(choice, level) -> (images, caption)``: one image per panel (a single image
            when there is one panel), as accepted by :func:`to_uint8`, and a line of text (e.g. the
            scores of that frame). Called for every static level when the sweep is made, and again
            by the live widget for every level it shows.
        levels: ``{choice: levels}``: the choices (buttons; e.g. kinds of distortion) and, for
            each, the parameter values of the static slider, in slider order.
        panels: the names of the images ``render`` returns, shown under them (and in the alt text).
        label: the parameter's name, shown beside its value.
        fmt: format of a level's value, e.g. ``"{:.1f} px"``, or one format per choice.
        live_levels: finer levels for the live widget (default: ``levels``).
        start: index of the level shown first.
        title: a line shown above the slider.
        mode: ``"both"`` (one output with the static HTML and the live widget), ``"static"`` or
            ``"widget"``, as for :func:`compare`.

    Returns:
        a :class:`Sweep`; display it (last line of a cell) to show it. Every static frame is embedded
        in the notebook as PNG images: keep them small (a crop, a few levels).

    Raises:
        ValueError: no choices, a choice without levels, an unknown mode, a bad ``render`` result.
    """
    if mode not in ("both", "static", "widget"):
        raise ValueError(f"mode must be 'both', 'static' or 'widget', not {mode!r}")
    if not levels:
        raise ValueError("sweep() needs at least one choice in levels")
    clean = {str(c): [float(v) for v in vs] for c, vs in levels.items()}
    for c, vs in clean.items():
        if not vs:
            raise ValueError(f"sweep(): choice {c!r} has no levels")
    live = {str(c): [float(v) for v in vs] for c, vs in (live_levels or clean).items()}
    if set(live) != set(clean) or any(not vs for vs in live.values()):
        raise ValueError(f"live_levels must give levels for exactly the choices {list(clean)}")
    if not panels:
        raise ValueError("sweep() needs at least one panel name")
    if not isinstance(fmt, str):
        fmt = {str(c): f for c, f in fmt.items()}
        if set(fmt) != set(clean):
            raise ValueError(f"fmt must give a format for exactly the choices {list(clean)}")
    sw = Sweep(render, clean, live, tuple(panels), label, fmt, title, mode, max(0, int(start)))
    sw.frames = {c: [sw.frame(c, v) for v in vs] for c, vs in clean.items()}
    return sw


@cache
def _sweep_box_class():
    import ipywidgets as widgets

    class SweepBox(widgets.VBox):
        """A VBox whose text form is short."""

        def __repr__(self) -> str:
            c = self.controls
            choice = c["choice"].value if "choice" in c else ""
            return f"Sweep({choice!r}, level={c['level'].value!r})"

    return SweepBox


def _build_sweep_widget(sw: Sweep):
    import ipywidgets as widgets
    from PIL import Image

    style = {"description_width": "initial"}
    first = sw.choices[0]

    def options(choice: str) -> list[tuple[str, float]]:
        return [(sw._value(choice, v), v) for v in sw.live_levels[choice]]

    controls: dict[str, Any] = {}
    if len(sw.choices) > 1:
        controls["choice"] = widgets.ToggleButtons(options=sw.choices, value=first, description="show",
                                                   style=style)
    start_level = sw.levels[first][min(sw.start, len(sw.levels[first]) - 1)]
    live = options(first)
    nearest = min(live, key=lambda o: abs(o[1] - start_level))[1]
    controls["level"] = widgets.SelectionSlider(options=live, value=nearest, description=sw.label,
                                                continuous_update=False, style=style,
                                                layout=widgets.Layout(width="32em"))
    height = sw._display_height()
    views = [widgets.Image(format="png") for _ in sw.panels]
    names = [widgets.HTML(f"<small>{html.escape(n)}</small>") for n in sw.panels]
    caption = widgets.HTML()
    box = _sweep_box_class()([
        *(widgets.HBox([c]) for c in controls.values()),
        widgets.HBox([widgets.VBox([v, n]) for v, n in zip(views, names)]),
        caption,
    ])
    box.controls, box.views, box.caption = controls, views, caption

    def update(_change=None) -> None:
        choice = controls["choice"].value if "choice" in controls else first
        images, text = sw.frame(choice, controls["level"].value)
        for view, img in zip(views, images):
            k = max(1, height // img.shape[0])
            big = np.repeat(np.repeat(_rgb(img), k, axis=0), k, axis=1)
            buf = io.BytesIO()
            Image.fromarray(big).save(buf, format="PNG")
            view.value = buf.getvalue()
        caption.value = html.escape(text)

    def new_choice(change) -> None:
        level = controls["level"].value
        opts = options(change["new"])
        controls["level"].options = opts
        controls["level"].value = min(opts, key=lambda o: abs(o[1] - level))[1]
        update()

    if "choice" in controls:
        controls["choice"].observe(new_choice, names="value")
    controls["level"].observe(update, names="value")
    update()
    return box


_SWEEP_TEMPLATE = """<div class="gmgan-sw" id="{uid}">
<style>
#{uid} {{font: 13px/1.4 system-ui, sans-serif; margin: 0.5em 0;}}
#{uid} .gmgan-sw-title {{font-weight: 600; margin-bottom: 0.3em;}}
#{uid} .gmgan-sw-row {{margin: 0.15em 0;}}
#{uid} .gmgan-sw-key {{display: inline-block; min-width: 3.5em; color: {muted};}}
{buttons_css}
#{uid} .gmgan-sw-level {{width: min(100%, 28em); vertical-align: middle;}}
#{uid} .gmgan-sw-panels {{display: flex; flex-wrap: wrap; gap: 8px; margin-top: 0.3em;}}
#{uid} .gmgan-sw-img {{display: block; width: auto; max-width: 100%; image-rendering: pixelated; margin: 0;}}
#{uid} .gmgan-sw-name {{color: {muted}; font-size: 12px;}}
#{uid} .gmgan-sw-caption {{margin-top: 0.2em;}}
</style>
{title}{choice_row}<div class="gmgan-sw-row"><label><span class="gmgan-sw-key">{label}</span>
<input class="gmgan-sw-level" type="range" min="0" max="{n}" step="1" value="{start}" aria-label="{label}">
<output class="gmgan-sw-value">{value}</output></label></div>
<div class="gmgan-sw-panels">{panels}</div>
<div class="gmgan-sw-caption">{caption}</div>
<script type="application/json" class="gmgan-sw-data">{data}</script>
<script>{script}</script>
</div>
"""

_SWEEP_SCRIPT = r"""
(function () {
  var root = document.getElementById("__UID__");
  if (!root || root.getAttribute("data-ready")) { return; }
  root.setAttribute("data-ready", "1");
  var data = JSON.parse(root.querySelector("script.gmgan-sw-data").textContent);
  var range = root.querySelector(".gmgan-sw-level"), value = root.querySelector(".gmgan-sw-value");
  var imgs = root.querySelectorAll("img.gmgan-sw-img"), caption = root.querySelector(".gmgan-sw-caption");
  var s = {choice: data.choices[0], index: Math.min(data.start, data.values[data.choices[0]].length - 1)};
  function draw() {
    var frame = data.frames[s.choice][s.index], v = data.values[s.choice][s.index];
    range.max = String(data.values[s.choice].length - 1);
    range.value = String(s.index);
    value.textContent = v;
    imgs.forEach(function (img, i) {
      img.src = frame.src[i];
      img.alt = data.panels[i] + ": " + s.choice + ", " + data.label + " " + v;
    });
    caption.textContent = frame.caption;
    root.querySelectorAll("button[data-choice]").forEach(function (b) {
      var on = b.getAttribute("data-choice") === s.choice;
      b.classList.toggle("gmgan-on", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }
  range.addEventListener("input", function () { s.index = parseInt(range.value, 10); draw(); });
  root.addEventListener("click", function (e) {
    var b = e.target.closest("button[data-choice]");
    if (!b || !root.contains(b)) { return; }
    s.choice = b.getAttribute("data-choice");
    s.index = Math.min(s.index, data.values[s.choice].length - 1);
    draw();
  });
  draw();
})();
"""


# --------------------------------------------------------------------------------------------------
# Plot helpers (matplotlib)
# --------------------------------------------------------------------------------------------------

def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def show_images(images: Sequence[Any], titles: Sequence[str] | None = None, *, ncols: int | None = None,
                size: float | None = None, suptitle: str = ""):
    """Show images side by side, at the same scale, without interpolation, in readable panels.

    The figure is at most :data:`COLUMN_WIDTH` inches wide (the book's column), and no panel is
    narrower than :data:`MIN_PANEL_WIDTH` inches (about 210 CSS pixels): more images than fit in a
    row wrap onto further rows, so thumbnails stay large enough to see.

    Args:
        images: images as accepted by :func:`to_uint8` (uint8 HxW / HxWx3, float in [0, 1],
            torch 3xHxW / 1x3xHxW in [0, 1]); grey images are drawn in grey.
        titles: one title per image (may hold line breaks), or None.
        ncols: the most images per row (default: as many as fit, at most 3 in the column).
        size: the most height of a row in inches (default: panels fill the column's width).
        suptitle: a title over the whole figure.

    Returns:
        the matplotlib Figure (in a notebook assign it, ``fig = ...``, so that it is drawn once).
    """
    arrays = [to_uint8(img, f"images[{i}]") for i, img in enumerate(images)]
    if not arrays:
        raise ValueError("show_images() needs at least one image")
    if titles is not None and len(titles) != len(arrays):
        raise ValueError(f"{len(titles)} titles for {len(arrays)} images")
    if ncols is not None and ncols < 1:
        raise ValueError(f"ncols must be >= 1, not {ncols}")
    fit = max(1, int(COLUMN_WIDTH // MIN_PANEL_WIDTH))   # panels of the smallest width in a row
    ncols = min(ncols or len(arrays), len(arrays), fit)
    nrows = -(-len(arrays) // ncols)
    aspect = max(a.shape[1] / a.shape[0] for a in arrays)   # width / height of the widest image
    panel_w = COLUMN_WIDTH / ncols
    if size is not None:
        panel_w = min(panel_w, max(size * aspect, MIN_PANEL_WIDTH))
    lines = max(str(t).count("\n") + 1 for t in titles) if titles is not None else 0
    title_h = 0.2 * lines + (0.1 if lines else 0.0)      # inches of title text above each panel
    plt = _pyplot()
    height = nrows * (panel_w / aspect + title_h) + (0.35 if suptitle else 0.0)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(ncols * panel_w, height))
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, arr) in enumerate(zip(axes.flat, arrays)):
        ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i])
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout(pad=0.3)
    return fig


def colorize(values: Any, *, vmin: float = 0.0, vmax: float = 1.0, cmap: str = "viridis") -> np.ndarray:
    """A map of numbers as an RGB image through a matplotlib colour map (e.g. a GMS map in a slider).

    Args:
        values: HxW numbers (numpy or torch; 1x1xHxW and 1xHxW are squeezed).
        vmin, vmax: the values drawn with the first and the last colour (clipped outside).
        cmap: a matplotlib colour map name.

    Returns:
        uint8 HxWx3.
    """
    from matplotlib import colormaps

    arr = values.detach().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)
    arr = np.asarray(arr, dtype=np.float64).squeeze()
    if arr.ndim != 2:
        raise ValueError(f"colorize: expected an HxW map, got shape {np.shape(values)}")
    if not vmax > vmin:
        raise ValueError(f"colorize: vmax ({vmax}) must be larger than vmin ({vmin})")
    rgba = colormaps[cmap](np.clip((arr - vmin) / (vmax - vmin), 0.0, 1.0), bytes=True)
    return np.ascontiguousarray(rgba[..., :3])


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
    return _pyplot().subplots(figsize=(3.6 * w / max(h, w) + 1.2, 3.6 * h / max(h, w) + 0.5))


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
    ax.set_title(f"{title}\n{stats}" if title else stats)
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
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 3.4))
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
    ax.set_title(f"{title}\nGMSM {arr.mean():.4f}, GMSD {std:.4f}")
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
