"""Scores that see the worst episodes, not only the mean (issue 43).

A policy that averages 99% of its teacher can still crash on one episode in thirty (a LunarLander
student did, at 41 where its teacher scored 314); on a robot that episode is the one that matters.
So a run is scored beside its mean by its worst decile (CVaR 10%) and, for a student, by how often
it fails where its teacher does not. Plain NumPy: the tests hold these to a hand-computed list.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

#: The share of worst episodes the tail score averages (CVaR 10%).
TAIL_SHARE = 0.1
#: A student's episode fails below this share of its teacher's median return on the same episodes.
FAILURE_SHARE = 0.5


def worst_share_mean(returns: Sequence[float], share: float = TAIL_SHARE) -> float:
    """Mean of the lowest ceil(share · n) returns (at least one): with 10 episodes the worst one,
    with 50 the worst five, so the score is defined on any evaluation size and never empty."""
    values = np.sort(np.asarray(returns, np.float64).ravel())
    if values.size == 0:
        raise ValueError("no returns to score")
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share}")
    k = max(1, math.ceil(round(share * values.size, 9)))  # round: 0.1 · 30 is 3.0000000000000004 in floats
    return float(values[:k].mean())


def cvar10(returns: Sequence[float]) -> float:
    """The worst-decile mean, summary.json's ``return_cvar10``."""
    return worst_share_mean(returns, TAIL_SHARE)


def failure_rate(student: Sequence[float], teacher: Sequence[float], share: float = FAILURE_SHARE) -> float:
    """Share of the student's episodes below ``share`` × the teacher's median return on the same
    episodes: the median, so one bad teacher episode does not move the bar, and the teacher's, so
    the bar means the same on every task whatever its return scale."""
    student = np.asarray(student, np.float64).ravel()
    teacher = np.asarray(teacher, np.float64).ravel()
    if student.size == 0 or teacher.size == 0:
        raise ValueError("no returns to score")
    return float(np.mean(student < share * np.median(teacher)))
