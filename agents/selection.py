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

A best of many five-episode scores flatters the actor it picks (the winner's curse: students'
best-of-18 validations sat at 100-113% of their teachers while their test returns did not, issue
43). With ``--confirm_top=k`` the copies of the k best validated actors are kept, and at the end of
training each is played again on ``--confirm_episodes`` fresh episodes of its own
(``agents.evaluation.confirm_seeds``, apart from validation's, the judge's and the test's); the best
on those ships. The candidates are in the checkpoint, so a resumed run confirms the same ones.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

import numpy as np

from dsp_tf._keras import tf

class _Candidate(tf.Module):
    """A kept actor's copy beyond the best: its state, env step and validation return."""

    def __init__(self, state: Sequence[tf.Variable], rank: int):
        super().__init__(name=f"candidate_{rank}")
        self.copies = [tf.Variable(v.read_value(), trainable=False, name=f"copy_{i}") for i, v in enumerate(state)]
        self.step = tf.Variable(-1, dtype=tf.int64, name="step", trainable=False)
        self.value = tf.Variable(-np.inf, dtype=tf.float64, name="validation_return", trainable=False)


class BestActor(tf.Module):
    """Copies of the actor's state (weights, masks, observation normaliser) at its ``keep`` best
    validation returns, with their env steps and returns; the best in the attributes checkpoints
    have always held (``copies``, ``step``, ``value``), so with ``keep=1`` a run's checkpoint is
    what it was before candidates existed.

    The state's variables are passed to each call rather than held, so the
    checkpoint stores only the copies, not a second reference to the live actor.
    """

    def __init__(self, state: Sequence[tf.Variable], keep: int = 1):
        super().__init__(name="best_actor")
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.copies = [tf.Variable(v.read_value(), trainable=False, name=f"copy_{i}") for i, v in enumerate(state)]
        self.step = tf.Variable(-1, dtype=tf.int64, name="step", trainable=False)
        self.value = tf.Variable(-np.inf, dtype=tf.float64, name="validation_return", trainable=False)
        self.checks = tf.Variable(0, dtype=tf.int64, name="checks", trainable=False)
        if keep > 1:  # only then: an empty list would be a checkpoint dependency older checkpoints lack
            self.runners_up = [_Candidate(state, rank) for rank in range(1, keep)]

    @property
    def _slots(self) -> List:
        """Best first; each has ``copies``, ``step`` and ``value``."""
        return [self] + list(getattr(self, "runners_up", []))

    @property
    def chosen(self) -> bool:
        return int(self.step.numpy()) >= 0

    def offer(self, state: Sequence[tf.Variable], step: int, value: float) -> bool:
        """Ranks ``state`` among the kept copies (ties → the later above the earlier), dropping the
        lowest when all are taken; returns whether it is now the best."""
        self.checks.assign_add(1)
        slots = self._slots
        rank = next((i for i, slot in enumerate(slots)
                     if int(slot.step.numpy()) < 0 or value >= float(slot.value.numpy())), None)
        if rank is None:
            return False
        for below, above in reversed(list(zip(slots[rank + 1:], slots[rank:-1]))):  # make room: shift down one
            for copy, source in zip(below.copies, above.copies, strict=True):
                copy.assign(source)
            below.step.assign(above.step)
            below.value.assign(above.value)
        slot = slots[rank]
        for copy, var in zip(slot.copies, state, strict=True):
            copy.assign(var)
        slot.step.assign(int(step))
        slot.value.assign(float(value))
        return rank == 0

    def candidates(self) -> List[Tuple[int, float]]:
        """(env step, validation return) of the kept copies, best first."""
        return [(int(s.step.numpy()), float(s.value.numpy())) for s in self._slots if int(s.step.numpy()) >= 0]

    @contextlib.contextmanager
    def swapped_in(self, state: Sequence[tf.Variable], rank: int = 0) -> Iterator[None]:
        """The kept actor of ``rank`` (0: the best validated) in the live variables for the duration,
        the current one restored after."""
        current = [v.read_value() for v in state]
        for var, copy in zip(state, self._slots[rank].copies, strict=True):
            var.assign(copy)
        try:
            yield
        finally:
            for var, value in zip(state, current, strict=True):
                var.assign(value)


def confirm(best: BestActor, state: Sequence[tf.Variable], score: Callable[[], float]) -> Tuple[int, List[Dict]]:
    """Plays each kept candidate again (``score()`` with it swapped into ``state``) and returns the
    rank of the one that ships and the candidates' records, best validated first. The highest
    confirmed score wins; a tie goes to the better validated, so when the confirmation cannot tell
    them apart the run ships what best-of-N validation would have."""
    rows = []
    for rank, (step, value) in enumerate(best.candidates()):
        with best.swapped_in(state, rank):
            confirmed = float(score())
        rows.append({"step": step, "validation_return": round(value, 3), "confirmation_return": round(confirmed, 3)})
    if not rows:
        raise ValueError("no validated actor to confirm")
    chosen = max(range(len(rows)), key=lambda r: (rows[r]["confirmation_return"], -r))
    return chosen, rows
