"""Writes that say which file found no room.

The command's one-line error for a full disk or a file size limit names the file
it was writing (dsp_cli.cli.disk_full_message), and it can only name one the
error carries. An OSError from ``write`` carries none, and a compiler or linker
that runs out of room is a failed subprocess, not an OSError at all (under
``ulimit -f`` it is killed by SIGXFSZ). Everything the exporter writes, to its
scratch directories or to the output, therefore goes through here: the error
that reaches the command names the file, and which disk is full matters (the
scratch files go to the temporary directory's disk, not to --output_dir's).
"""
from __future__ import annotations

import errno
import os
import signal
import subprocess
from typing import Union

#: errno values of a write that found no room: a full disk, a file size limit (ulimit -f), a quota.
OUT_OF_ROOM_ERRNOS = (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC))
#: How a compiler reports that the kernel killed it for writing past ``ulimit -f`` (SIGXFSZ).
_SIGXFSZ_TEXT = "File size limit exceeded"


def write_file(path: str, data: Union[str, bytes]) -> None:
    """Writes ``data`` (text as UTF-8) to ``path``; a failed write raises an OSError naming ``path``."""
    try:
        with open(path, "wb" if isinstance(data, bytes) else "w",
                  encoding=None if isinstance(data, bytes) else "utf-8") as f:
            f.write(data)
    except OSError as e:
        if e.filename is not None:
            raise
        raise OSError(e.errno, e.strerror, path) from None


def is_out_of_room(error: BaseException) -> bool:
    """Whether ``error`` is a write that found no room (a full disk, a size limit, a quota): such an
    error must end the command, not be noted in a report as "not measured" and passed over."""
    return isinstance(error, OSError) and error.errno in OUT_OF_ROOM_ERRNOS


def check_tool_run(result: subprocess.CompletedProcess, output: str) -> None:
    """Raises an OSError naming ``output`` (the file the tool was writing) when a failed compiler,
    assembler or linker run ran out of room; returns otherwise, and the caller reports the failure
    its own way. A tool killed by SIGXFSZ, or one whose helper was (gcc: "ld terminated with signal
    25 [File size limit exceeded]"), hit the file size limit; one that printed the OS's message for
    a full disk or a quota found no room."""
    if result.returncode == 0:
        return
    text = f"{result.stdout or ''}\n{result.stderr or ''}"
    if result.returncode == -signal.SIGXFSZ or _SIGXFSZ_TEXT in text:
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), output)
    for number in OUT_OF_ROOM_ERRNOS:
        if os.strerror(number) in text:
            raise OSError(number, os.strerror(number), output)
