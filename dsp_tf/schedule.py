"""The cubic sparsity schedule of Eq. 17 as a tfmot PruningSchedule.

Eq. 17 is tfmot's ``PolynomialDecay`` with power 3, so the schedule is that
class with the power fixed: the same object drives tfmot's own weight pruning
(``prune_low_magnitude``) and our neuron pruning. It adds what an RL loop needs
(the grid step a long rollout just crossed) and stricter argument checks.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

from tensorflow_model_optimization.python.core.sparsity.keras import pruning_schedule

from dsp_tf._keras import keras, tf


class DynamicPruningSchedule(pruning_schedule.PolynomialDecay):
    """p_t = p_f + (p_i − p_f)(1 − (t − t_0)/(N·Δt))³, pruning every Δt steps.

    ``begin_step`` is t_0, ``end_step`` is t_0 + N·Δt and ``frequency`` is Δt.
    Before t_0 the sparsity is p_i and after the end it stays p_f; pruning is
    requested only on the grid t_0, t_0 + Δt, … up to and including the end,
    exactly as tfmot's PolynomialDecay does.
    """

    def __init__(self, initial_sparsity: float, final_sparsity: float,
                 begin_step: int, end_step: int, frequency: int = 100):
        """The cubic schedule of Eq. 17 (tfmot's PolynomialDecay with power fixed at 3).

        Args:
          initial_sparsity: p_i, the share of hidden neurons masked up to ``begin_step``, in [0, 1).
          final_sparsity: p_f, the share masked from ``end_step`` on, in [initial_sparsity, 1).
          begin_step: t_0, the first (optimizer) step at which masks are updated, an integer.
          end_step: t_0 + N·Δt, the last step at which they are, an integer > begin_step.
          frequency: Δt, the steps between two mask updates, an integer <= end_step - begin_step.

        There is no ``power`` argument: the exponent of Eq. 17 is 3. Bad values raise
        ValueError with the argument named; so does a ``frequency`` whose first mask update
        after ``begin_step`` would fall past ``end_step``: that schedule never moves past
        ``initial_sparsity``.
        """
        for name, value in (("initial_sparsity", initial_sparsity),
                            ("final_sparsity", final_sparsity)):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"{name} must be a number, got {value!r}")
            self._validate_sparsity(value, name)
        if final_sparsity < initial_sparsity:
            raise ValueError(
                f"final_sparsity ({final_sparsity}) must be >= initial_sparsity ({initial_sparsity})")
        for name, value in (("begin_step", begin_step), ("end_step", end_step),
                            ("frequency", frequency)):
            if int(value) != value:
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if end_step <= begin_step:
            raise ValueError(f"end_step ({end_step}) must be > begin_step ({begin_step})")
        if frequency > end_step - begin_step:
            # The only grid step left would be begin_step, where the sparsity is still
            # initial_sparsity: the schedule would never prune towards final_sparsity.
            raise ValueError(
                f"frequency ({frequency}) must be <= end_step - begin_step ({end_step - begin_step}): "
                f"with it the schedule prunes only at begin_step, to initial_sparsity")
        super().__init__(float(initial_sparsity), float(final_sparsity), int(begin_step), int(end_step),
                         power=3, frequency=int(frequency))

    def __call__(self, step) -> Tuple[tf.Tensor, tf.Tensor]:
        """(should_prune, p_t): tfmot's PolynomialDecay at power 3, for an int or int64 step."""
        return super().__call__(tf.cast(tf.convert_to_tensor(step), tf.int64))

    def sparsity_at(self, step: int) -> float:
        """Eq. 17 as a Python float, for code that ranks neurons eagerly."""
        return float(self(int(step))[1])

    def last_pruning_step(self, step: int) -> int:
        """The latest grid step ≤ ``step`` at which pruning is due, or -1 before t_0.

        Training loops that advance many steps at a time (an RL rollout) use it to
        act on the grid point they just crossed instead of missing it.
        """
        step = min(int(step), self.end_step)
        if step < self.begin_step:
            return -1
        return self.begin_step + (step - self.begin_step) // self.frequency * self.frequency

    def get_config(self) -> Dict[str, Any]:
        return {
            "class_name": self.__class__.__name__,
            "config": {
                "initial_sparsity": self.initial_sparsity,
                "final_sparsity": self.final_sparsity,
                "begin_step": self.begin_step,
                "end_step": self.end_step,
                "frequency": self.frequency,
            },
        }

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "DynamicPruningSchedule":
        if "config" in config:
            config = config["config"]
        return cls(**config)

    def __repr__(self) -> str:
        c = self.get_config()["config"]
        return "DynamicPruningSchedule(" + ", ".join(f"{k}={v}" for k, v in c.items()) + ")"


# tfmot's PruneLowMagnitude.from_config deserialises a schedule by name from its
# own two classes plus Keras' global custom objects; registering ours there lets
# a saved pruned model reload with a plain ``load_model`` inside ``prune_scope()``.
keras.utils.get_custom_objects()[DynamicPruningSchedule.__name__] = DynamicPruningSchedule
