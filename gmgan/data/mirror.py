"""A data mirror: a copy of a gmgan data cache served over HTTP, used instead of the public sources.

``GMGAN_DATA_MIRROR`` holds the mirror's base URL (http or https). Its layout is the data cache's
(see :mod:`gmgan.data.registry`), with a ``MANIFEST.tsv`` (tab-separated; columns ``path``,
``sha256``, ``bytes``) at the root::

    <base>/MANIFEST.tsv
    <base>/benchmark/Set5/HR/baby.png
    <base>/benchmark/Set5/LR_bicubic/X4/babyx4.png
    <base>/train/T91/t1.bmp  ...

A set's files on the mirror are the manifest's rows under the set's folder: its ``subdir``, or the
folder above it when that ends in ``HR`` (so ``benchmark/Set5/`` brings HR and the LR folders).
Each file is downloaded with :func:`gmgan.data.transfer.download` (resumable, size and sha256 checked
against the manifest) into ``<cache>/downloads/mirror/``; only when every file of the set is there
and verified is the set's folder built beside its final place and moved in, so a bad mirror (a 404,
a short file, a wrong checksum) leaves no partial set behind. Verified files stay in
``downloads/mirror`` and are not fetched again after an interruption.

An institution makes a mirror of its own cache with ``gmgan data manifest DIR`` and any static web
server (``python -m http.server -d DIR``); tests serve the shared read-only cache the same way.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlparse

from PIL import Image
from tqdm.auto import tqdm

from gmgan.data.layout import count_images, place_folder, set_folder, write_marker
from gmgan.data.registry import MANIFEST_NAME, DatasetInfo, ManifestEntry, parse_manifest
from gmgan.data.transfer import DownloadError, download
from gmgan.imageio import IMAGE_EXTENSIONS

# set_folder moved to gmgan.data.layout; it stays importable from here for one release.
__all__ = ["MIRROR_ENV", "install_from_mirror", "mirror_manifest", "mirror_url", "set_files",
           "set_folder"]

#: Environment variable with the mirror's base URL.
MIRROR_ENV = "GMGAN_DATA_MIRROR"


def mirror_url() -> str | None:
    """The base URL in ``GMGAN_DATA_MIRROR`` without a trailing slash, or None when it is unset.

    Raises:
        ValueError: the variable is set to something that is not an http(s) URL.
    """
    value = os.environ.get(MIRROR_ENV, "").strip()
    if not value:
        return None
    parts = urlparse(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{MIRROR_ENV} must be an http(s) base URL, got {value!r}")
    return value.rstrip("/")


def file_url(base: str, path: str) -> str:
    """URL of the cache-relative POSIX ``path`` on the mirror at ``base`` (each part quoted)."""
    return base + "/" + "/".join(quote(part) for part in PurePosixPath(path).parts)


def mirror_manifest(base: str, *, timeout: float = 30) -> dict[str, ManifestEntry]:
    """Download and parse ``<base>/MANIFEST.tsv``.

    Raises:
        DownloadError: the manifest cannot be downloaded or parsed (the message names its URL).
    """
    url = file_url(base, MANIFEST_NAME)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"data mirror {base}: cannot get {url}: HTTP {exc.code} {exc.reason} "
                            f"(a mirror serves a data cache with its {MANIFEST_NAME} at the root)") from exc
    except (urllib.error.URLError, OSError, UnicodeDecodeError) as exc:
        raise DownloadError(f"data mirror {base}: cannot get {url}: {getattr(exc, 'reason', exc)}") from exc
    try:
        return parse_manifest(text, url)
    except ValueError as exc:
        raise DownloadError(f"data mirror {base}: {exc}") from exc


def set_files(manifest: dict[str, ManifestEntry], info: DatasetInfo) -> list[ManifestEntry]:
    """The manifest rows of a set's files (under :func:`~gmgan.data.layout.set_folder`, any
    depth), sorted by path."""
    prefix = set_folder(info).rstrip("/") + "/"
    return sorted((e for p, e in manifest.items() if p.startswith(prefix)), key=lambda e: e.path)


def _check_images(folder: Path, info: DatasetInfo, base: str) -> None:
    """Every file of a downloaded HR folder must be an image that PIL can open (an
    archive install keeps only image files; a mirror's manifest might list anything)."""
    bad = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        why = None
        if path.suffix.lower() not in IMAGE_EXTENSIONS or path.name.startswith("."):
            why = "not an image file name"
        else:
            try:
                with Image.open(path) as im:
                    im.verify()
            except Exception as exc:  # PIL raises many kinds for a file that is not one
                why = f"not a readable image ({type(exc).__name__})"
        if why:
            bad.append(f"{path.relative_to(folder).as_posix()}: {why}")
    if bad:
        raise DownloadError(f"data mirror {base}: {len(bad)} file(s) under "
                            f"{info.subdir}/ are not images; {info.name} was not "
                            f"installed:\n  - "
                            + "\n  - ".join(bad[:5]))


def install_from_mirror(info: DatasetInfo, target: Path, base: str, *, progress: bool = True) -> int:
    """Download every file of ``info`` from the mirror at ``base`` and install the set under ``target``.

    Returns:
        the number of HR images installed (fewer than the registry's count: a subset,
        as a shared cache may hold).

    Raises:
        DownloadError / ChecksumError: the mirror lists no file of the set, a file is missing on it
        (404), has another size or another sha256, a file of the HR folder is not an
        image, or there are more HR images than the set has; the message names the file
        or the counts. Nothing is placed in the set's folders then.
    """
    entries = set_files(mirror_manifest(base), info)
    hr_prefix = info.subdir.rstrip("/") + "/"
    if not any(e.path.startswith(hr_prefix) for e in entries):
        raise DownloadError(f"data mirror {base} has no files of {info.name}: its {MANIFEST_NAME} lists "
                            f"nothing under {info.subdir}/")
    cache = target / "downloads" / "mirror"
    total = sum(e.bytes for e in entries)
    failed: list[DownloadError] = []
    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=info.name,
              disable=not progress, leave=False) as bar:
        for entry in entries:
            try:
                download(file_url(base, entry.path), cache / entry.path, sha256=entry.sha256,
                         expected_size=entry.bytes, progress=False, retries=2, timeout=30)
            except DownloadError as exc:  # go on: the good files are kept for the next try
                failed.append(exc)
            bar.update(entry.bytes)
    if failed:
        shown = "\n  - ".join(str(exc) for exc in failed[:5]) + ("\n  ..." if len(failed) > 5 else "")
        raise DownloadError(f"data mirror {base}: {len(failed)} of the {len(entries)} files of "
                            f"{info.name} could not be downloaded; the set was not installed (the "
                            f"{len(entries) - len(failed)} verified files are kept in {cache} for the "
                            f"next try):\n  - {shown}") from failed[0]

    # Build every folder of the set beside its final place, then move them in (HR last, with the
    # completion marker), as an archive is unpacked.
    folder = set_folder(info)
    work = Path(tempfile.mkdtemp(prefix=f".mirror-{info.name}-", dir=target))
    try:
        staged_root = work / "set"
        for entry in entries:
            dest = staged_root / entry.path[len(folder) + 1:]
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cache / entry.path, dest)
        hr_rel = PurePosixPath(info.subdir).relative_to(folder).as_posix() if info.subdir != folder else "."
        staged_hr = staged_root / hr_rel
        _check_images(staged_hr, info, base)
        n_hr = count_images(staged_hr)
        if info.count is not None and n_hr > info.count:
            raise DownloadError(f"data mirror {base} lists {n_hr} images of "
                                f"{info.name} under {info.subdir}/, the set has "
                                f"{info.count}; not installed")
        write_marker(staged_hr, info, n_hr, base, None)  # fewer: a subset
        leaves = sorted({(staged_root / e.path[len(folder) + 1:]).parent for e in entries},
                        key=lambda p: (p == staged_hr, str(p)))
        for leaf in leaves:
            place_folder(leaf, target / folder / leaf.relative_to(staged_root))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for entry in entries:  # installed: the download copies are no longer needed
        (cache / entry.path).unlink(missing_ok=True)
    return n_hr
