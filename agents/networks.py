"""The actor and critic networks PPO trains.

The actor's body is an ordinary Keras MLP (obs → logits or pre-squash mean),
so dsp_tf can mask, regularize and compact it like any user model. The tf-agents
network around it only turns that output into a distribution; the same head
math is used by the exported inference model (agents.inference).
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
import tensorflow_probability as tfp
from tf_agents.networks import network, utils, value_network
from tf_agents.specs import tensor_spec
from tf_agents.utils import nest_utils

from dsp_tf._keras import keras, tf


def build_mlp(input_dim: int, layers: Sequence[int], output_dim: int, activation: str = "tanh",
              use_bias: bool = True, name: str = "actor_mlp") -> keras.Sequential:
    """Hidden layers orthogonally initialised (as in common PPO code); small output init.

    The 0.01-scaled output layer starts the policy near uniform/zero-mean, which
    PPO implementations rely on for stable early training.
    """
    body = [keras.Input((input_dim,))]
    for i, units in enumerate(layers):
        body.append(keras.layers.Dense(units, activation=activation, use_bias=use_bias,
                                       kernel_initializer=keras.initializers.Orthogonal(np.sqrt(2)),
                                       name=f"hidden_{i}"))
    body.append(keras.layers.Dense(output_dim, use_bias=use_bias,
                                   kernel_initializer=keras.initializers.Orthogonal(0.01), name="output"))
    return keras.Sequential(body, name=name)


def squash_to_bounds(x, low, high):
    """Maps an unbounded mean into [low, high]; the greedy action is then always legal."""
    low = tf.constant(low, tf.float32)
    high = tf.constant(high, tf.float32)
    return (high + low) / 2.0 + (high - low) / 2.0 * tf.tanh(x)


class ActorNetwork(network.Network):
    """Keras MLP → Categorical(logits) or diagonal Gaussian(squashed mean, learned std)."""

    def __init__(self, observation_spec, action_spec, mlp: keras.Model, name: str = "ActorNetwork"):
        super().__init__(input_tensor_spec=observation_spec, state_spec=(), name=name)
        self._action_spec = action_spec
        self.mlp = mlp
        self.discrete = tensor_spec.is_discrete(action_spec)
        if not self.discrete:
            self._low = np.broadcast_to(action_spec.minimum, action_spec.shape).astype(np.float32)
            self._high = np.broadcast_to(action_spec.maximum, action_spec.shape).astype(np.float32)
            self.log_std = tf.Variable(tf.zeros(action_spec.shape), name="log_std")

    @property
    def action_spec(self):
        return self._action_spec

    @property
    def action_bounds(self):
        """(low, high) float32 arrays of the action's shape (continuous actions only)."""
        return self._low, self._high

    def call(self, observations, step_type=None, network_state=(), training=False):
        outer_rank = nest_utils.get_outer_rank(observations, self.input_tensor_spec)
        squash = utils.BatchSquash(outer_rank)
        # training=False always: the MLP has no dropout or batch norm, and tfmot's
        # pruning wrappers must not advance their own step on every minibatch.
        out = squash.unflatten(self.mlp(squash.flatten(tf.cast(observations, tf.float32)), training=False))
        if self.discrete:
            return tfp.distributions.Categorical(logits=out, dtype=self._action_spec.dtype), network_state
        loc = squash_to_bounds(out, self._low, self._high)
        scale = tf.exp(self.log_std) * tf.ones_like(loc)
        return tfp.distributions.MultivariateNormalDiag(loc=loc, scale_diag=scale), network_state


def critic_layers(net: network.Network) -> List[keras.layers.Layer]:
    """A tf-agents network's Keras layers in call order, nested networks flattened:
    for ``build_critic``'s ValueNetwork, [Flatten, Dense…, Dense(1)]."""
    flat: List[keras.layers.Layer] = []
    for layer in net.layers:
        flat.extend(critic_layers(layer) if isinstance(layer, network.Network) else [layer])
    return flat


class FreshOrthogonal(keras.initializers.Initializer):
    """An Orthogonal initializer made anew for every layer.

    tf-agents hands one initializer instance to all of the critic's layers, and
    Keras warns that a reused unseeded instance repeats its values; a fresh one
    per call draws from the global seed like any other layer.
    """

    def __init__(self, gain: float = 1.0):
        self.gain = float(gain)

    def __call__(self, shape, dtype=None, **kwargs):
        return keras.initializers.Orthogonal(self.gain)(shape, dtype=dtype)

    def get_config(self):
        return {"gain": self.gain}


def build_critic(observation_spec, layers: Sequence[int]) -> value_network.ValueNetwork:
    """The critic is never pruned (only the deployed actor is)."""
    return value_network.ValueNetwork(
        observation_spec, fc_layer_params=tuple(layers), activation_fn=tf.nn.tanh,
        kernel_initializer=FreshOrthogonal(np.sqrt(2)))
