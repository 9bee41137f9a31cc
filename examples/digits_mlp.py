"""DSP outside RL: prune a 64-128-128-10 MLP on scikit-learn's digits with model.fit.

    python examples/digits_mlp.py --final_sparsity=0.93

Two lines turn an ordinary Keras training into DSP: wrap the model in a
StructuredPruner and pass the callback to fit. The script prints accuracy and
size of the dense baseline and of the compact pruned model, on a held-out split.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import dsp_tf
from dsp_tf import keras


def make_mlp(hidden: int) -> keras.Sequential:
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(hidden, activation="relu"),
                             keras.layers.Dense(hidden, activation="relu"), keras.layers.Dense(10)])


def train(model: keras.Model, x, y, epochs: int, callbacks=()) -> keras.Model:
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=list(callbacks))
    return model


def accuracy(model: keras.Model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--final_sparsity", type=float, default=0.93)
    parser.add_argument("--reg_strength", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ranking", default="global", choices=dsp_tf.RANKINGS,
                        help="How neuron scores of the two hidden layers compare (dsp_tf.select_masks).")
    args = parser.parse_args()

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=args.seed, stratify=digits.target)

    keras.utils.set_random_seed(args.seed)
    dense = train(make_mlp(args.hidden), x_train, y_train, args.epochs)

    keras.utils.set_random_seed(args.seed)
    model = make_mlp(args.hidden)
    steps = args.epochs * int(np.ceil(len(x_train) / 32))
    schedule = dsp_tf.DynamicPruningSchedule(0.0, args.final_sparsity, begin_step=steps // 10,
                                             end_step=steps * 6 // 10, frequency=20)
    pruner = dsp_tf.StructuredPruner(model, schedule, dsp_tf.NeuronImportanceRegularizer(args.reg_strength),
                                     ranking=args.ranking)
    train(pruner.model, x_train, y_train, args.epochs, [dsp_tf.StructuredPruningCallback(pruner)])
    compact = pruner.compact()

    result = {"seed": args.seed, "epochs": args.epochs, "final_sparsity": args.final_sparsity,
              "ranking": args.ranking, "reg_strength": args.reg_strength,
              "dense": {"test_accuracy": accuracy(dense, x_test, y_test),
                        **{k: v for k, v in dsp_tf.model_stats(dense).items() if k != "layers"}},
              "compact": {"test_accuracy": accuracy(compact, x_test, y_test),
                          "hidden_units": [l.units for l in compact.layers[:-1]],
                          **{k: v for k, v in dsp_tf.model_stats(compact).items() if k != "layers"}}}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
