"""Every training method, declared once: what it adds to the loss and what it prunes.

The trainer builds a method's pruner here, the sweep reads which settings a
method's runs depend on (λ, pruning ratio, ranking) and the report reads the
order and the same facts, so adding a method or a ranking touches this file
only. Like Torch-Pruning's one pruner with an injected importance, the
structured methods differ only in their penalty and their neuron score.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from dsp_tf._keras import keras
from dsp_tf.importance import neuron_group_norms, neuron_importance, random_scores
from dsp_tf.input_pruning import InputFeaturePruner
from dsp_tf.masks import check_ranking
from dsp_tf.pruner import Scorer, StructuredPruner
from dsp_tf.pruner_base import PrunerBase
from dsp_tf.regularizers import (GroupLassoRegularizer, InputGroupL1Regularizer,
                                 NeuronImportanceRegularizer, WeightL1Regularizer)
from dsp_tf.schedule import DynamicPruningSchedule
from dsp_tf.weight_pruning import MagnitudePruner

#: The cross-layer ranking of neuron methods unless a run says otherwise (--ranking).
DEFAULT_RANKING = "global"

#: What a method removes. ``none``: nothing (dense baselines).
UNITS = ("none", "neuron", "weight", "input")


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    unit: str = "none"
    #: The penalty's class, built with λ; None: the method adds nothing to the loss.
    regularizer: Optional[Callable[[float], Callable]] = None
    #: Builds the neuron ranking from the run's generator; None: Ω (Eq. 12). Neuron methods only.
    scorer: Optional[Callable[[np.random.Generator], Scorer]] = None

    @property
    def penalized(self) -> bool:
        """Its runs depend on λ."""
        return self.regularizer is not None

    @property
    def prunes(self) -> bool:
        """Its runs depend on the pruning ratio and the schedule."""
        return self.unit != "none"

    @property
    def ranks_neurons(self) -> bool:
        """Its runs depend on the cross-layer ranking."""
        return self.unit == "neuron"


def _random_scorer(rng: np.random.Generator) -> Scorer:
    """One random ranking drawn at the start: as random as redrawing, and a resumed
    run ranks exactly as the uninterrupted one (no RNG state to checkpoint)."""
    fixed = []

    def scorer(layers, masks):
        if not fixed:
            fixed.extend(random_scores(layers, rng))
        return fixed

    return scorer


_ALL = (
    Method("ppo", "dense PPO, no pruning"),
    Method("small", "dense PPO with a small actor trained from scratch"),
    Method("dsp", "neuron-importance group-sparse regularizer, prune by importance (Eq. 12)",
           unit="neuron", regularizer=NeuronImportanceRegularizer),
    Method("ssl", "group lasso over each neuron's weights, prune by group norm", unit="neuron",
           regularizer=GroupLassoRegularizer,
           scorer=lambda rng: (lambda layers, masks: neuron_group_norms(layers, masks))),
    Method("sgs", "group sparsity over the first layer's input features, prune features by row norm",
           unit="input", regularizer=InputGroupL1Regularizer),
    Method("dropout", "random neuron pruning on the same schedule", unit="neuron", scorer=_random_scorer),
    Method("l1", "L1 penalty on all actor weights, magnitude pruning of weights", unit="weight",
           regularizer=WeightL1Regularizer),
    Method("pops", "iterative hard-threshold magnitude pruning of weights (tfmot)", unit="weight"),
)

#: Every method by name, in the order tables and figures list them.
METHODS: Dict[str, Method] = {m.name: m for m in _ALL}
METHOD_NAMES: Tuple[str, ...] = tuple(METHODS)


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method '{name}' (choose from {', '.join(METHOD_NAMES)})")
    return METHODS[name]


def make_pruner(model: keras.Model, method: str, schedule: DynamicPruningSchedule, reg_strength: float = 0.0,
                seed: int = 0, min_neurons_per_layer: int = 1, threshold: str = "count",
                ranking: str = "global") -> PrunerBase:
    """The pruner of ``method`` around ``model``; a dense method's masks simply stay all ones.

    ``seed`` seeds the random ranking (``dropout``); ``ranking``,
    ``threshold`` and ``min_neurons_per_layer`` only concern neuron methods.
    """
    m = get_method(method)
    check_ranking(ranking)  # weight and input methods ignore it, but a wrong one is still wrong
    regularizer = m.regularizer(reg_strength) if m.penalized and reg_strength > 0 else None
    if m.unit == "weight":
        return MagnitudePruner(model, schedule, regularizer=regularizer)
    if m.unit == "input":
        return InputFeaturePruner(model, schedule, regularizer=regularizer)
    scorer = m.scorer(np.random.default_rng(seed)) if m.scorer else None
    return StructuredPruner(model, schedule, regularizer=regularizer, min_neurons_per_layer=min_neurons_per_layer,
                            threshold=threshold, scorer=scorer, ranking=ranking)
