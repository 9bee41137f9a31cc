"""absl flags generated from a dataclass, so each setting is declared once (``agents.config.RunConfig``)
and a flag, its default and its help text cannot drift apart from the run's config.json.

It lives on the command-line floor: the library and the agent layer know nothing of flags.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Callable, Dict, Type

from absl import flags

from dsp_tf.errors import UsageError

#: absl's definer per field type; a list field is a comma-separated list of integers (layer sizes).
_DEFINERS: Dict[Any, Callable] = {bool: flags.DEFINE_boolean, int: flags.DEFINE_integer,
                                  float: flags.DEFINE_float, str: flags.DEFINE_string}


def _is_int_list(kind: Any) -> bool:
    return typing.get_origin(kind) is list and typing.get_args(kind) == (int,)


def _kinds(dataclass_type: Type) -> Dict[str, Any]:
    """Field name → its resolved type (``from __future__ import annotations`` leaves them as strings)."""
    hints = typing.get_type_hints(dataclass_type)
    kinds = {}
    for f in dataclasses.fields(dataclass_type):
        kind = hints[f.name]
        if kind not in _DEFINERS and not _is_int_list(kind):
            raise TypeError(f"{dataclass_type.__name__}.{f.name}: no flag for a field of type {kind}")
        kinds[f.name] = kind
    return kinds


def define_flags_from(dataclass_type: Type, skip=()) -> None:
    defaults = dataclass_type()
    for name, kind in _kinds(dataclass_type).items():
        if name in skip or name in flags.FLAGS:
            continue
        f = dataclass_type.__dataclass_fields__[name]
        default, help_text = getattr(defaults, name), f.metadata.get("help", name)
        if _is_int_list(kind):
            flags.DEFINE_list(name, [str(v) for v in default], help_text)
        else:
            _DEFINERS[kind](name, default, help_text)


def values_from_flags(dataclass_type: Type) -> Dict[str, Any]:
    values = {}
    for name, kind in _kinds(dataclass_type).items():
        value = flags.FLAGS[name].value
        if _is_int_list(kind):
            try:
                value = [int(v) for v in value]
            except ValueError:
                raise UsageError(f"--{name} must be a comma-separated list of integers, got {value}") from None
        values[name] = value
    return values
