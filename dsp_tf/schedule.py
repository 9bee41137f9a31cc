"""The cubic sparsity schedule of Eq. 17 as a tfmot PruningSchedule.

Being a real ``tfmot.sparsity.keras.PruningSchedule`` means the same object can
drive tfmot's own weight pruning (``prune_low_magnitude``) and our neuron
pruning, and that models saved with it reload through tfmot's deserialiser,
which looks schedules up among ``PruningSchedule.__subclasses__()``.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

from tensorflow_model_optimization.python.core.sparsity.keras import pruning_schedule

from dsp_tf._keras import keras, tf


class DynamicPruningSchedule(pruning_schedule.PruningSchedule):
    """p_t = p_f + (p_i − p_f)(1 − (t − t_0)/(N·Δt))³, pruning every Δt steps.

    ``begin_step`` is t_0, ``end_step`` is t_0 + N·Δt and ``frequency`` is Δt.
    Before t_0 the sparsity is p_i and after the end it stays p_f; pruning is
    requested only on the grid t_0, t_0 + Δt, … up to and including the end,
    exactly as tfmot's PolynomialDecay does.
    """

    def __init__(self, initial_sparsity: float, final_sparsity: float,
                 begin_step: int, end_step: int, frequency: int = 100):
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
        self._validate_step(begin_step, end_step, frequency, allow_negative_1=False)
        self.initial_sparsity = float(initial_sparsity)
        self.final_sparsity = float(final_sparsity)
        self.begin_step = int(begin_step)
        self.end_step = int(end_step)
        self.frequency = int(frequency)

    def __call__(self, step) -> Tuple[tf.Tensor, tf.Tensor]:
        step = tf.convert_to_tensor(step)
        progress = tf.cast(step - self.begin_step, tf.float32) / float(self.end_step - self.begin_step)
        progress = tf.clip_by_value(progress, 0.0, 1.0)
        sparsity = self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * tf.pow(1.0 - progress, 3.0)
        step = tf.cast(step, tf.int64)
        should_prune = self._should_prune_in_step(
            step, tf.constant(self.begin_step, tf.int64), tf.constant(self.end_step, tf.int64),
            tf.constant(self.frequency, tf.int64))
        return should_prune, sparsity

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


# tfmot's PruneLowMagnitude.from_config only knows its own two schedules; adding
# ours to Keras' global custom objects lets a saved pruned model reload with a
# plain ``load_model`` inside ``prune_scope()``, no custom_objects needed.
keras.utils.get_custom_objects()[DynamicPruningSchedule.__name__] = DynamicPruningSchedule
