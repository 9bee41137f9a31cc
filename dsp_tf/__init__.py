"""dsp_tf: dynamic structured pruning (DSP) for Keras networks, Keras 3 and tf_keras alike.

Library layer of the project: nothing here imports tf-agents or gymnasium, so
any Keras user can take the schedule, regularizer, masks and compact rebuild.

Which Keras a call works in is read from the model it is given
(``dsp_tf.binding``). Importing dsp_tf changes no global state where Keras 3 is
installed: it registers dsp_tf's layers and regularizers with Keras 3 (so saved
masked models reload) and leaves ``TF_USE_LEGACY_KERAS`` alone. The tf_keras path
(``TF_USE_LEGACY_KERAS=1``, tfmot, TensorFlow's Keras name table repaired) is
taken when asked for: ``from dsp_tf import keras`` / ``dsp_tf.tf``, ``import
dsp_tf._keras`` (the agent layer, tflite_export), or the tfmot-based modules
(``dsp_tf.weight_pruning``, ``dsp_tf.methods``). Where no Keras 3 is installed
(TensorFlow 2.15) it is taken at import, as it always was.
"""
import sys as _sys

from dsp_tf import binding as _binding

if not _binding.keras3_installed():
    import dsp_tf._keras  # noqa: F401  (TensorFlow 2.15: tf_keras is the only Keras; sets TF_USE_LEGACY_KERAS first)

from dsp_tf.binding import NeuronMask  # noqa: E402
from dsp_tf.callbacks import StructuredPruningCallback  # noqa: E402
from dsp_tf.chain import dense_chain  # noqa: E402
from dsp_tf.compact import compact_model  # noqa: E402
from dsp_tf.importance import neuron_group_norms, neuron_importance, random_scores  # noqa: E402
from dsp_tf.masks import RANKINGS, select_masks  # noqa: E402
from dsp_tf.metrics import model_stats  # noqa: E402
from dsp_tf.pruner import StructuredPruner  # noqa: E402
from dsp_tf.regularizers import (GroupLassoRegularizer, InputGroupL1Regularizer,  # noqa: E402
                                 NeuronImportanceRegularizer, WeightL1Regularizer)
from dsp_tf.schedule import DynamicPruningSchedule  # noqa: E402

if _binding.keras3_installed():
    # Keras 3 comes with TensorFlow >= 2.16 (imported by it), so this costs nothing where
    # TensorFlow is already imported; registering now lets keras.saving.load_model find
    # dsp_tf's classes whatever the order of the imports.
    _binding.keras3_binding()
if "tf_keras" in _sys.modules:  # a tf_keras user: register with it too (no TF_USE_LEGACY_KERAS)
    _binding.tf_keras_binding()

__version__ = "0.1.0"

__all__ = [
    "RANKINGS", "DynamicPruningSchedule", "GroupLassoRegularizer", "InputGroupL1Regularizer",
    "NeuronImportanceRegularizer", "NeuronMask", "StructuredPruner",
    "StructuredPruningCallback", "WeightL1Regularizer", "compact_model", "dense_chain",
    "model_stats", "neuron_group_norms", "neuron_importance", "random_scores", "select_masks",
]


def __getattr__(name: str):
    """``dsp_tf.keras`` and ``dsp_tf.tf``: tf_keras and TensorFlow, taking the tf_keras path on first use."""
    if name in ("keras", "tf"):
        from dsp_tf import _keras

        return getattr(_keras, name)
    raise AttributeError(f"module 'dsp_tf' has no attribute {name!r}")
