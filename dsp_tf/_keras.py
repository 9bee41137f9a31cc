"""One place that decides which Keras the project talks to.

tfmot 0.8 only understands Keras 2 and forces ``TF_USE_LEGACY_KERAS=1`` when it
is imported; if TensorFlow had already resolved ``tf.keras`` to another Keras by
then, layers from two Keras copies would meet in one model. Setting the flag here,
before TensorFlow is imported anywhere in the project, keeps every module (ours,
tfmot's and tf-agents') on the same ``tf_keras``.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow 2.15 logs, at ERROR level, that it found its CUDA plugins registered
# twice ("Unable to register cuDNN factory ...") on every import, GPU or not; only
# FATAL C++ messages are shown by default (errors still reach Python as
# exceptions). TF_CPP_MIN_LOG_LEVEL=0 in the environment shows everything.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dsp_tf.quiet import quiet_native_output  # noqa: E402  (standard library only)

# TensorFlow 2.16+ writes its start-up notices (oneDNN, "Could not find cuda
# drivers", absl's pre-InitializeLog banner) from C++ before any log level
# applies. They are dropped here only; an import that fails shows them all.
with quiet_native_output():
    import tensorflow as tf  # noqa: E402

keras = tf.keras

__all__ = ["tf", "keras"]
