"""dsp_tf: dynamic structured pruning (DSP) for Keras networks.

Library layer of the project: nothing here imports tf-agents or gymnasium, so
any Keras user can take the schedule, regularizer, masks and compact rebuild.
"""
from dsp_tf._keras import keras, tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS first)
from dsp_tf.callbacks import StructuredPruningCallback
from dsp_tf.chain import NeuronMask, dense_chain
from dsp_tf.compact import compact_model
from dsp_tf.importance import neuron_group_norms, neuron_importance, random_scores
from dsp_tf.masks import RANKINGS, select_masks
from dsp_tf.metrics import model_stats
from dsp_tf.pruner import StructuredPruner
from dsp_tf.regularizers import (GroupLassoRegularizer, InputGroupL1Regularizer,
                                 NeuronImportanceRegularizer, WeightL1Regularizer)
from dsp_tf.schedule import DynamicPruningSchedule

__version__ = "0.1.0"

__all__ = [
    "RANKINGS", "DynamicPruningSchedule", "GroupLassoRegularizer", "InputGroupL1Regularizer",
    "NeuronImportanceRegularizer", "NeuronMask", "StructuredPruner",
    "StructuredPruningCallback", "WeightL1Regularizer", "compact_model", "dense_chain",
    "model_stats", "neuron_group_norms", "neuron_importance", "random_scores", "select_masks",
]
