"""Export targets beyond the TFLite files and the plain-C policy: each turns the converted actor into
more files of the same export.

A new target (another runtime's format, a board's project file) is one ``Target`` in ``TARGETS``:
``convert_actor`` calls it once the TFLite models exist, so the Python API ``export_actor`` and
``python -m tflite_export`` both write its files, in the same all-or-nothing swap as the others.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from dsp_tf._keras import keras
from tflite_export.input_scaling import FeatureScaling


@dataclass(frozen=True)
class Exported:
    """What a target may build on: the actor and what the exporter made of it."""

    name: str  # the files' stem (``--name``): actor_float32.tflite, actor_int8.tflite, ...
    actor: keras.Model  # raw observation in, logits or the bounded action out
    float32: bytes  # the float32 TFLite flatbuffer
    int8: bytes  # the full-integer TFLite flatbuffer
    scaling: Optional[FeatureScaling]  # the per-feature input map before the int8 model (None: per tensor)


@dataclass(frozen=True)
class Target:
    name: str
    #: The target's files by name (bytes or text), beside the export's others; a name they already use is refused.
    files: Callable[[Exported], Dict[str, object]]


#: Every extra target, in the order their files are made.
TARGETS: List[Target] = [
]
