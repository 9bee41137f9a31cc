"""Shared command-line plumbing: one-line errors, console output, exit codes (flagfiles: flagfiles.py).

Every entry point (train, evaluate, sweep, report, tflite_export) runs through
``run``, so they all find ``--flagfile=hopper.cfg`` in ``configs/`` (flagfiles.py), refuse a
missing or malformed flagfile the same way, and end the same way when things go
wrong, with one line instead of a traceback:

- a UsageError: ``prog: error: message``, exit code 2;
- a full disk (or a file size limit): ``prog: error: disk full: …``, exit code 1;
  the writers themselves (atomic writes, staged directories, the run directory)
  remove their partial files, so what was there before is left as it was;
- Ctrl-C (SIGINT) or SIGTERM: ``prog: stopped by SIGINT after env step N of M; …``,
  exit code 130 or 143 (128 + the signal, as a shell reports it).

Log lines at a terminal are for a person (``step 2048/4096 (50%) | …``,
``warning: …``); anywhere else, and in absl's log files (``--log_dir``), they keep
absl's prefix (level, time, thread, file:line).
"""
from __future__ import annotations

import contextlib
import errno
import logging as py_logging
import os
import re
import signal
import sys
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

from absl import app, flags
from absl import logging as absl_logging

from dsp_cli.flagfiles import expand_flagfiles
from dsp_tf.errors import UsageError
from dsp_tf.extras import fail
from dsp_tf.stopping import Stopped, catch_signals

# ---- console output ------------------------------------------------------------------------
class ConsoleFormatter(py_logging.Formatter):
    """A log line for a person at a terminal: the message alone, a warning or an error marked
    by one word. absl's prefix (``I1203 07:21:17.096249 140169045109632 training.py:366] ``)
    tells a log file's reader when and where; at a terminal it buries the message."""

    MARKS = {py_logging.WARNING: "warning: ", py_logging.ERROR: "error: ", py_logging.CRITICAL: "fatal: "}

    def format(self, record: py_logging.LogRecord) -> str:
        mark = next((m for level, m in sorted(self.MARKS.items(), reverse=True) if record.levelno >= level), "")
        return mark + super().format(record)


class _LogFile(absl_logging.PythonHandler):
    """absl's log file (``--log_dir``), with absl's full prefix; the file only, since the
    console has its own handler (absl's would copy some records to stderr again)."""

    def emit(self, record: py_logging.LogRecord) -> None:
        py_logging.StreamHandler.emit(self, record)


#: Where a long command last said it was: "step N/M (…)" progress lines, "validation at step N",
#: "resumed from … at env step N". Read from the log lines because this floor must not know the
#: agent layer (tests/test_layering.py); tests/ pin those phrases.
_STEP_OF_TOTAL = re.compile(r"^step (\d+)/(\d+)\b")
_AT_STEP = re.compile(r"\bat (?:env )?step (\d+)\b")


class Position(py_logging.Handler):
    """Remembers the last env step (and the total) the log lines named, for the line an
    interrupted command ends with."""

    def __init__(self) -> None:
        super().__init__(py_logging.INFO)
        self.step: Optional[int] = None
        self.total: Optional[int] = None

    def emit(self, record: py_logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is not ours to report
            return
        match = _STEP_OF_TOTAL.match(text)
        if match:
            self.step, self.total = int(match.group(1)), int(match.group(2))
            return
        match = _AT_STEP.search(text)
        if match and record.levelno < py_logging.ERROR:
            self.step = int(match.group(1))

    def describe(self) -> str:
        if self.step is None:
            return ""
        return f" after env step {self.step}" + (f" of {self.total}" if self.total else "")


def set_up_console(prog: str, stream=None) -> Position:
    """Plain log lines on stderr when it is a terminal, absl's prefixed lines otherwise (a file,
    a pipe, a sweep reading its runs); with ``--log_dir`` the prefixed lines also go to absl's
    log file there. Returns the handler that follows the env step for an interrupted run."""
    stream = sys.stderr if stream is None else stream
    handler = absl_logging.get_absl_handler()
    if stream.isatty():
        handler.setFormatter(ConsoleFormatter())
    root = py_logging.getLogger()
    log_dir = flags.FLAGS["log_dir"].value if "log_dir" in flags.FLAGS else ""
    if log_dir:
        log_file = _LogFile()
        try:
            os.makedirs(log_dir, exist_ok=True)
            log_file.start_logging_to_file(program_name=prog, log_dir=log_dir)
        except Exception as e:  # noqa: BLE001 - absl raises ValueError or OSError for a bad --log_dir
            raise UsageError(f"cannot write a log file into --log_dir '{log_dir}': "
                             f"{getattr(e, 'strerror', None) or e}") from None
        root.addHandler(log_file)
    position = Position()
    root.handlers.insert(0, position)  # before the line is written: a signal may arrive while it is
    return position


class _Prefix(py_logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: py_logging.LogRecord) -> bool:
        record.msg = self.prefix + str(record.msg)
        return True


@contextlib.contextmanager
def log_prefix(prefix: str) -> Iterator[None]:
    """Every console and log-file line inside the block starts with ``prefix`` (a size search's
    ``rung 2/6 (ratio 0.93) | ``), added on absl's handler: Position reads the lines unprefixed."""
    handler = absl_logging.get_absl_handler()
    prefixer = _Prefix(prefix)
    handler.addFilter(prefixer)
    try:
        yield
    finally:
        handler.removeFilter(prefixer)


def key_flags(names: Sequence[str]) -> None:
    """The flags ``--help`` lists for the command a user typed. absl lists the main module's own flags;
    the command's are defined here, below its launcher, so they are declared key flags of it (--helpfull
    lists every flag)."""
    for name in names:
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])


def own_flags_are_key(module: str) -> None:
    """``key_flags`` for every flag ``module`` (its import name) defines: a command whose flags are all its own."""
    key_flags([flag.name for flag in flags.FLAGS.get_flags_for_module(module)])


def portable_path(path: str) -> str:
    """A path as a written report keeps it: relative to the working directory (the repository, for
    the reports in docs/) when it lies inside it, else its last component, so no file records where
    one machine kept things."""
    rel = os.path.relpath(os.path.abspath(path))
    return os.path.basename(os.path.normpath(path)) if rel == ".." or rel.startswith(".." + os.sep) else rel


# ---- how a command ends ----------------------------------------------------------------------
#: errno values of a write that found no room: a full disk, a file size limit (ulimit -f), a quota.
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DISK_FULL_TEXT = re.compile(r"(?:(\S+): |(\S+); )?(" + "|".join(
    re.escape(os.strerror(n)) for n in sorted(DISK_FULL_ERRNOS)) + ")")


def disk_full(error: BaseException) -> Optional[Tuple[str, str]]:
    """(file, reason) when ``error`` or an error it came from is a write that found no room; None
    otherwise. TensorFlow and h5py report one as their own exception types (TensorFlow as
    OutOfRangeError or ResourceExhaustedError) whose text carries the OS's message."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
            return str(error.filename or ""), error.strerror or os.strerror(error.errno)
        match = _DISK_FULL_TEXT.search(str(error))
        if match:
            return match.group(1) or match.group(2) or "", match.group(3)
        error = error.__cause__ or error.__context__
    return None


def disk_full_message(path: str, reason: str) -> str:
    """The line a command that ran out of room ends with. Every writer of the project cleans up
    after itself (dsp_tf.files, the run directory's exit hook), which is what the line promises."""
    where = f" writing '{path}'" if path else ""
    return (f"disk full{where} ({reason}); partial files were removed and what was there before is kept: "
            "free some space (or raise the file size limit) and run the same command again")


def stopped_message(signum: int, position: Optional[Position]) -> str:
    """``stopped by SIGINT (Ctrl-C) after env step N of M; run the same command to resume …``: where
    it stopped when the command logged env steps (training), and how to go on."""
    where = position.describe() if position is not None else ""
    how = " (Ctrl-C)" if signum == signal.SIGINT else ""
    return (f"stopped by {signal.Signals(signum).name}{how}{where}; run the same command to resume"
            + (" from the last checkpoint" if where else ""))


def run(main: Callable[[], None], prog: str, argv: Optional[List[str]] = None) -> None:
    """Parses flags (flagfiles expanded) and runs ``main``, ending in one line when it cannot
    finish: UsageError → exit 2, a full disk → exit 1, SIGINT/SIGTERM → exit 130/143."""
    argv = list(sys.argv if argv is None else argv)

    def parse(args):
        try:
            return flags.FLAGS(expand_flagfiles(args))
        except (UsageError, flags.Error) as e:
            fail(prog, str(e).splitlines()[0])

    def wrapped(_):
        position = None
        try:
            catch_signals()
            position = set_up_console(prog)
            main()
        except UsageError as e:
            fail(prog, str(e))
        except (KeyboardInterrupt, Stopped) as e:
            signum = e.signum if isinstance(e, Stopped) else signal.SIGINT
            with contextlib.suppress(ValueError):  # a second signal must not cut the clean-up short
                for s in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(s, signal.SIG_IGN)
            print(f"{prog}: {stopped_message(signum, position)}", file=sys.stderr)
            sys.exit(128 + signum)
        except Exception as e:  # noqa: BLE001 - only a full disk is handled; anything else is re-raised
            full = disk_full(e)
            if full is None:
                raise
            print(f"{prog}: error: {disk_full_message(*full)}", file=sys.stderr)
            sys.exit(1)

    app.run(wrapped, argv=argv, flags_parser=parse)
