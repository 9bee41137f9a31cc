"""Per-neuron scores that decide which neurons go first.

Every structured method ranks the hidden neurons by one number each and masks
the lowest; methods differ only in that number. DSP uses Eq. 12 (a neuron
matters when both its incoming and its outgoing weights are large); SSL uses the
L2 norm of the neuron's weight group; random pruning uses noise.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence

import numpy as np

from dsp_tf.chain import ModelOrLayers, dense_chain


def _masks_for(chain, masks):
    ops = chain.binding
    if masks is not None:
        if len(masks) != len(chain.hidden):
            raise ValueError(
                f"got {len(masks)} masks for {len(chain.hidden)} hidden Dense layers")
        return [ops.float32(m) for m in masks]
    if chain.masks is not None:
        return [m.mask for m in chain.masks]
    return [ops.float32(np.ones(d.units, np.float32)) for d in chain.hidden]


def neuron_importance(model_or_dense_layers: ModelOrLayers,
                      masks: Optional[Sequence] = None) -> List[Any]:
    """Ω of Eq. 12 for each hidden Dense layer (the output layer has none).

    Ω_i = (Σ_j K_l[j,i]²)(Σ_k K_{l+1}[i,k]²) m_i. Masks default to the model's
    own NeuronMask layers when it is a masked model, else all ones. The result
    is differentiable in the kernels, which is what makes it a regularizer; its
    tensors are of the model's Keras (``keras.ops`` on Keras 3, TensorFlow on tf_keras).
    """
    chain = dense_chain(model_or_dense_layers)
    ms = _masks_for(chain, masks)
    ops = chain.binding
    out = []
    for layer, nxt, m in zip(chain.hidden, chain.dense[1:], ms):
        incoming = ops.sum(ops.square(layer.kernel), axis=0)
        outgoing = ops.sum(ops.square(nxt.kernel), axis=1)
        out.append(incoming * outgoing * ops.cast(m, incoming.dtype))
    return out


def neuron_group_norms(model_or_dense_layers: ModelOrLayers,
                       masks: Optional[Sequence] = None) -> List[Any]:
    """L2 norm of each hidden neuron's weight group (incoming column and outgoing row).

    This is the group of Wen et al.'s structured sparsity learning (SSL), used
    both as its penalty and as its ranking.
    """
    chain = dense_chain(model_or_dense_layers)
    ms = _masks_for(chain, masks)
    ops = chain.binding
    out = []
    for layer, nxt, m in zip(chain.hidden, chain.dense[1:], ms):
        sq = ops.sum(ops.square(layer.kernel), axis=0) + ops.sum(ops.square(nxt.kernel), axis=1)
        # sqrt has an infinite gradient at 0; the epsilon keeps dead groups finite.
        out.append(ops.sqrt(sq + 1e-12) * ops.cast(m, sq.dtype))
    return out


def random_scores(model_or_dense_layers: ModelOrLayers, rng: np.random.Generator,
                  masks: Optional[Sequence] = None) -> List[np.ndarray]:
    """Uniform noise per neuron: the paper's random-pruning baseline ranks by this."""
    chain = dense_chain(model_or_dense_layers)
    return [rng.random(d.units) for d in chain.hidden]
