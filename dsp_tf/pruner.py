"""StructuredPruner: masks, regularizer and schedule attached to one Keras model."""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import numpy as np

from dsp_tf._keras import keras, tf
from dsp_tf.chain import NeuronMask, dense_chain
from dsp_tf.compact import compact_model
from dsp_tf.importance import neuron_importance
from dsp_tf.masks import check_ranking, check_threshold, select_masks
from dsp_tf.metrics import effective_kernels, model_stats
from dsp_tf.pruner_base import PrunerBase
from dsp_tf.regularizers import check_not_layer_regularizers
from dsp_tf.schedule import DynamicPruningSchedule

#: scorer(dense_layers, masks) -> one score vector per hidden layer; lowest go first.
Scorer = Callable[[List[keras.layers.Dense], List[tf.Variable]], Sequence]


class StructuredPruner(PrunerBase):
    """Neuron-level dynamic pruning of a chain of Dense layers.

    ``.model`` reuses the original layers (so their weights are shared and
    trained in place) with a NeuronMask after every hidden Dense layer. Because
    masked units output zero, their incoming and outgoing weights receive zero
    gradient from the task loss (Eq. 14). Masks are variables of ``.model``,
    so checkpointing the model checkpoints the masks.

    ``scorer`` ranks neurons; it defaults to Ω (Eq. 12). Baselines swap in
    another ranking, keeping the schedule, floor and threshold logic shared.
    ``ranking`` says how scores of different layers compare (see
    ``dsp_tf.masks.select_masks``).
    """

    def __init__(self, model: keras.Model, schedule: DynamicPruningSchedule,
                 regularizer: Optional[Callable] = None, min_neurons_per_layer: int = 1,
                 threshold: str = "count", scorer: Optional[Scorer] = None, ranking: str = "global"):
        chain = dense_chain(model)
        if chain.masks is not None:
            raise ValueError("model is already masked; pass the original (unmasked) model")
        check_not_layer_regularizers(chain.front + chain.layers)
        super().__init__(schedule, regularizer)
        self.threshold = check_threshold(threshold)
        self.ranking = check_ranking(ranking)
        if int(min_neurons_per_layer) != min_neurons_per_layer or min_neurons_per_layer < 1:
            raise ValueError(f"min_neurons_per_layer must be an integer >= 1, got {min_neurons_per_layer}")
        smallest = min(d.units for d in chain.hidden)
        if min_neurons_per_layer > smallest:
            raise ValueError(
                f"min_neurons_per_layer ({min_neurons_per_layer}) exceeds the smallest hidden layer ({smallest})")
        self.min_neurons_per_layer = int(min_neurons_per_layer)
        self.scorer = scorer or (lambda layers, masks: neuron_importance(layers, masks))
        self.dense_layers = chain.dense
        self.mask_layers = [NeuronMask(d.units, name=f"{d.name}_mask") for d in chain.hidden]
        self.model = self._masked_model(model, chain)
        if regularizer is not None:
            # Keras adds zero-argument callables to model.losses, so model.fit
            # users get the penalty in their training loss with no extra code.
            self.model.add_loss(self.regularization)

    def _masked_model(self, model, chain) -> keras.Model:
        inputs = keras.Input(shape=chain.input_shape, name=f"{model.name}_input")
        x = inputs
        for layer in chain.front:  # Normalization, Flatten …: shared like the Dense layers
            x = layer(x)
        seen = 0
        for layer in chain.layers:
            if isinstance(layer, keras.layers.Dense):
                if seen:
                    x = self.mask_layers[seen - 1](x)
                seen += 1
            x = layer(x)
        return keras.Model(inputs, x, name=f"{model.name}_masked")

    @property
    def mask_variables(self) -> List[tf.Variable]:
        return [m.mask for m in self.mask_layers]

    @property
    def masks(self) -> List[np.ndarray]:
        return [m.numpy().copy() for m in self.mask_variables]

    def set_masks(self, masks: Sequence) -> None:
        for var, m in zip(self.mask_variables, masks, strict=True):
            var.assign(np.asarray(m, dtype=np.float32))

    def penalty_masks(self):
        return self.mask_variables

    def importance(self) -> List[np.ndarray]:
        return [np.asarray(s) for s in self.scorer(self.dense_layers, self.mask_variables)]

    def update_masks(self, step: int, force: bool = False) -> bool:
        """Applies Eqs. 16–18 if the schedule prunes at ``step`` (or ``force``).

        Returns whether masks were recomputed. Masks only go from 1 to 0.
        """
        sparsity = self._due_sparsity(step, force)
        if sparsity is None:
            return False
        new = select_masks(self.importance(), self.masks, sparsity,
                           self.min_neurons_per_layer, self.threshold, self.ranking)
        self.set_masks(new)
        return True

    def sparsity(self) -> float:
        masks = self.masks
        return 1.0 - sum(m.sum() for m in masks) / sum(m.size for m in masks)

    def stats(self) -> dict:
        return model_stats(self.model)

    def dense_equivalent(self) -> keras.Sequential:
        """Original shape with masked neurons' weights zeroed: same outputs as ``.model``,
        no mask layers (what an exporter that cannot strip neurons would ship)."""
        model = compact_model(self.model, [np.ones(m.units) for m in self.mask_layers],
                              name=f"{self.model.name}_dense")
        dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
        for layer, kernel in zip(dense, effective_kernels(self.model)):
            layer.kernel.assign(kernel)
        return model

    def compact(self) -> keras.Sequential:
        """A smaller model without the masked neurons; same outputs as ``.model``."""
        return compact_model(self.model)
