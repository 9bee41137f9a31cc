"""Flagfiles: ``--flagfile=hopper.cfg`` found in configs/, nested flagfiles read relative to the one
that includes them, one clear line for a missing or malformed one; and which flagfile holds an
environment's settings, or a method's own on it (configs/<slug>_<method>.cfg over configs/<slug>.cfg).

absl reads flagfiles too, but resolves a nested one against the working directory and passes a
malformed line on as an argument; the shipped configs include each other by relative name, so the
command floor expands them here and hands absl the flags alone.
"""
from __future__ import annotations

import os
from typing import List, Optional

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


def env_flagfile(slug: str) -> str:
    """Path of the environment's flagfile, configs/<slug>.cfg; UsageError naming it when there is none.

    A sweep's environment is any flagfile name (it sets --env), so ``slug`` need not be registered."""
    return find_flagfile(f"{slug}.cfg")


def shipped_flagfile(slug: str, method: str) -> str:
    """Where a method's settings on an environment are written: configs/<slug>_<method>.cfg when the
    method has its own there (λ is chosen per method and environment), else configs/<slug>.cfg. The
    sweep trains from it and the report judges by it, so a chosen λ or ranking is written once."""
    try:
        return find_flagfile(f"{slug}_{method}.cfg")
    except UsageError:
        return env_flagfile(slug)
