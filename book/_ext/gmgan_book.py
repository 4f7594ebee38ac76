"""Sphinx glue for the gmgan book (loaded through ``sphinx.local_extensions`` in _config.yml).

Sphinx 7.4 writes every inline script that an extension adds after the builder starts twice, once
with ``filename=None`` and once with ``filename=''``; sphinx-thebe's ``const THEBE_JS_URL = ...`` then
fails in the browser ("Identifier 'THEBE_JS_URL' has already been declared"). This extension drops
such repeats from each page's script list.
"""
from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def _script_key(js: Any) -> tuple:
    attributes = getattr(js, "attributes", {}) or {}
    return (getattr(js, "filename", js) or "", getattr(js, "priority", 500), tuple(sorted(attributes.items())))


def drop_repeated_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Keep the first of scripts that are equal up to ``None`` vs ``''`` as their file name."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for js in scripts:
        key = _script_key(js)
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique  # the builder restores its own list after each page


def setup(app: Sphinx) -> dict[str, Any]:
    # Late priority: after myst-nb and sphinx.ext.mathjax have added this page's scripts.
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
