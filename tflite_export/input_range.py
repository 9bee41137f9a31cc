"""Which raw observation range the int8 input covers, and how well that range is checked.

An int8 input has 256 levels per feature; whatever lies outside the range they
span is clamped to its end, silently. Calibrating on the policy's own greedy
episodes (the old default) gives fine levels but a narrow range: a trained
CartPole actor keeps its pole within about ±0.03 rad, so any push beyond that
saturated and, on observations spread over CartPole's range, about 11% of
actions differed from Keras (issue 27). The range is therefore chosen
explicitly (``--input_range``):

* ``episodes``: the policy's own greedy episodes (fine levels, narrow);
* ``training`` (the default, DEFAULT_INPUT_RANGE: measured in docs/embedded_input_range.md):
  the training rollouts' mean ± 4 standard deviations, from the
  observation normaliser's running statistics (saved with the actor; the runs
  keep no min/max), joined with the episodes' range and cut to the observation
  space's finite bounds;
* ``observation_space``: the environment's finite bounds, ``training`` where a
  bound is infinite;
* ``--calibration_range=lo:hi[,lo:hi...]``: the user's own (one pair for every
  feature, or one per feature), used exactly as given or refused, never quietly
  changed: a bound beyond ±CALIBRATION_LIMIT, where float32 arithmetic on it
  overflows, or a range too narrow for float32 to hold 256 int8 levels, is
  refused before any work (``parse_calibration_pairs``); with a per-feature
  int8 input, so is a range wider than the observation normaliser's clip
  window (``check_inside_window``), which the input map would otherwise narrow
  to the window (the other sources are narrowed, and the header and the report
  say so).

The int8 converter is then calibrated on the episodes plus observations spread
uniformly over the range, so that the input tensor and the hidden layers'
quantisation cover it too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from dsp_tf.errors import UsageError

#: The choices of --input_range.
INPUT_RANGES = ("training", "episodes", "observation_space")
#: --input_range's default (issue 39, measured in docs/embedded_input_range.md on CartPole, two Hopper
#: and a LunarLander DSP actor): on observations spread over the training box (normaliser mean +- 4
#: std) the int8 actions agreed with float on 82.3%, 27.4% and 23.2% (CartPole, Hopper) with
#: ``episodes`` and on 99.85%, 100% and 100% with ``training``; on held-out episodes ``training``
#: saturated on 0-0.12% of states (``episodes``: 3.2-9%) and agreed on 97.7% (CartPole, against 98.5%;
#: 500 returns on all 10 episodes either way), 100% and 99.99% (Hopper, against 99.7% and 99.5%); on
#: LunarLander it was the better one on both (82.3% vs 74.2% held out, 99.2% vs 76.3% on the box).
#: ``training`` already joins the episodes' range (a union of the two).
DEFAULT_INPUT_RANGE = "training"
#: Standard deviations either side of the training rollouts' mean that ``training`` covers.
TRAINING_STDS = 4.0
#: Observations spread uniformly over the range, added to the int8 calibration set and used for the
#: agreement check over the range.
SPREAD_OBSERVATIONS = 2000
#: The largest magnitude --calibration_range takes. float32, which the board and the converter
#: compute in, ends at 3.4e38, and a bound of the range goes through products before it is
#: compared with anything: the observation normaliser multiplies it by 1/std (up to
#: 1/sqrt(epsilon), about 32), the first layer by its weights, and the per-feature map by the
#: inverse of the half-width, which must stay a normal float32 (above 1.2e-38). At -1e38:1e38
#: the observations spread over the range overflowed to inf (eight RuntimeWarnings) and the range
#: silently became the normaliser's clip window. 1e30 leaves eight decades for those factors; no
#: sensor reads beyond it.
CALIBRATION_LIMIT = 1e30
#: A feature's half-width at or below this is taken as a constant feature and given a unit range
#: (tflite_export.input_scaling.fit_feature_scaling): a range given that narrow is refused instead.
MIN_HALF_WIDTH = 1e-12
#: int8 levels a feature's range is cut into; float32 must tell them apart.
INT8_LEVELS = 256


@dataclass(frozen=True)
class InputRange:
    """Per-feature raw range the int8 input is made to cover, and where it comes from."""

    low: np.ndarray
    high: np.ndarray
    source: str
    note: str  # one line for the C header

    def spread(self, count: int, seed: int = 0) -> np.ndarray:
        """``count`` observations uniform over the range (the check of what the range claims)."""
        rng = np.random.default_rng(seed)
        return rng.uniform(self.low, self.high, size=(count, len(self.low))).astype(np.float32)


def parse_calibration_pairs(text: Optional[str]) -> List[Tuple[float, float]]:
    """The (lo, hi) pairs of ``--calibration_range`` text, checked without the run: the syntax,
    and that float32 carries each range (CALIBRATION_LIMIT, and room for INT8_LEVELS levels).
    A UsageError otherwise, before any work; an empty flag is refused rather than taken to mean
    "not given" (it used to fall back to --input_range silently)."""
    if text is None or not text.strip():
        raise UsageError("--calibration_range is empty: give lo:hi or lo:hi,lo:hi,... (or leave the flag out "
                         "for --input_range)")
    pairs = [p.strip() for p in text.split(",")]
    if not all(pairs):
        raise UsageError(f"--calibration_range '{text}' has an empty lo:hi pair")
    bounds = []
    for p in pairs:
        parts = p.split(":")
        try:
            lo, hi = (float(v) for v in parts) if len(parts) == 2 else (math.nan, math.nan)
        except ValueError:
            lo = hi = math.nan
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise UsageError(f"--calibration_range: '{p}' is not lo:hi with finite lo < hi")
        if max(abs(lo), abs(hi)) > CALIBRATION_LIMIT:
            raise UsageError(f"--calibration_range: '{p}' goes beyond +-{CALIBRATION_LIMIT:g}, past what float32 "
                             "carries through the normaliser, the first layer and the int8 input map without "
                             "overflowing: give the observation's real range")
        narrowest = max(2 * MIN_HALF_WIDTH, (INT8_LEVELS - 1) * float(np.spacing(np.float32(max(abs(lo), abs(hi))))))
        if hi - lo <= narrowest:
            raise UsageError(f"--calibration_range: '{p}' is too narrow for float32 to cut into {INT8_LEVELS} int8 "
                             f"levels (it must be wider than {narrowest:.3g} there)")
        bounds.append((lo, hi))
    return bounds


def parse_calibration_range(text: str, obs_dim: int) -> Tuple[np.ndarray, np.ndarray]:
    """'lo:hi' for every feature or 'lo:hi,lo:hi,...' one per feature, as (low, high) arrays;
    UsageError otherwise (parse_calibration_pairs, and the number of pairs)."""
    bounds = parse_calibration_pairs(text)
    if len(bounds) not in (1, obs_dim):
        raise UsageError(f"--calibration_range needs 1 or {obs_dim} lo:hi pairs, got {len(bounds)}")
    if len(bounds) == 1:
        bounds *= obs_dim
    low, high = (np.array(v, np.float64) for v in zip(*bounds))
    return low, high


def _rounded_inward(value: float, up: bool) -> str:
    """``value`` to 6 significant digits, rounded towards the inside of a range (a low end up, a
    high end down), so that a window printed in a message and pasted back lies within it."""
    if not math.isfinite(value):
        return f"{value:g}"
    exact = Decimal(repr(value))
    step = Decimal(1).scaleb(exact.adjusted() - 5)
    return f"{exact.quantize(step, rounding=ROUND_CEILING if up else ROUND_FLOOR).normalize():g}"


def check_inside_window(low: np.ndarray, high: np.ndarray, window_low: np.ndarray, window_high: np.ndarray) -> None:
    """Refuses (UsageError, one line) a ``--calibration_range`` wider than the observation
    normaliser's clip window (``window_*``, raw units, ±inf without a normaliser) for a per-feature
    int8 input. Beyond the window the actor sees every observation as the window's end, and the
    input map, folded into the first layer, is exact only inside it, so the range used to be
    narrowed to the window silently while the C header said "given by --calibration_range". The
    message gives the window, rounded inward, as a --calibration_range that is accepted."""
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    window_low, window_high = np.asarray(window_low, np.float64), np.asarray(window_high, np.float64)
    outside = np.flatnonzero((low < window_low) | (high > window_high))
    if not outside.size:
        return
    i = int(outside[0])
    inside = ",".join(f"{_rounded_inward(max(lo, wlo), True)}:{_rounded_inward(min(hi, whi), False)}"
                      for lo, hi, wlo, whi in zip(low, high, window_low, window_high))
    more = f" (and {len(outside) - 1} more features')" if len(outside) > 1 else ""
    raise UsageError(f"--calibration_range: feature {i}'s {low[i]:g}:{high[i]:g}{more} goes beyond the actor's "
                     f"observation normaliser clip window {window_low[i]:.6g}:{window_high[i]:.6g}; the actor sees "
                     "anything beyond it as the window's end and a per-feature int8 input covers no more, so the "
                     f"range would be narrowed: give ranges within the windows, e.g. --calibration_range={inside}")


def _finite_space_bounds(space_low: Optional[np.ndarray], space_high: Optional[np.ndarray],
                         obs_dim: int) -> Tuple[np.ndarray, np.ndarray]:
    low = np.full(obs_dim, -np.inf) if space_low is None else np.asarray(space_low, np.float64)
    high = np.full(obs_dim, np.inf) if space_high is None else np.asarray(space_high, np.float64)
    # gymnasium writes "unbounded" as ±inf or as float32's largest value
    big = np.finfo(np.float32).max / 2
    return np.where(np.abs(low) < big, low, -np.inf), np.where(np.abs(high) < big, high, np.inf)


def choose_input_range(kind: str, episodes: np.ndarray, obs_mean: Optional[Sequence[float]] = None,
                       obs_var: Optional[Sequence[float]] = None, space_low: Optional[np.ndarray] = None,
                       space_high: Optional[np.ndarray] = None, explicit: Optional[str] = None) -> InputRange:
    """The range of ``kind`` (INPUT_RANGES), or the user's ``explicit`` one when given."""
    episodes = np.asarray(episodes, np.float64)
    obs_dim = episodes.shape[1]
    ep_low, ep_high = episodes.min(0), episodes.max(0)
    if explicit is not None:  # an empty one is refused, not taken for "none"
        low, high = parse_calibration_range(explicit, obs_dim)
        return InputRange(low, high, "calibration_range", "given by --calibration_range")
    if kind not in INPUT_RANGES:
        raise UsageError(f"unknown input range '{kind}' (choose from {', '.join(INPUT_RANGES)})")
    if kind == "episodes":
        return InputRange(ep_low, ep_high, kind, "--input_range=episodes, the policy's own greedy episodes: narrow, "
                                                 "check the saturation count")
    if obs_mean is None or obs_var is None:
        raise UsageError(f"--input_range={kind} needs the training rollouts' observation statistics, which this "
                         "actor does not have; use --input_range=episodes or --calibration_range")
    mean, std = np.asarray(obs_mean, np.float64), np.sqrt(np.asarray(obs_var, np.float64))
    s_low, s_high = _finite_space_bounds(space_low, space_high, obs_dim)
    low = np.minimum(mean - TRAINING_STDS * std, ep_low)
    high = np.maximum(mean + TRAINING_STDS * std, ep_high)
    if kind == "observation_space":
        low, high = np.where(np.isfinite(s_low), s_low, low), np.where(np.isfinite(s_high), s_high, high)
        note = ("--input_range=observation_space, the observation space's bounds; unbounded features: training "
                "mean +- 4 std")
    else:
        note = (f"--input_range=training{' (the default)' if kind == DEFAULT_INPUT_RANGE else ''}, the training "
                "rollouts' mean +- 4 std (observation normaliser), with the policy's episodes, within the observation "
                "space")
    low, high = np.maximum(low, s_low), np.minimum(high, s_high)
    high = np.where(high > low, high, low + 1.0)  # a constant feature gets a unit range
    return InputRange(low, high, kind, note)


def coverage(rng: InputRange, episodes: np.ndarray, space_low: Optional[np.ndarray] = None,
             space_high: Optional[np.ndarray] = None, effective: Optional[Tuple[np.ndarray, np.ndarray]] = None
             ) -> Dict[str, object]:
    """Per feature: the claimed range, what the int8 input really covers (``effective``: the range
    narrowed to the normalisation's clip window), the episodes' range, the observation space, and the
    share of episode observations inside."""
    episodes = np.asarray(episodes, np.float64)
    eff_low, eff_high = effective if effective is not None else (rng.low, rng.high)
    s_low, s_high = _finite_space_bounds(space_low, space_high, episodes.shape[1])
    features: List[dict] = []
    for i in range(episodes.shape[1]):
        col = episodes[:, i]
        features.append({
            "index": i, "low": float(eff_low[i]), "high": float(eff_high[i]),
            "requested_low": float(rng.low[i]), "requested_high": float(rng.high[i]),
            "episodes_min": float(col.min()), "episodes_max": float(col.max()),
            "observation_space": [None if not np.isfinite(s_low[i]) else float(s_low[i]),
                                  None if not np.isfinite(s_high[i]) else float(s_high[i])],
            "episodes_inside_rate": float(np.mean((col >= eff_low[i]) & (col <= eff_high[i]))),
        })
    return {"source": rng.source, "note": rng.note, "features": features}
