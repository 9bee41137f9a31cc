import numpy as np
import pytest

import dsp_tf
from dsp_tf import keras, tf
from helpers import kernels, mlp, numpy_importance


def random_masks(model, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.random(l.units) > 0.3).astype(np.float32)
            for l in model.layers[:-1] if isinstance(l, keras.layers.Dense)]


def test_importance_matches_numpy_on_model_and_layer_list():
    model = mlp()
    masks = random_masks(model)
    ref = numpy_importance(kernels(model), masks)
    got = dsp_tf.neuron_importance(model, masks)
    assert len(got) == 3  # hidden layers only, none for the output layer
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g.numpy(), r, rtol=1e-5)
    got_list = dsp_tf.neuron_importance(model.layers)  # no masks: all ones
    for g, r in zip(got_list, numpy_importance(kernels(model), [np.ones(12), np.ones(10), np.ones(9)])):
        np.testing.assert_allclose(g.numpy(), r, rtol=1e-5)
    assert all((g.numpy()[m == 0] == 0).all() for g, m in zip(got, masks))


def test_importance_reads_masks_of_a_masked_model():
    model = mlp()
    pruner = dsp_tf.StructuredPruner(model, dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1))
    masks = random_masks(model, seed=3)
    pruner.set_masks(masks)
    for g, r in zip(dsp_tf.neuron_importance(pruner.model), numpy_importance(kernels(model), masks)):
        np.testing.assert_allclose(g.numpy(), r, rtol=1e-5)


def numpy_reg_grad(ks, masks, lam):
    """Analytic gradient of λ ΣΩ with respect to every kernel."""
    grads = [np.zeros_like(k) for k in ks]
    for l, m in enumerate(masks):
        inc = (ks[l] ** 2).sum(0)
        out = (ks[l + 1] ** 2).sum(1)
        grads[l] += lam * 2 * ks[l] * (out * m)[None, :]
        grads[l + 1] += lam * 2 * ks[l + 1] * (inc * m)[:, None]
    return grads


@pytest.mark.parametrize("lam", [1e-3, 0.5])
def test_regularizer_value_and_gradient_match_numpy(lam):
    model = mlp()
    masks = random_masks(model)
    reg = dsp_tf.NeuronImportanceRegularizer(lam)
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    with tf.GradientTape() as tape:
        value = reg(model, masks)
    grads = tape.gradient(value, [d.kernel for d in dense])
    ks = kernels(model)
    np.testing.assert_allclose(value.numpy(), lam * sum(o.sum() for o in numpy_importance(ks, masks)), rtol=1e-5)
    for g, r in zip(grads, numpy_reg_grad(ks, masks, lam)):
        np.testing.assert_allclose(g.numpy(), r, rtol=1e-4, atol=1e-9)


def test_regularizer_config_round_trip_and_bad_strength():
    reg = dsp_tf.NeuronImportanceRegularizer(3e-5)
    again = dsp_tf.NeuronImportanceRegularizer.from_config(reg.get_config())
    assert again.strength == pytest.approx(3e-5)
    assert float(dsp_tf.NeuronImportanceRegularizer(0.0)(mlp())) == 0.0
    for bad in (-1e-6, float("nan"), "abc"):
        with pytest.raises(ValueError):
            dsp_tf.NeuronImportanceRegularizer(bad)


def test_baseline_penalties_match_numpy():
    model = mlp()
    ks = kernels(model)
    ones = [np.ones(k.shape[1]) for k in ks[:-1]]
    group = sum(np.sqrt((k ** 2).sum(0) + (n ** 2).sum(1)).sum() for k, n in zip(ks[:-1], ks[1:]))
    np.testing.assert_allclose(dsp_tf.GroupLassoRegularizer(2.0)(model, ones).numpy(), 2 * group, rtol=1e-5)
    np.testing.assert_allclose(dsp_tf.WeightL1Regularizer(0.1)(model).numpy(),
                               0.1 * sum(np.abs(k).sum() for k in ks), rtol=1e-5)
    np.testing.assert_allclose(dsp_tf.InputGroupL1Regularizer(1.0)(model).numpy(),
                               np.sqrt((ks[0] ** 2).sum(1)).sum(), rtol=1e-5)


def test_unsupported_models_are_refused_with_the_layer_named():
    conv = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3), keras.layers.Flatten(),
                             keras.layers.Dense(4), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="conv2d"):
        dsp_tf.neuron_importance(conv)
    inp = keras.Input((4,))
    a = keras.layers.Dense(5)(inp)
    b = keras.layers.Dense(5)(inp)
    branchy = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Add()([a, b])))
    with pytest.raises(ValueError):
        dsp_tf.neuron_importance(branchy)
    with pytest.raises(ValueError, match="hidden"):
        dsp_tf.neuron_importance(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))


@pytest.mark.parametrize("cls", [dsp_tf.NeuronImportanceRegularizer, dsp_tf.GroupLassoRegularizer,
                                 dsp_tf.InputGroupL1Regularizer, dsp_tf.WeightL1Regularizer])
def test_regularizers_are_keras_serializable(cls):
    reg = cls(2.5e-5)
    config = keras.regularizers.serialize(reg)
    assert config["config"] == {"strength": 2.5e-5}
    again = keras.regularizers.get(config)
    assert type(again) is cls and again == reg
    by_name = keras.regularizers.get({"class_name": cls.__name__, "config": {"strength": 1e-3}})
    assert by_name == cls(1e-3)
    assert cls.from_config(reg.get_config()) == reg
    np.testing.assert_allclose(float(again(mlp())), float(reg(mlp())))
    with pytest.raises(ValueError, match="not as a layer's kernel_regularizer"):
        reg(tf.ones((3, 2)))  # what Keras would do with it as a kernel_regularizer


def _regularized_mlp(**regularizer):
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu", **regularizer),
                             keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])


@pytest.mark.parametrize("attr", ["kernel_regularizer", "bias_regularizer"])
def test_pruner_refuses_a_model_with_the_penalty_as_a_layer_regularizer(attr):
    model = _regularized_mlp(**{attr: dsp_tf.NeuronImportanceRegularizer(1e-4)})
    schedule = dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1)
    with pytest.raises(ValueError, match=f"layer 'dense.*' has NeuronImportanceRegularizer as its {attr}") as info:
        dsp_tf.StructuredPruner(model, schedule, dsp_tf.NeuronImportanceRegularizer(1e-4))
    assert "give it to StructuredPruner(model, schedule, regularizer)" in str(info.value)
    assert "\n" not in str(info.value)


def test_penalty_as_activity_regularizer_is_refused_when_the_model_is_built():
    # Keras calls an activity regularizer on the layer's symbolic output while building the model.
    with pytest.raises(ValueError, match=r"give it to StructuredPruner\(model, schedule, regularizer\)") as info:
        _regularized_mlp(activity_regularizer=dsp_tf.NeuronImportanceRegularizer(1e-4))
    assert "\n" not in str(info.value)


def test_penalty_as_kernel_regularizer_fails_in_one_line_before_any_training_step():
    # tf_keras calls a kernel_regularizer only when fit first reads model.losses; the error
    # must be the one line, not autograph's "in user code" trace, and no weight may change.
    model = _regularized_mlp(kernel_regularizer=dsp_tf.NeuronImportanceRegularizer(1e-4))
    model.compile(optimizer="adam", loss="mse")
    before = [w.copy() for w in model.get_weights()]
    x = np.ones((16, 4), np.float32)
    with pytest.raises(ValueError, match="not as a layer's kernel_regularizer") as info:
        model.fit(x, x[:, :1], batch_size=8, epochs=1, verbose=0)
    assert "\n" not in str(info.value) and "StructuredPruner(model, schedule, regularizer)" in str(info.value)
    assert int(model.optimizer.iterations.numpy()) == 0
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)


def test_the_penalty_given_to_the_pruner_is_in_the_fit_loss():
    keras.utils.set_random_seed(0)
    model = _regularized_mlp()
    pruner = dsp_tf.StructuredPruner(model, dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1),
                                     dsp_tf.NeuronImportanceRegularizer(0.5))
    x = np.ones((16, 4), np.float32)
    pruner.model.compile(optimizer="sgd", loss="mse")
    penalty = float(pruner.regularization())
    assert penalty > 0 and float(tf.add_n(pruner.model.losses)) == pytest.approx(penalty)
    task = float(keras.losses.mean_squared_error(x[:, 0], pruner.model(x)[:, 0]))
    assert pruner.model.evaluate(x, x[:, :1], batch_size=16, verbose=0) == pytest.approx(task + penalty, rel=1e-5)
