"""c_tables.trim: the stored span of an activation table, read through the C lookup's clamp, is the whole
table (a flash saving that must never change an output)."""
import numpy as np
import pytest

from tflite_export.tflite_graph import _sigmoid_like_params
from tflite_export.c_tables import activation_table, expand_odd, expand_trimmed, odd_half, trim


def _through_clamp(lo, entries):
    """What the C kernel ap_lookup returns for inputs -128..127 (written apart from c_tables)."""
    hi = lo + len(entries) - 1
    return [entries[int(np.clip(q, lo, hi)) - lo] for q in range(-128, 128)]


@pytest.mark.parametrize("table, stored", [
    ([0] * 256, 1),                                             # constant: one entry
    (list(range(-128, 128)), 256),                              # nothing saturated: all 256
    ([-128] * 100 + list(range(-27, 29)) + [127] * 100, 58),    # both ends saturated: 56 + one of each end
    ([-128] * 10 + [5] * 236 + [7] * 10, 238),                  # a flat middle is kept between the ends
    ([3, -128] + [-128] * 254, 2),                              # a lone different first entry is kept
])
def test_trim_keeps_exactly_the_unsaturated_span(table, stored):
    lo, entries = trim(table)
    assert _through_clamp(lo, entries) == table
    assert len(entries) == stored


def test_trim_on_real_tanh_tables_is_exact_and_smaller():
    rng = np.random.default_rng(0)
    for _ in range(20):
        zero_point = int(rng.integers(-128, 128))
        table = activation_table("tanh", zero_point, 256, int(rng.integers(1 << 30, 1 << 31)),
                                 int(rng.integers(-2, 3)))
        lo, entries = trim(table)
        assert _through_clamp(lo, entries) == table
        # the stored span is minimal: its ends are not themselves part of a saturated run
        if len(entries) > 1:
            assert entries[1] != entries[0] or lo == -128
            assert entries[-2] != entries[-1] or lo + len(entries) - 1 == 127


def test_tanh_tables_are_odd_and_half_of_them_gives_all_back():
    """TFLite Micro's TANH rounds symmetrically, so its table is odd about the input zero point (the top
    saturating at 127, the bottom at -128): half of it, read as ap_lookup_odd reads it, is the table."""
    for zero_point, scale in ((-128, 0.01), (-100, 0.03), (-3, 0.2), (0, 0.02), (7, 0.005), (90, 0.05), (127, 0.1)):
        m, shift, radius = _sigmoid_like_params(scale)
        table = activation_table("tanh", zero_point, min(radius, 256), m, shift)
        half = odd_half(table, zero_point)
        assert half is not None
        assert expand_odd(half, zero_point) == table
        assert len(half) <= max(zero_point + 128, 127 - zero_point) + 1
        lo, entries = trim(table)
        assert expand_trimmed(lo, entries) == table == _through_clamp(lo, entries)


def test_a_table_that_is_not_odd_is_kept_whole():
    assert odd_half([0] * 128 + [5] * 128, 0) is None  # a step is not odd
    assert odd_half(list(range(-128, 128)), 0) is not None  # q -> q is (its top clamped at 127)


def test_logistic_tables_are_odd_too():
    """LOGISTIC's int8 output (zero point -128, scale 1/256) makes 1/2 the level 0: odd as well."""
    m, shift, radius = _sigmoid_like_params(0.05)
    logistic = activation_table("logistic", 5, min(radius, 256), m, shift)
    assert expand_odd(odd_half(logistic, 5), 5) == logistic


def test_trim_refuses_a_table_that_is_not_256_entries():
    with pytest.raises(ValueError, match="256 entries"):
        trim([0] * 255)
