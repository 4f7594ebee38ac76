"""gmgan.data imports no module in a circle (function-local imports included) and takes
no private name from another module: transfer and layout sit below download and
mirror."""
from __future__ import annotations

import ast
from pathlib import Path

import gmgan.data

PACKAGE = Path(gmgan.data.__file__).parent


def _imports() -> dict[str, list[tuple[str, list[str]]]]:
    """``{module: [(imported gmgan.data module, [names]), ...]}`` from every import
    statement of gmgan/data/*.py, at any depth."""
    found: dict[str, list[tuple[str, list[str]]]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        module = "gmgan.data" if path.stem == "__init__" else f"gmgan.data.{path.stem}"
        found[module] = []
        for node in ast.walk(ast.parse(path.read_text())):
            is_from = isinstance(node, ast.ImportFrom)
            if is_from and (node.module or "").startswith("gmgan.data"):
                names = [alias.name for alias in node.names]
                if node.module == "gmgan.data":  # from gmgan.data import transfer
                    found[module] += [(f"gmgan.data.{n}", []) for n in names]
                else:
                    found[module].append((node.module, names))
            elif isinstance(node, ast.Import):
                found[module] += [(a.name, []) for a in node.names
                                  if a.name.startswith("gmgan.data.")]
    return found


def test_no_import_circle_in_gmgan_data():
    edges = {m: {t for t, _ in targets if t != m and t != "gmgan.data"}
             for m, targets in _imports().items()}
    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    circles = sorted(m for m in edges if m != "gmgan.data" and reaches(m, m, set()))
    assert circles == []
    assert "gmgan.data.transfer" in edges["gmgan.data.mirror"]
    assert "gmgan.data.layout" in edges["gmgan.data.download"]


def test_no_private_name_crosses_a_module():
    crossing = [(m, t, n) for m, targets in _imports().items() for t, names in targets
                for n in names if n.startswith("_")]
    assert crossing == []
