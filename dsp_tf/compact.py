"""Physically removing masked neurons (the last line of Algorithm 1).

The compact network is what ships: every masked neuron's kernel column, bias
entry and outgoing kernel row are dropped, so it computes exactly what the
masked network computes with fewer weights and FLOPs.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from dsp_tf.chain import ModelOrLayers, dense_chain
from dsp_tf.metrics import alive_neurons, effective_kernels


#: Layer config entries holding Keras objects (initializers, regularizers, constraints).
_OBJECT_KEYS = ("kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
                "activity_regularizer", "kernel_constraint", "bias_constraint")


def copy_layer(layer: Any, **changes) -> Any:
    """A new layer like ``layer`` (with ``changes`` to its config).

    Its initializers, regularizers and constraints are copied by their own class,
    not through their serialised form: that names the ``keras`` package, which
    resolves through TensorFlow's shared name table and, were that table pointing
    at another Keras 2 copy, would mix two Keras into one model (and warn on
    saving). See ``dsp_tf._keras``. The copy is of the same Keras as ``layer``.
    """
    config = {**layer.get_config(), **changes}
    for key in _OBJECT_KEYS:
        obj = getattr(layer, key, None)
        if key in config and obj is not None and hasattr(obj, "get_config"):
            config[key] = type(obj).from_config(obj.get_config())
    return type(layer).from_config(config)


def kept_indices(masks: Sequence) -> list:
    return [np.flatnonzero(np.asarray(m) > 0.5) for m in masks]


def compact_model(model_or_dense_layers: ModelOrLayers, masks: Optional[Sequence] = None,
                  name: Optional[str] = None) -> Any:
    """A new Sequential, of the model's Keras, with only the unmasked hidden neurons.

    ``masks`` default to the model's NeuronMask layers (a masked model) or to
    all ones. Element-wise layers are re-created from their configs, so the result
    holds Keras's own layers only and loads where dsp_tf is not installed.
    """
    chain = dense_chain(model_or_dense_layers)
    keras = chain.binding.keras
    if masks is None:
        masks = ([chain.binding.to_numpy(m.mask) for m in chain.masks] if chain.masks is not None
                 else [np.ones(d.units) for d in chain.hidden])
    if len(masks) != len(chain.hidden):
        raise ValueError(f"got {len(masks)} masks for {len(chain.hidden)} hidden Dense layers")
    keep = kept_indices(masks)
    rebuilt = []
    weights_of = {}  # id(new Dense) -> its kernel (and bias)
    rows = None  # kept inputs of the next Dense
    hidden_index = 0
    for layer in chain.layers:
        if not isinstance(layer, keras.layers.Dense):
            rebuilt.append(copy_layer(layer))
            continue
        weights = layer.get_weights()
        kernel = weights[0] if rows is None else weights[0][rows, :]
        bias = weights[1] if layer.use_bias else None
        if hidden_index < len(chain.hidden):
            cols = keep[hidden_index]
            kernel = kernel[:, cols]
            bias = bias[cols] if bias is not None else None
            rows = cols
            hidden_index += 1
        new = copy_layer(layer, units=int(kernel.shape[1]))
        weights_of[id(new)] = [kernel] + ([bias] if bias is not None else [])
        rebuilt.append(new)
    base = model_or_dense_layers.name if isinstance(model_or_dense_layers, keras.Model) else "model"
    # Built by the Sequential, not by layer.build: only then are the variables
    # created in the layer's name scope ("dense/kernel:0", not "kernel:0"), and an
    # optimizer's slots of two layers do not collide when saved to .h5.
    front = [copy_layer(layer) for layer in chain.front]  # input-side layers, kept whole
    model = keras.Sequential([keras.Input(shape=chain.input_shape)] + front + rebuilt,
                             name=name or f"{base}_compact")
    for new, old in zip(front, chain.front):
        new.set_weights(old.get_weights())
        if hasattr(new, "finalize_state"):  # Normalization derives its mean/variance from those weights
            new.finalize_state()
    for layer in rebuilt:
        if id(layer) in weights_of:
            layer.set_weights(weights_of[id(layer)])
    return model


def compact_unstructured(model_or_dense_layers: ModelOrLayers, name: Optional[str] = None) -> Any:
    """Compacts a weight-pruned network: neurons with no outgoing weights are dropped,
    and neurons with no incoming weights (a constant f(bias)) are folded into the
    next layer's bias, so the result computes exactly what the input computes.

    Repeated until nothing changes: dropping a neuron can leave a neuron of the
    layer before without outgoing weights, or one of the layer after without
    incoming weights, and those go too.
    """
    keras = dense_chain(model_or_dense_layers).binding.keras
    base = model_or_dense_layers.name if isinstance(model_or_dense_layers, keras.Model) else "model"
    current = _compact_unstructured_once(model_or_dense_layers)
    while True:
        sizes = [d.units for d in dense_chain(current).hidden]
        smaller = _compact_unstructured_once(current)
        if [d.units for d in dense_chain(smaller).hidden] == sizes:
            return compact_model(smaller, [np.ones(n) for n in sizes], name=name or f"{base}_compact")
        current = smaller


def _compact_unstructured_once(model_or_dense_layers: ModelOrLayers) -> Any:
    chain = dense_chain(model_or_dense_layers)
    ops, keras = chain.binding, chain.binding.keras
    copy = compact_model(model_or_dense_layers, [np.ones(d.units) for d in chain.hidden])
    copy_chain = dense_chain(copy)
    kernels = effective_kernels(copy)
    keep = alive_neurons(kernels)
    between = []  # element-wise layers after each hidden Dense
    current = None
    for layer in copy_chain.layers:
        if isinstance(layer, keras.layers.Dense):
            if current is not None:
                between.append(current)
            current = []
        else:
            current.append(layer)
    for l, (dense, nxt) in enumerate(zip(copy_chain.hidden, copy_chain.dense[1:])):
        no_input = ~np.any(kernels[l] != 0, axis=0)
        has_output = np.any(kernels[l + 1] != 0, axis=1)
        fold = no_input & has_output
        if not fold.any():
            continue
        bias = ops.to_numpy(dense.bias) if dense.use_bias else np.zeros(dense.units, np.float32)
        constant = dense.activation(ops.float32(bias[None, :]))
        for layer in between[l]:
            constant = layer(constant, training=False)
        contribution = ops.to_numpy(constant)[0] * fold
        if nxt.use_bias:
            nxt.bias.assign(ops.to_numpy(nxt.bias) + contribution @ kernels[l + 1])
        else:
            keep[l] = keep[l] | (fold & (np.abs(contribution) > 0))  # cannot fold without a bias
    for l, k in enumerate(keep):
        if not k.any():
            # Nothing of this layer reaches the output (constants are folded above): keep one
            # neuron with its outgoing weights zeroed, since a Dense layer cannot have 0 units.
            k[0] = True
            nxt = copy_chain.dense[l + 1]
            nxt.kernel.assign(np.where(np.arange(nxt.kernel.shape[0])[:, None] == 0, 0.0, ops.to_numpy(nxt.kernel)))
    return compact_model(copy, [k.astype(np.float32) for k in keep])
