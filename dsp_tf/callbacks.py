"""DSP for ``model.fit`` users, on Keras 3 and tf_keras.

A Keras callback must subclass its own Keras's ``Callback``, so the public class
is a factory: ``StructuredPruningCallback(pruner)`` returns the callback class of
the pruner's Keras (``binding.callback_class``), whose body is ``_CallbackMethods``
below; ``isinstance(cb, StructuredPruningCallback)`` holds for both.
"""
from __future__ import annotations

import abc
import warnings
from typing import Any, Optional

from dsp_tf.masks import select_masks
from dsp_tf.pruner import StructuredPruner


def _check_pruner(pruner: Any) -> None:
    if not isinstance(pruner, StructuredPruner):
        raise ValueError(f"StructuredPruningCallback takes a dsp_tf.StructuredPruner, got {type(pruner).__name__}")


class StructuredPruningCallback(abc.ABC):
    """Updates a StructuredPruner's masks on its schedule during ``fit``.

    The step is the optimizer's iteration count, like tfmot's UpdatePruningStep,
    so resuming ``fit`` from a checkpoint continues the schedule where it was.
    The regularizer is already in the masked model's losses. At each epoch end
    the share of masked neurons is added to the logs (and so to TensorBoard).

        pruner = dsp_tf.StructuredPruner(model, schedule, dsp_tf.NeuronImportanceRegularizer(1e-4))
        pruner.model.compile(...); pruner.model.fit(x, y, callbacks=[dsp_tf.StructuredPruningCallback(pruner)])

    Per batch it does Python arithmetic only: the step counter is read from the
    optimizer once per epoch (a device read each batch doubled a small model's
    epoch) and counted on from the batch index, and the masks are recomputed only
    when the step crosses one of the schedule's pruning steps (every
    ``frequency`` steps from ``begin_step`` to ``end_step``), also when
    ``steps_per_execution`` > 1 reports every few steps only.

    Misuse is caught at the start of ``fit``: a callback given to the ``fit`` of a
    model other than ``pruner.model`` (say, the original model, whose forward pass
    has no masks) raises ValueError; an optimizer whose step counter is already
    past ``end_step`` while the masks are short of the final sparsity warns, since
    nothing would be pruned in that ``fit``. So does a ``fit`` that ends before the
    schedule's last pruning step (``end_step`` beyond the steps it trains), naming
    the step it reached and the one the schedule needed: otherwise the model would
    come out short of ``final_sparsity`` without a word.
    """

    def __new__(cls, pruner: StructuredPruner):
        _check_pruner(pruner)
        return pruner.binding.callback_class(pruner)


def _contains(model: Any, target: Any) -> bool:
    """Whether ``target`` is ``model`` or one of its layers, at any depth (a masked model inside a larger one)."""
    if model is target:
        return True
    return any(_contains(layer, target) for layer in getattr(model, "layers", ()))


class _CallbackMethods:
    """The body of StructuredPruningCallback, mixed into each Keras's ``Callback``."""

    def __init__(self, pruner: StructuredPruner):
        super().__init__()
        _check_pruner(pruner)
        # The batch hook reads no logs: without this, tf_keras would copy every batch's
        # logs to NumPy for it, a device sync per batch that stalls fit's pipeline.
        self._supports_tf_logs = True
        self.pruner = pruner
        self._epoch_start_step = 0
        self._last_pruned: Optional[int] = None  # latest schedule step acted on in this fit

    def _check_model(self) -> None:
        # pruner.model used inside a larger model (a preprocessing front) still carries the masks.
        if _contains(self.model, self.pruner.model):
            return
        raise ValueError(
            f"StructuredPruningCallback is attached to the fit of '{self.model.name}', but the pruner's masks are "
            f"in '{self.pruner.model.name}': train pruner.model (pruner.model.fit(..., callbacks=[callback]))")

    def _step(self) -> int:
        return int(self.pruner.binding.to_numpy(self.model.optimizer.iterations))

    def _warn_if_schedule_is_over(self, step: int) -> None:
        schedule = self.pruner.schedule
        if step <= schedule.end_step:
            return
        target = select_masks(self.pruner.importance(), self.pruner.masks, schedule.final_sparsity,
                              self.pruner.min_neurons_per_layer, self.pruner.threshold, self.pruner.ranking)
        if all((t == m).all() for t, m in zip(target, self.pruner.masks)):
            return  # already at the final sparsity (a resumed, finished schedule)
        warnings.warn(
            f"StructuredPruningCallback: the optimizer's step counter ({step}) is past the schedule's end_step "
            f"({schedule.end_step}), so this fit prunes nothing (neuron sparsity stays "
            f"{self.pruner.sparsity():.2f}, the schedule ends at {schedule.final_sparsity:.2f}); use a fresh "
            f"optimizer or a schedule within this training's steps", UserWarning, stacklevel=2)

    def on_train_begin(self, logs=None):
        self._check_model()
        step = self._step()
        # Grid steps before this fit are not caught up on: a schedule already over
        # would otherwise prune to its final sparsity at once, without the gradual steps.
        self._last_pruned = self.pruner.schedule.last_pruning_step(step - 1)
        self._warn_if_schedule_is_over(step)

    def _warn_if_schedule_is_unfinished(self, step: int) -> None:
        schedule = self.pruner.schedule
        final_step = schedule.last_pruning_step(schedule.end_step)
        if self._last_pruned is None or self._last_pruned >= final_step:
            return  # finished, or over before this fit began (on_train_begin said so)
        if schedule.sparsity_at(self._last_pruned) >= schedule.final_sparsity:
            return  # initial_sparsity == final_sparsity: there is nothing left to prune
        warnings.warn(
            f"StructuredPruningCallback: fit ended at optimizer step {step}, before step {final_step} at which "
            f"the schedule prunes to final_sparsity {schedule.final_sparsity:.2f} (neuron sparsity is "
            f"{self.pruner.sparsity():.3f}); train at least {final_step + 1 - step} more steps (a later fit with "
            f"this callback continues the schedule) or set the schedule's end_step below {step}",
            UserWarning, stacklevel=2)

    def on_train_end(self, logs=None):
        self._warn_if_schedule_is_unfinished(self._step())

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start_step = self._step()

    def on_train_batch_begin(self, batch, logs=None):
        step = self._epoch_start_step + int(batch)  # ``batch`` is the step within the epoch
        due = self.pruner.schedule.last_pruning_step(step)
        if due > self._last_pruned:
            # Reading ``self.model`` is what makes Keras 3 on JAX hand the training loop's weights to the
            # variables (and take them back, masks included, before the next step); elsewhere it is free.
            self.model  # noqa: B018
            self.pruner.update_masks(due)
            self._last_pruned = due

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["neuron_sparsity"] = float(self.pruner.sparsity())
