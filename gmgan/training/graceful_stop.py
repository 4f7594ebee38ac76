"""Ctrl-C and SIGTERM stop training after the step in progress
(:class:`GracefulStop`)."""
from __future__ import annotations

import signal
import threading
from typing import Any

from gmgan.training.console import LOG

__all__ = ["GracefulStop"]

# The signals that stop training gracefully, and how messages name them.
_STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class GracefulStop:
    """Context manager: the first Ctrl-C (SIGINT) or SIGTERM only sets ``requested``;
    the trainer finishes the step, writes a checkpoint and returns. A second Ctrl-C
    interrupts at once. SIGTERM is what ``kill``, ``docker stop`` and Slurm preemption
    send (torchrun passes it on to every rank, each of which stops here; the ranks agree
    on the step through ``env.any_true``). A repeated SIGTERM changes nothing: senders
    repeat it (Slurm signals the workers and torchrun forwards its own copy) and follow
    it with SIGKILL when they will wait no longer. The previous handlers are restored on
    exit. Outside the main thread (where signals cannot be caught) it does nothing."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:
        if self.requested:
            if signum == signal.SIGINT:
                signal.signal(signal.SIGINT, self._previous.get(signal.SIGINT)
                              or signal.default_int_handler)
                raise KeyboardInterrupt
            return  # a repeated SIGTERM: the checkpoint is already on its way
        self.requested = True
        name = _STOP_SIGNALS.get(signum, f"signal {signum}")
        again = ("Ctrl-C again to abort without one" if signum == signal.SIGINT
                 else "Ctrl-C to abort without one")
        LOG.warning(f"\n{name}: finishing this step and writing a checkpoint ({again})")

    def __enter__(self) -> GracefulStop:  # noqa: PYI034
        if threading.current_thread() is threading.main_thread():
            for signum in _STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            # None: a handler not installed from Python; the default is the best guess
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous = {}
