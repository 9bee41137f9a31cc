"""Greedy evaluation of a deployable actor on seeds never used in training.

An episode is scored by its return and length everywhere; on a driving task
(``agents.envs.is_driving``) also by whether it ended in a collision and by the
ego vehicle's mean speed, read from highway-env's ``info["crashed"]`` and
``info["speed"]`` after every step: on a road those say more than the return.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence

import numpy as np

from agents.envs import evaluation_seed, is_driving, make_gym
from agents.inference import greedy_action
from dsp_tf._keras import keras
from dsp_tf.numpy_forward import keras_step


#: Learning-curve and validation episodes use evaluation seeds from this index on:
#: unseen in training (evaluation seeds are odd, training resets even) and apart
#: from the final test episodes 0 … eval_episodes-1.
HELD_OUT_OFFSET = 100_000


def _seed_range(run_seed: int, episodes: int, offset: int, kind: str) -> List[int]:
    """``episodes`` evaluation seeds from index ``offset`` on; each range is HELD_OUT_OFFSET long, so
    test, validation and the size search's judge never share an episode."""
    if not 0 < episodes <= HELD_OUT_OFFSET:
        raise ValueError(f"{kind} episodes must be in [1, {HELD_OUT_OFFSET}], got {episodes}")
    return [evaluation_seed(run_seed, offset + i) for i in range(episodes)]


def held_out_seeds(run_seed: int, episodes: int) -> List[int]:
    """The seeds of the learning curves and of validation: the same episodes for both,
    so a validation point that falls on a curve point costs nothing more."""
    return _seed_range(run_seed, episodes, HELD_OUT_OFFSET, "held-out")


def final_test_seeds(run_seed: int, episodes: int) -> List[int]:
    """The final evaluation's episodes (summary.json, dsp_tf.evaluate, the exporter)."""
    return _seed_range(run_seed, episodes, 0, "test")


#: The size search judges its students on evaluation seeds from this index on: apart from the test
#: episodes and from validation, whose best of many 5-episode scores overstates the actor it picks.
JUDGE_OFFSET = 2 * HELD_OUT_OFFSET


def judge_seeds(run_seed: int, episodes: int) -> List[int]:
    """The episodes on which ``dsp_tf.shrink --keep`` compares each rung's shipped actor with its teacher."""
    return _seed_range(run_seed, episodes, JUDGE_OFFSET, "judge")


#: A run confirms its best validated actors (``--confirm_top``) on evaluation seeds from this index on:
#: not validation's, whose best-of-N picked them, nor the judge's or the test's, which score the result.
CONFIRM_OFFSET = 3 * HELD_OUT_OFFSET


def confirm_seeds(run_seed: int, episodes: int) -> List[int]:
    """The episodes on which the kept candidates are played again at the end of training."""
    return _seed_range(run_seed, episodes, CONFIRM_OFFSET, "confirmation")


#: What ``episode_metrics`` adds on a driving task; summary.json and export_report.json carry these keys.
DRIVING_METRICS = ("collision_rate", "collisions", "speed_mean", "crashed", "speeds")


@dataclass
class Episode:
    """One episode's score, accumulated step by step from what the environment reports."""
    ret: float = 0.0
    length: int = 0
    crashed: Optional[bool] = None  # driving tasks only
    speeds: List[float] = field(default_factory=list)  # driving tasks only: info["speed"] after each step

    def add(self, reward: float, info: Dict, driving: bool) -> None:
        self.ret += float(reward)
        self.length += 1
        if driving:
            self.crashed = bool(info["crashed"])
            self.speeds.append(float(info["speed"]))

    @property
    def mean_speed(self) -> float:
        return float(np.mean(self.speeds))


class Step(NamedTuple):
    """One decision: the observation acted on, the greedy action, and what the environment returned."""
    observation: np.ndarray
    action: Any
    reward: float
    info: Dict


def greedy_episode(env, policy: Callable[[np.ndarray], np.ndarray], seed: int,
                   discrete: bool) -> Iterator[Step]:
    """The steps of one greedy episode of ``policy`` on ``env`` reset with ``seed``.

    The one place a greedy episode is played (evaluation, the exporter's recorded
    observations, the animation), so that the same seed is the same episode
    everywhere. The reset happens at the call, not at the first step, so a caller
    can look at the environment (render it) before the first action.
    """
    obs, _ = env.reset(seed=int(seed))
    return _greedy_steps(env, policy, obs, discrete)


def _greedy_steps(env, policy: Callable[[np.ndarray], np.ndarray], obs, discrete: bool) -> Iterator[Step]:
    done = False
    while not done:
        observation = np.asarray(obs, np.float32)
        action = greedy_action(policy(observation), discrete)
        obs, reward, terminated, truncated, info = env.step(action)
        yield Step(observation, action, reward, info)
        done = terminated or truncated


def run_episodes(policy: Callable[[np.ndarray], np.ndarray], env_name: str, seeds: Sequence[int],
                 discrete: bool) -> List[Episode]:
    """The episodes of ``policy`` (observation → logits or action), one per seed.

    Shared by training's final evaluation, the learning curves and the exporter's
    int8 check, so a Keras actor and its TFLite file are judged on exactly the same episodes.
    """
    env, driving = make_gym(env_name), is_driving(env_name)
    episodes: List[Episode] = []
    for seed in seeds:
        episode = Episode()
        for step in greedy_episode(env, policy, seed, discrete):
            episode.add(step.reward, step.info, driving)
        episodes.append(episode)
    env.close()
    return episodes


def episode_metrics(episodes: Sequence[Episode], driving: bool) -> Dict[str, object]:
    """Return mean/std (over episodes), lengths and, for driving, the collision rate and mean speed.

    Mean speed is the mean over episodes of each episode's mean speed, so a short
    episode that ends in a crash counts as much as one that drives to the end.
    """
    returns = [e.ret for e in episodes]
    out: Dict[str, object] = {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
                              "returns": returns, "length_mean": float(np.mean([e.length for e in episodes])),
                              "lengths": [e.length for e in episodes]}
    if driving:
        crashed = [bool(e.crashed) for e in episodes]
        values = {"collision_rate": float(np.mean(crashed)), "collisions": int(sum(crashed)),
                  "speed_mean": float(np.mean([e.mean_speed for e in episodes])),
                  "crashed": crashed, "speeds": [round(e.mean_speed, 4) for e in episodes]}
        out.update({k: values[k] for k in DRIVING_METRICS})
    return out


def episode_returns(model: keras.Model, env_name: str, seeds: Sequence[int], discrete: bool) -> List[float]:
    """The greedy actor's return on each of ``seeds``: what a mean and its tail (agents.tails) are read from."""
    return [e.ret for e in run_episodes(keras_step(model), env_name, seeds, discrete)]


def mean_return(model: keras.Model, env_name: str, seeds: Sequence[int], discrete: bool) -> float:
    """The greedy actor's mean return on ``seeds``: a teacher and its student compared on the same
    episodes (validation's, or the size search's judge's)."""
    return float(np.mean(episode_returns(model, env_name, seeds, discrete)))


def evaluate_actor(model: keras.Model, env_name: str, run_seed: int, episodes: int,
                   discrete: bool) -> Dict[str, object]:
    """``episode_metrics`` of the greedy actor; episode i uses evaluation_seed(run_seed, i)."""
    seeds = final_test_seeds(run_seed, episodes)
    result = episode_metrics(run_episodes(keras_step(model), env_name, seeds, discrete), is_driving(env_name))
    result["seeds"] = seeds
    return result
