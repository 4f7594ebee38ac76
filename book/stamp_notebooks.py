"""Write (or check) the install cell of every notebook: the cell, right below the title, that
installs what the notebook needs where it is missing (Colab, a fresh environment).

The repository URL and branch are set in ONE place, ``_config.yml`` (``repository.url``,
``repository.branch``), which also drives the book's launch buttons. This script renders the
install cell from them, so that a fork only edits ``_config.yml`` and runs::

    python book/stamp_notebooks.py            # rewrite the install cells of notebooks/*.ipynb
    python book/stamp_notebooks.py --check    # exit 1, naming the notebooks, if any is out of date

A notebook's first cell is its Markdown title (``# ...``); the install cell is the second cell. It
checks whether gmgan and the modules of the pip extras the notebook declares are importable, and
only when one is missing runs ``pip install -q "gmgan[<extras>] @ git+<url>@<branch>"``. The extras
come from the notebook's metadata, e.g. ``"gmgan": {"install_extras": ["viz", "eval"]}`` (default:
``["viz"]``, the plotting and widget libraries every notebook uses); tests/test_book.py checks that
they cover every library the notebook imports. The cell has the id and tag ``install``,
the tag ``remove-cell`` (the book does not show it; Jupyter and Colab run it) and no
outputs (it prints nothing where everything is installed, which keeps nbval's comparison
stable).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
CELL_ID = "install"

#: The pip extras of gmgan (pyproject.toml) a notebook may ask for, and the modules each provides:
#: the install cell runs pip only when one of these (or gmgan itself) cannot be imported.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "viz": ("matplotlib", "ipywidgets"),   # figures and sliders (gmgan.viz)
    "eval": ("pyiqa", "piq"),              # NIQE / PI and the reference IQA implementations
}
DEFAULT_EXTRAS = ("viz",)

TEMPLATE = '''\
# Installs gmgan and this notebook's libraries where one is missing (e.g. on Colab).
import importlib, importlib.util, subprocess, sys

needed = {modules!r}
if any(importlib.util.find_spec(m) is None for m in needed):
    package = {spec!r}
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", package])
    importlib.invalidate_caches()'''

#: Tags of the install cell: its id, and ``remove-cell`` so that the book does not show
#: it (a reader of the book has nothing to install; Jupyter and Colab run it first).
CELL_TAGS = [CELL_ID, "remove-cell"]


def repository(config_path: Path = ROOT / "_config.yml") -> tuple[str, str]:
    """(url, branch) from the book configuration's ``repository`` section."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    repo = config.get("repository") or {}
    url, branch = repo.get("url"), repo.get("branch", "main")
    if not url:
        raise ValueError(f"{config_path}: repository.url is not set")
    return str(url).rstrip("/"), str(branch)


def extras_of(nb: nbformat.NotebookNode) -> list[str]:
    """The pip extras a notebook declares (metadata ``gmgan.install_extras``), checked."""
    extras = list((nb.metadata.get("gmgan") or {}).get("install_extras", DEFAULT_EXTRAS))
    unknown = [e for e in extras if e not in EXTRA_MODULES]
    if unknown:
        raise ValueError(f"unknown install_extras {unknown}; gmgan's extras for notebooks are {list(EXTRA_MODULES)}")
    return extras


def install_source(url: str, branch: str, extras: list[str] | tuple[str, ...] = DEFAULT_EXTRAS) -> str:
    """The install cell's source for a repository URL, a branch and pip extras."""
    name = "gmgan" + (f"[{','.join(extras)}]" if extras else "")
    modules = ("gmgan",) + tuple(m for e in extras for m in EXTRA_MODULES[e])
    return TEMPLATE.format(spec=f"{name} @ git+{url}@{branch}", modules=modules)


def notebooks(root: Path = ROOT) -> list[Path]:
    """The book's notebooks: ``notebooks/*.ipynb`` (checkpoints and build copies are elsewhere)."""
    return sorted((root / "notebooks").glob("*.ipynb"))


def is_title(cell: nbformat.NotebookNode) -> bool:
    """Whether a cell is a Markdown cell that starts with a level-1 heading."""
    return cell.cell_type == "markdown" and cell.source.lstrip().startswith("# ")


def expected_cell(nb: nbformat.NotebookNode, url: str, branch: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(install_source(url, branch, extras_of(nb)))
    cell.id = CELL_ID
    cell.metadata["tags"] = list(CELL_TAGS)
    return cell


def is_current(nb: nbformat.NotebookNode, url: str, branch: str) -> bool:
    """Whether the notebook opens with its title and then exactly the install cell for (url, branch)."""
    if len(nb.cells) < 2 or not is_title(nb.cells[0]):
        return False
    cell, want = nb.cells[1], expected_cell(nb, url, branch)
    others = [c for c in nb.cells[2:] + nb.cells[:1] if c.get("id") == CELL_ID]
    return (cell.cell_type == "code" and cell.get("id") == CELL_ID and cell.source == want.source
            and cell.metadata.get("tags", []) == CELL_TAGS and not cell.get("outputs")
            and not others)


def stamp(path: Path, url: str, branch: str) -> bool:
    """Make the second cell of ``path`` (below the title) its install cell; True when the file changed.

    An install cell elsewhere (e.g. above the title, where older notebooks had it) is moved.

    Raises:
        ValueError: the notebook has no Markdown title cell to put the install cell under.
    """
    nb = nbformat.read(path, as_version=4)
    if is_current(nb, url, branch):
        return False
    old = [c for c in nb.cells if c.get("id") == CELL_ID]
    cells = [c for c in nb.cells if c.get("id") != CELL_ID]
    if not cells or not is_title(cells[0]):
        raise ValueError(f"{path}: the first cell must be the Markdown title ('# ...'); "
                         f"the install cell goes below it")
    cell = expected_cell(nb, url, branch)
    if old:
        cell.execution_count = old[0].get("execution_count")
    nb.cells = [cells[0], cell, *cells[1:]]
    nbformat.write(nb, path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if a notebook is out of date")
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    args = parser.parse_args(argv)
    url, branch = repository()
    paths = args.paths or notebooks()
    if args.check:
        stale = [p for p in paths if not is_current(nbformat.read(p, as_version=4), url, branch)]
        for p in stale:
            print(f"{p}: install cell is not below the title or does not match _config.yml; "
                  f"run python book/stamp_notebooks.py {p}", file=sys.stderr)
        return 1 if stale else 0
    for p in paths:
        if stamp(p, url, branch):
            print(f"stamped {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
