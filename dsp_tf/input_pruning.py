"""Pruning input features of the first layer (the SGS baseline).

Structured group sparsity applied to the first fully connected layer only: a
group is one input feature's row of the first kernel, penalised by its L2 norm
(InputGroupL1Regularizer) and masked, smallest norm first, on the same schedule.
Hidden neurons are never removed; what shrinks is the first layer's weights.
"""
from __future__ import annotations

from typing import Callable, List, Optional

import numpy as np

from dsp_tf._keras import keras
from dsp_tf.chain import dense_chain
from dsp_tf.compact import compact_unstructured, copy_layer
from dsp_tf.masks import select_masks
from dsp_tf.metrics import model_stats
from dsp_tf.pruner_base import PrunerBase
from dsp_tf.schedule import DynamicPruningSchedule


class InputFeaturePruner(PrunerBase):
    def __init__(self, model: keras.Model, schedule: DynamicPruningSchedule,
                 regularizer: Optional[Callable] = None, min_features: int = 1):
        chain = dense_chain(model)
        if chain.binding.name != "tf_keras":
            raise ValueError(f"InputFeaturePruner takes tf_keras models only; '{model.name}' is a "
                             f"{chain.binding.name} model")
        if chain.front:
            raise ValueError(
                f"input-feature pruning masks the first Dense layer's inputs, so it needs that layer at the "
                f"model's input; '{chain.front[0].name}' ({type(chain.front[0]).__name__}) comes before it")
        super().__init__(schedule, regularizer)
        self.binding = chain.binding
        self.min_features = int(min_features)
        self.dense_layers = chain.dense
        self.input_mask = self.binding.NeuronMask(chain.input_dim, name="input_feature_mask")
        inputs = keras.Input((chain.input_dim,))
        x = self.input_mask(inputs)
        for layer in chain.layers:
            x = layer(x)
        self.model = keras.Model(inputs, x, name=f"{model.name}_input_masked")

    @property
    def masks(self) -> List[np.ndarray]:
        return [self.input_mask.mask.numpy().copy()]

    def update_masks(self, step: int, force: bool = False) -> bool:
        sparsity = self._due_sparsity(step, force)
        if sparsity is None:
            return False
        row_norms = np.linalg.norm(self.dense_layers[0].kernel.numpy(), axis=1) * self.masks[0]
        new = select_masks([row_norms], self.masks, sparsity, self.min_features, "count")
        self.input_mask.mask.assign(new[0])
        return True

    def sparsity(self) -> float:
        """Share of input features removed (this pruner's unit)."""
        return 1.0 - float(self.masks[0].mean())

    def dense_equivalent(self) -> keras.Sequential:
        """The original chain with masked features' rows of the first kernel zeroed."""
        model = keras.Sequential([keras.Input((self.input_mask.units,))] + [
            copy_layer(l) for l in dense_chain(self.dense_layers).layers])
        for new, old in zip(model.layers, self.dense_layers):
            new.set_weights(old.get_weights())
        first = model.layers[0]
        first.kernel.assign(first.kernel.numpy() * self.masks[0][:, None])
        return model

    def stats(self) -> dict:
        return model_stats(self.dense_equivalent())

    def compact(self) -> keras.Sequential:
        return compact_unstructured(self.dense_equivalent())
