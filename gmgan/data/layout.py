"""Where image sets lie on disk: the cache layout, counts, completion marker, locating.

A registered set lives in ``<root>/<subdir>`` (``subdir`` from
:mod:`gmgan.data.registry`, e.g. ``benchmark/Set5/HR``); its LR folders, when it has
any, lie beside the HR folder (:func:`set_folder` is the folder that holds both). Where
sets are looked for, in order: ``root`` when given; otherwise the data cache
(``gmgan.cache.data_dir()``, possibly a read-only shared copy) and then
``derived_dir("sets")``. Installs go to the data cache when it is writable, else to
``derived_dir("sets")`` (:func:`install_root`).

A set counts as present when its folder holds the expected number of images, or has the
completion marker (:data:`MARKER_NAME`, written by :func:`write_marker` once every file
is in place), or holds every file that the cache's ``MANIFEST.tsv`` lists for that
folder (a shared cache may carry a subset, e.g. 61 of the 100 Urban100 images). Sets
found in a cache with a manifest are checked against it (size and sha256 of every file
it lists for the set: HR and LR) each time they are located; a file is hashed once per
process unless it changes.

Nothing here uses the network; :mod:`gmgan.data.download` and :mod:`gmgan.data.mirror`
install sets into this layout.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Union

from gmgan.cache import data_dir, derived_dir
from gmgan.data.registry import (DATASETS, DatasetInfo, get_info, manifest_files,
                                 read_manifest, verify_manifest)
from gmgan.imageio import IMAGE_EXTENSIONS

__all__ = [
    "MARKER_NAME",
    "count_images",
    "install_root",
    "list_datasets",
    "locate",
    "place_folder",
    "search_roots",
    "set_folder",
    "set_status",
    "write_marker",
]

PathLike = Union[str, os.PathLike]

#: File written into a set's folder once it is completely installed.
MARKER_NAME = ".gmgan_complete.json"


def count_images(folder: Path) -> int:
    """Number of image files directly in ``folder`` (0 when it is missing or has none);
    hidden files (``.name``) do not count."""
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir()
               if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
               and p.is_file())


def set_folder(info: DatasetInfo) -> str:
    """The cache-relative POSIX folder that holds all of a set's files: ``subdir``, or
    its parent when ``subdir`` ends in ``HR`` (``benchmark/Set5`` holds ``HR`` and the
    LR folders)."""
    sub = PurePosixPath(info.subdir)
    return str(sub.parent) if sub.name == "HR" and str(sub.parent) != "." else str(sub)


def set_status(info: DatasetInfo, root: Path) -> tuple[str, int]:
    """``(state, images)`` of a set under the cache ``root``.

    ``state`` is ``"complete"``, ``"subset"`` (the part a marker or the root's manifest
    vouches for), ``"incomplete"`` or ``"missing"``; ``images`` counts the image files
    in ``root / info.subdir``. Reads no file contents except the marker and the
    manifest.
    """
    folder = root / info.subdir
    n = count_images(folder)
    if n == 0:
        return "missing", 0
    marker = folder / MARKER_NAME
    if marker.is_file():
        try:
            # a mirror may hold a subset of a set
            if json.loads(marker.read_text()).get("count") == n:
                return ("complete" if info.count in (None, n) else "subset"), n
        except (OSError, ValueError):
            pass  # unreadable marker: judge by the count
    if info.count is not None and n == info.count:
        return "complete", n
    manifest = read_manifest(root)
    if manifest is not None:
        listed = manifest_files(manifest, info.subdir)
        names = {e.path.rsplit("/", 1)[1] for e in listed}
        if (listed and n == len(listed)
                and all((folder / name).is_file() for name in names)):
            return ("complete" if info.count in (None, n) else "subset"), n
    return "incomplete", n


def search_roots(root: PathLike | None) -> list[Path]:
    """The cache roots to look in, in order: ``[root]`` when given, else the data cache
    and ``derived_dir("sets")`` (not created)."""
    if root is not None:
        return [Path(root).expanduser()]
    return [data_dir(), derived_dir("sets", create=False)]


def locate(name: str | DatasetInfo, root: PathLike | None = None, *,
           verify: bool = True) -> Path | None:
    """The folder of a set's HR images if it is on disk (complete, or the subset a
    manifest lists), else None. Never uses the network.

    Args:
        name: registry name or :class:`DatasetInfo`.
        root: look only under this cache root (default: data cache, then
            ``derived_dir("sets")``).
        verify: check the set's files (HR and the LR folders beside it) against the
            root's ``MANIFEST.tsv`` when it has one; unchanged files are hashed once per
            process.

    Raises:
        KeyError: unknown set name. ManifestError: the set is there but some files
        differ from the manifest.
    """
    info = get_info(name)
    for r in search_roots(root):
        state, _ = set_status(info, r)
        if state in ("complete", "subset"):
            if verify:
                verify_manifest(r, set_folder(info), recursive=True)
            return r / info.subdir
    return None


def _writable(folder: Path) -> bool:
    """Can files be created in ``folder`` (created if needed)?

    A folder without any write permission bit counts as read-only even when the process
    could write to it anyway (as root does): that is how a shared, read-only cache is
    marked.
    """
    try:
        if folder.is_dir() and not folder.stat().st_mode & 0o222:
            return False
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        return True
    except OSError:
        return False


def install_root(root: PathLike | None) -> Path:
    """Where a set is installed: ``root`` when given, else the data cache when it is
    writable, else ``derived_dir("sets")``."""
    if root is not None:
        return Path(root).expanduser()
    cache = data_dir()
    return cache if _writable(cache) else derived_dir("sets")


def place_folder(staged: Path, final: Path) -> None:
    """Move a fully built folder into place with ``os.replace`` (an incomplete folder at
    ``final`` is removed first; ``staged`` must be on the same file system)."""
    if final.exists():
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, final)


def write_marker(folder: Path, info: DatasetInfo, count: int, source: str,
                 archive_sha256: str | None) -> None:
    """Write the completion marker (JSON: name, count, source, archive_sha256, installed
    time in UTC) into a set's HR folder; :func:`set_status` trusts it while the folder
    holds ``count`` images."""
    record = {"name": info.name, "count": count, "source": source,
              "archive_sha256": archive_sha256,
              "installed": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (folder / MARKER_NAME).write_text(json.dumps(record, indent=1) + "\n")


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def list_datasets(root: PathLike | None = None) -> list[dict]:
    """One row per registered set, for ``gmgan data list``. Does not use the network or
    hash files.

    Returns:
        Dicts with keys ``name``, ``kind``, ``expected`` (image count or None),
        ``present`` (images on disk), ``status`` (``complete``, ``subset`` = the part a
        cache's manifest lists, ``incomplete``, ``missing``), ``location`` (folder, or
        ``"not cached"``), ``bytes`` (size on disk, or None) and ``download_bytes``
        (archive size when known).
    """
    rows = []
    for info in DATASETS.values():
        best: tuple[str, int, Path | None] = ("missing", 0, None)
        for r in search_roots(root):
            state, n = set_status(info, r)
            if state in ("complete", "subset"):
                best = (state, n, r / info.subdir)
                break
            if n > best[1]:
                best = (state, n, r / info.subdir)
        state, n, folder = best
        rows.append({
            "name": info.name,
            "kind": info.kind,
            "expected": info.count,
            "present": n,
            "status": state,
            "location": str(folder) if folder is not None else "not cached",
            "bytes": _folder_bytes(folder) if folder is not None else None,
            "download_bytes": info.mirrors[0].size if info.mirrors else None,
        })
    return rows
