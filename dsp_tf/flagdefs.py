"""absl flags generated from a dataclass, so each setting is declared once."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Type

from absl import flags

from dsp_tf.errors import UsageError


def define_flags_from(dataclass_type: Type, skip=()) -> None:
    defaults = dataclass_type()
    for f in dataclasses.fields(dataclass_type):
        if f.name in skip or f.name in flags.FLAGS:
            continue
        default, help_text, kind = getattr(defaults, f.name), f.metadata.get("help", f.name), str(f.type)
        if kind.startswith("List"):
            flags.DEFINE_list(f.name, [str(v) for v in default], help_text)
        elif kind == "bool":
            flags.DEFINE_boolean(f.name, default, help_text)
        elif kind == "int":
            flags.DEFINE_integer(f.name, default, help_text)
        elif kind == "float":
            flags.DEFINE_float(f.name, default, help_text)
        else:
            flags.DEFINE_string(f.name, default, help_text)


def values_from_flags(dataclass_type: Type) -> Dict[str, Any]:
    values = {}
    for f in dataclasses.fields(dataclass_type):
        value = flags.FLAGS[f.name].value
        if str(f.type).startswith("List"):
            try:
                value = [int(v) for v in value]
            except ValueError:
                raise UsageError(f"--{f.name} must be a comma-separated list of integers, got {value}") from None
        values[f.name] = value
    return values
