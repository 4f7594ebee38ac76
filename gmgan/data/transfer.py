"""Moving bytes safely: resumable verified HTTP downloads, checked archive extraction.

- :func:`download` streams a URL to ``<dest>.part`` with a progress bar, resumes a
  partial file with an HTTP ``Range`` request (and starts over when the server ignores
  it), retries broken transfers, checks the sha256, then moves the file into place with
  ``os.replace``.
- :func:`safe_extract` unpacks zip and tar archives after checking every member: no
  absolute paths, no ``..``, no links leading outside the destination, no device files.
- :class:`DownloadError`, :class:`ChecksumError`, :class:`UnsafeArchiveError`: what goes
  wrong, each message naming the URL or archive member.

Nothing here knows about image sets; :mod:`gmgan.data.download` and
:mod:`gmgan.data.mirror` use it to install them.
"""
from __future__ import annotations

import http.client
import os
import stat
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import Sequence, Union

from filelock import FileLock
from tqdm.auto import tqdm

from gmgan.data.registry import sha256_file

__all__ = [
    "ChecksumError",
    "DownloadError",
    "RETRY_BACKOFF_S",
    "UnsafeArchiveError",
    "download",
    "safe_extract",
]

PathLike = Union[str, os.PathLike]

#: Seconds to wait before retry k (doubled each time); tests set it to 0.
RETRY_BACKOFF_S = 1.0
_CHUNK = 1 << 20
_USER_AGENT = "gmgan-downloader/0.1 (+https://github.com/gmgan-sr/gmgan)"


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
