"""StructuredPruner: masks, regularizer and schedule attached to one Keras model."""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence

import numpy as np

from dsp_tf.chain import dense_chain
from dsp_tf.compact import compact_model
from dsp_tf.importance import neuron_importance
from dsp_tf.masks import check_ranking, check_threshold, select_masks
from dsp_tf.metrics import effective_kernels, model_stats
from dsp_tf.pruner_base import PrunerBase
from dsp_tf.regularizers import check_not_layer_regularizers
from dsp_tf.schedule import DynamicPruningSchedule

#: scorer(dense_layers, masks) -> one score vector per hidden layer; lowest go first.
Scorer = Callable[[List[Any], List[Any]], Sequence]


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

    The model may be Keras 3 or tf_keras; ``.model``, ``.compact()`` and
    ``.dense_equivalent()`` are of the same Keras. On Keras 3 the penalty reaches
    the fit loss through an identity layer at the end of ``.model`` (Keras 3 has
    no callable losses); ``.compact()`` holds only Keras's own layers.
    """

    def __init__(self, model: Any, schedule: DynamicPruningSchedule,
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
        self.scorer = scorer or self._omega
        self.binding = chain.binding
        self.dense_layers = chain.dense
        self.mask_layers = [self.binding.NeuronMask(d.units, name=f"{d.name}_mask") for d in chain.hidden]
        self.model = self._masked_model(model, chain)

    def _masked_model(self, model, chain) -> Any:
        keras = self.binding.keras
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
        # With a regularizer, model.fit users get the penalty in their training loss with no extra code.
        penalty = self.regularization if self.regularizer is not None else None
        return self.binding.masked_model(inputs, x, f"{model.name}_masked", penalty)

    def _omega(self, layers: List[Any], masks: List[Any]) -> Sequence:
        """Ω (Eq. 12) for ranking, in NumPy where the binding says so: on Keras 3 the eager ``keras.ops``
        path costs ~14 dispatched ops per update (a 10% slower epoch at 6 updates per epoch), against one
        read per kernel here. tf_keras keeps TensorFlow's float32 sums, so its masks stay bit-identical
        to those of every run made before Keras 3 support."""
        if not self.binding.numpy_scores:
            return neuron_importance(layers, masks)
        kernels = [self.binding.to_numpy(d.kernel) for d in layers]
        return [np.square(k).sum(axis=0) * np.square(nxt).sum(axis=1) * self.binding.to_numpy(m)
                for k, nxt, m in zip(kernels[:-1], kernels[1:], masks)]

    @property
    def mask_variables(self) -> List[Any]:
        return [m.mask for m in self.mask_layers]

    @property
    def masks(self) -> List[np.ndarray]:
        return [self.binding.to_numpy(m).copy() for m in self.mask_variables]

    def set_masks(self, masks: Sequence) -> None:
        for var, m in zip(self.mask_variables, masks, strict=True):
            var.assign(np.asarray(m, dtype=np.float32))

    def penalty_masks(self):
        return self.mask_variables

    def importance(self) -> List[np.ndarray]:
        return [self.binding.to_numpy(s) for s in self.scorer(self.dense_layers, self.mask_variables)]

    def update_masks(self, step: int, force: bool = False) -> bool:
        """Applies Eqs. 16–18 if the schedule prunes at ``step`` (or ``force``).

        Returns whether masks were recomputed. Masks only go from 1 to 0.
        """
        sparsity = self._due_sparsity(step, force)
        if sparsity is None:
            return False
        current = self.masks
        new = select_masks(self.importance(), current, sparsity,
                           self.min_neurons_per_layer, self.threshold, self.ranking)
        for var, old, m in zip(self.mask_variables, current, new):
            if not np.array_equal(old, m):  # an assignment is the dearest step of an update on Keras 3
                var.assign(m)
        return True

    def sparsity(self) -> float:
        masks = self.masks
        return 1.0 - sum(m.sum() for m in masks) / sum(m.size for m in masks)

    def stats(self) -> dict:
        return model_stats(self.model)

    def dense_equivalent(self) -> Any:
        """Original shape with masked neurons' weights zeroed: same outputs as ``.model``,
        no mask layers (what an exporter that cannot strip neurons would ship)."""
        model = compact_model(self.model, [np.ones(m.units) for m in self.mask_layers],
                              name=f"{self.model.name}_dense")
        dense = [l for l in model.layers if isinstance(l, self.binding.keras.layers.Dense)]
        for layer, kernel in zip(dense, effective_kernels(self.model)):
            layer.kernel.assign(kernel)
        return model

    def compact(self) -> Any:
        """A smaller ``Sequential`` of Keras's own layers without the masked neurons; same outputs as ``.model``."""
        return compact_model(self.model)
