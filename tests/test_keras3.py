"""dsp_tf on Keras 3 (issue 40): the same API as on tf_keras, detected from the model, in Keras's own layers.

Runs where Keras 3 is installed (TensorFlow >= 2.16: CI's core leg) on the TensorFlow backend;
skipped in one line on the TensorFlow 2.15 install, whose only Keras is tf_keras. The session's
conftest sets TF_USE_LEGACY_KERAS=1 (for the tf_keras tests): ``import keras`` is Keras 3 all
the same, and what ``import dsp_tf`` does to a clean process is checked in subprocesses.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from dsp_tf.binding import keras3_installed

if not keras3_installed():
    pytest.skip("Keras 3 is not installed here (TensorFlow 2.15: tf_keras only)", allow_module_level=True)

import keras  # noqa: E402
from keras import ops  # noqa: E402

import dsp_tf  # noqa: E402

from helpers import numpy_importance  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_keras3_five_lines.py")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.update(PYTHONPATH=os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
               TF_CPP_MIN_LOG_LEVEL="3", **extra)
    return env


def mlp(sizes=(8, 64, 64, 1), activation="relu", seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((sizes[0],))]
                            + [keras.layers.Dense(n, activation=activation) for n in sizes[1:-1]]
                            + [keras.layers.Dense(sizes[-1])])


def data(n=256, d=8, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x, x[:, :1] * x[:, 1:2] + x[:, 2:3]


def kernels(model):
    return [ops.convert_to_numpy(l.kernel).astype(np.float64)
            for l in model.layers if isinstance(l, keras.layers.Dense)]


@pytest.fixture(scope="module")
def trained():
    """A short DSP fit of an 8-64-64-1 Keras 3 MLP to 90% of its hidden neurons."""
    x, y = data()
    model = mlp()
    schedule = dsp_tf.DynamicPruningSchedule(0.0, 0.9, begin_step=0, end_step=32, frequency=8)
    pruner = dsp_tf.StructuredPruner(model, schedule, dsp_tf.NeuronImportanceRegularizer(1e-4))
    pruner.model.compile(optimizer="adam", loss="mse")
    pruner.model.fit(x, y, batch_size=32, epochs=5, verbose=0, callbacks=[dsp_tf.StructuredPruningCallback(pruner)])
    return pruner, x, y


# --- imports and global state ------------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["keras,tensorflow,dsp_tf", "dsp_tf,keras", "tensorflow,dsp_tf,keras"])
def test_import_in_any_order_sets_nothing_and_the_five_lines_prune(order, tmp_path):
    """No TF_USE_LEGACY_KERAS, no tf_keras or tfmot loaded; the README's lines prune to 90%, compact = masked;
    ``import dsp_tf`` after TensorFlow takes well under 3 s."""
    proc = subprocess.run([sys.executable, SCRIPT, order, str(tmp_path)], capture_output=True, text=True,
                          env=clean_env(), cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert lines["TF_USE_LEGACY_KERAS"] == "None"
    assert lines["loaded"] == "tf_keras=False tfmot=False"
    assert float(lines["sparsity"]) >= 0.9
    assert float(lines["maxdiff"]) <= 1e-5
    if order.startswith("tensorflow") or order.startswith("keras"):
        assert float(lines["import_seconds"]) <= 3.0
    assert lines["schedule_is_tfmot_after_import"] == "True"  # tfmot imported last, by the user


def test_compact_keras_file_loads_without_dsp_tf(trained, tmp_path):
    pruner, x, _ = trained
    small = pruner.compact()
    path = tmp_path / "small.keras"
    small.save(path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "want.npy", ops.convert_to_numpy(pruner.model(x)))
    code = ("import sys, numpy as np, keras; m = keras.saving.load_model(sys.argv[1]); "
            "d = np.abs(m.predict(np.load(sys.argv[2]), verbose=0) - np.load(sys.argv[3])).max(); "
            "print('dsp_tf' in sys.modules, sorted({type(l).__module__.split('.')[0] for l in m.layers}), d)")
    proc = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "x.npy"), str(tmp_path / "want.npy")],
                          capture_output=True, text=True, env=clean_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported, packages, diff = proc.stdout.split(" ", 1)[0], proc.stdout.split("]")[0] + "]", proc.stdout.split()[-1]
    assert imported == "False" and "['keras']" in packages and float(diff) <= 1e-5


# --- the equations, on Keras 3 tensors ----------------------------------------------------------------------

def test_importance_and_penalties_match_numpy():
    model = mlp((7, 12, 10, 3), activation="tanh")
    ks = kernels(model)
    masks = [np.ones(12), (np.arange(10) % 3 != 0).astype(np.float32)]
    got = dsp_tf.neuron_importance(model, masks)
    for g, want in zip(got, numpy_importance(ks, masks)):
        np.testing.assert_allclose(ops.convert_to_numpy(g), want, rtol=1e-5)
    lam = 0.3
    np.testing.assert_allclose(float(dsp_tf.NeuronImportanceRegularizer(lam)(model, masks)),
                               lam * sum(o.sum() for o in numpy_importance(ks, masks)), rtol=1e-5)
    groups = sum(np.sqrt((k ** 2).sum(0) + (n ** 2).sum(1) + 1e-12).sum() for k, n in zip(ks[:-1], ks[1:]))
    np.testing.assert_allclose(float(dsp_tf.GroupLassoRegularizer(2.0)(model)), 2 * groups, rtol=1e-5)
    np.testing.assert_allclose(float(dsp_tf.WeightL1Regularizer(0.1)(model)),
                               0.1 * sum(np.abs(k).sum() for k in ks), rtol=1e-5)
    np.testing.assert_allclose(float(dsp_tf.InputGroupL1Regularizer(1.0)(model)),
                               np.sqrt((ks[0] ** 2).sum(1) + 1e-12).sum(), rtol=1e-5)


def test_masked_neurons_get_no_gradient_and_compact_equals_masked():
    import tensorflow as tf  # the TensorFlow backend's tape

    model = mlp((6, 9, 7, 2), activation="tanh")
    pruner = dsp_tf.StructuredPruner(model, dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1))
    masks = [(np.arange(9) % 2).astype(np.float32), (np.arange(7) % 3 != 0).astype(np.float32)]
    pruner.set_masks(masks)
    x = np.random.default_rng(1).normal(size=(32, 6)).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = ops.sum(ops.square(pruner.model(x)))
    grads = [g.numpy() for g in tape.gradient(loss, [d.kernel for d in pruner.dense_layers])]
    assert np.all(grads[0][:, masks[0] == 0] == 0) and np.all(grads[1][masks[0] == 0, :] == 0)
    assert np.all(grads[1][:, masks[1] == 0] == 0) and np.all(grads[2][masks[1] == 0, :] == 0)
    compact = pruner.compact()
    assert [l.units for l in compact.layers] == [int(masks[0].sum()), int(masks[1].sum()), 2]
    np.testing.assert_allclose(compact.predict(x, verbose=0), pruner.model.predict(x, verbose=0), atol=1e-5)
    assert dsp_tf.model_stats(compact) == {**dsp_tf.model_stats(pruner.model),
                                           "layers": dsp_tf.model_stats(compact)["layers"]}
    dense_eq = pruner.dense_equivalent()
    np.testing.assert_allclose(dense_eq.predict(x, verbose=0), pruner.model.predict(x, verbose=0), atol=1e-5)


def test_the_penalty_is_in_the_fit_loss_and_training_reaches_the_final_sparsity(trained):
    pruner, x, y = trained
    assert isinstance(pruner.model, keras.Model) and pruner.binding.name == "keras3"
    assert pruner.sparsity() == pytest.approx(1 - 12 / 128)  # ceil(0.9 * 128) = 116 masked
    penalty = float(pruner.regularization())
    task = float(ops.mean(ops.square(pruner.model(x) - y)))
    assert penalty > 0
    assert pruner.model.evaluate(x, y, batch_size=len(x), verbose=0) == pytest.approx(task + penalty, rel=1e-4)
    compact = pruner.compact()
    np.testing.assert_allclose(compact.predict(x, verbose=0), pruner.model.predict(x, verbose=0), atol=1e-5)
    assert dsp_tf.model_stats(compact)["neurons"] == dsp_tf.model_stats(pruner.model)["neurons"] == 12


def test_functional_model_with_a_normalization_front():
    x, _ = data(64)
    inputs = keras.Input((8,))
    norm = keras.layers.Normalization()
    norm.adapt(x)
    h = keras.layers.Dense(16, activation="relu")(norm(inputs))
    h = keras.layers.Dropout(0.1)(h)
    h = keras.layers.Dense(12, activation="sigmoid")(h)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(h))  # softmax head: allowed
    pruner = dsp_tf.StructuredPruner(model, dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1))
    pruner.update_masks(10, force=True)
    compact = pruner.compact()
    assert isinstance(compact.layers[0], keras.layers.Normalization)
    np.testing.assert_allclose(compact.predict(x, verbose=0), pruner.model.predict(x, verbose=0), atol=1e-5)
    assert sum(l.units for l in compact.layers if isinstance(l, keras.layers.Dense)) == 14 + 3


@pytest.mark.parametrize("bad, match", [
    ("branch", "merges several tensors"), ("softmax", "activation 'softmax' is not element-wise"),
    ("array", "expected a Keras model .* got numpy.ndarray"), ("conv", "only Dense and element-wise"),
])
def test_bad_models_are_refused_in_one_line(bad, match):
    if bad == "branch":
        inp = keras.Input((4,))
        a, b = keras.layers.Dense(5)(inp), keras.layers.Dense(5)(inp)
        model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Add()([a, b])))
    elif bad == "softmax":
        model = mlp((4, 6, 2), activation="softmax")
    elif bad == "array":
        model = np.ones((3, 3))
    else:
        model = keras.Sequential([keras.Input((8, 1)), keras.layers.Conv1D(4, 3), keras.layers.Flatten(),
                                  keras.layers.Dense(4), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match=match) as info:
        dsp_tf.StructuredPruner(model, dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1))
    assert "\n" not in str(info.value)


def test_penalty_as_a_kernel_regularizer_is_refused():
    with pytest.raises(ValueError, match="not as a layer's kernel_regularizer"):
        dsp_tf.NeuronImportanceRegularizer(1e-4)(keras.Variable(np.ones((3, 2), np.float32)))
    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(8, kernel_regularizer=dsp_tf.NeuronImportanceRegularizer(1e-4)),
                              keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="has NeuronImportanceRegularizer as its kernel_regularizer"):
        dsp_tf.StructuredPruner(model, dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1))


def test_regularizers_serialise_with_keras3():
    for cls in (dsp_tf.NeuronImportanceRegularizer, dsp_tf.GroupLassoRegularizer):
        reg = cls(2.5e-5)
        config = keras.regularizers.serialize(reg)
        again = keras.regularizers.get(config)
        assert type(again) is cls and again == reg
        assert keras.regularizers.get({"class_name": cls.__name__, "config": {"strength": 1e-3}}) == cls(1e-3)


# --- the callback -----------------------------------------------------------------------------------------

def test_callback_is_a_keras3_callback_and_refuses_the_wrong_model(trained):
    pruner, x, y = trained
    callback = dsp_tf.StructuredPruningCallback(pruner)
    assert isinstance(callback, keras.callbacks.Callback) and isinstance(callback, dsp_tf.StructuredPruningCallback)
    other = mlp()
    other.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="train pruner.model"):
        other.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    with pytest.raises(ValueError, match="takes a dsp_tf.StructuredPruner"):
        dsp_tf.StructuredPruningCallback(other)


# --- files: .keras, .weights.h5, export() and TFLite ----------------------------------------------------------

def test_masked_model_round_trips_with_its_masks(trained, tmp_path):
    pruner, x, _ = trained
    pruner.model.save(tmp_path / "masked.keras")
    loaded = keras.saving.load_model(tmp_path / "masked.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), pruner.model.predict(x, verbose=0))
    masks = [ops.convert_to_numpy(l.mask) for l in loaded.layers if isinstance(l, dsp_tf.NeuronMask)]
    for got, want in zip(masks, pruner.masks, strict=True):
        np.testing.assert_array_equal(got, want)
    assert dsp_tf.model_stats(loaded) == dsp_tf.model_stats(pruner.model)
    np.testing.assert_allclose(dsp_tf.compact_model(loaded).predict(x, verbose=0),
                               pruner.model.predict(x, verbose=0), atol=1e-5)


def test_weights_h5_round_trips(trained, tmp_path):
    pruner, x, _ = trained
    fresh = dsp_tf.StructuredPruner(mlp(seed=5), pruner.schedule, dsp_tf.NeuronImportanceRegularizer(1e-4))
    pruner.model.save_weights(tmp_path / "masked.weights.h5")
    fresh.model.load_weights(tmp_path / "masked.weights.h5")
    np.testing.assert_array_equal(fresh.model.predict(x, verbose=0), pruner.model.predict(x, verbose=0))
    for got, want in zip(fresh.masks, pruner.masks, strict=True):
        np.testing.assert_array_equal(got, want)
    compact = pruner.compact()
    compact.save_weights(tmp_path / "small.weights.h5")
    twin = keras.models.clone_model(compact)
    twin.load_weights(tmp_path / "small.weights.h5")
    np.testing.assert_array_equal(twin.predict(x, verbose=0), compact.predict(x, verbose=0))


def test_export_savedmodel_and_tflite_equal_keras(trained, tmp_path):
    import tensorflow as tf

    pruner, x, _ = trained
    compact = pruner.compact()
    want = compact.predict(x, verbose=0)
    compact.export(str(tmp_path / "saved"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(served.serve(x).numpy(), want, atol=1e-6)
    flat = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved")).convert()
    interpreter = tf.lite.Interpreter(model_content=flat)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    np.testing.assert_allclose(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), want, atol=1e-5)


# --- other backends -------------------------------------------------------------------------------------------

def test_jax_backend_runs_the_five_lines(tmp_path):
    pytest.importorskip("jax", reason="JAX is not installed here (pip install jax to test KERAS_BACKEND=jax)")
    proc = subprocess.run([sys.executable, SCRIPT, "keras,dsp_tf", str(tmp_path)], capture_output=True, text=True,
                          env=clean_env(KERAS_BACKEND="jax"), cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "backend jax" in proc.stdout
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert float(lines["sparsity"]) >= 0.9 and float(lines["maxdiff"]) <= 1e-5


def test_a_tf_keras_model_in_the_same_process_is_served_as_tf_keras():
    """One API, two Kerases side by side: the Keras is read from each model, not from a global switch."""
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    old = tf_keras.Sequential([tf_keras.Input((8,)), tf_keras.layers.Dense(16, activation="relu"),
                               tf_keras.layers.Dense(1)])
    new = mlp((8, 16, 1))
    schedule = dsp_tf.DynamicPruningSchedule(0.0, 0.5, 0, 10, 1)
    x, _ = data(32)
    for model, keras_api in ((old, tf_keras), (new, keras)):
        pruner = dsp_tf.StructuredPruner(model, schedule, dsp_tf.NeuronImportanceRegularizer(1e-3))
        pruner.update_masks(10, force=True)
        compact = pruner.compact()
        assert isinstance(pruner.model, keras_api.Model) and isinstance(compact, keras_api.Sequential)
        assert all(isinstance(l, dsp_tf.NeuronMask) for l in pruner.mask_layers)
        assert isinstance(dsp_tf.StructuredPruningCallback(pruner), keras_api.callbacks.Callback)
        assert [l.units for l in compact.layers] == [8, 1]
        np.testing.assert_allclose(np.asarray(compact(x)), np.asarray(pruner.model(x)), atol=1e-5)
