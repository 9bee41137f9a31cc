"""What StructuredPruningCallback costs ``model.fit``: epoch time with and without it, interleaved.

    python benchmarks/callback_cost.py                       # Keras 3 (import keras)
    python benchmarks/callback_cost.py --keras=tf_keras      # the tf_keras path

The issue-40 target: the callback costs <= 10% of an epoch. The model is the README's
8-64-64-1 ``Sequential`` wrapped in a StructuredPruner with the Ω penalty; both arms
train the same masked model (so the penalty's cost is in both), one epoch per ``fit``,
alternating with and without the callback, so drifts in machine load hit both alike.
The schedule prunes every ``--frequency`` steps across the whole run, so the masked
epochs do recompute masks (the callback's expensive path). Epoch time is taken
between ``on_epoch_begin`` and ``on_epoch_end`` of a timing callback; the callback's
once-per-fit work (``on_train_begin``/``on_train_end``) is reported separately.
The first ``--warmup`` pairs (tracing) are dropped; medians are reported.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import statistics
import time
import warnings
from typing import Any, Dict, List


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keras", choices=("keras3", "tf_keras"), default="keras3")
    parser.add_argument("--pairs", type=int, default=15, help="epochs with and without the callback, each")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--frequency", type=int, default=20)
    parser.add_argument("--out", default="", help="also write the JSON here")
    args = parser.parse_args()
    # Each one-epoch fit ends before the schedule does, on purpose: the callback says so every time.
    warnings.filterwarnings("ignore", message="StructuredPruningCallback: fit ended")

    import numpy as np

    import dsp_tf
    if args.keras == "keras3":
        import keras
    else:
        from dsp_tf import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: List[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(args.samples, 8)).astype("float32")
    y = x[:, :1] * x[:, 1:2] + x[:, 2:3]
    steps_per_epoch = -(-args.samples // args.batch_size)
    total = (args.pairs + args.warmup) * steps_per_epoch  # optimizer steps of the masked arm
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)])
    schedule = dsp_tf.DynamicPruningSchedule(0.0, 0.9, begin_step=0, end_step=2 * total, frequency=args.frequency)
    pruner = dsp_tf.StructuredPruner(model, schedule, dsp_tf.NeuronImportanceRegularizer(1e-4))
    pruner.model.compile(optimizer="adam", loss="mse")
    callback = dsp_tf.StructuredPruningCallback(pruner)

    with_cb: List[float] = []
    without: List[float] = []
    fit_overhead: Dict[str, List[float]] = {"with": [], "without": []}
    for i in range(args.pairs + args.warmup):
        for arm in ("with", "without"):
            timer = EpochTimer()
            callbacks: List[Any] = [timer, callback] if arm == "with" else [timer]
            start = time.perf_counter()
            pruner.model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, callbacks=callbacks)
            whole = time.perf_counter() - start
            if i >= args.warmup:
                (with_cb if arm == "with" else without).append(timer.seconds[0])
                fit_overhead[arm].append(whole - timer.seconds[0])

    med_with, med_without = statistics.median(with_cb), statistics.median(without)
    result = {
        "keras": args.keras, "keras_version": importlib.metadata.version("keras" if args.keras == "keras3" else "tf_keras"), "pairs": args.pairs,
        "steps_per_epoch": steps_per_epoch, "mask_updates_per_epoch": steps_per_epoch / args.frequency,
        "median_epoch_seconds_with_callback": round(med_with, 4),
        "median_epoch_seconds_without": round(med_without, 4),
        "callback_cost_share_of_epoch": round(med_with / med_without - 1.0, 4),
        "median_per_fit_outside_epochs_seconds": {k: round(statistics.median(v), 4) for k, v in fit_overhead.items()},
        "final_neuron_sparsity": round(float(pruner.sparsity()), 4),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
