"""Which actor a run ships: the best one on held-out validation episodes.

PPO's last policy is not its best: on CartPole dense and pruned runs alike hold
a return of 500 for most of training and then collapse (docs/RESULTS.md). As
SB3's ``EvalCallback`` does, the loop validates the masked actor greedily every
``--validation_interval`` env steps, once the pruning schedule has applied its
final mask (so the kept actor has the final size), and keeps a copy of the best
(ties go to the later actor). The copy is a ``tf.Module`` in the run's
checkpoint, so a run killed after a new best resumes with it.

Validation episodes are the learning curves' held-out episodes
(``agents.evaluation.held_out_seeds``): never used in training, and apart from
the final test episodes, which no choice made during training has seen.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import numpy as np

from dsp_tf._keras import tf

class BestActor(tf.Module):
    """A copy of the actor's state (weights, masks, observation normaliser) at its best
    validation return, with the env step and the return.

    The state's variables are passed to each call rather than held, so the
    checkpoint stores only the copies, not a second reference to the live actor.
    """

    def __init__(self, state: Sequence[tf.Variable]):
        super().__init__(name="best_actor")
        self.copies = [tf.Variable(v.read_value(), trainable=False, name=f"copy_{i}") for i, v in enumerate(state)]
        self.step = tf.Variable(-1, dtype=tf.int64, name="step", trainable=False)
        self.value = tf.Variable(-np.inf, dtype=tf.float64, name="validation_return", trainable=False)
        self.checks = tf.Variable(0, dtype=tf.int64, name="checks", trainable=False)

    @property
    def chosen(self) -> bool:
        return int(self.step.numpy()) >= 0

    def offer(self, state: Sequence[tf.Variable], step: int, value: float) -> bool:
        """Keeps ``state`` if ``value`` is at least the best so far (ties → the later); returns whether it did."""
        self.checks.assign_add(1)
        if self.chosen and value < float(self.value.numpy()):
            return False
        for copy, var in zip(self.copies, state, strict=True):
            copy.assign(var)
        self.step.assign(int(step))
        self.value.assign(float(value))
        return True

    @contextlib.contextmanager
    def swapped_in(self, state: Sequence[tf.Variable]) -> Iterator[None]:
        """The kept actor in the live variables for the duration, the current one restored after."""
        current = [v.read_value() for v in state]
        for var, copy in zip(state, self.copies, strict=True):
            var.assign(copy)
        try:
            yield
        finally:
            for var, value in zip(state, current, strict=True):
                var.assign(value)
