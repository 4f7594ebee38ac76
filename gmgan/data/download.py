"""Getting image sets onto disk: :func:`fetch`, :func:`require` and :func:`dataset_dir`.

- :func:`fetch` returns the folder of a registered set's HR images: found in the cache
  (:mod:`gmgan.data.layout`), or downloaded, verified and unpacked into it
  (:mod:`gmgan.data.transfer`; from a data mirror alone when ``GMGAN_DATA_MIRROR`` is
  set, :mod:`gmgan.data.mirror`). A file lock per set lets several processes fetch the
  same set at once; one downloads, the others wait and reuse the result.
- :func:`require` is :func:`fetch` that asks first: it downloads only when the network
  allows and says so in one line, else it explains what to do.
- :func:`dataset_dir` accepts a registry name or any folder of images
  (:func:`gmgan.data.sources.resolve_image_source`).

``samples`` is written from scikit-image's bundled images; a composite set (``parts``,
e.g. DF2K) links the images of its parts. The names that moved to
:mod:`gmgan.data.transfer` (``download``, ``safe_extract``, the errors) and
:mod:`gmgan.data.layout` (``locate``, ``list_datasets``, ``MARKER_NAME``) are
re-exported here for one release.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path, PurePosixPath
from typing import Union
from urllib.parse import urlparse

import numpy as np
import skimage.data
from filelock import FileLock

from gmgan.cache import data_dir, derived_dir
from gmgan.data.layout import (MARKER_NAME, install_root, list_datasets, locate, place_folder,
                               set_status, write_marker)
from gmgan.data.mirror import MIRROR_ENV, install_from_mirror, mirror_url
from gmgan.data.registry import (DATASETS, SAMPLE_IMAGES, DatasetInfo, Mirror, get_info,
                                 sha256_file)
from gmgan.data.sources import resolve_image_source
from gmgan.data.transfer import (ChecksumError, DownloadError, UnsafeArchiveError, download,
                                 safe_extract)
from gmgan.imageio import IMAGE_EXTENSIONS, write_image
from gmgan.online import OFFLINE_ENV, forced_offline, network_available

# download, safe_extract, the errors, locate, list_datasets and MARKER_NAME moved to
# gmgan.data.transfer / gmgan.data.layout; they stay importable from here for one release.
__all__ = [
    "MARKER_NAME",
    "ChecksumError",
    "DownloadError",
    "UnsafeArchiveError",
    "dataset_dir",
    "download",
    "fetch",
    "list_datasets",
    "locate",
    "missing_set_message",
    "require",
    "safe_extract",
]

PathLike = Union[str, os.PathLike]

_SKIMAGE_SET = "samples"


# ---------------------------------------------------------------------------------------------
# installing a set from an archive
# ---------------------------------------------------------------------------------------------

def _flat_name(relative: PurePosixPath) -> str:
    """``animal/0001.png`` -> ``animal_0001.png`` (sets are stored flat)."""
    return "_".join(relative.parts)


def _gather(extracted: Path, prefix: str, staged: Path) -> int:
    """Move the images under ``extracted/prefix`` (any depth) into ``staged``, flattened."""
    source = extracted / prefix if prefix else extracted
    staged.mkdir(parents=True, exist_ok=True)
    n = 0
    if not source.is_dir():
        return 0
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith("."):
            target = staged / _flat_name(PurePosixPath(path.relative_to(source).as_posix()))
            if target.exists():
                raise DownloadError(f"two archive files map to the same name {target.name}")
            shutil.move(str(path), target)
            n += 1
    return n


def _archive_is_shared(mirror: Mirror) -> bool:
    """Is this archive a mirror of more than one registered set (keep it for the others)?"""
    return sum(any(m.url == mirror.url for m in info.mirrors) for info in DATASETS.values()) > 1


def _unpack(info: DatasetInfo, mirror: Mirror, archive: Path, target: Path) -> int:
    """Extract a downloaded archive and move the set's folders into the cache layout."""
    work = Path(tempfile.mkdtemp(prefix=f".extract-{info.name}-", dir=target))
    try:
        folders = [(mirror.prefix, info.subdir), *mirror.extra]
        prefixes = None if any(p == "" for p, _ in folders) else [p for p, _ in folders]
        safe_extract(archive, work / "x", prefixes=prefixes)
        staged = []
        for i, (prefix, rel) in enumerate(folders):
            n = _gather(work / "x", prefix, work / f"staged{i}")
            staged.append((work / f"staged{i}", target / rel, n))
        n_hr = staged[0][2]
        if n_hr == 0 or (info.count is not None and n_hr != info.count):
            raise DownloadError(f"{mirror.url} gave {n_hr} images under {mirror.prefix or 'its root'!r}, "
                                f"expected {info.count if info.count is not None else 'some'}")
        write_marker(staged[0][0], info, n_hr, mirror.url, mirror.sha256 or sha256_file(archive))
        # Extra folders first, HR (with the completion marker) last.
        for folder, final, _ in reversed(staged):
            place_folder(folder, final)
        return n_hr
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _install(info: DatasetInfo, target: Path, progress: bool) -> None:
    """Download ``info`` from the first mirror that works and unpack it under ``target``; from
    the data mirror alone when ``GMGAN_DATA_MIRROR`` is set (:mod:`gmgan.data.mirror`)."""
    base = mirror_url()
    if base is not None:
        install_from_mirror(info, target, base, progress=progress)
        return
    errors = []
    for mirror in info.mirrors:
        archive = target / "downloads" / mirror.archive_name
        try:
            download(mirror.url, archive, sha256=mirror.sha256, expected_size=mirror.size, progress=progress)
            _unpack(info, mirror, archive, target)
        except (DownloadError, UnsafeArchiveError, ValueError, OSError) as exc:
            errors.append(f"{mirror.url}: {exc}")
            continue
        if not _archive_is_shared(mirror):
            archive.unlink(missing_ok=True)
        return
    tried = "\n  - ".join(errors) if errors else "(no download source is registered)"
    raise DownloadError(f"could not get data set {info.name}:\n  - {tried}\n"
                        f"Download it by hand and put its {info.count or ''} images into "
                        f"{target / info.subdir}, or point GMGAN_DATA at a cache that has them.")


# ---------------------------------------------------------------------------------------------
# sets made here from local files: samples, composites
# ---------------------------------------------------------------------------------------------

def _materialise_samples(info: DatasetInfo, target: Path) -> None:
    """Write scikit-image's bundled sample images as PNG (grey ones as RGB, R = G = B)."""
    work = Path(tempfile.mkdtemp(prefix=".samples-", dir=target))
    try:
        staged = work / "samples"
        for name in SAMPLE_IMAGES:
            img = np.asarray(getattr(skimage.data, name)())
            if img.ndim == 2:
                img = np.repeat(img[:, :, None], 3, axis=2)
            write_image(staged / f"{name}.png", img[:, :, :3].astype(np.uint8))
        write_marker(staged, info, len(SAMPLE_IMAGES), "scikit-image " + skimage.__version__, None)
        place_folder(staged, target / info.subdir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _composite_members(info: DatasetInfo, folders: dict[str, Path]) -> list[tuple[str, Path]]:
    """(link name, image file) of a composite set: the parts' images, named ``<part>_<file>`` when
    there are several parts, cut to ``info.take`` by the sha256 of ``<part>/<file>``."""
    members = []
    for part, folder in folders.items():
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file():
                members.append((f"{part}_{path.name}" if len(folders) > 1 else path.name, path, f"{part}/{path.name}"))
    if info.take is not None:
        if len(members) < info.take:
            raise DownloadError(f"{info.name} takes {info.take} images of {', '.join(folders)}, "
                                f"which hold only {len(members)}")
        members = sorted(members, key=lambda m: hashlib.sha256(m[2].encode()).hexdigest())[: info.take]
    return sorted((name, path) for name, path, _ in members)


def _link(source: Path, dest: Path) -> None:
    """A symbolic link to ``source`` (a copy where links cannot be made)."""
    try:
        os.symlink(source.resolve(), dest)
    except OSError:
        shutil.copyfile(source, dest)


def _build_composite(info: DatasetInfo, target: Path, folders: dict[str, Path]) -> None:
    """The folder of a composite set: links to its parts' images, built aside and moved in."""
    work = Path(tempfile.mkdtemp(prefix=f".compose-{info.name}-", dir=target))
    try:
        staged = work / "set"
        staged.mkdir()
        members = _composite_members(info, folders)
        for name, path in members:
            _link(path, staged / name)
        if info.count is not None and len(members) != info.count:
            raise DownloadError(f"{info.name} should have {info.count} images; its parts "
                                f"({', '.join(folders)}) gave {len(members)}")
        write_marker(staged, info, len(members), "+".join(info.parts), None)
        place_folder(staged, target / info.subdir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# finding or getting a set
# ---------------------------------------------------------------------------------------------

def fetch(name: str | DatasetInfo, *, root: PathLike | None = None, progress: bool = True) -> Path:
    """The folder of a set's HR images, downloading the set if no cache has it.

    Args:
        name: registry name (case-insensitive, see :data:`~gmgan.data.registry.DATASETS`) or a
            :class:`DatasetInfo`.
        root: use only this cache root (look there, download there). Default: look in the data
            cache and ``derived_dir("sets")``; download into the data cache if it is writable,
            else into ``derived_dir("sets")``.
        progress: show download progress bars.

    Returns:
        Path of the folder with the HR images (flat; image files only, plus a hidden marker).
        No network is used when a cache already has the set. ``samples`` is written from
        scikit-image's bundled images into ``derived_dir("sets", "samples")``; a composite set
        (``parts``, e.g. DF2K) fetches its parts, then links their images into
        ``derived_dir("sets", <subdir>)``. With ``GMGAN_DATA_MIRROR`` set, the files come from
        that mirror only (:mod:`gmgan.data.mirror`).

    Raises:
        KeyError: unknown set name. DownloadError / ChecksumError: no mirror worked (the message
        lists every mirror's error and where to put the files by hand). ManifestError: a cached
        set differs from the cache's ``MANIFEST.tsv``.
    """
    info = get_info(name)
    found = locate(info, root)
    if found is not None:
        return found
    if info.parts:
        folders = {part: fetch(part, root=root, progress=progress) for part in info.parts}
    if info.name == _SKIMAGE_SET or info.parts:  # made here from local files: a derived set
        target = Path(root).expanduser() if root is not None else derived_dir("sets")
    else:
        target = install_root(root)
    final = target / info.subdir
    final.parent.mkdir(parents=True, exist_ok=True)
    # One lock per set: concurrent fetches of the same set wait here, then find it installed.
    with FileLock(str(final) + ".lock"):
        if set_status(info, target)[0] in ("complete", "subset"):
            return final
        if info.name == _SKIMAGE_SET:
            _materialise_samples(info, target)
        elif info.parts:
            _build_composite(info, target, folders)
        else:
            _install(info, target, progress)
    return final


def missing_set_message(name: str, why: str) -> str:
    """The error text for a set that is neither on disk nor downloadable now (``why``)."""
    return (f"data set {name!r} is not in the data cache (GMGAN_DATA={data_dir()}) and cannot be downloaded "
            f"now: {why}. Run `gmgan data fetch {name}` where the network is reachable (the files go to "
            f"GMGAN_DATA, or to GMGAN_DERIVED/sets when GMGAN_DATA is read-only), point GMGAN_DATA at a cache "
            f"that has it, or set GMGAN_DATA_MIRROR to a mirror that serves it.")


def _why_not_downloadable(info: DatasetInfo) -> str | None:
    """None when ``info`` can be downloaded now, else the reason (no source, offline, unreachable)."""
    base = mirror_url()
    source = base or (info.urls[0] if info.urls else None)
    if source is None:
        return "the registry has no download source for it"
    if forced_offline():
        return f"{OFFLINE_ENV} is set"
    if not network_available(source):
        host = urlparse(source).netloc
        return f"{'the data mirror ' + MIRROR_ENV + '=' + base if base else host} cannot be reached"
    return None


def require(name: str | DatasetInfo, *, progress: bool = True) -> Path:
    """The folder of a set's HR images, downloaded on first use when the network allows.

    Like :func:`fetch`, but it asks first: when the set is on disk it is returned (no network);
    when it is not and its source (``GMGAN_DATA_MIRROR``, else the registry's first URL) can be
    reached (:func:`gmgan.online.network_available`), one line on stderr says what is downloaded
    from where into where, then :func:`fetch` downloads it (checksummed, resumable, with a progress
    bar); otherwise nothing is tried. Composite sets require each part in turn.

    Raises:
        FileNotFoundError: the set is missing and cannot be downloaded now (offline,
        ``GMGAN_OFFLINE=1``, source unreachable); the message names ``gmgan data fetch NAME``,
        GMGAN_DATA and GMGAN_DATA_MIRROR. Download errors of :func:`fetch` pass through.
    """
    info = get_info(name)
    found = locate(info)
    if found is not None:
        return found
    if info.name != _SKIMAGE_SET:
        if info.parts:
            for part in info.parts:
                require(part, progress=progress)
        else:
            why = _why_not_downloadable(info)
            if why is not None:
                raise FileNotFoundError(missing_set_message(info.name, why))
            source = mirror_url() or info.urls[0]
            size = info.mirrors[0].size if info.mirrors and mirror_url() is None else None
            print(f"{info.name} is not in the data cache: downloading it"
                  f"{f' ({size / 2**30:.1f} GiB)' if size else ''} from {urlparse(source).netloc} into "
                  f"{install_root(None) / info.subdir}", file=sys.stderr, flush=True)
    return fetch(info, progress=progress)


def dataset_dir(name_or_path: str | os.PathLike) -> Path:
    """A folder of HR images: a registry name (found or fetched) or a folder of images.

    Which one is decided by :func:`gmgan.data.sources.resolve_image_source`: a string without
    a path separator that is a registered name (case-insensitive) is that set, found or
    downloaded on first use (:func:`require`); anything else must be an existing folder that
    holds images (sub-folders count, e.g. an ImageNet subset sorted by class).

    Returns:
        The set's HR folder, or the folder as given (``~`` expanded).

    Raises:
        FileNotFoundError: neither a known set nor an existing folder (the message lists the
        known sets), or a known set that is missing and cannot be downloaded now.
        ValueError: the folder holds no images.
    """
    source = resolve_image_source(name_or_path)
    return require(source) if isinstance(source, DatasetInfo) else source
