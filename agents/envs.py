"""Gymnasium environments behind tf-agents' PyEnvironment interface.

tf-agents 0.19 predates gymnasium's (terminated, truncated) API, so the adapter
here maps it: terminated → ``ts.termination`` (discount 0), truncated →
``ts.truncation`` (discount 1). Seeds are passed to ``reset`` so that every
episode of a run is reproducible. Adding an environment is one registry entry
(plus its flagfile): training, the sweep and the report all read the gym id, the
short name and the flagfile from that entry, so they cannot disagree.

Driving tasks come from highway-env (the ``driving`` extra), imported only when
one is asked for. Their Kinematics observation (5 vehicles × 5 features) is
flattened to 25 numbers, because the actor is an MLP and the exported int8
model takes one vector; their episodes are also scored on collisions and speed
(``agents.evaluation``).
"""
from __future__ import annotations

from agents.errors import UsageError
from dsp_tf import extras

import importlib
import os
import warnings
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import gymnasium as gym
import numpy as np
from tf_agents.environments import batched_py_environment, py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts


@dataclass(frozen=True)
class EnvEntry:
    gym_id: str
    #: Short name: the sweep's --envs, the flagfile configs/<slug>.cfg, figure names ending in _<slug>.png.
    slug: str
    kwargs: tuple = ()
    extra: str = ""  # the setup.py extra providing the task (dsp_tf.extras says whether it is installed); importing its modules registers it
    driving: bool = False  # episodes report collisions and speed from info["crashed"] / info["speed"]


#: Name on the command line (and in config.json) → its entry. LunarLander-v2 and the
#: MuJoCo v3 tasks of the paper no longer exist; these are their maintained successors.
ENVIRONMENTS: Dict[str, EnvEntry] = {e.gym_id: e for e in (
    EnvEntry("CartPole-v1", "cartpole"),
    EnvEntry("LunarLander-v3", "lunarlander"),
    EnvEntry("Hopper-v4", "hopper"),
    EnvEntry("Walker2d-v4", "walker2d"),
    EnvEntry("highway-fast-v0", "highway", extra="driving", driving=True),
    EnvEntry("merge-v0", "merge", extra="driving", driving=True),
)}


def env_slug(name: str) -> str:
    """The short name of gym id ``name``. A name no longer registered keeps a slug (its lower-case head),
    so that archived runs of a retired environment still get their figures and report."""
    entry = ENVIRONMENTS.get(name)
    return entry.slug if entry else name.split("-")[0].lower()


def _entry(name: str) -> EnvEntry:
    if name not in ENVIRONMENTS:
        raise UsageError(f"unknown environment '{name}' (choose from {', '.join(ENVIRONMENTS)})")
    return ENVIRONMENTS[name]


def check_env_name(name: str) -> None:
    """Refuses an unknown name, or one whose extra is not installed, before any file is made."""
    _import_provider(_entry(name), name)


def is_driving(name: str) -> bool:
    """Whether episodes of ``name`` are also judged on collisions and speed (agents.evaluation)."""
    return _entry(name).driving


def _import_provider(entry: EnvEntry, name: str) -> None:
    if not entry.extra:
        return
    message = extras.missing_extra(entry.extra)
    if message:
        raise UsageError(f"environment '{name}' needs {message}")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame's greeting on import
    for module in extras.EXTRA_MODULES[entry.extra]:
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - installed but broken: say so, not "install it"
            raise UsageError(f"environment '{name}': {module} is installed but does not import "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None


def make_gym(name: str, render_mode: Optional[str] = None) -> gym.Env:
    """The gymnasium env of ``name``, observations flattened; ``render_mode="rgb_array"`` renders off-screen."""
    check_env_name(name)
    entry = ENVIRONMENTS[name]
    if render_mode is not None and os.environ.get("SDL_VIDEODRIVER", "dummy") == "dummy":
        # highway-env switches its rendering off under SDL's "dummy" video driver; pygame-ce's
        # "offscreen" driver renders without a display.
        os.environ["SDL_VIDEODRIVER"] = "offscreen"
    with warnings.catch_warnings():
        # gymnasium suggests v5 for the MuJoCo tasks; v4 is chosen on purpose (the paper's version, and
        # every archived run's). For merge-v0 it names merge-v1, which is another task (connected lanes).
        # Neither notice is one a user should act on.
        warnings.filterwarnings("ignore", message=r".*The environment \S+ is out of date")
        env = gym.make(entry.gym_id, render_mode=render_mode, **dict(entry.kwargs))
    if isinstance(env.observation_space, gym.spaces.Box) and len(env.observation_space.shape) > 1:
        env = gym.wrappers.FlattenObservation(env)
    return env


@dataclass(frozen=True)
class EnvSpaces:
    """What a policy for an environment must take and give: a teacher file is checked against it."""
    obs_dim: int
    discrete: bool
    n_actions: int  # the action count (discrete) or the action vector's size
    action_low: Optional[Tuple[float, ...]]
    action_high: Optional[Tuple[float, ...]]


def env_spaces(name: str) -> EnvSpaces:
    env = make_gym(name)
    try:
        obs_dim = int(np.prod(env.observation_space.shape))
        space = env.action_space
        if isinstance(space, gym.spaces.Discrete):
            return EnvSpaces(obs_dim, True, int(space.n), None, None)
        low = tuple(float(v) for v in np.broadcast_to(space.low, space.shape).ravel())
        high = tuple(float(v) for v in np.broadcast_to(space.high, space.shape).ravel())
        return EnvSpaces(obs_dim, False, int(np.prod(space.shape)), low, high)
    finally:
        env.close()


class GymnasiumEnvironment(py_environment.PyEnvironment):
    """A single gymnasium env as a tf-agents PyEnvironment.

    Continuous actions are clipped to the action bounds before stepping, since
    a Gaussian policy samples outside them; the clipped action is what the env
    sees, the sampled one is what PPO's likelihood ratio uses.
    """

    def __init__(self, name: str, seed: Optional[int] = None):
        super().__init__(handle_auto_reset=True)
        self._env = make_gym(name)
        self._next_seed = seed
        obs_space, act_space = self._env.observation_space, self._env.action_space
        self._observation_spec = array_spec.ArraySpec(obs_space.shape, np.float32, name="observation")
        if isinstance(act_space, gym.spaces.Discrete):
            self._continuous = False
            self._action_spec = array_spec.BoundedArraySpec(
                (), np.int64, minimum=0, maximum=act_space.n - 1, name="action")
        elif isinstance(act_space, gym.spaces.Box):
            self._continuous = True
            self._low, self._high = act_space.low.astype(np.float32), act_space.high.astype(np.float32)
            self._action_spec = array_spec.BoundedArraySpec(
                act_space.shape, np.float32, minimum=self._low, maximum=self._high, name="action")
        else:
            raise UsageError(f"environment '{name}' has an unsupported action space {act_space}")

    def observation_spec(self):
        return self._observation_spec

    def action_spec(self):
        return self._action_spec

    def seed(self, seed: int) -> None:
        """The next reset uses ``seed``; later resets continue its RNG stream."""
        self._next_seed = int(seed)

    def reset_raw(self) -> np.ndarray:
        """The first observation of a new episode (seeded by ``seed`` if one is pending)."""
        obs, _ = self._env.reset(seed=self._next_seed)
        self._next_seed = None
        return np.asarray(obs, np.float32)

    def step_raw(self, action) -> Tuple[np.ndarray, np.float32, bool, bool]:
        """(observation, reward, terminated, truncated) without tf-agents' wrapping:
        the rollout collector calls this once per env step, where wrapping costs
        more than the MuJoCo physics."""
        if self._continuous:
            action = np.clip(action, self._low, self._high)
        else:
            action = int(action)
        obs, reward, terminated, truncated, _ = self._env.step(action)
        return np.asarray(obs, np.float32), np.float32(reward), bool(terminated), bool(truncated)

    def _reset(self):
        return ts.restart(self.reset_raw())

    def _step(self, action):
        obs, reward, terminated, truncated = self.step_raw(np.asarray(action))
        if terminated:
            return ts.termination(obs, reward)
        if truncated:
            return ts.truncation(obs, reward, discount=np.float32(1.0))
        return ts.transition(obs, reward, discount=np.float32(1.0))

    def close(self):
        self._env.close()


def make_batched(name: str, num_envs: int) -> batched_py_environment.BatchedPyEnvironment:
    """``num_envs`` copies stepped in lock-step (one process: the policy is the cost)."""
    return batched_py_environment.BatchedPyEnvironment(
        [GymnasiumEnvironment(name) for _ in range(num_envs)], multithreading=False)


def training_seed(run_seed: int, index: int) -> int:
    """Even seeds for training resets; evaluation uses odd ones, so they never meet."""
    return 2 * ((run_seed * 1_000_003 + index) % 2 ** 30)


def evaluation_seed(run_seed: int, episode: int) -> int:
    return 2 * ((run_seed * 1_000_003 + 500_000 + episode) % 2 ** 30) + 1
