"""The product's commands: the floor above the library (dsp_tf) and the agent layer (agents).

Users type ``python -m dsp_tf.train`` (and ``.shrink``, ``.evaluate``) or
``python -m tflite_export``; those are launchers that hand over to the bodies
here, so that the library itself never imports the agent layer. The study that
produced the evidence (sweep, report, archive) is one floor up, in ``study``.
"""
