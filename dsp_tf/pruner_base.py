"""The pruner interface, declared once: what the training loop (or any loop) drives.

Neuron, weight and input-feature pruners differ only in what they mask and how
they rank it; the schedule check and the penalty live here, and every pruner
implements the abstract methods, so a loop types its pruner as ``PrunerBase``
instead of probing it.
"""
from __future__ import annotations

import abc
from typing import Any, Callable, List, Optional, Sequence

import numpy as np

from dsp_tf.binding import KerasBinding
from dsp_tf.schedule import DynamicPruningSchedule


class PrunerBase(abc.ABC):
    #: The model to train: the original layers (weights shared) with the masks applied.
    model: Any
    #: The Dense layers of the chain, in order (the last is the output layer).
    dense_layers: List[Any]
    #: The Keras of the model given (and of everything the pruner returns).
    binding: KerasBinding

    def __init__(self, schedule: DynamicPruningSchedule, regularizer: Optional[Callable] = None):
        if not isinstance(schedule, DynamicPruningSchedule):
            raise ValueError("schedule must be a dsp_tf.DynamicPruningSchedule")
        self.schedule = schedule
        self.regularizer = regularizer

    @abc.abstractmethod
    def update_masks(self, step: int, force: bool = False) -> bool:
        """Prunes to the schedule's sparsity if it asks for it at ``step`` (or ``force``);
        returns whether the masks were recomputed."""

    @property
    @abc.abstractmethod
    def masks(self) -> List[np.ndarray]:
        """Copies of the current 0/1 masks, in this pruner's unit (neurons, weights, features)."""

    @abc.abstractmethod
    def sparsity(self) -> float:
        """Share of this pruner's units that are masked."""

    @abc.abstractmethod
    def stats(self) -> dict:
        """dsp_tf.model_stats of the network as it computes now."""

    @abc.abstractmethod
    def dense_equivalent(self) -> Any:
        """The original shape with masked weights zeroed: same outputs as ``model``."""

    @abc.abstractmethod
    def compact(self) -> Any:
        """The smallest chain with the same outputs as ``model``."""

    def penalty_masks(self) -> Optional[Sequence]:
        """Masks the penalty should respect (Ω of a masked neuron is 0); None: all ones."""
        return None

    def regularization(self) -> Any:
        """λ·penalty of the current network, a scalar tensor of the model's Keras; 0 without a regularizer."""
        if self.regularizer is None:
            return self.binding.float32(0.0)
        return self.regularizer(self.dense_layers, self.penalty_masks())

    def _due_sparsity(self, step: int, force: bool) -> Optional[float]:
        """The sparsity to prune to at ``step``, or None when the schedule says wait."""
        should_prune, sparsity = self.schedule(int(step))
        return float(sparsity) if (force or bool(should_prune)) else None
