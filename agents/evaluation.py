"""Greedy evaluation of a deployable actor on seeds never used in training."""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import numpy as np

from agents.envs import evaluation_seed, make_gym
from agents.inference import greedy_action
from dsp_tf._keras import keras, tf


def run_episodes(policy: Callable[[np.ndarray], np.ndarray], env_name: str, seeds: Sequence[int],
                 discrete: bool) -> List[float]:
    """Episodic returns of ``policy`` (observation → logits or action), one episode per seed.

    Shared by training's final evaluation and the exporter's int8 return check,
    so a Keras actor and its TFLite file are judged on exactly the same episodes.
    """
    env = make_gym(env_name)
    returns: List[float] = []
    for seed in seeds:
        obs, _ = env.reset(seed=int(seed))
        total, done = 0.0, False
        while not done:
            out = policy(np.asarray(obs, np.float32))
            obs, reward, terminated, truncated, _ = env.step(greedy_action(out, discrete))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def keras_policy(model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    forward = tf.function(lambda x: model(x, training=False))
    return lambda obs: forward(tf.constant(obs[None], tf.float32))[0].numpy()


def evaluate_actor(model: keras.Model, env_name: str, run_seed: int, episodes: int,
                   discrete: bool) -> Dict[str, object]:
    """Mean/std of the episodic return; episode i uses evaluation_seed(run_seed, i)."""
    seeds = [evaluation_seed(run_seed, i) for i in range(episodes)]
    returns = run_episodes(keras_policy(model), env_name, seeds, discrete)
    return {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
            "returns": returns, "seeds": seeds}
