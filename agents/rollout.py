"""Collecting one PPO rollout from a batch of environments.

Written out instead of using a tf-agents driver for two reasons: actions are
sampled with *stateless* seeds derived from the run seed and the env-step count,
so a run resumed from a checkpoint draws exactly the actions an uninterrupted
run would; and one extra step is stored at the end so the last transition can be
bootstrapped with V(s_T) without being thrown away (tf-agents' [T+1] layout).
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from dsp_tf._keras import tf


class RolloutCollector:
    def __init__(self, env, collect_policy, num_steps: int):
        self.env = env
        self.policy = collect_policy
        self.num_steps = num_steps
        self.num_envs = env.batch_size
        self._time_step = None
        self._episode_return = np.zeros(self.num_envs, np.float64)
        self._episode_length = np.zeros(self.num_envs, np.int64)

        @tf.function(jit_compile=True)
        def act(step_type, reward, discount, observation, seed):
            time_step = ts.TimeStep(step_type, reward, discount, observation)
            step = self.policy.distribution(time_step, self.policy.get_initial_state(self.num_envs))
            action = step.action.sample(seed=seed)
            return action, step.info

        # A concrete function skips tf.function's per-call signature matching,
        # which costs as much as the policy itself at one call per env step.
        spec = env.time_step_spec()
        n = self.num_envs
        self._act = act.get_concrete_function(
            tf.TensorSpec([n], tf.int32), tf.TensorSpec([n], tf.float32), tf.TensorSpec([n], tf.float32),
            tf.TensorSpec([n] + list(spec.observation.shape), tf.float32), tf.TensorSpec([2], tf.int32))

    def reset(self, seeds: List[int]) -> None:
        """Starts fresh episodes with the given per-env seeds (called at checkpoint boundaries)."""
        for env, seed in zip(self.env.envs, seeds):
            env.seed(seed)
        self._time_step = self.env.reset()
        self._episode_return[:] = 0.0
        self._episode_length[:] = 0

    def _policy(self, time_step, seed) -> Tuple[np.ndarray, dict]:
        action, info = self._act(tf.constant(time_step.step_type, tf.int32),
                                 tf.constant(time_step.reward, tf.float32),
                                 tf.constant(time_step.discount, tf.float32),
                                 tf.constant(time_step.observation, tf.float32), tf.constant(seed, tf.int32))
        return action.numpy(), tf.nest.map_structure(lambda t: t.numpy(), info)

    def collect(self, seed_base: Tuple[int, int]) -> Tuple[trajectory.Trajectory, List[float], List[int]]:
        """Returns a batch-major Trajectory [num_envs, num_steps + 1] and finished episodes."""
        if self._time_step is None:
            raise RuntimeError("call reset() before collect()")
        rows = []
        returns, lengths = [], []
        time_step = self._time_step
        for t in range(self.num_steps + 1):
            action, info = self._policy(time_step, (seed_base[0], seed_base[1] + t))
            if t == self.num_steps:
                # Padding entry: only its observation, step type and V(s_T) are used.
                zeros = np.zeros(self.num_envs, np.float32)
                rows.append((time_step, action, info,
                             ts.TimeStep(np.full(self.num_envs, ts.StepType.FIRST, np.int32), zeros,
                                         np.ones(self.num_envs, np.float32), time_step.observation)))
                break
            next_step = self.env.step(action)
            rows.append((time_step, action, info, next_step))
            self._episode_return += next_step.reward
            self._episode_length += 1
            for i in np.flatnonzero(next_step.step_type == ts.StepType.LAST):
                returns.append(float(self._episode_return[i]))
                lengths.append(int(self._episode_length[i]))
                self._episode_return[i] = 0.0
                self._episode_length[i] = 0
            time_step = next_step
        self._time_step = time_step

        def stack(values):
            return np.stack(values, axis=1)  # [num_envs, T + 1, ...]

        traj = trajectory.Trajectory(
            step_type=stack([r[0].step_type for r in rows]),
            observation=stack([r[0].observation for r in rows]),
            action=stack([r[1] for r in rows]),
            policy_info=tf.nest.map_structure(lambda *xs: stack(xs), *[r[2] for r in rows]),
            next_step_type=stack([r[3].step_type for r in rows]),
            reward=stack([r[3].reward for r in rows]).astype(np.float32),
            discount=stack([r[3].discount for r in rows]).astype(np.float32),
        )
        return tf.nest.map_structure(tf.convert_to_tensor, traj), returns, lengths
