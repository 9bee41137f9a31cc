"""Greedy evaluation of a deployable actor on seeds never used in training."""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from agents.envs import evaluation_seed, make_gym
from agents.inference import greedy_action
from dsp_tf._keras import keras, tf


def evaluate_actor(model: keras.Model, env_name: str, run_seed: int, episodes: int,
                   discrete: bool) -> Dict[str, object]:
    """Mean/std of the episodic return; episode i uses evaluation_seed(run_seed, i)."""
    env = make_gym(env_name)
    forward = tf.function(lambda x: model(x, training=False))
    returns: List[float] = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=evaluation_seed(run_seed, episode))
        total, done = 0.0, False
        while not done:
            out = forward(tf.constant(np.asarray(obs, np.float32)[None]))[0].numpy()
            obs, reward, terminated, truncated, _ = env.step(greedy_action(out, discrete))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
            "returns": returns, "seeds": [evaluation_seed(run_seed, i) for i in range(episodes)]}
