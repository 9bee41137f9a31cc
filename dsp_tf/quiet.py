"""Keeping what C++ code under TensorFlow prints out of a user's terminal.

Some of TensorFlow 2.15's native code writes straight to the process's stdout
and stderr whatever the log level: XLA's notices at the first compile, the
TFLite converter's op summary. A user cannot act on them, and Python cannot
filter them, so the block that triggers them runs with file descriptors 1 and 2
captured; lines ``keep`` accepts are passed on (each to the stream it was
written to), and if the block raises, everything is, so a failure keeps its
context.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import tempfile
from typing import Callable, Iterator

_LIBC = ctypes.CDLL(None)


def _flush_all() -> None:
    """Python's and C's buffers, so nothing written before or inside crosses the switch."""
    sys.stdout.flush()
    sys.stderr.flush()
    _LIBC.fflush(None)


@contextlib.contextmanager
def quiet_native_output(keep: Callable[[str], bool] = lambda line: False) -> Iterator[None]:
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    failed = False
    with contextlib.ExitStack() as stack:
        captured = {fd: stack.enter_context(tempfile.TemporaryFile()) for fd in (1, 2)}
        saved = {}
        try:
            _flush_all()
            for fd, file in captured.items():
                saved[fd] = os.dup(fd)
                os.dup2(file.fileno(), fd)
            tf_logger.setLevel(logging.ERROR)  # TensorFlow's Python INFO/WARNING chatter of the same block
            yield
        except BaseException:
            failed = True
            raise
        finally:
            tf_logger.setLevel(level)
            _flush_all()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            for fd, file in captured.items():
                file.seek(0)
                stream = sys.stdout if fd == 1 else sys.stderr
                for line in file.read().decode(errors="replace").splitlines(keepends=True):
                    if failed or keep(line):
                        stream.write(line)
                stream.flush()
