"""Sphinx glue for the gmgan book (loaded through ``sphinx.local_extensions`` in _config.yml).

1. An author-year bibliography. The book cites author-year, "(Zhu et al., 2020)"
   (``bibtex_reference_style: author_year``), so the references page lists entries the same way:
   sorted by first author, each opening with "Surname, I., ... (year).", with no numbers. The pybtex
   formatting style ``gmgan_author_year`` registered here does that (``bibtex_default_style``); its
   labels ("Wang et al., 2018a") are unique link targets, hidden on the page by book/_static's CSS
   because the entry itself starts with the authors and the year.
2. Sphinx 7.4 writes every inline script that an extension adds after the builder starts twice, once
   with ``filename=None`` and once with ``filename=''``; sphinx-thebe's ``const THEBE_JS_URL = ...``
   then fails in the browser ("Identifier 'THEBE_JS_URL' has already been declared"). This extension
   drops such repeats from each page's script list.
3. Numbered tables from notebook outputs. A notebook's tables are Markdown outputs
   (``gmgan.viz.markdown_table``), which myst-nb renders as tables without a caption,
   so Sphinx cannot number them. A code cell names and captions its table(s) in its
   metadata, ``"gmgan": {"table": {"name": "tab-07-table1", "caption": "..."}}`` (a
   list for a cell that shows several); ``CaptionNotebookTables`` gives each table
   that title and label, so that it is numbered per chapter ("Table 7.1") and can be
   referenced with ``{numref}`tab-07-table1```. The caption is plain text with
   ``$...$`` math.

Nothing here imports gmgan or torch: the book renders stored notebook outputs only.
"""
from __future__ import annotations

from typing import Any

from collections import Counter

from docutils import nodes
from pybtex.plugin import register_plugin
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.formatting import toplevel
from pybtex.style.template import field, join, optional, optional_field, sentence, tag, words
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels "Surname, 2020", "Surname and Other, 2020", "Surname et al., 2020"; a, b, ... appended
    where two entries would share a label."""

    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        base = [self._label(e) for e in entries]
        counts, seen = Counter(base), Counter()
        for label in base:
            if counts[label] > 1:
                seen[label] += 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            else:
                yield label

    @staticmethod
    def _label(entry) -> str:
        people = entry.persons.get("author", [])
        surnames = [" ".join(p.last_names) for p in people]
        if not surnames:
            who = entry.key
        elif len(surnames) == 1:
            who = surnames[0]
        elif len(surnames) == 2:
            who = f"{surnames[0]} and {surnames[1]}"
        else:
            who = f"{surnames[0]} et al."
        who = who.replace("{", "").replace("}", "")
        return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearStyle(UnsrtStyle):
    """pybtex style for an author-year reference list: "Zhu, X., Zhang, L., ... (2020). Title. Venue."

    Entries are sorted by author, year and title; names are written surname first with initials.
    Covers the entry types the book's bibliography uses (article, inproceedings, misc) and falls back
    to pybtex's unsrt templates for any other.
    """

    default_sorting_style = "author_year_title"
    default_name_style = "lastfirst"
    default_label_style = "gmgan_author_year"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("abbreviate_names", True)
        super().__init__(**kwargs)

    def _authors_year(self):
        return join[self.format_names("author", as_sentence=False), " (", field("year"), ")."]

    def get_article_template(self, e):
        volume = optional[join[field("volume"), optional["(", field("number"), ")"], optional[":", field("pages")]]]
        return toplevel[
            self._authors_year(),
            self.format_title(e, "title"),
            sentence[tag("em")[field("journal")], volume],
            sentence[optional_field("note")],
            self.format_web_refs(e),
        ]

    def get_inproceedings_template(self, e):
        return toplevel[
            self._authors_year(),
            self.format_title(e, "title"),
            words["In", sentence[tag("em")[field("booktitle")], optional[words["pp.", field("pages")]]]],
            sentence[optional_field("note")],
            self.format_web_refs(e),
        ]

    def get_misc_template(self, e):
        return toplevel[
            self._authors_year(),
            optional[self.format_title(e, "title")],
            sentence[optional_field("howpublished")],
            sentence[optional_field("note")],
            self.format_web_refs(e),
        ]


register_plugin("pybtex.style.labels", "gmgan_author_year", AuthorYearLabelStyle)
register_plugin("pybtex.style.formatting", "gmgan_author_year", AuthorYearStyle)


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


def _caption_nodes(text: str) -> list[nodes.Node]:
    """Plain text with ``$...$`` spans as inline math."""
    parts = text.split("$")
    if len(parts) % 2 == 0:  # an odd number of dollars: no math
        return [nodes.Text(text)]
    return [nodes.math(p, p) if i % 2 else nodes.Text(p)
            for i, p in enumerate(parts) if p]


class CaptionNotebookTables(SphinxTransform):
    """Title and label the tables of notebook cells with metadata ``gmgan.table``."""

    default_priority = 500

    def apply(self, **kwargs: Any) -> None:
        for cell in list(self.document.findall(nodes.container)):
            spec = ((cell.get("cell_metadata") or {}).get("gmgan") or {}).get("table")
            if not spec:
                continue
            specs = spec if isinstance(spec, list) else [spec]
            tables = [t for t in cell.findall(nodes.table)
                      if not any(isinstance(c, nodes.title) for c in t.children)]
            if len(tables) != len(specs):
                LOGGER.warning("cell metadata gmgan.table names %d table(s), "
                               "the cell shows %d", len(specs), len(tables),
                               location=cell)
                continue
            for table, one in zip(tables, specs):
                table.insert(0, nodes.title("", "", *_caption_nodes(one["caption"])))
                table["names"].append(one["name"])
                self.document.note_explicit_target(table, table)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_transform(CaptionNotebookTables)
    # Late priority: after myst-nb and sphinx.ext.mathjax have added this page's scripts.
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"version": "0.2", "parallel_read_safe": True, "parallel_write_safe": True}
