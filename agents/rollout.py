"""Collecting one PPO rollout from a few environments, at the simulator's speed.

Written out instead of using a tf-agents driver: the policy is the NumPy mirror
of the collect policy (agents.numpy_policy) and the environments are stepped
directly, because at one TensorFlow call and one tf-agents TimeStep per env
step, wrapping cost ~7× the MuJoCo physics. The data is laid out exactly as
tf-agents' auto-resetting environments and PPO expect: batch-major
[num_envs, T + 1], a LAST step followed by a FIRST step whose action the
environment ignores (PPO masks that boundary transition), and one extra step at
the end so the last transition is bootstrapped with V(s_T).

Actions are sampled from a generator seeded by (run seed, env step), so a run
resumed from a checkpoint draws exactly the actions an uninterrupted run would.
"""
from __future__ import annotations

import time
from typing import List, Sequence, Tuple

import numpy as np
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from agents.envs import GymnasiumEnvironment
from agents.numpy_policy import NumpyCollectPolicy
from dsp_tf._keras import tf

FIRST, MID, LAST = (np.int32(ts.StepType.FIRST), np.int32(ts.StepType.MID), np.int32(ts.StepType.LAST))


class RolloutCollector:
    def __init__(self, envs: Sequence[GymnasiumEnvironment], policy: NumpyCollectPolicy, num_steps: int):
        self.envs = list(envs)
        self.policy = policy
        self.num_steps = num_steps
        self.num_envs = len(self.envs)
        self._observation = None
        self._step_type = np.full(self.num_envs, FIRST)
        self._episode_return = np.zeros(self.num_envs, np.float64)
        self._episode_length = np.zeros(self.num_envs, np.int64)
        self.policy_seconds = 0.0  # time spent in the policy, for the loop's time breakdown

    def reset(self, seeds: List[int]) -> None:
        """Starts fresh episodes with the given per-env seeds (called at checkpoint boundaries)."""
        for env, seed in zip(self.envs, seeds, strict=True):
            env.seed(seed)
        self._observation = np.stack([env.reset_raw() for env in self.envs])
        self._step_type[:] = FIRST
        self._episode_return[:] = 0.0
        self._episode_length[:] = 0

    def collect(self, seed: Tuple[int, int]) -> Tuple[trajectory.Trajectory, List[float], List[int]]:
        """Returns a batch-major Trajectory [num_envs, num_steps + 1] and finished episodes."""
        if self._observation is None:
            raise RuntimeError("call reset() before collect()")
        self.policy.refresh()
        rng = np.random.default_rng([int(s) for s in seed])
        n, steps = self.num_envs, self.num_steps + 1
        obs = np.empty((n, steps) + self._observation.shape[1:], np.float32)
        step_type = np.empty((n, steps), np.int32)
        next_step_type = np.empty((n, steps), np.int32)
        reward = np.zeros((n, steps), np.float32)
        discount = np.ones((n, steps), np.float32)
        actions = params = values = None  # allocated once the first step shows their shapes
        returns, lengths = [], []
        observation, current = self._observation, self._step_type.copy()
        for t in range(steps):
            start = time.perf_counter()
            action, info = self.policy.sample(observation, rng)
            self.policy_seconds += time.perf_counter() - start
            if actions is None:
                actions = np.empty((n, steps) + action.shape[1:], action.dtype)
                params = {k: np.empty((n, steps) + v.shape[1:], v.dtype) for k, v in info["dist_params"].items()}
                values = np.empty((n, steps), np.float32)
            obs[:, t], step_type[:, t], actions[:, t], values[:, t] = (observation, current, action,
                                                                        info["value_prediction"])
            for k, v in info["dist_params"].items():
                params[k][:, t] = v
            if t == self.num_steps:
                # Padding entry: only its observation, step type and V(s_T) are used.
                next_step_type[:, t] = FIRST
                break
            for i, env in enumerate(self.envs):
                if current[i] == LAST:  # tf-agents' auto-reset: this step only resets
                    observation[i] = env.reset_raw()
                    current[i] = FIRST
                    continue
                observation[i], reward[i, t], terminated, truncated = env.step_raw(action[i])
                self._episode_return[i] += reward[i, t]
                self._episode_length[i] += 1
                if terminated or truncated:
                    discount[i, t] = 0.0 if terminated else 1.0
                    current[i] = LAST
                    returns.append(float(self._episode_return[i]))
                    lengths.append(int(self._episode_length[i]))
                    self._episode_return[i] = 0.0
                    self._episode_length[i] = 0
                else:
                    current[i] = MID
            next_step_type[:, t] = current
        self._observation, self._step_type = observation, current

        traj = trajectory.Trajectory(
            step_type=step_type, observation=obs, action=actions,
            policy_info={"dist_params": params, "value_prediction": values},
            next_step_type=next_step_type, reward=reward, discount=discount)
        return tf.nest.map_structure(tf.convert_to_tensor, traj), returns, lengths


class DiscountedReturns:
    """The running discounted return of each environment, what gym 0.23's NormalizeReward
    (and so CleanRL's MuJoCo PPO) divides rewards by the std of.

    Feeding these to PPO's reward normaliser instead of the rewards themselves keeps
    value targets near unit scale whatever the episode length. As in gym 0.23, an
    episode's last reward is added before the carry restarts, and it restarts on
    truncation too (gymnasium 1.x restarts it on termination only, before adding).
    The carry also restarts with the collector's episodes (``reset``), at checkpoint
    boundaries, so a resumed run computes what an uninterrupted one does.
    """

    def __init__(self, num_envs: int, discount: float):
        self.discount = discount
        self.value = np.zeros(num_envs, np.float64)

    def reset(self) -> None:
        self.value[:] = 0.0

    def __call__(self, rollout: trajectory.Trajectory) -> np.ndarray:
        """Each real transition's running return, [num_envs, k] flattened env-major."""
        step_type, next_step_type = np.asarray(rollout.step_type), np.asarray(rollout.next_step_type)
        reward = np.asarray(rollout.reward, np.float64)
        steps = step_type.shape[1] - 1  # the last column is padding, not a transition
        real = step_type[:, :steps] != LAST  # a LAST step's transition only resets the environment
        values = np.zeros((len(self.value), steps))
        for t in range(steps):
            self.value = np.where(real[:, t], self.discount * self.value + reward[:, t], self.value)
            values[:, t] = self.value
            self.value = np.where(next_step_type[:, t] == LAST, 0.0, self.value)
        return values[real]
