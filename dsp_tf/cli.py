"""Shared command-line plumbing: flagfile lookup and one-line errors.

Every entry point (train, evaluate, sweep, report, tflite_export) runs through
``run``, so they all find ``--flagfile=hopper.cfg`` in ``configs/``, refuse a
missing or malformed flagfile the same way, and turn a UsageError into
``prog: error: message`` with exit code 2 instead of a traceback.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from typing import Callable, List, Optional

from absl import app, flags

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


def run(main: Callable[[], None], prog: str, argv: Optional[List[str]] = None) -> None:
    """Parses flags (flagfiles expanded) and runs ``main``; UsageError → one line, exit 2."""
    argv = list(sys.argv if argv is None else argv)

    def parse(args):
        try:
            return flags.FLAGS(expand_flagfiles(args))
        except (UsageError, flags.Error) as e:
            fail(prog, str(e).splitlines()[0])

    def wrapped(_):
        try:
            main()
        except UsageError as e:
            fail(prog, str(e))

    app.run(wrapped, argv=argv, flags_parser=parse)
