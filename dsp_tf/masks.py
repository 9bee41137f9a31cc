"""Choosing which neurons to mask (Eqs. 16 and 18), in plain NumPy.

Kept free of TensorFlow so that the rule can be read, tested and reused on its
own: given one score per neuron and the current masks, return the new masks.
"""
from __future__ import annotations

import math
from typing import Any, List, Sequence

import numpy as np

THRESHOLDS = ("count", "mass")

#: How scores of different layers are compared (see ``rank_scores``).
RANKINGS = ("global", "layer_normalized", "per_layer")


def layer_normalized(scores: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Each layer's scores over that layer's mean score of live neurons.

    Raw scores carry their layer's scale: Ω of the last hidden layer multiplies
    by the output layer's weights, which start at 0.01, so a global ranking
    empties that layer first whatever its neurons do. Dividing by the layer
    mean (Torch-Pruning's group-importance normaliser) ranks each neuron against
    its own layer's typical neuron, and layers then compete on equal terms.
    A layer whose live scores are all zero keeps zeros.
    """
    out = []
    for s, m in zip(scores, masks):
        s = np.asarray(s, dtype=np.float64).reshape(-1)
        live = np.asarray(m).reshape(-1) > 0.5
        mean = float(s[live].mean()) if live.any() else 0.0
        out.append(s / mean if mean > 0 else s.copy())
    return out


def check_sparsity(value: Any, name: str) -> float:
    """The one rule for a sparsity: a number in [0, 1). ValueError naming ``name`` otherwise; the schedule,
    the mask selection and the command lines (their ratios) all apply it."""
    if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not 0.0 <= float(value) < 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def check_ranking(ranking: str) -> str:
    """The one rule for a cross-layer ranking; the pruner and the trainer's flags apply it."""
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {RANKINGS}, got {ranking!r}")
    return ranking


def check_threshold(threshold: str) -> str:
    """The one rule for a pruning threshold; the pruner and the trainer's flags apply it."""
    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {THRESHOLDS}, got {threshold!r}")
    return threshold


def select_masks(scores: Sequence[np.ndarray], masks: Sequence[np.ndarray], sparsity: float,
                 min_neurons_per_layer: int = 1, threshold: str = "count",
                 ranking: str = "global") -> List[np.ndarray]:
    """New masks after pruning to ``sparsity`` of all hidden neurons.

    ``ranking`` says how layers are compared: ``global`` ranks the raw scores
    of all layers together (the paper), ``layer_normalized`` ranks scores
    divided by their layer's live mean (see ``layer_normalized``), and ``per_layer``
    prunes each layer to ``sparsity`` of its own neurons with the same rule.

    ``count`` (default, the paper's "pruning ratio"): the ceil(p·N) neurons with
    the smallest score, ranked across layers, end up masked. ``mass`` (literal
    Eq. 16): mask alive neurons in ascending score order while their cumulative
    score stays ≤ ψ = p·Σ score. Both only turn 1s into 0s and never leave a
    layer with fewer than ``min_neurons_per_layer`` alive neurons. Ties break by
    layer then index, so the result is deterministic.
    """
    check_threshold(threshold)
    check_ranking(ranking)
    check_sparsity(sparsity, "sparsity")
    new = [np.asarray(m, dtype=np.float32).copy() for m in masks]
    scores = [np.asarray(s, dtype=np.float64).reshape(-1) for s in scores]
    if len(scores) != len(new) or any(s.shape != m.shape for s, m in zip(scores, new)):
        raise ValueError("scores and masks must have one vector per layer of equal length")
    if ranking == "per_layer":
        return [_select([s], [m], sparsity, min_neurons_per_layer, threshold)[0]
                for s, m in zip(scores, new)]
    if ranking == "layer_normalized":
        scores = layer_normalized(scores, new)
    return _select(scores, new, sparsity, min_neurons_per_layer, threshold)


def _select(scores, new, sparsity, min_neurons_per_layer, threshold):
    """The global rule of Eqs. 16/18 on ``scores`` (modifies and returns ``new``)."""
    alive = [int(m.sum()) for m in new]
    total = sum(m.size for m in new)
    candidates = sorted(
        (float(s[i]), layer, i)
        for layer, (s, m) in enumerate(zip(scores, new)) for i in np.flatnonzero(m > 0.5))

    if threshold == "count":
        budget = math.ceil(sparsity * total - 1e-9) - (total - sum(alive))
        for _, layer, i in candidates:
            if budget <= 0:
                break
            if alive[layer] > min_neurons_per_layer:
                new[layer][i] = 0.0
                alive[layer] -= 1
                budget -= 1
    else:
        psi = sparsity * sum(c[0] for c in candidates)
        mass = 0.0
        for score, layer, i in candidates:
            mass += score
            if mass > psi:
                break
            if alive[layer] > min_neurons_per_layer:
                new[layer][i] = 0.0
                alive[layer] -= 1
    return new
