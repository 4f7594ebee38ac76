"""What the trainer says while it runs, through :mod:`logging`.

Loggers: ``gmgan.train`` for the trainer's lines, and its child ``gmgan.train.setup``
for the start-up line (it names the run folder, the device and the speed mode). Levels:

* INFO: the start-up line, a phase's own lines (``[gan] l_P uses a random VGG19: ...``,
  ``[pretrain] resuming from ...``);
* WARNING: what stops or skips something (Ctrl-C / SIGTERM received, the stop with its
  resume hint, NIQE skipped at the final validation);
* DEBUG: each logged step and each validation row (the contents of ``log.jsonl`` /
  ``val.jsonl``), shown only when asked for.

Python warnings (a non-finite loss, a checkpoint not written) stay :mod:`warnings`, and
the tqdm progress bar stays a progress bar (``TrainConfig.progress``).

:func:`gmgan.training.setup` calls :func:`use_stderr`: ``gmgan.train`` gets, once, a
handler that writes each message as it is (format ``%(message)s``) to the
``sys.stderr`` of that moment, and level INFO unless its level was set before. So
``gmgan train`` prints what it printed before the trainer used logging. Nothing is
added to the root logger; records still propagate to it, so an application's own
logging configuration sees them too. For example::

    logging.getLogger("gmgan.train.setup").setLevel(logging.WARNING)  # no start-up line
    logging.getLogger("gmgan.train").setLevel(logging.WARNING)  # warnings only
    logging.getLogger("gmgan.train").setLevel(logging.DEBUG)  # every logged step too
    with messages_to(print):  # on stdout instead of stderr
        train(cfg)
"""
from __future__ import annotations

import contextlib
import logging
import sys
import textwrap
from collections.abc import Callable, Iterator

__all__ = ["LOG", "SETUP_LOG", "messages_to", "use_stderr"]

#: The trainer's logger.
LOG = logging.getLogger("gmgan.train")
#: The start-up line's logger (silence it alone with ``setLevel(logging.WARNING)``).
SETUP_LOG = logging.getLogger("gmgan.train.setup")


class _CurrentStderr(logging.StreamHandler):
    """A stream handler that writes to ``sys.stderr`` as it is when a message comes,
    like ``print(..., file=sys.stderr)``: ``contextlib.redirect_stderr`` and pytest's
    ``capsys`` catch its lines (a plain StreamHandler keeps the stream it was made
    with)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):  # logging.StreamHandler's attribute, read at each message
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it: not kept
        pass


class _Callback(logging.Handler):
    """Each message (formatted ``%(message)s``) to ``write(text)``, wrapped to
    ``width`` columns when one is given."""

    def __init__(self, write: Callable[[str], object], width: int | None = None) -> None:
        super().__init__()
        self.write = write
        self.width = width
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if self.width:
                # continuation lines indented, so that a wrapped message reads as one
                text = "\n".join(
                    textwrap.fill(line, self.width, subsequent_indent="      ")
                    for line in text.splitlines())
            self.write(text)
        except Exception:  # noqa: BLE001 - logging's rule: a handler never raises
            self.handleError(record)


_STDERR = _CurrentStderr()
_redirected = 0  # how many messages_to blocks are open


def _default_level() -> None:
    if LOG.level == logging.NOTSET:  # a level set by the user stays
        LOG.setLevel(logging.INFO)


def use_stderr() -> None:
    """Print the trainer's messages on stderr: the handler of the module doc, added to
    ``gmgan.train`` once (calling this again adds nothing), not inside
    :func:`messages_to`."""
    _default_level()
    if not _redirected and _STDERR not in LOG.handlers:
        LOG.addHandler(_STDERR)


@contextlib.contextmanager
def messages_to(write: Callable[[str], object], *, width: int | None = None
                ) -> Iterator[None]:
    """Inside the block the trainer's messages go to ``write(text)`` (one call a
    message, without a line end) instead of stderr; other handlers of ``gmgan.train``
    stay. Example: ``with messages_to(print): train(cfg)`` prints them on stdout.

    ``width``: wrap each message to this many columns (continuation lines indented by
    six spaces), e.g. to fit a notebook's printed output to the page."""
    global _redirected
    _default_level()
    had_stderr = _STDERR in LOG.handlers
    LOG.removeHandler(_STDERR)
    handler = _Callback(write, width)
    LOG.addHandler(handler)
    _redirected += 1
    try:
        yield
    finally:
        _redirected -= 1
        LOG.removeHandler(handler)
        if had_stderr:
            LOG.addHandler(_STDERR)
