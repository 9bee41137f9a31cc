"""Small shared builders for the tests."""
import numpy as np

from dsp_tf import keras


def mlp(sizes=(7, 12, 10, 9, 3), activation="tanh", use_bias=True, seed=0, bias_scale=0.3):
    """A built Sequential MLP with random (non-zero) biases."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((sizes[0],))]
    for i, n in enumerate(sizes[1:]):
        last = i == len(sizes) - 2
        layers.append(keras.layers.Dense(n, activation=None if last else activation, use_bias=use_bias))
    model = keras.Sequential(layers)
    if use_bias:
        rng = np.random.default_rng(seed)
        for layer in model.layers:
            k, b = layer.get_weights()
            layer.set_weights([k, rng.normal(scale=bias_scale, size=b.shape).astype(np.float32)])
    return model


def kernels(model):
    return [l.kernel.numpy().astype(np.float64) for l in model.layers if isinstance(l, keras.layers.Dense)]


def numpy_importance(ks, masks):
    return [(k ** 2).sum(0) * (nxt ** 2).sum(1) * m for k, nxt, m in zip(ks[:-1], ks[1:], masks)]


def softmax(x):
    """NumPy's reference softmax over the last axis, for the distillation losses' tests."""
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)
