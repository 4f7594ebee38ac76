"""A slider over a parameter that redraws a picture: :func:`sweep` and its :class:`Sweep`.

E.g. a distortion's strength and its GMS map (notebook 03). Displayed as ONE output with two views
(see :mod:`gmgan.viz.output`): a static slider over precomputed frames (``assets/sweep.*``: pick a
choice with buttons, move the range input through the frames) and a live ipywidget that calls
``render`` again for every level of a finer slider.
"""
from __future__ import annotations

import hashlib
import html
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from gmgan.viz import output
from gmgan.viz.images import as_rgb, png_data_uri, to_uint8

__all__ = ["Sweep", "sweep"]

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
            "frames": {c: [{"src": [png_data_uri(as_rgb(img)) for img in panels], "caption": caption}
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
        return output.static_html(
            "sweep", uid, title=title, choice_row=choice_row, label=html.escape(self.label), n=len(self.levels[first]) - 1,
            start=start, value=html.escape(self._value(first, self.levels[first][start])), panels=imgs,
            caption=html.escape(caption), data=data)

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
        live = self.mode == "both" and output.live_widget_available()
        output.publish(self.to_html(), repr(self), self.widget if live else None)


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
            big = np.repeat(np.repeat(as_rgb(img), k, axis=0), k, axis=1)
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
