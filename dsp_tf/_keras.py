"""One place that decides which Keras the project talks to.

tfmot 0.8 only understands Keras 2 and forces ``TF_USE_LEGACY_KERAS=1`` when it
is imported; if TensorFlow had already resolved ``tf.keras`` to another Keras by
then, layers from two Keras copies would meet in one model. Setting the flag here,
before TensorFlow is imported anywhere in the project, keeps every module (ours,
tfmot's and tf-agents') on the same ``tf_keras``.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

keras = tf.keras

__all__ = ["tf", "keras"]
