"""What a method trains with on an environment, as the shipped flagfiles say.

A λ or ranking chosen by a protocol is written once, in configs/<slug>.cfg or configs/<slug>_<method>.cfg;
the sweep trains from it, the report judges the headline cell by it, and shrink gives a student the settings
of the student's method from it (a dense teacher's own config says λ = 0). All of them read it here.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, TypeVar

from agents.config import RunConfig
from agents.envs import env_slug
from dsp_cli.flagfiles import env_flagfile, flagfile_value, shipped_flagfile
from dsp_tf.errors import UsageError
from dsp_tf.methods import DEFAULT_RANKING, Method, get_method
from dsp_tf.regularizers import check_strength

T = TypeVar("T")


def shipped_value(path: str, flag: str, parse: Callable[[str], T], what: str) -> Optional[T]:
    """``--flag`` as the flagfile at ``path`` (with the ones it includes) sets it, parsed; None when it
    does not set it. A value ``parse`` refuses stops the command in one line naming the file."""
    value = flagfile_value(path, flag)
    if value is None:
        return None
    try:
        return parse(value)
    except ValueError:
        raise UsageError(f"{path}: --{flag} must be {what}, got '{value}'") from None


def shipped_ranking(slug: str, method: str) -> str:
    """The cross-layer ranking a method trains with on an environment: its flagfile's, else the default."""
    return flagfile_value(shipped_flagfile(slug, method), "ranking") or DEFAULT_RANKING


def shipped_reg_strength(slug: str, method: str) -> float:
    """The λ a method trains with on an environment: its flagfile's, else the trainer's default. Checked
    as --reg_strength is, so a bad flagfile stops a sweep before any run instead of failing each."""
    lam = shipped_value(shipped_flagfile(slug, method), "reg_strength", check_strength,
                        "a finite number >= 0")
    return RunConfig.reg_strength if lam is None else lam


def known_method(name: str) -> Method:
    """The method called ``name``; an unknown one stops the command in one line."""
    try:
        return get_method(name)
    except ValueError as e:
        raise UsageError(f"--method: {e}") from None


def method_settings(env: str, method: str) -> Dict[str, object]:
    """λ for ``method`` on gym id ``env``, as the sweep would train it: from the environment's shipped
    flagfile, or RunConfig's default for an environment that has none; nothing for a method without a
    penalty, so nothing else of the caller's changes. (A student's ranking is shrink's own choice.)"""
    m = known_method(method)
    slug = env_slug(env)
    try:
        env_flagfile(slug)
    except UsageError:
        shipped = False
    else:
        shipped = True
    settings: Dict[str, object] = {}
    if m.penalized:
        settings["reg_strength"] = shipped_reg_strength(slug, method) if shipped else RunConfig.reg_strength
    return settings


def shipped_int(env: str, flag: str) -> Optional[int]:
    """The integer the environment's own flagfile (configs/<slug>.cfg) sets ``--flag`` to; None when the
    environment has no flagfile or it does not set the flag."""
    try:
        path = env_flagfile(env_slug(env))
    except UsageError:
        return None
    return shipped_value(path, flag, int, "an integer")
