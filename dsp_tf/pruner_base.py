"""What every pruner shares: a schedule, an optional penalty, and when to act."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

from dsp_tf._keras import tf
from dsp_tf.schedule import DynamicPruningSchedule


class PrunerBase:
    """Neuron, weight and input-feature pruners differ only in what they mask and
    how they rank it; the schedule check and the penalty live here once."""

    dense_layers: list

    def __init__(self, schedule: DynamicPruningSchedule, regularizer: Optional[Callable] = None):
        if not isinstance(schedule, DynamicPruningSchedule):
            raise ValueError("schedule must be a dsp_tf.DynamicPruningSchedule")
        self.schedule = schedule
        self.regularizer = regularizer

    def penalty_masks(self) -> Optional[Sequence]:
        """Masks the penalty should respect (Ω of a masked neuron is 0); None: all ones."""
        return None

    def regularization(self) -> tf.Tensor:
        """λ·penalty of the current network; 0 without a regularizer."""
        if self.regularizer is None:
            return tf.constant(0.0)
        return self.regularizer(self.dense_layers, self.penalty_masks())

    def _due_sparsity(self, step: int, force: bool) -> Optional[float]:
        """The sparsity to prune to at ``step``, or None when the schedule says wait."""
        should_prune, sparsity = self.schedule(int(step))
        return float(sparsity) if (force or bool(should_prune)) else None
