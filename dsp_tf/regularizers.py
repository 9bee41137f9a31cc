"""Penalties added to a training loss to push whole neurons (or weights) to zero.

They are plain callables on a model or a list of Dense layers rather than Keras
``kernel_regularizer``s, because Eq. 12 couples two layers (a neuron's incoming
and outgoing weights) and a per-layer regularizer cannot see both. One class
serves both Kerases: it computes in the Keras of the model it is given, and is
registered with each Keras's deserialisation when dsp_tf first serves that Keras.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, Optional, Sequence

from dsp_tf.binding import binding_of, binding_of_tensor, import_keras3, keras3_installed
from dsp_tf.chain import ModelOrLayers, dense_chain
from dsp_tf.importance import neuron_group_norms, neuron_importance


def check_strength(strength) -> float:
    """λ as a float, or ValueError: the one rule for λ, which the trainer's flags and the sweep's
    flagfile reading apply through this function before they say it in their own words."""
    try:
        value = float(strength)
    except (TypeError, ValueError):
        raise ValueError(f"strength must be a number, got {strength!r}") from None
    if not 0.0 <= value < math.inf:  # also rejects NaN
        raise ValueError(f"strength (lambda) must be finite and >= 0, got {value}")
    return value


def _regularizer_base() -> type:
    """The ``Regularizer`` of the install's main Keras: Keras 3's where it is installed, else tf_keras's
    (TensorFlow 2.15, where dsp_tf has taken the tf_keras path already). One class serves both Kerases,
    so it can subclass only one; tf_keras warns when it serialises anything else."""
    if keras3_installed():
        keras = import_keras3()
    else:
        from dsp_tf._keras import keras
    return keras.regularizers.Regularizer


class _StrengthRegularizer(_regularizer_base()):
    """Shared argument checking and (de)serialisation for λ-scaled penalties.

    Serialised by either Keras like its own regularizers (``get_config`` and the
    registration of each binding), but called on a model or its Dense layers, never
    on one kernel.
    """

    def __init__(self, strength: float):
        self.strength = check_strength(strength)

    def penalty(self, model_or_dense_layers: ModelOrLayers, masks: Optional[Sequence] = None) -> Any:
        raise NotImplementedError

    def __call__(self, model_or_dense_layers: ModelOrLayers, masks: Optional[Sequence] = None) -> Any:
        """λ·penalty, a scalar tensor of the model's Keras."""
        if binding_of_tensor(model_or_dense_layers) is not None:
            # Keras calls a layer's kernel_regularizer on the kernel only when it first reads
            # model.losses, inside the train step fit traces. Marked to pass through autograph,
            # which would otherwise rewrite the message into a 20-line "in user code" trace.
            error = ValueError(
                f"{type(self).__name__} takes a model or its Dense layers, not one weight tensor: give it to "
                "StructuredPruner(model, schedule, regularizer), not as a layer's kernel_regularizer")
            error.ag_pass_through = True
            raise error
        if self.strength == 0.0:
            return binding_of(model_or_dense_layers).float32(0.0)
        return self.strength * self.penalty(model_or_dense_layers, masks)

    def get_config(self) -> Dict[str, Any]:
        return {"strength": self.strength}

    @classmethod
    def from_config(cls, config: Dict[str, Any]):
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(strength={self.strength:g})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.strength == other.strength

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.strength))


_LAYER_REGULARIZERS = ("kernel_regularizer", "bias_regularizer", "activity_regularizer")


def check_not_layer_regularizers(layers: Iterable[Any]) -> None:
    """ValueError naming the first layer that holds one of these penalties as its own regularizer.

    Keras stores a layer's kernel or bias regularizer when the layer is built and calls
    it only in the first step of ``fit`` (tf_keras 2.15 to 2.21 alike), so a pruner
    refuses such a model when it is given one: the earliest point at which the mistake
    can be seen without patching Keras.
    """
    for layer in layers:
        for attr in _LAYER_REGULARIZERS:
            regularizer = getattr(layer, attr, None)
            if isinstance(regularizer, _StrengthRegularizer):
                raise ValueError(
                    f"layer '{layer.name}' has {type(regularizer).__name__} as its {attr}, but it takes the whole "
                    f"model: give it to StructuredPruner(model, schedule, regularizer), not as a layer's {attr}")


class NeuronImportanceRegularizer(_StrengthRegularizer):
    """λ·Σ_l Σ_i Ω_i^(l), the neuron-importance group-sparse term of Eq. 13.

    Subtracted from the PPO objective (i.e. added to the loss) it shrinks the
    product of a neuron's incoming and outgoing energy, so unimportant neurons
    fade before the schedule masks them and masking costs little return.
    """

    def penalty(self, model_or_dense_layers, masks=None):
        ops = binding_of(model_or_dense_layers)
        return ops.add_n([ops.sum(o) for o in neuron_importance(model_or_dense_layers, masks)])


class GroupLassoRegularizer(_StrengthRegularizer):
    """λ·Σ ‖group‖₂ over each hidden neuron's weights (SSL, Wen et al. 2016)."""

    def penalty(self, model_or_dense_layers, masks=None):
        ops = binding_of(model_or_dense_layers)
        return ops.add_n([ops.sum(g) for g in neuron_group_norms(model_or_dense_layers, masks)])


class InputGroupL1Regularizer(_StrengthRegularizer):
    """λ·Σ_j ‖K_1[j, :]‖₂: group sparsity over the input features of the first layer (SGS)."""

    def penalty(self, model_or_dense_layers, masks=None):
        chain = dense_chain(model_or_dense_layers)
        ops, kernel = chain.binding, chain.dense[0].kernel
        return ops.sum(ops.sqrt(ops.sum(ops.square(kernel), axis=1) + 1e-12))


class WeightL1Regularizer(_StrengthRegularizer):
    """λ·Σ|θ| over every kernel of the network (the unstructured L1 baseline)."""

    def penalty(self, model_or_dense_layers, masks=None):
        chain = dense_chain(model_or_dense_layers)
        ops = chain.binding
        return ops.add_n([ops.sum(ops.abs(d.kernel)) for d in chain.dense])


#: Keras-serialisable: each binding registers these with its Keras ("dsp_tf>NeuronImportanceRegularizer" …,
#: and under their bare names, as NeuronMask is), so ``keras.regularizers.get`` / ``serialize`` /
#: ``deserialize`` know them and a training config can name its penalty like any Keras regularizer.
#: They are not per-layer ``kernel_regularizer``s: they take a model or its Dense layers (see above).
REGULARIZERS = (NeuronImportanceRegularizer, GroupLassoRegularizer, InputGroupL1Regularizer, WeightL1Regularizer)
