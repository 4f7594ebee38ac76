"""One trainer per run folder: :class:`RunFolderLock` and :class:`RunFolderBusy`.

:func:`gmgan.training.setup` takes the lock on rank 0 of a training run and
:meth:`gmgan.training.Env.close` releases it.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import ClassVar

__all__ = ["RunFolderBusy", "RunFolderLock"]


class RunFolderBusy(RuntimeError):
    """Another training process (or this one) holds the run folder; the message names it."""


class RunFolderLock:
    """An exclusive lock of a run folder, so that one trainer at a time writes into it.

    Two trainers in one folder (say a ``--resume`` while the first run is still alive) would
    overwrite each other's config and logs and delete each other's temporary checkpoint folders.
    :meth:`acquire` takes an operating-system lock on ``<run_dir>/.gmgan-train.lock`` without
    waiting and writes the holder into the file (pid, host, start time, command line); a second
    trainer fails at once with :class:`RunFolderBusy` naming that holder.

    The lock is a POSIX record lock (``fcntl.lockf``), not ``flock``: a record lock belongs to
    the process that took it, is not inherited by ``fork()`` (DataLoader workers), and the
    kernel drops it the moment that process ends, also by ``kill -9``. So a file left behind by
    a killed trainer is only a note: the next trainer takes the lock and overwrites it; with
    ``flock`` the killed trainer's forked workers would hold the lock on until they noticed their
    parent's death. Record locks do not conflict within one process, and closing any descriptor
    of the file drops them, so this process keeps a table of the folders it holds (a second
    lock of one of them is refused) and opens the file only here. The file is never deleted
    (deleting a lock file lets two processes lock two different files of one name); it is
    emptied on :meth:`release`. Where ``fcntl`` does not exist (Windows) no lock is taken; on a
    file system without locks (some network / FUSE mounts) neither, with a warning.

    Use ``lock = RunFolderLock(run_dir).acquire(); ...; lock.release()`` or ``with
    RunFolderLock(run_dir): ...``. :func:`setup` takes it on rank 0 of a training run.
    """

    FILE_NAME = ".gmgan-train.lock"
    _held: ClassVar[dict[str, RunFolderLock]] = {}  # realpath of a folder -> its lock, this process

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / self.FILE_NAME
        self._key = os.path.realpath(self.run_dir)
        self._fd: int | None = None

    def acquire(self) -> RunFolderLock:
        """Take the lock (creating the folder if needed) or raise :class:`RunFolderBusy`."""
        try:
            import fcntl
        except ImportError:  # Windows: no record locks through fcntl
            return self
        if self._key in self._held:
            raise RunFolderBusy(f"{self.run_dir} is already in use by this process (pid {os.getpid()}): "
                                f"{self._advice()}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # no O_TRUNC: keep the holder's note
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.pread(fd, 4096, 0)
            os.close(fd)
            if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                # Some network and FUSE file systems have no locks: train, but say what is missing.
                warnings.warn(f"{self.path}: the file system cannot lock files ({err.strerror}); "
                              f"nothing stops a second trainer from using {self.run_dir} at the "
                              f"same time", RuntimeWarning, stacklevel=3)
                return self
            if err.errno not in (errno.EACCES, errno.EAGAIN):
                raise OSError(f"could not lock {self.path}: {err.strerror or err}") from err
            raise RunFolderBusy(f"{self.run_dir} is in use by another training process "
                                f"({self._describe(holder)}): {self._advice()}") from None
        note = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(note) + "\n").encode(), 0)
        self._fd = fd
        self._held[self._key] = self
        return self

    def release(self) -> None:
        """Empty the file and drop the lock (closing the descriptor drops it); idempotent."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)
        self._fd = None
        self._held.pop(self._key, None)

    def __enter__(self) -> RunFolderLock:  # noqa: PYI034
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    @staticmethod
    def _describe(raw: bytes) -> str:
        """'pid 123 on host h, started ..., command ...' from the holder's note."""
        try:
            note = json.loads(raw.decode())
            where = f"pid {note['pid']} on host {note['host']}"
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return "it has not written its pid yet"
        command = str(note.get("command", "?"))
        if len(command) > 160:
            command = command[:157] + "..."
        return f"{where}, started {note.get('started', '?')}: {command}"

    def _advice(self) -> str:
        return ("two trainers in one run folder delete each other's checkpoints. Wait for that "
                "run to end (or stop it), then continue it with --resume (resume=True); or train "
                "into another folder (--name / --out-dir).")
