"""Getting image sets onto disk: resumable verified downloads, safe unpacking, the set cache.

- :func:`download` streams a URL to ``<dest>.part`` with a progress bar, resumes a partial file
  with an HTTP ``Range`` request (and starts over when the server ignores it), retries broken
  transfers, checks the sha256, then moves the file into place with ``os.replace``.
- :func:`safe_extract` unpacks zip and tar archives after checking every member: no absolute
  paths, no ``..``, no links leading outside the destination, no device files.
- :func:`fetch` returns the folder of a registered set's HR images: found in the data cache, or
  downloaded, verified and unpacked into it. A file lock per set lets several processes fetch the
  same set at once; one downloads, the others wait and reuse the result.
- :func:`dataset_dir` accepts a registry name or any folder of images.
- :func:`list_datasets` describes what is known and what is on disk (for ``gmgan data list``).

Where sets are looked for, in order: ``root`` when given; otherwise the data cache
(``gmgan.cache.data_dir()``, possibly a read-only shared copy) and then ``derived_dir("sets")``.
Downloads go to the data cache when it is writable, else to ``derived_dir("sets")``. A set counts
as present when its folder holds the expected number of images, or has the completion marker this
module writes, or holds every file that the cache's ``MANIFEST.tsv`` lists for that folder (a
shared cache may carry a subset, e.g. 61 of the 100 Urban100 images). Sets found in a cache with a
manifest are checked against it (size and sha256 of every file it lists for the set: HR
and LR) each time they are located; a file is hashed once per process unless it changes.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Sequence, Union
from urllib.parse import urlparse

from filelock import FileLock
from tqdm.auto import tqdm

from gmgan.cache import data_dir, derived_dir
from gmgan.data.registry import (DATASETS, SAMPLE_IMAGES, DatasetInfo, Mirror, get_info,
                                 manifest_files, read_manifest, sha256_file, verify_manifest)
from gmgan.imageio import IMAGE_EXTENSIONS, list_images, write_image

__all__ = [
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

#: File written into a set's folder once it is completely installed.
MARKER_NAME = ".gmgan_complete.json"
#: Seconds to wait before retry k (doubled each time); tests set it to 0.
RETRY_BACKOFF_S = 1.0
_CHUNK = 1 << 20
_USER_AGENT = "gmgan-downloader/0.1 (+https://github.com/gmgan-sr/gmgan)"
_SKIMAGE_SET = "samples"


class DownloadError(RuntimeError):
    """A download that could not be completed; the message names the URL and what went wrong."""


class ChecksumError(DownloadError):
    """A downloaded file whose sha256 differs from the expected one (the file was deleted)."""

    def __init__(self, url: str, expected: str, actual: str, path: PathLike | None = None):
        self.url, self.expected, self.actual = url, expected, actual
        where = f" (deleted {path})" if path is not None else ""
        super().__init__(f"sha256 mismatch for {url}: expected {expected}, got {actual}{where}")


class UnsafeArchiveError(ValueError):
    """An archive member that would land outside the destination (or is a device file)."""

    def __init__(self, archive: PathLike, member: str, reason: str):
        self.archive, self.member, self.reason = str(archive), member, reason
        super().__init__(f"refusing to extract {archive}: member {member!r} {reason}")


class _TransientError(Exception):
    """A failure worth retrying (network error, truncated transfer, 5xx)."""


# ---------------------------------------------------------------------------------------------
# download
# ---------------------------------------------------------------------------------------------

def _parse_content_range(value: str | None) -> tuple[int, int | None] | None:
    """``bytes START-END/TOTAL`` -> (START, TOTAL or None)."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        span, total = value[6:].split("/")
        start = int(span.split("-")[0])
        return start, (None if total == "*" else int(total))
    except ValueError:
        return None


def _transfer(url: str, part: Path, expected_size: int | None, progress: bool, timeout: float) -> None:
    """One attempt: append the rest of ``url`` to ``part`` (or rewrite it from byte 0).

    Raises _TransientError for failures worth retrying, DownloadError for the others.
    """
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset > expected_size:
        part.unlink()  # longer than the file can be: not a prefix of it
        offset = 0
    if expected_size is not None and offset == expected_size:
        return  # an earlier attempt got every byte
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return  # nothing after `offset`: the partial file is already whole; the checks decide
        if exc.code in (408, 429) or exc.code >= 500:
            raise _TransientError(f"HTTP {exc.code} {exc.reason}") from exc
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:  # refused, DNS, timeout, reset
        raise _TransientError(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from exc

    with response:
        length = response.headers.get("Content-Length")
        remaining = int(length) if length is not None and length.isdigit() else None
        if offset and response.status == 206:
            content_range = _parse_content_range(response.headers.get("Content-Range"))
            if content_range is None or content_range[0] != offset:
                part.unlink()  # an answer for other bytes than asked: start over next attempt
                raise _TransientError(f"server answered Range {offset}- with {response.headers.get('Content-Range')!r}")
            mode, total = "ab", content_range[1] if content_range[1] is not None else (
                offset + remaining if remaining is not None else None)
        else:
            # 200: a fresh download, or a server that ignores Range; either way start at byte 0.
            offset, mode = 0, "wb"
            total = remaining
        if expected_size is not None and total is not None and total != expected_size:
            raise DownloadError(f"cannot download {url}: the server reports {total} bytes, "
                                f"expected {expected_size}")
        received = 0
        with open(part, mode) as f, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                         unit_divisor=1024, desc=part.name[: -len(".part")],
                                         disable=not progress, leave=False) as bar:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (http.client.IncompleteRead, OSError, ValueError) as exc:
                    raise _TransientError(f"connection lost after {offset + received} bytes "
                                          f"({type(exc).__name__})") from exc
                if not chunk:
                    break
                f.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if remaining is not None and received < remaining:
        raise _TransientError(f"connection closed after {offset + received} of {offset + remaining} bytes")


def _check_complete(url: str, path: Path, sha256: str | None, expected_size: int | None) -> None:
    """Size and checksum of a finished download; a wrong checksum deletes the file."""
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise DownloadError(f"download of {url} has {size} bytes, expected {expected_size}; "
                            f"the partial file {path} is kept and will be resumed")
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256.lower():
            path.unlink()
            raise ChecksumError(url, sha256.lower(), actual, path)


def download(url: str, dest: PathLike, *, sha256: str | None = None, expected_size: int | None = None,
             resume: bool = True, progress: bool = True, retries: int = 3, timeout: float = 60) -> Path:
    """Download ``url`` to ``dest``, resumably and verified.

    The bytes go to ``<dest>.part``; an interrupted download leaves only that file, and the next
    call continues it with an HTTP ``Range`` request (a server that ignores ``Range`` makes it
    start over). A transfer that stops before ``Content-Length`` is resumed up to ``retries``
    times, waiting ``RETRY_BACKOFF_S * 2**k`` seconds in between. When all bytes are there the
    size and sha256 are checked and the file is moved to ``dest`` with ``os.replace``. A lock on
    ``<dest>.lock`` keeps two processes from writing the same file.

    Args:
        url: http(s) URL.
        dest: destination file; parent folders are created.
        sha256: expected lower-case hex digest, or None to skip the check.
        expected_size: expected size in bytes, or None.
        resume: continue an existing ``.part`` file (otherwise it is discarded).
        progress: show a tqdm progress bar (bytes).
        retries: how many times a failed or truncated transfer is retried.
        timeout: socket timeout in seconds for connecting and for each read.

    Returns:
        ``dest``. If it already exists and matches ``sha256``/``expected_size``, nothing is
        downloaded.

    Raises:
        ChecksumError: the downloaded bytes have another sha256 (the file is deleted).
        DownloadError: HTTP error (4xx), wrong size, or still incomplete after the retries (the
            ``.part`` file is kept for a later resume).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with FileLock(str(dest) + ".lock"):
        if dest.exists():
            if ((expected_size is None or dest.stat().st_size == expected_size)
                    and (sha256 is None or sha256_file(dest) == sha256.lower())):
                return dest
            dest.unlink()  # a stale file from another source; fetch it again
        if not resume and part.exists():
            part.unlink()
        errors = []
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(RETRY_BACKOFF_S * 2 ** (attempt - 1))
            try:
                _transfer(url, part, expected_size, progress, timeout)
                break
            except _TransientError as exc:
                errors.append(str(exc))
        else:
            kept = f"; the partial file {part} is kept and the next call resumes it" if part.exists() else ""
            raise DownloadError(f"cannot download {url} after {retries + 1} attempt(s): "
                                f"{'; '.join(errors)}{kept}")
        _check_complete(url, part, sha256, expected_size)
        os.replace(part, dest)
    return dest


# ---------------------------------------------------------------------------------------------
# safe extraction
# ---------------------------------------------------------------------------------------------

def _member_target(archive: Path, dest: Path, name: str) -> Path:
    """Where a member named ``name`` would be written; refuses absolute paths and ``..``."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise UnsafeArchiveError(archive, name, "has an absolute path")
    if ".." in PurePosixPath(posix).parts:
        raise UnsafeArchiveError(archive, name, "has a '..' path component")
    target = (dest / posix).resolve()
    if target != dest and dest not in target.parents:
        raise UnsafeArchiveError(archive, name, f"would be written outside {dest}")
    return target


def _check_tar_member(archive: Path, dest: Path, member: tarfile.TarInfo) -> None:
    target = _member_target(archive, dest, member.name)
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise UnsafeArchiveError(archive, member.name, "is a device file or FIFO")
    if member.issym() or member.islnk():
        link = member.linkname.replace("\\", "/")
        if link.startswith("/"):
            raise UnsafeArchiveError(archive, member.name, f"links to the absolute path {link!r}")
        # Symlinks resolve from the member's folder, hard links from the archive root.
        base = target.parent if member.issym() else dest
        resolved = (base / link).resolve()
        if resolved != dest and dest not in resolved.parents:
            raise UnsafeArchiveError(archive, member.name, f"links outside {dest} (to {link!r})")


def _check_zip_member(archive: Path, dest: Path, info: zipfile.ZipInfo) -> None:
    _member_target(archive, dest, info.filename)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise UnsafeArchiveError(archive, info.filename, "is a symbolic link")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        raise UnsafeArchiveError(archive, info.filename, "is a device file or FIFO")


def _selected(name: str, prefixes: Sequence[str] | None) -> bool:
    return prefixes is None or any(name.replace("\\", "/").startswith(p) for p in prefixes)


def safe_extract(archive: PathLike, dest: PathLike, *, prefixes: Sequence[str] | None = None) -> list[Path]:
    """Unpack a zip or tar archive (``.zip``, ``.tar``, ``.tgz``, ``.tar.gz``, ``.tar.bz2``,
    ``.tar.xz``; the format is read from the file, not the name) into ``dest``.

    Every member is checked before anything is written; one bad member refuses the whole
    archive. Refused: absolute paths, ``..`` components, symbolic or hard links that lead outside
    ``dest`` (zip symlinks are refused outright), device files and FIFOs. Tar archives are then
    extracted with Python's ``filter="data"`` as a second line of defence.

    Args:
        archive: the archive file.
        dest: destination folder (created).
        prefixes: only extract members whose path starts with one of these (POSIX, e.g.
            ``"DIV2K_train_HR/"``); None extracts everything.

    Returns:
        The regular files written, sorted.

    Raises:
        UnsafeArchiveError: naming the first offending member. ValueError: not a zip or tar file.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    written: list[Path] = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _check_zip_member(archive, dest, info)
            for info in infos:
                if _selected(info.filename, prefixes):
                    path = Path(zf.extract(info, dest))
                    if not info.is_dir():
                        written.append(path)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            for member in members:
                _check_tar_member(archive, dest, member)
            chosen = [m for m in members if _selected(m.name, prefixes)]
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.12
                tf.extractall(dest, members=chosen, filter="data")
            else:  # pragma: no cover - older Pythons; the checks above are the protection
                tf.extractall(dest, members=chosen)
            written = [dest / m.name for m in chosen if m.isfile()]
    else:
        raise ValueError(f"{archive} is not a zip or tar archive")
    return sorted(written)


# ---------------------------------------------------------------------------------------------
# the set cache
# ---------------------------------------------------------------------------------------------

def _count_images(folder: Path) -> int:
    """Number of image files directly in ``folder`` (0 when it is missing or has none)."""
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir()
               if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file())


def _status(info: DatasetInfo, root: Path) -> tuple[str, int]:
    """("complete" | "subset" | "incomplete" | "missing", number of images) of a set under root."""
    folder = root / info.subdir
    n = _count_images(folder)
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
        if listed and n == len(listed) and all((folder / name).is_file() for name in names):
            return ("complete" if info.count in (None, n) else "subset"), n
    return "incomplete", n


def _search_roots(root: PathLike | None) -> list[Path]:
    if root is not None:
        return [Path(root).expanduser()]
    return [data_dir(), derived_dir("sets", create=False)]


def _verify(info: DatasetInfo, root: Path) -> None:
    """Check every file of a present set that its cache's manifest lists (HR and the LR
    folders beside it) against the manifest; unchanged files are hashed once per
    process."""
    from gmgan.data.mirror import set_folder

    verify_manifest(root, set_folder(info), recursive=True)


def locate(name: str | DatasetInfo, root: PathLike | None = None, *, verify: bool = True) -> Path | None:
    """The folder of a set's HR images if it is on disk (complete, or the subset a manifest
    lists), else None. Never uses the network.

    Args:
        name: registry name or :class:`DatasetInfo`.
        root: look only under this cache root (default: data cache, then ``derived_dir("sets")``).
        verify: check the files against the root's ``MANIFEST.tsv`` when it has one.

    Raises:
        ManifestError: the set is there but some files differ from the manifest.
    """
    info = get_info(name)
    for r in _search_roots(root):
        state, _ = _status(info, r)
        if state in ("complete", "subset"):
            if verify:
                _verify(info, r)
            return r / info.subdir
    return None


def _writable(folder: Path) -> bool:
    """Can files be created in ``folder`` (created if needed)?

    A folder without any write permission bit counts as read-only even when the process could
    write to it anyway (as root does): that is how a shared, read-only cache is marked.
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


def _install_root(root: PathLike | None) -> Path:
    if root is not None:
        return Path(root).expanduser()
    cache = data_dir()
    return cache if _writable(cache) else derived_dir("sets")


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


def _place(staged: Path, final: Path) -> None:
    """Move a fully built folder into place (replacing an incomplete one)."""
    if final.exists():
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, final)


def _write_marker(folder: Path, info: DatasetInfo, count: int, source: str, archive_sha256: str | None) -> None:
    record = {"name": info.name, "count": count, "source": source, "archive_sha256": archive_sha256,
              "installed": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (folder / MARKER_NAME).write_text(json.dumps(record, indent=1) + "\n")


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
        _write_marker(staged[0][0], info, n_hr, mirror.url, mirror.sha256 or sha256_file(archive))
        # Extra folders first, HR (with the completion marker) last.
        for folder, final, _ in reversed(staged):
            _place(folder, final)
        return n_hr
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _install(info: DatasetInfo, target: Path, progress: bool) -> None:
    """Download ``info`` from the first mirror that works and unpack it under ``target``; from
    the data mirror alone when ``GMGAN_DATA_MIRROR`` is set (:mod:`gmgan.data.mirror`)."""
    from gmgan.data.mirror import install_from_mirror, mirror_url

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


def _materialise_samples(info: DatasetInfo, target: Path) -> None:
    """Write scikit-image's bundled sample images as PNG (grey ones as RGB, R = G = B)."""
    import numpy as np
    import skimage.data

    work = Path(tempfile.mkdtemp(prefix=".samples-", dir=target))
    try:
        staged = work / "samples"
        for name in SAMPLE_IMAGES:
            img = np.asarray(getattr(skimage.data, name)())
            if img.ndim == 2:
                img = np.repeat(img[:, :, None], 3, axis=2)
            write_image(staged / f"{name}.png", img[:, :, :3].astype(np.uint8))
        _write_marker(staged, info, len(SAMPLE_IMAGES), "scikit-image " + skimage.__version__, None)
        _place(staged, target / info.subdir)
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
        _write_marker(staged, info, len(members), "+".join(info.parts), None)
        _place(staged, target / info.subdir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


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
        target = _install_root(root)
    final = target / info.subdir
    final.parent.mkdir(parents=True, exist_ok=True)
    # One lock per set: concurrent fetches of the same set wait here, then find it installed.
    with FileLock(str(final) + ".lock"):
        if _status(info, target)[0] in ("complete", "subset"):
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
    from gmgan.data.mirror import MIRROR_ENV, mirror_url
    from gmgan.online import OFFLINE_ENV, forced_offline, network_available

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
            from gmgan.data.mirror import mirror_url

            source = mirror_url() or info.urls[0]
            size = info.mirrors[0].size if info.mirrors and mirror_url() is None else None
            print(f"{info.name} is not in the data cache: downloading it"
                  f"{f' ({size / 2**30:.1f} GiB)' if size else ''} from {urlparse(source).netloc} into "
                  f"{_install_root(None) / info.subdir}", file=sys.stderr, flush=True)
    return fetch(info, progress=progress)


def dataset_dir(name_or_path: str | os.PathLike) -> Path:
    """A folder of HR images: a registry name (found or fetched, see :func:`fetch`) or a path.

    A string that is a registered name (case-insensitive) and contains no path separator is
    treated as a name (found, or downloaded on first use: :func:`require`); anything else must be an existing folder that holds images (sub-folders
    count, e.g. an ImageNet subset sorted by class).

    Raises:
        FileNotFoundError: neither a known set nor an existing folder (the message lists the
        known sets), or a known set that is missing and cannot be downloaded now. ValueError: the folder holds no images.
    """
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, str) and "/" not in text and os.sep not in text:
        try:
            info = get_info(text)
        except KeyError:
            info = None
        if info is not None:
            return require(info)
    path = Path(text).expanduser()
    if path.is_dir():
        list_images(path, recursive=True)  # raises ValueError when there is nothing to use
        return path
    raise FileNotFoundError(f"{text!r} is neither a known data set ({', '.join(DATASETS)}) "
                            f"nor an existing folder of images")


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def list_datasets(root: PathLike | None = None) -> list[dict]:
    """One row per registered set, for ``gmgan data list``. Does not use the network or hash files.

    Returns:
        Dicts with keys ``name``, ``kind``, ``expected`` (image count or None), ``present``
        (images on disk), ``status`` (``complete``, ``subset`` = the part a cache's manifest
        lists, ``incomplete``, ``missing``), ``location`` (folder, or ``"not cached"``),
        ``bytes`` (size on disk, or None) and ``download_bytes`` (archive size when known).
    """
    rows = []
    for info in DATASETS.values():
        best: tuple[str, int, Path | None] = ("missing", 0, None)
        for r in _search_roots(root):
            state, n = _status(info, r)
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
