"""Scores with their tails (issue 43): the worst-decile mean and the failure rate against NumPy on fixed lists."""
import math

import numpy as np
import pytest

from agents.tails import cvar10, failure_rate, worst_share_mean

RETURNS = [12.0, -3.0, 7.5, 100.0, 55.0, 0.0, 41.0, 8.0, 9.0, 60.0, 3.0]


@pytest.mark.parametrize("n, worst", [(1, 1), (9, 1), (10, 1), (11, 2), (20, 2), (30, 3), (50, 5)])
def test_the_worst_decile_is_the_mean_of_the_lowest_tenth_rounded_up(n, worst):
    values = np.resize(np.array(RETURNS), n) + np.arange(n) * 0.25  # distinct, unsorted
    assert math.ceil(0.1 * n - 1e-9) == worst  # 30 · 0.1 is 3.0000000000000004 in floats: still the worst 3
    assert cvar10(values.tolist()) == pytest.approx(np.sort(values)[:worst].mean(), rel=1e-12)


def test_the_worst_decile_of_a_fixed_list():
    assert cvar10(RETURNS) == pytest.approx((-3.0 + 0.0) / 2)  # 11 episodes: the worst two
    assert worst_share_mean(RETURNS, 0.5) == pytest.approx(np.sort(RETURNS)[:6].mean())
    assert worst_share_mean(RETURNS, 1.0) == pytest.approx(np.mean(RETURNS))
    assert cvar10([5.0] * 20) == 5.0
    with pytest.raises(ValueError):
        cvar10([])


def test_the_failure_rate_counts_episodes_below_half_the_teachers_median():
    teacher = [100.0, 400.0, 200.0, 300.0, 1000.0]  # median 300: the 1000 does not move the bar
    student = [50.0, 149.9, 150.0, 300.0, 20.0, 500.0, 160.0, 151.0]
    expected = np.mean(np.array(student) < 0.5 * np.median(teacher))
    assert failure_rate(student, teacher) == pytest.approx(expected) == pytest.approx(3 / 8)
    assert failure_rate([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert failure_rate(student, [0.0] * 5) == 0.0  # a teacher at 0 leaves nothing to fall below
