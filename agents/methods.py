"""A run's pruner, built from its config by dsp_tf's one declaration of the methods.

The training loop is the same for every method; ``dsp_tf.methods`` says what a
method adds to the actor's loss and how it ranks what it prunes.
"""
from __future__ import annotations

from dsp_tf.methods import make_pruner as _make_pruner
from dsp_tf.pruner_base import PrunerBase
from agents.config import RunConfig


def make_pruner(mlp, cfg: RunConfig) -> PrunerBase:
    """Wraps the actor MLP; for non-pruning methods the masks simply stay all ones."""
    schedule = cfg.schedule()
    # seed + 7919: the ranking's generator differs from every other stream seeded by the run seed.
    return _make_pruner(mlp, cfg.method, schedule, cfg.reg_strength, seed=cfg.seed + 7919,
                        min_neurons_per_layer=cfg.min_neurons_per_layer, threshold=cfg.threshold,
                        ranking=cfg.ranking)
