"""After ``import dsp_tf`` every Keras save format reloads a model exactly (issue 29).

On TensorFlow 2.15, tfmot's import loads the standalone ``keras`` package after
``tf_keras``; its names then won TensorFlow's Keras name table, and a ``.keras``
file reloaded as layers of that other Keras with fresh weights (a trained MLP off
by ~2) or, for a masked model, hung. The models here are trained (optimizer
state saved too), as a user's would be.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dsp_tf
from dsp_tf import keras

FORMATS = ("keras", "h5", "savedmodel")


def _x(n=64, d=8):
    return np.random.default_rng(1).normal(size=(n, d)).astype(np.float32)


@pytest.fixture(scope="module")
def trained_pruner():
    """One short DSP training shared by the masked and compact tests."""
    keras.utils.set_random_seed(0)
    x = _x(256)
    y = x[:, :1] * x[:, 1:2] + x[:, 2:3]
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    schedule = dsp_tf.DynamicPruningSchedule(0.0, 0.7, begin_step=0, end_step=24, frequency=8)
    pruner = dsp_tf.StructuredPruner(model, schedule, dsp_tf.NeuronImportanceRegularizer(1e-4))
    pruner.model.compile(optimizer="adam", loss="mse")
    pruner.model.fit(x, y, batch_size=32, epochs=4, verbose=0,
                     callbacks=[dsp_tf.StructuredPruningCallback(pruner)])
    assert 0.6 < pruner.sparsity() < 1.0  # some neurons are masked, some live
    return pruner, x, y


@pytest.fixture(scope="module")
def trained_compact(trained_pruner):
    """The compact model, fine-tuned so that its optimizer state is saved too."""
    pruner, x, y = trained_pruner
    compact = pruner.compact()
    compact.compile(optimizer="adam", loss="mse")
    compact.fit(x, y, epochs=1, verbose=0)
    return compact


def _round_trip(model, tmp_path, fmt, guard=False):
    if fmt == "savedmodel":
        path = str(tmp_path / "model_savedmodel")
        model.save(path, save_format="tf")
    else:
        if fmt == "keras" and guard:
            _check_name_table()  # fail at once, not after the masked model's load hangs
        path = str(tmp_path / f"model.{fmt}")
        model.save(path)
    return keras.models.load_model(path)


def _assert_same(model, loaded):
    x = _x()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # Reloaded as layers of the same Keras (not a second copy of Keras 2 that happens to be installed).
    dense = [l for l in loaded.layers if isinstance(l, keras.layers.Dense)]
    assert len(dense) == 3


def _check_name_table():
    from tensorflow.python.util import tf_export

    for name, ours in (("keras.layers.Dense", keras.layers.Dense), ("keras.Sequential", keras.Sequential),
                       ("keras.optimizers.Adam", keras.optimizers.Adam)):
        found = tf_export.get_symbol_from_name(name)
        assert found is None or found is ours, f"{name} resolves to {found.__module__}"


def test_keras_name_table_points_at_our_keras():
    """The cause of the silent corruption, checked directly: TensorFlow's table of Keras
    names (what the .keras loader builds layers from) names our Keras's classes."""
    _check_name_table()


@pytest.mark.parametrize("fmt", FORMATS)
def test_plain_trained_model_round_trips_exactly(tmp_path, fmt):
    keras.utils.set_random_seed(3)
    x = _x(128)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, x[:, :1] * 2.0, epochs=2, verbose=0)
    _assert_same(model, _round_trip(model, tmp_path, fmt))


@pytest.mark.parametrize("fmt", FORMATS)
def test_masked_model_round_trips_exactly_with_its_masks(trained_pruner, tmp_path, fmt):
    pruner, _, _ = trained_pruner
    loaded = _round_trip(pruner.model, tmp_path, fmt, guard=True)
    _assert_same(pruner.model, loaded)
    masks = [l.mask.numpy() for l in loaded.layers if isinstance(l, dsp_tf.NeuronMask)]
    for got, want in zip(masks, pruner.masks, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("fmt", FORMATS)
def test_compact_model_round_trips_exactly(trained_compact, tmp_path, fmt):
    compact = trained_compact
    loaded = _round_trip(compact, tmp_path, fmt)
    _assert_same(compact, loaded)
    assert [l.units for l in loaded.layers] == [l.units for l in compact.layers]


def test_round_trip_exact_when_tensorflow_resolved_keras_before_dsp_tf(tmp_path):
    """The import order of the report: TensorFlow imported (and tf.keras resolved to
    tf_keras) with TF_USE_LEGACY_KERAS=1 before dsp_tf pulls tfmot in."""
    script = textwrap.dedent(f"""
        import os
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import numpy as np
        import tensorflow as tf
        keras = tf.keras
        keras.layers.Dense  # resolves tf.keras now
        import dsp_tf
        keras.utils.set_random_seed(0)
        x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
        m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
        m.compile(optimizer="adam", loss="mse")
        m.fit(x, x[:, :1], epochs=2, verbose=0)
        m.save(r"{tmp_path / 'm.keras'}")
        r = keras.models.load_model(r"{tmp_path / 'm.keras'}")
        print("MAXDIFF", float(np.abs(m.predict(x, verbose=0) - r.predict(x, verbose=0)).max()))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "MAXDIFF 0.0" in out.stdout, out.stdout[-500:]
