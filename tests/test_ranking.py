"""Cross-layer rankings on a network whose right answer is known by construction."""
import numpy as np
import pytest

import dsp_tf
from dsp_tf import keras
from dsp_tf.masks import layer_normalized, select_masks
from dsp_tf.methods import METHODS, get_method, make_pruner
from helpers import mlp


def two_scale_network():
    """4 → 6 → 6 → 2 with layer 2's outgoing weights 100× smaller than layer 1's.

    In each hidden layer, neuron i's weights scale with (i + 1), so within a
    layer the order is known: neuron 0 matters least. Across layers, every raw
    Ω of layer 2 is far below every Ω of layer 1 (the output layer is tiny,
    as with an Orthogonal(0.01) policy head).
    """
    model = mlp((4, 6, 6, 2), use_bias=False)
    d1, d2, out = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    scale = np.arange(1, 7, dtype=np.float32)
    d1.kernel.assign(np.ones((4, 6), np.float32) * scale)
    d2.kernel.assign(np.ones((6, 6), np.float32) * scale[:, None] * scale[None, :])
    out.kernel.assign(0.01 * np.ones((6, 2), np.float32) * scale[:, None])
    return model


def layer_scores(model):
    return [np.asarray(s, np.float64) for s in dsp_tf.neuron_importance(model)]


def test_global_ranking_empties_the_small_scale_layer_first():
    scores = layer_scores(two_scale_network())
    assert scores[1].max() < scores[0].min()  # the premise: layer scale dominates
    masks = select_masks(scores, [np.ones(6), np.ones(6)], 0.5, min_neurons_per_layer=1, ranking="global")
    # 6 of 12 asked: layer 2 goes down to the floor of one before layer 1 loses its weakest.
    assert masks[1].tolist() == [0, 0, 0, 0, 0, 1]
    assert masks[0].tolist() == [0, 1, 1, 1, 1, 1]


@pytest.mark.parametrize("ranking", ["layer_normalized", "per_layer"])
def test_scale_free_rankings_prune_each_layer_by_its_own_order(ranking):
    scores = layer_scores(two_scale_network())
    masks = select_masks(scores, [np.ones(6), np.ones(6)], 0.5, ranking=ranking)
    # Within-layer order is identical in both layers, so half of each goes, weakest first.
    assert masks[0].tolist() == [0, 0, 0, 1, 1, 1]
    assert masks[1].tolist() == [0, 0, 0, 1, 1, 1]


def test_layer_normalized_divides_by_the_live_mean():
    scores = [np.array([1.0, 2.0, 3.0, 100.0]), np.array([0.0, 0.0])]
    masks = [np.array([1, 1, 1, 0]), np.array([1, 1])]
    out = layer_normalized(scores, masks)
    np.testing.assert_allclose(out[0], np.array([1.0, 2.0, 3.0, 100.0]) / 2.0)
    np.testing.assert_array_equal(out[1], [0.0, 0.0])  # a layer of zeros stays zeros


def test_layer_normalized_reranks_across_layers_by_relative_score():
    # Layer 1's weakest is half its mean; layer 2's weakest is a tenth of its mean: that one goes first.
    scores = [np.array([50.0, 100.0, 150.0]), np.array([0.1, 1.45, 1.45])]
    masks = select_masks(scores, [np.ones(3), np.ones(3)], 1 / 6, ranking="layer_normalized")
    assert masks[0].tolist() == [1, 1, 1] and masks[1].tolist() == [0, 1, 1]


def test_per_layer_prunes_each_layer_to_the_ratio_with_a_reference():
    rng = np.random.default_rng(3)
    sizes = [10, 7, 4]
    scores = [rng.random(n) for n in sizes]
    masks = [np.ones(n) for n in sizes]
    for p in (0.1, 0.4, 0.8):
        masks = select_masks(scores, masks, p, min_neurons_per_layer=1, ranking="per_layer")
        for s, m, n in zip(scores, masks, sizes):
            dead = min(int(np.ceil(p * n - 1e-9)), n - 1)
            expected = np.ones(n)
            expected[np.argsort(s, kind="stable")[:dead]] = 0
            np.testing.assert_array_equal(m, expected)


def test_bad_ranking_is_refused():
    with pytest.raises(ValueError, match="ranking"):
        select_masks([np.ones(3)], [np.ones(3)], 0.5, ranking="by_vibes")
    schedule = dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1)
    with pytest.raises(ValueError, match="ranking"):
        make_pruner(mlp(), "dsp", schedule, ranking="by_vibes")


def test_pruner_uses_its_ranking():
    schedule = dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1)
    masked = {}
    for ranking in ("global", "per_layer"):
        pruner = make_pruner(two_scale_network(), "dsp", schedule, ranking=ranking)
        pruner.update_masks(10, force=True)
        masked[ranking] = [int(m.sum()) for m in pruner.masks]
    assert masked == {"global": [5, 1], "per_layer": [3, 3]}


def test_method_declaration_drives_each_pruner_kind():
    schedule = dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1)
    kinds = {name: type(make_pruner(mlp(), name, schedule, reg_strength=1e-4)).__name__ for name in METHODS}
    assert kinds == {"ppo": "StructuredPruner", "small": "StructuredPruner", "dsp": "StructuredPruner",
                     "ssl": "StructuredPruner", "dropout": "StructuredPruner", "sgs": "InputFeaturePruner",
                     "l1": "MagnitudePruner", "pops": "MagnitudePruner"}
    assert [m for m in METHODS if get_method(m).ranks_neurons] == ["dsp", "ssl", "dropout"]
    assert [m for m in METHODS if get_method(m).penalized] == ["dsp", "ssl", "sgs", "l1"]
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        get_method("nope")
