import warnings

import numpy as np
import pytest

import dsp_tf
from dsp_tf import keras


def test_fit_with_callback_prunes_on_schedule_and_learns(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1024, 8)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(2)])
    schedule = dsp_tf.DynamicPruningSchedule(0.0, 0.9, begin_step=64, end_step=320, frequency=32)
    pruner = dsp_tf.StructuredPruner(model, schedule, dsp_tf.NeuronImportanceRegularizer(1e-4))
    assert len(pruner.model.losses) == 1  # the regularizer is part of fit's loss
    pruner.model.compile(optimizer=keras.optimizers.Adam(3e-3),
                         loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = pruner.model.fit(x, y, batch_size=32, epochs=14, verbose=0,
                               callbacks=[dsp_tf.StructuredPruningCallback(pruner)])
    assert history.history["neuron_sparsity"][-1] >= 0.9
    assert history.history["neuron_sparsity"][0] < 0.9  # pruned gradually, not at once
    compact = pruner.compact()
    acc = np.mean(np.argmax(compact.predict(x, verbose=0), 1) == y)
    assert acc > 0.85  # the XOR-like task is learned by the pruned network
    assert sum(l.units for l in compact.layers[:-1]) <= 13


def _setup(begin=8, end=40, frequency=8, final=0.75):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(320, 6)).astype(np.float32)  # 10 batches of 32 per epoch
    y = x[:, :1] * x[:, 1:2]
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
    schedule = dsp_tf.DynamicPruningSchedule(0.0, final, begin_step=begin, end_step=end, frequency=frequency)
    pruner = dsp_tf.StructuredPruner(model, schedule, dsp_tf.NeuronImportanceRegularizer(1e-4))
    return model, pruner, x, y


class _Spy:
    """Records the steps at which the callback asks the pruner to update its masks."""

    def __init__(self, pruner):
        self.steps, self._update = [], pruner.update_masks
        pruner.update_masks = self

    def __call__(self, step, force=False):
        self.steps.append(step)
        return self._update(step, force)


@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_masks_are_updated_once_per_grid_step_and_not_per_batch(steps_per_execution):
    model, pruner, x, y = _setup()
    spy = _Spy(pruner)
    pruner.model.compile(optimizer="adam", loss="mse", steps_per_execution=steps_per_execution)
    pruner.model.fit(x, y, batch_size=32, epochs=5, verbose=0, callbacks=[dsp_tf.StructuredPruningCallback(pruner)])
    if steps_per_execution == 1:
        assert spy.steps == [8, 16, 24, 32, 40]  # the schedule's grid, each once
    else:  # Keras reports every 3rd step only; each grid step crossed is still acted on once
        assert spy.steps == sorted(set(spy.steps)) and set(spy.steps) <= {8, 16, 24, 32, 40}
        assert spy.steps[-1] == 40
    assert pruner.sparsity() >= 0.75  # the final sparsity is reached either way


def test_callback_on_the_original_model_is_refused():
    model, pruner, x, y = _setup()
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="train pruner.model") as info:
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[dsp_tf.StructuredPruningCallback(pruner)])
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="StructuredPruner"):
        dsp_tf.StructuredPruningCallback(model)


def test_optimizer_past_end_step_warns_and_a_finished_schedule_does_not():
    model, pruner, x, y = _setup()
    pruner.model.compile(optimizer="adam", loss="mse")
    pruner.model.optimizer.iterations.assign(1000)  # an optimizer reused from a longer training
    with pytest.warns(UserWarning, match=r"step counter \(1000\) is past the schedule's end_step \(40\)"):
        pruner.model.fit(x, y, batch_size=32, epochs=1, verbose=0,
                         callbacks=[dsp_tf.StructuredPruningCallback(pruner)])
    assert pruner.sparsity() == 0.0  # nothing pruned, as the warning says

    model, pruner, x, y = _setup()
    pruner.model.compile(optimizer="adam", loss="mse")
    callback = dsp_tf.StructuredPruningCallback(pruner)
    pruner.model.fit(x, y, batch_size=32, epochs=5, verbose=0, callbacks=[callback])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # resuming a finished schedule is not misuse
        pruner.model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[callback])


def test_resumed_fit_continues_the_schedule_where_it_was():
    model, pruner, x, y = _setup()
    spy = _Spy(pruner)
    pruner.model.compile(optimizer="adam", loss="mse")
    callback = dsp_tf.StructuredPruningCallback(pruner)
    with pytest.warns(UserWarning, match="fit ended at optimizer step 20, before step 40"):
        pruner.model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[callback])  # steps 0..19
    pruner.model.fit(x, y, batch_size=32, epochs=3, verbose=0, callbacks=[callback])  # steps 20..49
    assert spy.steps == [8, 16, 24, 32, 40]


def _fit_recording_warnings(pruner, x, y, epochs, callback=None):
    callback = callback or dsp_tf.StructuredPruningCallback(pruner)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruner.model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=[callback])
    return [str(w.message) for w in caught if "StructuredPruningCallback" in str(w.message)]


def test_fit_ending_before_the_schedule_warns_once_with_the_steps():
    model, pruner, x, y = _setup(begin=8, end=40, frequency=8)
    pruner.model.compile(optimizer="adam", loss="mse")
    messages = _fit_recording_warnings(pruner, x, y, epochs=3)  # steps 0..29; the last pruning step is 40
    assert len(messages) == 1, messages
    assert "fit ended at optimizer step 30, before step 40" in messages[0]
    assert "final_sparsity 0.75" in messages[0] and "\n" not in messages[0]
    assert pruner.sparsity() < 0.75  # short of the target, as the warning says

    model, pruner, x, y = _setup(begin=8, end=40, frequency=8)
    pruner.model.compile(optimizer="adam", loss="mse")
    assert _fit_recording_warnings(pruner, x, y, epochs=5) == []  # steps 0..49 reach step 40
    assert pruner.sparsity() >= 0.75


def test_resumed_fit_that_finishes_the_schedule_does_not_warn_again():
    model, pruner, x, y = _setup()
    pruner.model.compile(optimizer="adam", loss="mse")
    callback = dsp_tf.StructuredPruningCallback(pruner)
    assert len(_fit_recording_warnings(pruner, x, y, 2, callback)) == 1  # steps 0..19 of a schedule ending at 40
    assert _fit_recording_warnings(pruner, x, y, 3, callback) == []  # steps 20..49 finish it


def test_optimizer_past_end_step_warns_once_not_also_at_the_end_of_fit():
    model, pruner, x, y = _setup()
    pruner.model.compile(optimizer="adam", loss="mse")
    pruner.model.optimizer.iterations.assign(1000)
    messages = _fit_recording_warnings(pruner, x, y, epochs=1)
    assert len(messages) == 1 and "is past the schedule's end_step (40)" in messages[0]


def test_a_schedule_with_nothing_to_prune_does_not_warn_when_fit_stops_early():
    model, pruner, x, y = _setup(final=0.0)
    pruner.model.compile(optimizer="adam", loss="mse")
    assert _fit_recording_warnings(pruner, x, y, epochs=1) == []
