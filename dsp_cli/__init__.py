"""Command-line programs: the top floor, above the library (dsp_tf) and the agent layer (agents).

Users type ``python -m dsp_tf.train`` (and ``.evaluate``, ``.sweep``, ``.report``,
``.archive``); those modules of dsp_tf are two-line launchers that hand over to
the bodies here, so that the library itself never imports the agent layer.
"""
