"""The tf_keras path: importing this module is how code asks for Keras 2 (tf_keras).

The agent layer (tf-agents), ``tflite_export``, tfmot-based code and ``from dsp_tf
import keras`` import it. The library itself does not: it serves the Keras each
model was built with (``dsp_tf.binding``), so on Keras 3 ``import dsp_tf`` leaves
``TF_USE_LEGACY_KERAS`` alone. Where no Keras 3 is installed (TensorFlow 2.15)
``import dsp_tf`` takes this path at once, as it always did.

tfmot 0.8 only understands Keras 2 and forces ``TF_USE_LEGACY_KERAS=1`` when it
is imported; if TensorFlow had already resolved ``tf.keras`` to another Keras by
then, layers from two Keras copies would meet in one model. Setting the flag here,
before TensorFlow is imported anywhere in the project, keeps every module (ours,
tfmot's and tf-agents') on the same ``tf_keras``.

Two Keras 2 copies can be installed side by side (TensorFlow 2.15 ships the
standalone ``keras`` 2.15 package and tf-keras is ``tf_keras``). Both register
every public symbol under the same names (``keras.layers.Dense`` …) in one table
of TensorFlow's (``tf_export``), the last one imported winning, and the ``.keras``
loader builds a saved model's layers from that table. tfmot's import
(``prune_registry``: ``from keras.engine import base_layer``) loads the
standalone package after ``tf_keras``, so without ``claim_keras_names`` a
``.keras`` file reloads as layers of the other Keras, whose weights the loader
silently leaves at their fresh initial values. That is why the repair below runs
after tfmot is imported (README, "DSP in your own Keras model").
"""
import importlib
import importlib.util
import os
import sys

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
    # Imported here, before the repair below, because importing tfmot is what
    # loads the standalone keras package on TensorFlow 2.15 (see the docstring).
    import tensorflow_model_optimization  # noqa: E402,F401

_KERAS_PACKAGES = ("keras", "tf_keras")


def _package_of(obj) -> str:
    return (getattr(obj, "__module__", None) or "").split(".")[0]


def claim_keras_names(keras_api=None) -> int:
    """Points TensorFlow's Keras name table back at the Keras that ``keras_api`` belongs to.

    Every ``keras.*`` entry that another Keras 2 copy overwrote is replaced by the
    same symbol of ours (same module path under the other package name, same
    name). Entries with no counterpart are left alone. Returns how many entries
    were changed; 0 when only one Keras 2 is loaded (e.g. Keras 3 beside tf_keras,
    which keeps its own table). Safe to call again after importing code that
    loads the other Keras.
    """
    keras_api = keras if keras_api is None else keras_api
    ours = _package_of(keras_api.layers.Layer)
    if ours not in _KERAS_PACKAGES:
        return 0
    other = "keras" if ours == "tf_keras" else "tf_keras"
    try:
        from tensorflow.python.util import tf_export
        table = tf_export._NAME_TO_SYMBOL_MAPPING  # private: guarded, the loader reads it
    except (ImportError, AttributeError):
        return 0
    changed = 0
    for name, symbol in list(table.items()):
        if not (name.startswith("keras.") or name.startswith("compat.v1.keras.")):
            continue
        if _package_of(symbol) != other:
            continue
        module_name = ours + symbol.__module__[len(other):]
        module = sys.modules.get(module_name)
        if module is None:
            try:
                module = importlib.import_module(module_name)
            except Exception:  # noqa: BLE001  (a module of the other copy only)
                continue
        counterpart = getattr(module, getattr(symbol, "__name__", ""), None)
        if counterpart is not None and counterpart is not symbol:
            table[name] = counterpart
            changed += 1
    return changed


def _tf_keras():
    """``tf.keras`` when it is tf_keras; ``tf_keras`` itself when TensorFlow (>= 2.16) was imported
    before the flag above was set and had already bound ``tf.keras`` to Keras 3."""
    if _package_of(tf.keras.layers.Layer) == "tf_keras" or not importlib.util.find_spec("tf_keras"):
        return tf.keras
    import tf_keras

    return tf_keras


keras = _tf_keras()
claim_keras_names()

# dsp_tf's classes known to tf_keras's loader (NeuronMask, the regularizers, the schedule), and
# the schedule known to tfmot as one of its PruningSchedules.
from dsp_tf.binding import tf_keras_binding  # noqa: E402
from dsp_tf.schedule import register_with_tfmot  # noqa: E402

tf_keras_binding()
register_with_tfmot()

__all__ = ["tf", "keras", "claim_keras_names"]
