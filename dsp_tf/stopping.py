"""How a command stops on SIGINT/SIGTERM: by an exception its writers unwind through (they remove
their partial files), raised where the loop chose (``stop_point``) rather than wherever Python is.

The library's floor because the training loop (agent layer) marks its stop points; the command
floor (``dsp_cli.cli.run``) installs the handler and turns ``Stopped`` into one line and exit 128+N.
"""
from __future__ import annotations

import contextlib
import signal
from typing import Iterator, Optional


class Stopped(BaseException):
    """Raised for SIGINT/SIGTERM once the command has installed its handler, so a stopped command
    unwinds like an interrupted one (writers remove their partial files) instead of dying mid-write."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


#: The signal received while a ``stop_points()`` block runs, raised at its next ``stop_point()``.
_pending: Optional[int] = None
_deferring = False


def _on_signal(signum, _frame):
    """An exception raised at an arbitrary bytecode can land inside TensorFlow's C++-called Python
    (an attribute read of the eager context), which turns it into an unrelated TypeError and a
    traceback; inside ``stop_points()`` the signal therefore waits for a point the loop chose.
    A second signal does not wait: someone pressing Ctrl-C twice wants out now."""
    global _pending
    if _deferring and _pending is None:
        _pending = signum
        return
    raise Stopped(signum)


def catch_signals() -> None:
    """SIGINT and SIGTERM through ``_on_signal``; each left alone when the caller ignores it (a
    background job's SIGINT) or handles it itself."""
    try:
        for signum, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
            if signal.getsignal(signum) == default:
                signal.signal(signum, _on_signal)
    except ValueError:  # not the main thread (run called from a thread): signals stay as they are
        pass


@contextlib.contextmanager
def stop_points() -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM stop the command at the next ``stop_point()`` (e.g. the top
    of a training iteration) rather than wherever Python happens to be; one still pending when the
    block ends is raised then. Without ``run``'s handler (a library call) nothing changes."""
    global _deferring, _pending
    previous, _deferring = _deferring, True
    try:
        yield
    except BaseException:
        if not previous:  # the block failed anyway: a held signal must not stop a later block of the process
            _pending = None
        raise
    finally:
        _deferring = previous
    stop_point()


def stop_point() -> None:
    """Raises ``Stopped`` for a signal received since the last call."""
    global _pending
    if _pending is not None:
        signum, _pending = _pending, None
        raise Stopped(signum)
