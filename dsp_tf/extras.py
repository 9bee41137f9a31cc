"""Which optional parts of the install are there (setup.py's extras), asked without importing them.

The library's own floor: the launchers a user types (``python -m dsp_tf.train``) ask here before
they import the command-line floor, and the agent layer asks before it imports an environment's
package, so a core-only install says what to pip install instead of an ImportError traceback.
"""
from __future__ import annotations

import importlib.util
import sys
from typing import Optional


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
