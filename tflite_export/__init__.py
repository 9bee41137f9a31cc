"""tflite_export: a Keras actor as TFLite float32/int8, a C array for TFLite Micro and plain C99.

A library with no RL in it: it takes a Keras actor and observations from its
caller. Exporting a dsp_tf.train run (loading it, playing the policy for
observations, scoring returns) is the ``python -m tflite_export`` command,
whose body is ``dsp_cli.export``.
"""
from tflite_export.convert import check_exportable, to_float32, to_int8
from tflite_export.exporter import convert_actor, export_actor

__all__ = ["check_exportable", "convert_actor", "export_actor", "to_float32", "to_int8"]
