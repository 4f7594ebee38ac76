"""Write (or check) the first cell of every notebook: the install cell that Colab needs.

The repository URL and branch are set in ONE place, ``_config.yml`` (``repository.url``,
``repository.branch``), which also drives the book's launch buttons. This script renders the
install cell from them, so that a fork only edits ``_config.yml`` and runs::

    python book/stamp_notebooks.py            # rewrite the install cells of notebooks/*.ipynb
    python book/stamp_notebooks.py --check    # exit 1, naming the notebooks, if any is out of date

A notebook may ask for extras in its metadata, e.g. ``"gmgan": {"install_extras": ["eval"]}``.
The cell has the id and tag ``install``; its other outputs are cleared (it prints nothing when gmgan
is already installed, which keeps nbval's comparison stable).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
CELL_ID = "install"

TEMPLATE = '''\
# Install gmgan when it is missing (Colab, a fresh environment); does nothing where it is installed.
# Written by book/stamp_notebooks.py from _config.yml: edit the URL there, not here.
import importlib, importlib.util, subprocess, sys

if importlib.util.find_spec("gmgan") is None:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", {spec!r}])
    importlib.invalidate_caches()'''


def repository(config_path: Path = ROOT / "_config.yml") -> tuple[str, str]:
    """(url, branch) from the book configuration's ``repository`` section."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    repo = config.get("repository") or {}
    url, branch = repo.get("url"), repo.get("branch", "main")
    if not url:
        raise ValueError(f"{config_path}: repository.url is not set")
    return str(url).rstrip("/"), str(branch)


def install_source(url: str, branch: str, extras: list[str] | tuple[str, ...] = ()) -> str:
    """The install cell's source for a repository URL, a branch and optional pip extras."""
    name = "gmgan" + (f"[{','.join(extras)}]" if extras else "")
    return TEMPLATE.format(spec=f"{name} @ git+{url}@{branch}")


def notebooks(root: Path = ROOT) -> list[Path]:
    """The book's notebooks: ``notebooks/*.ipynb`` (checkpoints and build copies are elsewhere)."""
    return sorted((root / "notebooks").glob("*.ipynb"))


def expected_cell(nb: nbformat.NotebookNode, url: str, branch: str) -> nbformat.NotebookNode:
    extras = list((nb.metadata.get("gmgan") or {}).get("install_extras", []))
    cell = nbformat.v4.new_code_cell(install_source(url, branch, extras))
    cell.id = CELL_ID
    cell.metadata["tags"] = [CELL_ID]
    return cell


def is_current(nb: nbformat.NotebookNode, url: str, branch: str) -> bool:
    """Whether the notebook's first cell is exactly the install cell for (url, branch)."""
    if not nb.cells:
        return False
    first, want = nb.cells[0], expected_cell(nb, url, branch)
    return (first.cell_type == "code" and first.get("id") == CELL_ID and first.source == want.source
            and CELL_ID in first.metadata.get("tags", []) and not first.get("outputs"))


def stamp(path: Path, url: str, branch: str) -> bool:
    """Make the first cell of ``path`` the install cell; returns True when the file changed."""
    nb = nbformat.read(path, as_version=4)
    if is_current(nb, url, branch):
        return False
    cell = expected_cell(nb, url, branch)
    if nb.cells and nb.cells[0].get("id") == CELL_ID:
        cell.execution_count = nb.cells[0].get("execution_count")
        nb.cells[0] = cell
    else:
        nb.cells.insert(0, cell)
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
            print(f"{p}: install cell does not match _config.yml; run python book/stamp_notebooks.py",
                  file=sys.stderr)
        return 1 if stale else 0
    for p in paths:
        if stamp(p, url, branch):
            print(f"stamped {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
