"""Unstructured magnitude pruning on the same schedule, built on tfmot.

The baselines that prune single weights (POPS' iterative hard thresholding,
and L1 followed by magnitude pruning) use tfmot's ``prune_low_magnitude``
wrappers with the DynamicPruningSchedule. Masks are updated explicitly by
``update_masks`` (not by the wrappers' own step counter, which would count
minibatches instead of environment steps), so the training loop treats this
pruner exactly like the StructuredPruner.
"""
from __future__ import annotations

from typing import Callable, List, Optional

import numpy as np
import tensorflow_model_optimization as tfmot
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

from dsp_tf._keras import keras
from dsp_tf.chain import dense_chain
from dsp_tf.compact import compact_unstructured
from dsp_tf.metrics import model_stats
from dsp_tf.pruner_base import PrunerBase
from dsp_tf.schedule import DynamicPruningSchedule


class MagnitudePruner(PrunerBase):
    """Per-layer magnitude pruning of every Dense kernel to the scheduled sparsity.

    ``.model`` holds tfmot wrappers and must be called with ``training=False``
    (the wrappers then only apply their masks); ``.compact()`` removes neurons
    left without incoming or outgoing weights.
    """

    def __init__(self, model: keras.Model, schedule: DynamicPruningSchedule,
                 regularizer: Optional[Callable] = None):
        self.binding = dense_chain(model).binding  # same model restrictions as structured pruning
        if self.binding.name != "tf_keras":
            raise ValueError("MagnitudePruner is built on tfmot, which takes tf_keras models only; "
                             f"'{model.name}' is a {self.binding.name} model")
        super().__init__(schedule, regularizer)
        self.model = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
        self.wrappers: List[PruneLowMagnitude] = [l for l in self.model.layers if isinstance(l, PruneLowMagnitude)]
        self.dense_layers = [w.layer for w in self.wrappers]
        for w in self.wrappers:
            w.pruning_step.assign(0)

    def update_masks(self, step: int, force: bool = False) -> bool:
        should_prune, _ = self.schedule(int(step))
        if not (force or bool(should_prune)):
            return False
        for w in self.wrappers:
            w.pruning_step.assign(int(step))
            if force and not bool(should_prune):
                for weight, mask, threshold in w.pruning_obj._pruning_vars:  # noqa: SLF001
                    new_threshold, new_mask = w.pruning_obj._maybe_update_block_mask(weight)  # noqa: SLF001
                    threshold.assign(new_threshold)
                    mask.assign(new_mask)
            else:
                w.pruning_obj.conditional_mask_update()
            w.pruning_obj.weight_mask_op()
        return True

    @property
    def masks(self) -> List[np.ndarray]:
        return [w.pruning_vars[0][1].numpy().copy() for w in self.wrappers]

    def sparsity(self) -> float:
        """Share of pruned weights (this pruner's unit of pruning)."""
        masks = self.masks
        return 1.0 - sum(m.sum() for m in masks) / sum(m.size for m in masks)

    def dense_equivalent(self) -> keras.Model:
        """Original shape, pruned weights zeroed: what tfmot's strip_pruning gives."""
        for w in self.wrappers:
            w.pruning_obj.weight_mask_op()
        return tfmot.sparsity.keras.strip_pruning(self.model)

    def stats(self) -> dict:
        return model_stats(self.dense_equivalent())

    def compact(self) -> keras.Sequential:
        return compact_unstructured(self.dense_equivalent())
