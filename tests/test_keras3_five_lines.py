"""A clean process doing what the README's Keras 3 snippet does, run by test_keras3.py (no tests here).

    python tests/test_keras3_five_lines.py keras,tensorflow,dsp_tf OUT_DIR

Imports the modules in the order given, times ``import dsp_tf``, prunes an 8-64-64-1
``keras.Sequential`` to 90% of its hidden neurons with the five lines and prints what
the test checks, one ``name value`` per line.
"""
import importlib
import os
import sys
import time


def main(order: str, out_dir: str) -> None:
    seconds = {}
    for name in order.split(","):
        start = time.perf_counter()
        importlib.import_module(name)
        seconds[name] = time.perf_counter() - start
    import numpy as np

    import dsp_tf
    import keras

    print("backend", keras.backend.backend())
    print("TF_USE_LEGACY_KERAS", os.environ.get("TF_USE_LEGACY_KERAS"))
    print("import_seconds", f"{seconds['dsp_tf']:.3f}")
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    y = x[:, :1] * x[:, 1:2] + x[:, 2:3]

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)])
    schedule = dsp_tf.DynamicPruningSchedule(0.0, 0.9, begin_step=0, end_step=32, frequency=8)
    pruner = dsp_tf.StructuredPruner(model, schedule, dsp_tf.NeuronImportanceRegularizer(1e-4))
    pruner.model.compile(optimizer="adam", loss="mse")
    pruner.model.fit(x, y, batch_size=32, epochs=5, verbose=0, callbacks=[dsp_tf.StructuredPruningCallback(pruner)])
    small = pruner.compact()

    print("loaded", f"tf_keras={'tf_keras' in sys.modules} tfmot={'tensorflow_model_optimization' in sys.modules}")
    print("sparsity", pruner.sparsity())
    print("maxdiff", float(np.abs(small.predict(x, verbose=0) - pruner.model.predict(x, verbose=0)).max()))
    small.save(os.path.join(out_dir, "small.keras"))
    if keras.backend.backend() == "tensorflow":
        import tensorflow_model_optimization as tfmot  # a user's own import, after dsp_tf's

        schedule(4)  # any call (tfmot's wrappers call it) registers it with a tfmot imported since
        print("schedule_is_tfmot_after_import", isinstance(schedule, tfmot.sparsity.keras.PruningSchedule))
    else:
        print("schedule_is_tfmot_after_import", "True")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
