"""Statistics over seeds the RL field trusts (Agarwal et al., 2021, via rliable).

Few seeds and heavy tails make a mean ± std misleading: the interquartile
mean (IQM) with a bootstrap 95% confidence interval says where a method's
typical run lands, and the probability of improvement P(X > Y) says how often
a run of one method beats a run of another, with its own interval. With one
task per table the stratified bootstrap is the plain bootstrap over seeds.
The generator is fixed, so a report regenerated from the same runs is the same.
"""
from __future__ import annotations

import warnings
from typing import Sequence, Tuple

import numpy as np

REPS = 2000
SEED = 0


def _estimates(score_dict, func, reps):
    from absl import logging
    from rliable import library as rly

    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.WARNING)  # rliable logs "Calculating estimates for ..." per call
    with warnings.catch_warnings():
        # arch (rliable's bootstrap) announces that RandomState will give way to Generator; rliable 1.2
        # only passes RandomState, so the notice is not ours to act on.
        warnings.simplefilter("ignore", FutureWarning)
        # arch 7 ignores the random_state rliable hands it and draws from NumPy's global generator,
        # so that one is seeded here (and put back), which makes every call give the same interval.
        state = np.random.get_state()
        np.random.seed(SEED)
        try:
            return rly.get_interval_estimates(score_dict, func, reps=reps, random_state=np.random.RandomState(SEED))
        finally:
            np.random.set_state(state)
            logging.set_verbosity(verbosity)


def _scores(values: Sequence[float]) -> np.ndarray:
    """rliable's layout: runs × tasks (one task)."""
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


def iqm_interval(values: Sequence[float], reps: int = REPS) -> Tuple[float, float, float]:
    """(IQM, lower, upper) of the 95% percentile-bootstrap interval over seeds."""
    from rliable import metrics

    point, interval = _estimates({"x": _scores(values)}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps)
    return float(point["x"][0]), float(interval["x"][0, 0]), float(interval["x"][1, 0])


def improvement_probability(x: Sequence[float], y: Sequence[float], reps: int = REPS) -> Tuple[float, float, float]:
    """(P(X > Y), lower, upper): the chance a run of X returns more than a run of Y (ties count half)."""
    from rliable import metrics

    point, interval = _estimates({"x,y": [_scores(x), _scores(y)]}, metrics.probability_of_improvement, reps)
    (p,), (lo, hi) = np.ravel(point["x,y"]), np.ravel(interval["x,y"])
    return float(p), float(lo), float(hi)
