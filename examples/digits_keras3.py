"""DSP on Keras 3: prune a 64-128-128-10 softmax classifier on scikit-learn's digits with model.fit.

    python examples/digits_keras3.py --seeds 0 1

The Keras 3 form of ``digits_mlp.py``: the model is written with ``import keras``
(no tf_keras, no tfmot, any backend) and dsp_tf reads which Keras it is from the
model. Per seed it trains the dense model (accuracy before pruning), trains the
same model with DSP to ``--final_sparsity`` of its hidden neurons (accuracy after,
of the compact model, which holds only Keras's own layers), and trains a small
model of the compact model's size from scratch for as many epochs: the fair
baseline, since a network that small could also have been trained directly.
Prints one JSON object: each seed's figures and their mean.
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Dict, List

import keras
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import dsp_tf


def make_mlp(hidden: List[int]) -> keras.Sequential:
    return keras.Sequential([keras.Input((64,))] + [keras.layers.Dense(n, activation="relu") for n in hidden]
                            + [keras.layers.Dense(10, activation="softmax")])


def train(model: keras.Model, x, y, epochs: int, callbacks=()) -> keras.Model:
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=list(callbacks))
    return model


def accuracy(model: keras.Model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))


def run(seed: int, args) -> Dict:
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=seed, stratify=digits.target)
    hidden = [args.hidden, args.hidden]

    keras.utils.set_random_seed(seed)
    dense = train(make_mlp(hidden), x_train, y_train, args.epochs)

    keras.utils.set_random_seed(seed)
    steps = args.epochs * int(np.ceil(len(x_train) / 32))
    schedule = dsp_tf.DynamicPruningSchedule(0.0, args.final_sparsity, begin_step=steps // 10,
                                             end_step=steps * 6 // 10, frequency=20)
    pruner = dsp_tf.StructuredPruner(make_mlp(hidden), schedule,
                                     dsp_tf.NeuronImportanceRegularizer(args.reg_strength), ranking=args.ranking)
    train(pruner.model, x_train, y_train, args.epochs, [dsp_tf.StructuredPruningCallback(pruner)])
    compact = pruner.compact()
    kept = [layer.units for layer in compact.layers[:-1]]

    keras.utils.set_random_seed(seed)
    small = train(make_mlp(kept), x_train, y_train, args.epochs)

    gap = float(np.abs(compact.predict(x_test, verbose=0) - pruner.model.predict(x_test, verbose=0)).max())
    return {"seed": seed,
            "dense": {"test_accuracy": accuracy(dense, x_test, y_test), "hidden_units": hidden,
                      "weights": dsp_tf.model_stats(dense)["weights"]},
            "compact": {"test_accuracy": accuracy(compact, x_test, y_test), "hidden_units": kept,
                        "weights": dsp_tf.model_stats(compact)["weights"],
                        "hidden_sparsity": 1.0 - sum(kept) / sum(hidden), "max_gap_to_masked": gap},
            "small_from_scratch": {"test_accuracy": accuracy(small, x_test, y_test), "hidden_units": kept}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--final_sparsity", type=float, default=0.9)
    parser.add_argument("--reg_strength", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--ranking", default="global", choices=dsp_tf.RANKINGS,
                        help="How neuron scores of the two hidden layers compare (dsp_tf.select_masks).")
    args = parser.parse_args()
    start = time.perf_counter()
    runs = [run(seed, args) for seed in args.seeds]
    mean = {name: float(np.mean([r[name]["test_accuracy"] for r in runs]))
            for name in ("dense", "compact", "small_from_scratch")}
    print(json.dumps({"keras": keras.__version__, "backend": keras.backend.backend(), "epochs": args.epochs,
                      "final_sparsity": args.final_sparsity, "ranking": args.ranking,
                      "reg_strength": args.reg_strength, "runs": runs, "mean_test_accuracy": mean,
                      "seconds": round(time.perf_counter() - start, 1)}, indent=2))


if __name__ == "__main__":
    main()
