"""Shared command-line plumbing: flagfile lookup, one-line errors, console output.

Every entry point (train, evaluate, sweep, report, tflite_export) runs through
``run``, so they all find ``--flagfile=hopper.cfg`` in ``configs/``, refuse a
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
import importlib.util
import logging as py_logging
import os
import re
import signal
import sys
from typing import Callable, Iterator, List, Optional, Tuple

from absl import app, flags
from absl import logging as absl_logging

from dsp_tf.errors import UsageError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIRS = (os.path.join(os.getcwd(), "configs"), os.path.join(REPO_ROOT, "configs"))


def find_flagfile(name: str, relative_to: Optional[str] = None) -> str:
    candidates = [name]
    if relative_to:
        candidates.append(os.path.join(relative_to, name))
    candidates += [os.path.join(d, name) for d in CONFIG_DIRS]
    candidates += [c + ".cfg" for c in candidates if not c.endswith(".cfg")]
    for path in candidates:
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise UsageError(f"flagfile '{name}' not found (looked in ., configs/)")


def _read_flagfile(path: str, depth: int = 0) -> List[str]:
    if depth > 10:
        raise UsageError(f"flagfile '{path}' includes itself (nesting deeper than 10)")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read flagfile '{path}': {e}") from None
    out: List[str] = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith("//"):
            continue
        if not line.startswith("--") or line == "--" or " " in line.split("=", 1)[0]:
            raise UsageError(f"malformed flagfile '{path}' line {number}: '{line}' (expected --name=value)")
        out.extend(_expand([line], os.path.dirname(os.path.abspath(path)), depth + 1))
    return out


def _expand(args: List[str], relative_to: Optional[str], depth: int) -> List[str]:
    out: List[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--flagfile=") or arg == "--flagfile":
            if arg == "--flagfile":
                if i + 1 >= len(args):
                    raise UsageError("--flagfile needs a file name")
                name, i = args[i + 1], i + 1
            else:
                name = arg.split("=", 1)[1]
            out.extend(_read_flagfile(find_flagfile(name, relative_to), depth))
        else:
            out.append(arg)
        i += 1
    return out


def expand_flagfiles(argv: List[str]) -> List[str]:
    """Inlines flagfiles in place, so later command-line flags override them."""
    return argv[:1] + _expand(argv[1:], None, 0)


def flagfile_value(name: str, flag: str) -> Optional[str]:
    """What a flagfile, with the flagfiles it includes, sets ``--flag`` to (absl keeps the last value);
    None if it does not set it. Tools that read a shipped setting read it here, from the flagfile."""
    args = expand_flagfiles(["prog", f"--flagfile={name}"])
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{flag}=")]
    return values[-1] if values else None


#: Modules whose presence shows that an extra of setup.py is installed.
EXTRA_MODULES = {"rl": ("tf_agents", "gymnasium"), "report": ("matplotlib",), "export": ("tflite_micro",),
                 "driving": ("highway_env",)}


def missing_extra(extra: str) -> Optional[str]:
    """What to tell a user whose install lacks ``extra`` ("the 'x' extra (… not installed): pip install …"),
    or None when it is there. Found without importing anything, so the check is cheap and quiet."""
    missing = [m for m in EXTRA_MODULES[extra] if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return f"the '{extra}' extra ({', '.join(missing)} not installed): pip install 'dsp-tf[{extra}]'"


def require_extras(prog: str, *extras: str) -> None:
    """One line and exit 2 when a command needs an extra the install lacks.

    A core-only install (the library on current TensorFlow) has no RL stack;
    without this check its users would meet an ImportError traceback.
    """
    for extra in extras:
        message = missing_extra(extra)
        if message:
            fail(prog, f"this command needs {message}")


def fail(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(2)


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


def _catch_signals() -> None:
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
    global _deferring
    previous, _deferring = _deferring, True
    try:
        yield
    finally:
        _deferring = previous
    stop_point()


def stop_point() -> None:
    """Raises ``Stopped`` for a signal received since the last call."""
    global _pending
    if _pending is not None:
        signum, _pending = _pending, None
        raise Stopped(signum)


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
            _catch_signals()
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
