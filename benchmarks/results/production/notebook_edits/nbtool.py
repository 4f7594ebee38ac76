"""Small helpers to edit notebooks as JSON (cells found by a unique piece of their source)."""
import json
from pathlib import Path


def load(path):
    return json.loads(Path(path).read_text())


def save(nb, path):
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            for line in "".join(c["source"]).splitlines():
                assert len(line) <= 88, f"over 88 columns: {line!r}"
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def find(nb, needle):
    hits = [i for i, c in enumerate(nb["cells"]) if needle in "".join(c["source"])]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def src(text):
    lines = text.strip("\n").split("\n")
    return [l + "\n" for l in lines[:-1]] + [lines[-1]]


import uuid


def _id():
    return uuid.uuid4().hex[:8]


def code(text, tags=()):
    c = {"cell_type": "code", "execution_count": None, "id": _id(), "metadata": {},
         "outputs": [], "source": src(text)}
    if tags:
        c["metadata"]["tags"] = list(tags)
    return c


def md(text):
    return {"cell_type": "markdown", "id": _id(), "metadata": {}, "source": src(text)}


def set_source(nb, needle, text):
    i = find(nb, needle)
    nb["cells"][i]["source"] = src(text)
    return i


def replace_range(nb, first_needle, last_needle, cells):
    i, j = find(nb, first_needle), find(nb, last_needle)
    nb["cells"][i:j + 1] = cells
