import numpy as np

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
