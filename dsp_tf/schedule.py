"""The cubic sparsity schedule of Eq. 17: tfmot's PolynomialDecay at power 3, on both Kerases.

For tf_keras users the schedule is a tfmot ``PruningSchedule`` (the project's
design): the same object drives tfmot's own weight pruning
(``prune_low_magnitude``) and our neuron pruning. tfmot cannot be imported
without switching TensorFlow to tf_keras (it sets ``TF_USE_LEGACY_KERAS``), so
the class does not inherit from it: it computes tfmot's arithmetic itself (in
float32, in the same order, so its sparsities are tfmot's to the bit) and is
registered as a virtual subclass of tfmot's ``PruningSchedule`` and
``PolynomialDecay`` as soon as tfmot is imported, by anyone. Keras 3 users get the
same class without tfmot. It adds what an RL loop needs (the grid step a long
rollout just crossed) and stricter argument checks.
"""
from __future__ import annotations

import sys
from typing import Any, Dict, Tuple

import numpy as np

from dsp_tf.masks import check_sparsity  # noqa: F401  (the one rule, re-exported here too)

_TFMOT = "tensorflow_model_optimization"


class DynamicPruningSchedule:
    """p_t = p_f + (p_i − p_f)(1 − (t − t_0)/(N·Δt))³, pruning every Δt steps.

    ``begin_step`` is t_0, ``end_step`` is t_0 + N·Δt and ``frequency`` is Δt.
    Before t_0 the sparsity is p_i and after the end it stays p_f; pruning is
    requested only on the grid t_0, t_0 + Δt, … up to and including the end,
    exactly as tfmot's PolynomialDecay does.
    """

    power = 3

    def __init__(self, initial_sparsity: float, final_sparsity: float,
                 begin_step: int, end_step: int, frequency: int = 100):
        """The cubic schedule of Eq. 17 (tfmot's PolynomialDecay with power fixed at 3).

        Args:
          initial_sparsity: p_i, the share of hidden neurons masked up to ``begin_step``, in [0, 1).
          final_sparsity: p_f, the share masked from ``end_step`` on, in [initial_sparsity, 1).
          begin_step: t_0, the first (optimizer) step at which masks are updated, an integer >= 0.
          end_step: t_0 + N·Δt, the last step at which they are, an integer > begin_step.
          frequency: Δt, the steps between two mask updates, an integer in [1, end_step - begin_step].

        There is no ``power`` argument: the exponent of Eq. 17 is 3. Bad values raise
        ValueError with the argument named; so does a ``frequency`` whose first mask update
        after ``begin_step`` would fall past ``end_step``: that schedule never moves past
        ``initial_sparsity``.
        """
        initial_sparsity = check_sparsity(initial_sparsity, "initial_sparsity")
        final_sparsity = check_sparsity(final_sparsity, "final_sparsity")
        if final_sparsity < initial_sparsity:
            raise ValueError(
                f"final_sparsity ({final_sparsity}) must be >= initial_sparsity ({initial_sparsity})")
        for name, value in (("begin_step", begin_step), ("end_step", end_step), ("frequency", frequency)):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or int(value) != value:
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if begin_step < 0:
            raise ValueError(f"begin_step must be >= 0, got {begin_step}")
        if frequency < 1:
            raise ValueError(f"frequency must be >= 1, got {frequency}")
        if end_step <= begin_step:
            raise ValueError(f"end_step ({end_step}) must be > begin_step ({begin_step})")
        if frequency > end_step - begin_step:
            # The only grid step left would be begin_step, where the sparsity is still
            # initial_sparsity: the schedule would never prune towards final_sparsity.
            raise ValueError(
                f"frequency ({frequency}) must be <= end_step - begin_step ({end_step - begin_step}): "
                f"with it the schedule prunes only at begin_step, to initial_sparsity")
        self.initial_sparsity = initial_sparsity
        self.final_sparsity = final_sparsity
        self.begin_step = int(begin_step)
        self.end_step = int(end_step)
        self.frequency = int(frequency)
        register_with_tfmot()

    def _should_prune(self, step: int) -> bool:
        return self.begin_step <= step <= self.end_step and (step - self.begin_step) % self.frequency == 0

    def _sparsity(self, step: int) -> np.float32:
        """tfmot's PolynomialDecay arithmetic, op for op in float32 (so masks match tfmot's rounding)."""
        f32 = np.float32
        p = f32(step - self.begin_step) / f32(self.end_step - self.begin_step)
        p = min(f32(1.0), max(f32(0.0), p))
        return f32(self.initial_sparsity - self.final_sparsity) * (f32(1.0) - p) ** f32(self.power) \
            + f32(self.final_sparsity)

    def __call__(self, step) -> Tuple[Any, Any]:
        """(should_prune, p_t) at ``step``.

        For an integer step, Python/NumPy values (``bool``, ``np.float32``): a loop that
        ranks neurons eagerly pays no tensor dispatch. For a TensorFlow tensor or variable
        (tfmot's pruning wrappers call it with their step variable inside ``tf.function``),
        TensorFlow tensors computed as tfmot computes them.
        """
        register_with_tfmot()  # tfmot may have been imported since this schedule was made (a dict lookup)
        if isinstance(step, (int, np.integer)) and not isinstance(step, (bool, np.bool_)):
            return self._should_prune(int(step)), self._sparsity(int(step))
        return self._tensor_call(step)

    def _tensor_call(self, step):
        tf = sys.modules.get("tensorflow")
        if tf is None or not (tf.is_tensor(step) or isinstance(step, tf.Variable)):
            raise ValueError(f"step must be an integer or a TensorFlow integer tensor, got {type(step).__name__}")
        step = tf.cast(step, tf.int64)
        p = tf.math.minimum(1.0, tf.math.maximum(0.0, tf.math.divide(
            tf.cast(step - self.begin_step, tf.float32), self.end_step - self.begin_step)))
        sparsity = tf.math.add(tf.math.multiply(self.initial_sparsity - self.final_sparsity,
                                                tf.math.pow(1 - p, self.power)),
                               self.final_sparsity, name="sparsity")
        in_range = tf.math.logical_and(tf.math.greater_equal(step, self.begin_step),
                                       tf.math.less_equal(step, self.end_step))
        on_grid = tf.math.equal(tf.math.floormod(step - self.begin_step, self.frequency), 0)
        return tf.math.logical_and(in_range, on_grid), sparsity

    def sparsity_at(self, step: int) -> float:
        """Eq. 17 as a Python float, for code that ranks neurons eagerly."""
        return float(self._sparsity(int(step)))

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

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash(tuple(self.get_config()["config"].values()))

    def __repr__(self) -> str:
        c = self.get_config()["config"]
        return "DynamicPruningSchedule(" + ", ".join(f"{k}={v}" for k, v in c.items()) + ")"


def register_with_tfmot() -> bool:
    """Makes DynamicPruningSchedule a (virtual) tfmot PruningSchedule and PolynomialDecay once tfmot is
    imported; True when it is. Called by every new schedule and by the tf_keras path (``dsp_tf._keras``),
    so the order in which tfmot and dsp_tf are imported does not matter."""
    if _TFMOT not in sys.modules:
        return False
    module = sys.modules.get(f"{_TFMOT}.python.core.sparsity.keras.pruning_schedule")
    if module is None:  # tfmot is still importing (its package __init__ runs first)
        return False
    if not issubclass(DynamicPruningSchedule, module.PolynomialDecay):
        module.PolynomialDecay.register(DynamicPruningSchedule)
    return True


register_with_tfmot()
