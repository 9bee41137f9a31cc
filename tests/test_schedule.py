import numpy as np
import pytest
import tensorflow_model_optimization as tfmot

import dsp_tf
from dsp_tf import keras


def numpy_schedule(t, pi, pf, t0, t1):
    p = np.clip((t - t0) / (t1 - t0), 0.0, 1.0)
    return pf + (pi - pf) * (1 - p) ** 3


def test_schedule_matches_eq17_and_prunes_on_the_grid():
    s = dsp_tf.DynamicPruningSchedule(0.1, 0.93, begin_step=100, end_step=1100, frequency=50)
    assert isinstance(s, tfmot.sparsity.keras.PruningSchedule)
    for t in range(0, 1500, 7):
        should, sparsity = s(t)
        assert float(sparsity) == pytest.approx(numpy_schedule(t, 0.1, 0.93, 100, 1100), abs=1e-6)
        assert bool(should) == (100 <= t <= 1100 and (t - 100) % 50 == 0)
    assert s.sparsity_at(0) == pytest.approx(0.1)
    assert s.sparsity_at(5000) == pytest.approx(0.93)
    assert s.last_pruning_step(99) == -1
    assert s.last_pruning_step(1234) == 1100
    assert s.last_pruning_step(260) == 250


@pytest.mark.parametrize("kwargs", [
    dict(initial_sparsity=-0.1), dict(final_sparsity=1.0), dict(initial_sparsity=0.5, final_sparsity=0.2),
    dict(begin_step=10, end_step=10), dict(begin_step=-1), dict(frequency=0), dict(final_sparsity="0.9"),
])
def test_schedule_rejects_bad_arguments(kwargs):
    args = dict(initial_sparsity=0.0, final_sparsity=0.9, begin_step=0, end_step=100, frequency=10)
    args.update(kwargs)
    with pytest.raises(ValueError):
        dsp_tf.DynamicPruningSchedule(**args)


def test_frequency_beyond_the_schedule_span_is_refused_in_one_line():
    # Its only pruning step would be begin_step, at initial_sparsity: issue 42's schedule ending at 0.00.
    with pytest.raises(ValueError, match=r"frequency \(50\) must be <= end_step - begin_step \(40\)") as info:
        dsp_tf.DynamicPruningSchedule(0.0, 0.9, begin_step=10, end_step=50, frequency=50)
    assert "\n" not in str(info.value)
    edge = dsp_tf.DynamicPruningSchedule(0.0, 0.9, begin_step=10, end_step=50, frequency=40)
    assert edge.last_pruning_step(50) == 50 and edge.sparsity_at(50) == pytest.approx(0.9)


def test_schedule_config_round_trip():
    s = dsp_tf.DynamicPruningSchedule(0.0, 0.8, 5, 105, 10)
    again = dsp_tf.DynamicPruningSchedule.from_config(s.get_config())
    assert again.get_config() == s.get_config()


def test_schedule_drives_tfmot_weight_pruning_and_reloads(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 10)).astype(np.float32)
    y = (x[:, :1] - x[:, 1:2]).astype(np.float32)
    base = keras.Sequential([keras.Input((10,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    schedule = dsp_tf.DynamicPruningSchedule(0.0, 0.75, begin_step=0, end_step=40, frequency=5)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(base, pruning_schedule=schedule)
    pruned.compile(optimizer="adam", loss="mse")
    pruned.fit(x, y, batch_size=32, epochs=4, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    path = str(tmp_path / "pruned.h5")
    pruned.save(path)
    with tfmot.sparsity.keras.prune_scope():
        loaded = keras.models.load_model(path)
    wrapper = loaded.layers[0]
    assert isinstance(wrapper.pruning_schedule, dsp_tf.DynamicPruningSchedule)
    assert wrapper.pruning_schedule.get_config() == schedule.get_config()
    np.testing.assert_allclose(loaded.predict(x[:8], verbose=0), pruned.predict(x[:8], verbose=0), atol=1e-6)
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    kernel = stripped.layers[0].kernel.numpy()
    assert np.mean(kernel == 0) == pytest.approx(0.75, abs=0.01)


def test_schedule_documents_its_own_arguments():
    import inspect

    doc = inspect.getdoc(dsp_tf.DynamicPruningSchedule.__init__)
    for arg in ("initial_sparsity", "final_sparsity", "begin_step", "end_step", "frequency"):
        assert f"{arg}:" in doc
    assert "power:" not in doc  # tfmot's PolynomialDecay lists a power argument; ours fixes it at 3
    assert list(inspect.signature(dsp_tf.DynamicPruningSchedule).parameters) == [
        "initial_sparsity", "final_sparsity", "begin_step", "end_step", "frequency"]


def test_schedule_computes_tfmot_polynomial_decay_to_the_bit():
    """Without inheriting from tfmot (whose import switches TensorFlow to tf_keras), the schedule's
    float32 arithmetic is tfmot's: masks rounded from p·N come out as with tfmot's own schedule."""
    import tensorflow as tf
    from tensorflow_model_optimization.python.core.sparsity.keras.pruning_schedule import PolynomialDecay

    rng = np.random.default_rng(0)
    for pi, pf, b, e, f in [(0.0, 0.93, 7, 1100, 50), (0.1, 0.9, 0, 40, 1), (0.3, 0.99, 100, 10000, 3)]:
        ours, theirs = dsp_tf.DynamicPruningSchedule(pi, pf, b, e, f), PolynomialDecay(pi, pf, b, e, 3, f)
        assert isinstance(ours, PolynomialDecay)
        for t in list(rng.integers(0, e + 50, 60)) + [b, e, e + 1]:
            should, sparsity = ours(int(t))
            want_should, want = theirs(tf.constant(int(t), tf.int64))
            assert np.float32(sparsity) == want.numpy() and should == bool(want_should)
            graph_should, graph = ours(tf.constant(int(t), tf.int64))  # tfmot's own call, with a tensor
            assert graph.numpy() == want.numpy() and bool(graph_should) == should
