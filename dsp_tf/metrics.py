"""Size and cost of a network: neurons, weights and FLOPs (Eqs. 21–23).

Computed from the weights actually in effect, so the same function measures a
dense model, a masked one (masked rows/columns count as zero) and a model
pruned weight by weight. A hidden neuron counts as removed when it is masked or
when all its incoming or all its outgoing weights are zero, since either way
it contributes nothing the compact rebuild cannot fold away.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from dsp_tf.chain import ModelOrLayers, dense_chain


def effective_kernels(model_or_dense_layers: ModelOrLayers,
                      masks: Optional[Sequence] = None) -> List[np.ndarray]:
    """Each Dense kernel with the masked neurons' columns and rows zeroed."""
    chain = dense_chain(model_or_dense_layers)
    if masks is None and chain.masks is not None:
        masks = [chain.binding.to_numpy(m.mask) for m in chain.masks]
    kernels = [chain.binding.to_numpy(d.kernel).copy() for d in chain.dense]
    if masks is not None:
        if len(masks) != len(chain.hidden):
            raise ValueError(f"got {len(masks)} masks for {len(chain.hidden)} hidden Dense layers")
        for l, m in enumerate(masks):
            dead = np.asarray(m) < 0.5
            kernels[l][:, dead] = 0.0
            kernels[l + 1][dead, :] = 0.0
    return kernels


def alive_neurons(kernels: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Boolean vector per hidden layer: the neuron has some incoming and some outgoing weight."""
    return [np.any(k != 0, axis=0) & np.any(nxt != 0, axis=1)
            for k, nxt in zip(kernels[:-1], kernels[1:])]


def model_stats(model: ModelOrLayers, masks: Optional[Sequence] = None) -> Dict[str, Any]:
    """Per-layer and total neurons, weights and FLOPs of one forward pass.

    Removed hidden neurons (masked, or without incoming or outgoing weights)
    are first taken out of the kernels, as the compact rebuild takes them out;
    then weights_l = (1 − S_l)·I_l·O_l and flops_l = (1 − S_l)·(2·I_l − 1)·O_l,
    with I_l × O_l the shape left and S_l its fraction of zeros (Eqs. 22–23);
    neurons = Σ ‖m_l‖₀ over hidden layers (Eq. 21). Biases are not counted,
    as in the paper. Taking the removed neurons out first is what makes a masked
    model measure exactly what its compact model measures: Eq. 23 on the full
    shape would charge a removed row (2·I − 1)/I FLOPs per remaining weight of
    its column. Per layer, ``inputs``, ``outputs`` and ``sparsity`` describe the
    full shape.
    """
    chain = dense_chain(model)
    kernels = effective_kernels(model, masks)
    alive = alive_neurons(kernels)
    keep_in = [None] + alive  # rows kept in each kernel: all inputs, then the live neurons
    keep_out = alive + [None]
    layers = []
    for l, (dense, k) in enumerate(zip(chain.dense, kernels)):
        inputs, outputs = k.shape
        live = k
        if keep_in[l] is not None:
            live = live[keep_in[l], :]
        if keep_out[l] is not None:
            live = live[:, keep_out[l]]
        nonzero = int(np.count_nonzero(live))
        live_inputs = live.shape[0]
        entry = {
            "name": dense.name,
            "inputs": int(inputs),
            "outputs": int(outputs),
            "sparsity": 1.0 - float(np.count_nonzero(k)) / k.size,
            "weights": nonzero,
            "flops": nonzero * (2 * live_inputs - 1) / live_inputs if live_inputs else 0.0,
        }
        if l < len(alive):
            entry["neurons"] = int(alive[l].sum())
        layers.append(entry)
    return {
        "layers": layers,
        "neurons": int(sum(a.sum() for a in alive)),
        "weights": int(sum(e["weights"] for e in layers)),
        "flops": float(sum(e["flops"] for e in layers)),
    }


def architecture_stats(model: ModelOrLayers) -> Dict[str, float]:
    """Neurons, weights and FLOPs of the network's shape, zeros included.

    The reference size "before pruning", and what a dense kernel (e.g. a
    TFLite FULLY_CONNECTED op) computes whatever its values.
    """
    chain = dense_chain(model)
    shapes = [tuple(d.kernel.shape) for d in chain.dense]
    return {"neurons": int(sum(d.units for d in chain.hidden)),
            "weights": int(sum(i * o for i, o in shapes)),
            "flops": float(sum((2 * i - 1) * o for i, o in shapes))}
