"""Each training method as a small strategy: its penalty and its neuron ranking.

The training loop is the same for all of them; a method only decides what is
added to the actor's loss and in which order neurons are masked when the shared
schedule asks for pruning. ``ppo`` and ``small`` never prune (``small`` differs
only in ``--actor_layers``).
"""
from __future__ import annotations

from agents.errors import UsageError

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

import dsp_tf
from dsp_tf.input_pruning import InputFeaturePruner
from dsp_tf.pruner_base import PrunerBase
from dsp_tf.weight_pruning import MagnitudePruner
from agents.config import RunConfig

IMPLEMENTED = ("ppo", "dsp", "ssl", "sgs", "dropout", "l1", "pops", "small")


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    make_regularizer: Callable[[float], Optional[Callable]] = lambda strength: None
    make_scorer: Optional[Callable[[np.random.Generator], dsp_tf.pruner.Scorer]] = None
    unstructured: bool = False  # prunes single weights (tfmot magnitude pruning)
    input_features: bool = False  # prunes input features of the first layer (SGS)


def _random_scorer(rng: np.random.Generator):
    """One random ranking drawn at the start: as random as redrawing, and a resumed
    run ranks exactly as the uninterrupted one (no RNG state to checkpoint)."""
    fixed = []

    def scorer(layers, masks):
        if not fixed:
            fixed.extend(dsp_tf.random_scores(layers, rng))
        return fixed

    return scorer


METHOD_TABLE = {
    "ppo": Method("ppo", "dense PPO, no pruning"),
    "small": Method("small", "dense PPO with a small actor trained from scratch"),
    "dsp": Method("dsp", "neuron-importance group-sparse regularizer, prune by importance (Eq. 12)",
                  make_regularizer=dsp_tf.NeuronImportanceRegularizer),
    "ssl": Method("ssl", "group lasso over each neuron's weights, prune by group norm",
                  make_regularizer=dsp_tf.GroupLassoRegularizer,
                  make_scorer=lambda rng: (lambda layers, masks: dsp_tf.neuron_group_norms(layers, masks))),
    "dropout": Method("dropout", "random neuron pruning on the same schedule",
                      make_scorer=_random_scorer),
    "l1": Method("l1", "L1 penalty on all actor weights, magnitude pruning of weights",
                 make_regularizer=dsp_tf.WeightL1Regularizer, unstructured=True),
    "sgs": Method("sgs", "group sparsity over the first layer's input features, prune features by row norm",
                  make_regularizer=dsp_tf.InputGroupL1Regularizer, input_features=True),
    "pops": Method("pops", "iterative hard-threshold magnitude pruning of weights (tfmot)", unstructured=True),
}


def check_method(name: str) -> None:
    if name not in IMPLEMENTED:
        raise UsageError(f"method '{name}' is not implemented yet (available: {', '.join(IMPLEMENTED)})")


def make_pruner(mlp, cfg: RunConfig) -> PrunerBase:
    """Wraps the actor MLP; for non-pruning methods the masks simply stay all ones.

    Returns a StructuredPruner, a MagnitudePruner (weight-level methods) or an
    InputFeaturePruner (SGS): all implement dsp_tf's PrunerBase.
    """
    check_method(cfg.method)
    method = METHOD_TABLE[cfg.method]
    schedule = dsp_tf.DynamicPruningSchedule(cfg.initial_sparsity, cfg.final_sparsity,
                                             cfg.prune_begin, cfg.prune_end, cfg.prune_frequency)
    rng = np.random.default_rng(cfg.seed + 7919)
    regularizer = method.make_regularizer(cfg.reg_strength) if cfg.reg_strength > 0 else None
    scorer = method.make_scorer(rng) if method.make_scorer else None
    if method.unstructured:
        return MagnitudePruner(mlp, schedule, regularizer=regularizer)
    if method.input_features:
        return InputFeaturePruner(mlp, schedule, regularizer=regularizer)
    return dsp_tf.StructuredPruner(mlp, schedule, regularizer=regularizer,
                                   min_neurons_per_layer=cfg.min_neurons_per_layer,
                                   threshold=cfg.threshold, scorer=scorer)
