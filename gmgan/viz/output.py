"""One notebook output that carries two views of a slider: static HTML and a live widget.

The static view is assembled from the files in ``assets/`` (HTML templates, CSS, JavaScript;
package data, so that a linter can read them): :func:`static_html` fills a template with the
slider's CSS and script, both scoped to one element id. :func:`publish` displays the static HTML
and, when given, the live ipywidget in ONE output bundle; each front end shows the view it can
(the book the HTML, JupyterLab and Colab the widget in a running kernel).
"""
from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

__all__ = ["MUTED", "asset", "live_widget_available", "publish", "static_html"]

#: Colour of labels and notes. Buttons carry both their background and their text colour (a button
#: that inherited the dark theme's light text on a light background was unreadable). Labels and
#: notes inherit the text colour of the output area: the book's dark theme draws HTML outputs on a
#: light panel with dark text, JupyterLab's dark theme light text on dark, so any fixed or
#: theme-variable grey is unreadable in one of them. ``assets/*.css`` spell it out.
MUTED = "inherit"


@cache
def asset(name: str) -> str:
    """The text of ``gmgan/viz/assets/<name>`` (e.g. ``"compare.js"``)."""
    return resources.files("gmgan.viz").joinpath("assets", name).read_text(encoding="utf-8")


def static_html(kind: str, uid: str, **fields: Any) -> str:
    """The static view of a ``kind`` slider (``"compare"`` or ``"sweep"``) with element id ``uid``.

    ``assets/<kind>.html`` is filled with ``fields`` (``str.format``), its CSS
    (``<kind>.css`` with the toggle buttons' ``buttons.css``) and its script (``<kind>.js``);
    the placeholder ``__UID__`` in CSS and script becomes ``uid``, so that two sliders on one page
    never style or drive each other.
    """
    button_class = {"compare": "gmgan-ba-btn", "sweep": "gmgan-sw-btn"}[kind]
    buttons = asset("buttons.css").replace("__BUTTON__", button_class)
    style = asset(f"{kind}.css").replace("/* __BUTTONS__ */\n", buttons)
    return asset(f"{kind}.html").format(
        uid=uid, style=style.replace("__UID__", uid),
        script=asset(f"{kind}.js").replace("__UID__", uid), **fields)


def publish(html_text: str, plain: str, widget: Any = None) -> None:
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


def live_widget_available() -> bool:
    """Whether ipywidgets can be imported (else a slider displays its static view alone)."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True
