"""tflite_export: a trained actor as TFLite float32/int8 and a C array for TFLite Micro.

The last layer of the project: it reads run directories written by dsp_tf.train
(through agents.inference) or takes a user's own Keras actor.
"""
from tflite_export.convert import check_exportable, to_float32, to_int8
from tflite_export.exporter import convert_actor, export_actor, export_run

__all__ = ["check_exportable", "convert_actor", "export_actor", "export_run", "to_float32", "to_int8"]
