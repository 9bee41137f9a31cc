"""DSP for ``model.fit`` users."""
from __future__ import annotations

from dsp_tf._keras import keras
from dsp_tf.pruner import StructuredPruner


class StructuredPruningCallback(keras.callbacks.Callback):
    """Updates a StructuredPruner's masks on its schedule during ``fit``.

    The step is the optimizer's iteration count, like tfmot's UpdatePruningStep,
    so resuming ``fit`` from a checkpoint continues the schedule where it was.
    The regularizer is already in the masked model's losses. At each epoch end
    the share of masked neurons is added to the logs (and so to TensorBoard).

        pruner = dsp_tf.StructuredPruner(model, schedule, dsp_tf.NeuronImportanceRegularizer(1e-4))
        pruner.model.compile(...); pruner.model.fit(x, y, callbacks=[dsp_tf.StructuredPruningCallback(pruner)])
    """

    def __init__(self, pruner: StructuredPruner):
        super().__init__()
        self.pruner = pruner

    def on_train_batch_begin(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        self.pruner.update_masks(step)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["neuron_sparsity"] = self.pruner.sparsity()
