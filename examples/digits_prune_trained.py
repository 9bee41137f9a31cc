"""Pruning an already trained Keras model: a 64-128-128-10 MLP on scikit-learn's digits.

    python examples/digits_prune_trained.py --final_sparsity=0.9

Trains the dense MLP first (``--pretrain_epochs``), then wraps the *trained*
model in a StructuredPruner and fine-tunes it with the callback while the
schedule masks 90% of its hidden neurons (``--finetune_epochs``). The pruner
keeps the trained weights (wrapping draws no random numbers and changes no
weight) and ranks neurons by Ω of those weights. For comparison the script also
prunes the trained model in one shot (all at once by Ω, no fine-tuning) and
prunes from scratch as ``digits_mlp.py`` does, with the same total number of
epochs. It prints test accuracy and size of each, as JSON.

The pruner trains the model it is given in place (the masked model shares its
layers), so the trained model's own accuracy and size are taken before wrapping.
"""
from __future__ import annotations

import argparse
import json
from typing import Dict, Tuple

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import dsp_tf
from dsp_tf import keras


def make_mlp(hidden: int) -> keras.Sequential:
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(hidden, activation="relu"),
                             keras.layers.Dense(hidden, activation="relu"), keras.layers.Dense(10)])


def train(model: keras.Model, x, y, epochs: int, callbacks=()) -> keras.Model:
    """Fresh Adam each time: a fine-tuning run's step counter starts at 0, where its schedule starts."""
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=list(callbacks))
    return model


def accuracy(model: keras.Model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))


def size(model: keras.Model) -> Dict:
    stats = dsp_tf.model_stats(model)
    return {"hidden_units": [layer["neurons"] for layer in stats["layers"][:-1]],
            "weights": stats["weights"], "flops": stats["flops"]}


def schedule_for(epochs: int, n_train: int, final_sparsity: float) -> dsp_tf.DynamicPruningSchedule:
    """Pruning from 10% to 60% of the run's steps, every 20 steps (as in digits_mlp.py)."""
    steps = epochs * int(np.ceil(n_train / 32))
    return dsp_tf.DynamicPruningSchedule(0.0, final_sparsity, begin_step=steps // 10,
                                         end_step=steps * 6 // 10, frequency=20)


def data(seed: int) -> Tuple[np.ndarray, ...]:
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    return train_test_split(x, digits.target, test_size=0.25, random_state=seed, stratify=digits.target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--final_sparsity", type=float, default=0.9)
    parser.add_argument("--reg_strength", type=float, default=1e-4)
    parser.add_argument("--pretrain_epochs", type=int, default=30)
    parser.add_argument("--finetune_epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    x_train, x_test, y_train, y_test = data(args.seed)

    # 1. An ordinary trained Keras model.
    keras.utils.set_random_seed(args.seed)
    trained = train(make_mlp(args.hidden), x_train, y_train, args.pretrain_epochs)
    before = {"test_accuracy": accuracy(trained, x_test, y_test), **size(trained)}

    # 2. One shot: the same trained weights, 90% of the neurons of smallest Ω masked at once.
    copy = keras.models.clone_model(trained)
    copy.set_weights(trained.get_weights())
    one_shot = dsp_tf.StructuredPruner(copy, dsp_tf.DynamicPruningSchedule(
        0.0, args.final_sparsity, begin_step=0, end_step=1, frequency=1))
    one_shot.update_masks(1)  # the schedule's end: the final sparsity, ranked by Ω of the trained weights
    one_shot_compact = one_shot.compact()

    # 3. DSP on the trained model: wrap it (weights kept), fine-tune while the schedule prunes.
    pruner = dsp_tf.StructuredPruner(trained, schedule_for(args.finetune_epochs, len(x_train), args.final_sparsity),
                                     dsp_tf.NeuronImportanceRegularizer(args.reg_strength))
    assert accuracy(pruner.model, x_test, y_test) == before["test_accuracy"]  # nothing changed by wrapping
    train(pruner.model, x_train, y_train, args.finetune_epochs, [dsp_tf.StructuredPruningCallback(pruner)])
    fine_tuned = pruner.compact()

    # 4. DSP from scratch with the same total number of epochs.
    epochs = args.pretrain_epochs + args.finetune_epochs
    keras.utils.set_random_seed(args.seed)
    scratch = dsp_tf.StructuredPruner(make_mlp(args.hidden), schedule_for(epochs, len(x_train), args.final_sparsity),
                                      dsp_tf.NeuronImportanceRegularizer(args.reg_strength))
    train(scratch.model, x_train, y_train, epochs, [dsp_tf.StructuredPruningCallback(scratch)])
    scratch_compact = scratch.compact()

    result = {"seed": args.seed, "final_sparsity": args.final_sparsity, "reg_strength": args.reg_strength,
              "pretrain_epochs": args.pretrain_epochs, "finetune_epochs": args.finetune_epochs,
              "trained_dense": before,
              "trained_one_shot": {"test_accuracy": accuracy(one_shot_compact, x_test, y_test),
                                   **size(one_shot_compact)},
              "trained_then_dsp": {"test_accuracy": accuracy(fine_tuned, x_test, y_test), **size(fine_tuned)},
              "dsp_from_scratch": {"epochs": epochs, "test_accuracy": accuracy(scratch_compact, x_test, y_test),
                                   **size(scratch_compact)}}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
