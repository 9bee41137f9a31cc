import numpy as np
import pytest

import dsp_tf
from dsp_tf import keras, tf
from helpers import kernels, mlp, numpy_importance


def numpy_count_rule(scores, masks, sparsity, floor):
    """Reference: walk all alive neurons by ascending score, mask until ceil(p·N) are masked."""
    masks = [m.copy() for m in masks]
    total = sum(m.size for m in masks)
    target = int(np.ceil(sparsity * total - 1e-9))
    flat = [(s[i], l, i) for l, (s, m) in enumerate(zip(scores, masks)) for i in range(m.size) if m[i]]
    for s, l, i in sorted(flat):
        if total - sum(m.sum() for m in masks) >= target:
            break
        if masks[l].sum() > floor:
            masks[l][i] = 0
    return masks


def test_count_rule_matches_reference_and_is_monotone():
    rng = np.random.default_rng(0)
    masks = [np.ones(12, np.float32), np.ones(10, np.float32), np.ones(9, np.float32)]
    for sparsity in np.linspace(0.0, 0.9, 12):
        scores = [rng.random(m.size) for m in masks]
        new = dsp_tf.select_masks(scores, masks, sparsity, 1, "count")
        ref = numpy_count_rule(scores, masks, sparsity, 1)
        for a, b, old in zip(new, ref, masks):
            np.testing.assert_array_equal(a, b)
            assert np.all(a <= old)  # never revived
        assert 1 - sum(m.sum() for m in new) / 31 >= sparsity - 1e-9
        masks = new


def test_floor_keeps_neurons_in_every_layer():
    scores = [np.zeros(10), np.ones(10)]  # the first layer is "worthless" everywhere
    masks = [np.ones(10), np.ones(10)]
    new = dsp_tf.select_masks(scores, masks, 0.9, min_neurons_per_layer=3)
    assert [int(m.sum()) for m in new] == [3, 3]  # floor caps pruning at 14 of 20


def test_mass_rule_is_the_literal_cumulative_threshold():
    scores = [np.array([1.0, 2.0, 3.0, 4.0]), np.array([10.0, 0.5])]
    masks = [np.ones(4), np.ones(2)]
    # total mass 20.5, ψ = 0.2·20.5 = 4.1: 0.5, 1, 2 fit (3.5), adding 3 exceeds
    new = dsp_tf.select_masks(scores, masks, 0.2, 1, "mass")
    np.testing.assert_array_equal(new[0], [0, 0, 1, 1])
    np.testing.assert_array_equal(new[1], [1, 0])
    with pytest.raises(ValueError):
        dsp_tf.select_masks(scores, masks, 0.2, 1, "median")


def test_pruner_update_follows_schedule_and_ranks_by_importance():
    model = mlp(sizes=(6, 20, 20, 2))
    schedule = dsp_tf.DynamicPruningSchedule(0.0, 0.5, begin_step=0, end_step=100, frequency=10)
    pruner = dsp_tf.StructuredPruner(model, schedule)
    assert not pruner.update_masks(5)  # off the grid
    assert all(m.all() for m in pruner.masks)
    omega = numpy_importance(kernels(model), pruner.masks)
    assert pruner.update_masks(100)
    flat = np.concatenate(omega)
    masked = np.concatenate(pruner.masks) == 0
    assert masked.sum() == 20
    assert flat[masked].max() <= flat[~masked].min()


def test_masked_neurons_get_no_task_gradient():
    model = mlp(sizes=(5, 8, 8, 2))
    pruner = dsp_tf.StructuredPruner(model, dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1))
    masks = [np.array([1, 0, 1, 1, 0, 1, 1, 1], np.float32), np.array([0, 1, 1, 1, 1, 1, 1, 0], np.float32)]
    pruner.set_masks(masks)
    x = tf.random.normal((16, 5))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(pruner.model(x) ** 2)
    dense = pruner.dense_layers
    grads = tape.gradient(loss, [d.kernel for d in dense])
    assert np.all(grads[0].numpy()[:, masks[0] == 0] == 0)
    assert np.all(grads[1].numpy()[masks[0] == 0, :] == 0)
    assert np.all(grads[1].numpy()[:, masks[1] == 0] == 0)
    assert np.all(grads[2].numpy()[masks[1] == 0, :] == 0)
    assert np.any(grads[0].numpy()[:, masks[0] == 1] != 0)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_compact_equals_masked(activation, use_bias):
    model = mlp(sizes=(11, 32, 24, 3), activation=activation, use_bias=use_bias)
    pruner = dsp_tf.StructuredPruner(model, dsp_tf.DynamicPruningSchedule(0.0, 0.8, 0, 10, 1))
    pruner.update_masks(10)
    compact = pruner.compact()
    assert [l.units for l in compact.layers] == [int(m.sum()) for m in pruner.masks] + [3]
    x = np.random.default_rng(1).normal(scale=2.0, size=(256, 11)).astype(np.float32)
    diff = np.abs(compact.predict(x, verbose=0) - pruner.model.predict(x, verbose=0)).max()
    assert diff <= 1e-5


def test_compact_through_activation_and_dropout_layers():
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16), keras.layers.Activation("sigmoid"),
                              keras.layers.Dropout(0.2), keras.layers.Dense(16, activation="elu"),
                              keras.layers.Dense(2)])
    pruner = dsp_tf.StructuredPruner(model, dsp_tf.DynamicPruningSchedule(0.0, 0.7, 0, 10, 1))
    pruner.update_masks(10)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    np.testing.assert_allclose(pruner.compact()(x).numpy(), pruner.model(x).numpy(), atol=1e-5)


def test_model_stats_against_hand_counts():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2), keras.layers.Dense(1)])
    dense = stats = dsp_tf.model_stats(model)
    assert stats["neurons"] == 5
    assert stats["weights"] == 4 * 3 + 3 * 2 + 2 * 1
    assert stats["flops"] == pytest.approx(7 * 3 + 5 * 2 + 3 * 1)
    masked = dsp_tf.model_stats(model, masks=[np.array([1, 0, 1]), np.array([1, 1])])
    # layer 1: 4x3 with one column gone -> 8 weights; layer 2: one row gone -> 4; layer 3: 2
    assert masked["neurons"] == 4
    assert masked["weights"] == 8 + 4 + 2
    # FLOPs of what is left once the masked neuron is taken out: 4x2, 2x2, 2x1 (2·I − 1 per output)
    assert masked["flops"] == pytest.approx(7 * 2 + 3 * 2 + 3 * 1)
    assert [l.get("neurons") for l in masked["layers"]] == [2, 2, None]
    # A neuron whose outgoing weights are all zero counts as removed (unstructured methods).
    k = model.layers[1].get_weights()
    k[0][0, :] = 0.0
    model.layers[1].set_weights(k)
    assert dsp_tf.model_stats(model)["neurons"] == 4
    assert dense is not None


def test_pruner_rejects_bad_arguments():
    model = mlp(sizes=(4, 5, 2))
    schedule = dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1)
    with pytest.raises(ValueError, match="threshold"):
        dsp_tf.StructuredPruner(model, schedule, threshold="median")
    with pytest.raises(ValueError, match="min_neurons_per_layer"):
        dsp_tf.StructuredPruner(model, schedule, min_neurons_per_layer=6)
    with pytest.raises(ValueError, match="schedule"):
        dsp_tf.StructuredPruner(model, 0.5)
    pruner = dsp_tf.StructuredPruner(model, schedule)
    with pytest.raises(ValueError, match="already masked"):
        dsp_tf.StructuredPruner(pruner.model, schedule)


def test_masked_model_saves_and_reloads_with_its_masks(tmp_path):
    model = mlp(sizes=(5, 16, 16, 2))
    pruner = dsp_tf.StructuredPruner(model, dsp_tf.DynamicPruningSchedule(0.0, 0.6, 0, 10, 1))
    pruner.update_masks(10)
    path = str(tmp_path / "masked.h5")
    pruner.model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    x = np.random.default_rng(0).normal(size=(32, 5)).astype(np.float32)
    np.testing.assert_allclose(loaded(x).numpy(), pruner.model(x).numpy(), atol=1e-6)
    again = dsp_tf.compact_model(loaded)  # masks are read back from the NeuronMask layers
    assert [l.units for l in again.layers] == [l.units for l in pruner.compact().layers]


def test_model_stats_of_masked_model_equal_its_compact_model():
    """Issue 29: the masked model measured 173.34 FLOPs where its compact model measured 167."""
    model = mlp(sizes=(8, 24, 16, 3), activation="relu")
    pruner = dsp_tf.StructuredPruner(model, dsp_tf.DynamicPruningSchedule(0.0, 0.75, 0, 10, 1))
    pruner.update_masks(10)
    masked, compact = dsp_tf.model_stats(pruner.model), dsp_tf.model_stats(pruner.compact())
    for key in ("neurons", "weights", "flops"):
        assert masked[key] == pytest.approx(compact[key]), key
    sizes = [int(m.sum()) for m in pruner.masks]  # the compact model is dense: (2·I − 1)·O per layer
    shape = [8] + sizes + [3]
    assert compact["flops"] == pytest.approx(sum((2 * i - 1) * o for i, o in zip(shape, shape[1:])))
    dense = dsp_tf.model_stats(model)  # the original is unmasked: its full shape
    assert dense["flops"] == pytest.approx(15 * 24 + 47 * 16 + 31 * 3)


def _input_front_model():
    keras.utils.set_random_seed(4)
    x = np.random.default_rng(4).normal(loc=3.0, scale=2.0, size=(128, 4, 2)).astype(np.float32)
    norm = keras.layers.Normalization()
    norm.adapt(x.reshape(128, 8))
    model = keras.Sequential([keras.Input((4, 2)), keras.layers.Flatten(), norm, keras.layers.Rescaling(0.5),
                              keras.layers.Dense(16, activation="relu"), keras.layers.Dense(12, activation="tanh"),
                              keras.layers.Dense(2)])
    return model, x


def test_normalization_flatten_rescaling_at_the_input_pass_through():
    model, x = _input_front_model()
    pruner = dsp_tf.StructuredPruner(model, dsp_tf.DynamicPruningSchedule(0.0, 0.6, 0, 10, 1))
    np.testing.assert_allclose(pruner.model(x).numpy(), model(x).numpy(), atol=1e-6)  # all masks 1
    pruner.update_masks(10)
    compact = pruner.compact()
    assert isinstance(compact.layers[1], keras.layers.Normalization)  # kept, with its adapted statistics
    np.testing.assert_allclose(compact(x).numpy(), pruner.model(x).numpy(), atol=1e-5)
    assert [l.units for l in compact.layers if isinstance(l, keras.layers.Dense)][:2] == \
        [int(m.sum()) for m in pruner.masks]
    with pytest.raises(ValueError, match="only in front of the first Dense"):
        dsp_tf.dense_chain(keras.Sequential([keras.Input((4,)), keras.layers.Dense(6), keras.layers.Flatten(),
                                             keras.layers.Dense(2)]))


def test_non_chains_and_subclassed_models_are_refused_in_one_line():
    inp = keras.Input((4,))
    h = keras.layers.Dense(5, activation="relu")(inp)
    skip = keras.layers.Add(name="skip")([h, keras.layers.Dense(5, name="inner")(h)])
    residual = keras.Model(inp, keras.layers.Dense(2)(skip))
    with pytest.raises(ValueError, match="layer 'skip' \\(Add\\) merges several tensors") as info:
        dsp_tf.StructuredPruner(residual, dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1))
    assert "\n" not in str(info.value)
    a = keras.layers.Dense(5, name="a")(inp)
    b = keras.layers.Dense(5, name="b")(inp)
    two_heads = keras.Model(inp, [keras.layers.Dense(1)(a), keras.layers.Dense(1)(b)])
    with pytest.raises(ValueError, match="2 outputs"):
        dsp_tf.model_stats(two_heads)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__(name="subclassed")
            self.hidden, self.out = keras.layers.Dense(6), keras.layers.Dense(1)

        def call(self, x):
            return self.out(self.hidden(x))

    sub = Subclassed()
    sub(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="'subclassed': it is a subclassed Keras model") as info:
        dsp_tf.StructuredPruner(sub, dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1))
    assert "\n" not in str(info.value)


def test_compact_copies_string_regularizers_and_constraints_of_our_keras(recwarn):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(8, activation="relu", kernel_regularizer="l2",
                                                 kernel_constraint="max_norm"),
                              keras.layers.Dense(2, bias_regularizer=keras.regularizers.L1(0.1))])
    pruner = dsp_tf.StructuredPruner(model, dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1))
    pruner.update_masks(10)
    compact = pruner.compact()
    assert not [w for w in recwarn.list if "keras" in str(w.message)]
    assert isinstance(compact.layers[0].kernel_regularizer, keras.regularizers.L2)
    assert isinstance(compact.layers[0].kernel_constraint, keras.constraints.MaxNorm)
    assert compact.layers[1].bias_regularizer.get_config() == {"l1": pytest.approx(0.1)}


def test_pruning_a_trained_model_keeps_its_weights_and_ranks_by_omega_on_them():
    """StructuredPruner(trained_model): the masked model starts as the trained model, and
    the first mask update masks the neurons of smallest Ω of the trained weights."""
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(512, 6)).astype(np.float32)
    y = x[:, :1] - 2 * x[:, 1:2]
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(24, activation="relu"),
                              keras.layers.Dense(24, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.fit(x, y, epochs=5, verbose=0)
    trained = [w.copy() for w in model.get_weights()]
    before = model.predict(x, verbose=0)
    pruner = dsp_tf.StructuredPruner(model, dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1),
                                     dsp_tf.NeuronImportanceRegularizer(1e-4))
    for got, want in zip(model.get_weights(), trained):
        np.testing.assert_array_equal(got, want)  # wrapping draws and changes nothing
    np.testing.assert_array_equal(pruner.model.predict(x, verbose=0), before)
    ks = kernels(model)
    omega = numpy_importance(ks, [np.ones(24), np.ones(24)])
    pruner.update_masks(10)
    expected = numpy_count_rule(omega, [np.ones(24, np.float32), np.ones(24, np.float32)], 0.5, 1)
    for got, want in zip(pruner.masks, expected):
        np.testing.assert_array_equal(got, want)
