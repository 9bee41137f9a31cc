"""PPO's collect policy in NumPy: one rollout step costs microseconds, not a TF call.

tf-agents' ``PPOPolicy`` (observation normaliser → actor network → distribution,
plus the critic's value for ``policy_info``) is mirrored here with the same
float32 arithmetic, refreshed from the live variables before every rollout. The
training objective is untouched: PPO's update still runs in TensorFlow on the
``dist_params`` and ``value_prediction`` recorded here, which equal what the TF
policy would have recorded to float32 rounding (tests check ≤ 1e-5).
Sampling uses a NumPy generator seeded by (run seed, env step), so a resumed
run draws the same actions as an uninterrupted one.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from agents.inference import ActorMeta
from agents.networks import ActorNetwork, critic_layers
from dsp_tf._keras import tf
from dsp_tf.numpy_forward import NumpyChain


def observation_stats(agent) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and variance of tf-agents' streaming observation normaliser."""
    mean, var = agent._observation_normalizer._get_mean_var_estimates()  # noqa: SLF001
    return tf.nest.flatten(mean)[0].numpy(), tf.nest.flatten(var)[0].numpy()


class NumpyCollectPolicy:
    """Sampled actions and PPO's policy info for a batch of raw observations."""

    def __init__(self, agent, actor_net: ActorNetwork, value_net):
        self._agent = agent
        self._actor_net = actor_net
        self._actor = NumpyChain(actor_net.mlp)
        self._critic = NumpyChain(critic_layers(value_net))
        self.discrete = actor_net.discrete
        self.action_dtype = np.dtype(actor_net.action_spec.dtype.as_numpy_dtype)
        if not self.discrete:
            low, high = actor_net.action_bounds
            self._mid = ((high + low) / np.float32(2.0)).astype(np.float32)
            self._half = ((high - low) / np.float32(2.0)).astype(np.float32)
        self.refresh()

    def refresh(self) -> None:
        """Re-reads weights, masks, log-std and normaliser statistics."""
        self._actor.refresh()
        self._critic.refresh()
        mean, var = observation_stats(self._agent)
        self._mean = mean.astype(np.float32)
        self._inv_std = (1.0 / np.sqrt(var.astype(np.float32) + np.float32(ActorMeta.obs_epsilon))).astype(np.float32)
        if not self.discrete:
            self._scale = np.exp(self._actor_net.log_std.numpy()).astype(np.float32)

    def normalize(self, observation: np.ndarray) -> np.ndarray:
        clip = np.float32(ActorMeta.obs_clip)
        return np.minimum(np.maximum((observation - self._mean) * self._inv_std, -clip), clip)

    def distribution(self, observation: np.ndarray) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
        """(dist_params, value_prediction) exactly as PPOPolicy records them."""
        x = self.normalize(np.asarray(observation, np.float32))
        out = self._actor(x)
        value = self._critic(x)[:, 0]
        if self.discrete:
            return {"logits": out}, value
        loc = self._mid + self._half * np.tanh(out)
        return {"loc": loc, "scale_diag": np.broadcast_to(self._scale, loc.shape).copy()}, value

    def greedy(self, observation: np.ndarray) -> np.ndarray:
        """The deployed actor's output for one raw observation: logits, or the bounded mean action
        (what ``agents.inference.greedy_action`` turns into an action), without a TF call."""
        params, _ = self.distribution(np.asarray(observation, np.float32)[None])
        return (params["logits"] if self.discrete else params["loc"])[0]

    def sample(self, observation: np.ndarray, rng: np.random.Generator):
        """Returns (action, policy_info) for a batch of observations."""
        params, value = self.distribution(observation)
        if self.discrete:
            logits = params["logits"]
            gumbel = rng.gumbel(size=logits.shape)  # argmax(logits + Gumbel) ~ Categorical(logits)
            action = np.argmax(logits + gumbel, axis=-1).astype(self.action_dtype)
        else:
            noise = rng.standard_normal(params["loc"].shape, dtype=np.float32)
            action = (params["loc"] + params["scale_diag"] * noise).astype(np.float32)
        return action, {"dist_params": params, "value_prediction": value}
