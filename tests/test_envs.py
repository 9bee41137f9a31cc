import os

import numpy as np
import pytest

from agents.envs import GymnasiumEnvironment, evaluation_seed, make_batched, training_seed
from agents.errors import UsageError
from tf_agents.trajectories import time_step as ts


def test_terminated_is_termination_and_truncated_is_truncation():
    env = GymnasiumEnvironment("CartPole-v1", seed=3)
    step = env.reset()
    assert step.step_type == ts.StepType.FIRST
    while not step.is_last():
        step = env.step(np.int64(0))  # always push left: the pole falls, the episode terminates
    assert step.discount == 0.0
    env._env = __import__("gymnasium").wrappers.TimeLimit(env._env.unwrapped, max_episode_steps=5)
    env.seed(4)
    env.reset()
    for _ in range(5):
        step = env.step(np.int64(_ % 2))
    assert step.is_last() and step.discount == 1.0  # cut by the time limit: bootstrappable


def test_seeds_are_honoured_and_train_eval_seeds_never_meet():
    a, b = GymnasiumEnvironment("Hopper-v4", seed=11), GymnasiumEnvironment("Hopper-v4", seed=11)
    np.testing.assert_array_equal(a.reset().observation, b.reset().observation)
    c = GymnasiumEnvironment("Hopper-v4", seed=12)
    assert not np.array_equal(c.reset().observation, a.current_time_step().observation)
    train = {training_seed(s, i) for s in range(5) for i in range(2000)}
    evals = {evaluation_seed(s, i) for s in range(5) for i in range(200)}
    assert not train & evals


def test_batched_env_auto_resets_and_clips_continuous_actions():
    env = make_batched("Hopper-v4", 2)
    for e, s in zip(env.envs, (1, 2)):
        e.seed(s)
    env.reset()
    for _ in range(200):  # huge actions are clipped, episodes end and restart on their own
        step = env.step(np.full((2, 3), 100.0, np.float32))
        assert np.all(np.isfinite(step.observation))
    with pytest.raises(UsageError, match="unknown environment"):
        GymnasiumEnvironment("Pong-v9")


def test_each_environment_has_one_slug_and_its_flagfile_trains_it():
    """The sweep names an environment by its slug, the report by its gym id: configs/<slug>.cfg must
    set the very gym id the registry pairs with that slug, or the two would speak of different tasks."""
    from agents.envs import ENVIRONMENTS, env_slug
    from dsp_cli.flagfiles import env_flagfile
    from dsp_cli import flagfiles

    slugs = [e.slug for e in ENVIRONMENTS.values()]
    assert len(slugs) == len(set(slugs))
    configs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
    shipped = {f[:-4] for f in os.listdir(configs) if f.endswith(".cfg") and not f.startswith("sweep_")
               and "_" not in f[:-4]}
    assert shipped <= set(slugs)
    for gym_id, entry in ENVIRONMENTS.items():
        assert env_slug(gym_id) == entry.slug
        if entry.slug in shipped:
            assert flagfiles.flagfile_value(env_flagfile(entry.slug), "env") == gym_id
    assert env_slug("Retired-v2") == "retired"  # archived runs of an unregistered task keep a slug


def test_a_method_flagfile_wins_over_the_environment_flagfile(tmp_path, monkeypatch):
    from dsp_cli.flagfiles import env_flagfile, shipped_flagfile
    from dsp_cli import flagfiles

    monkeypatch.setattr(flagfiles, "CONFIG_DIRS", (str(tmp_path),))
    (tmp_path / "toy.cfg").write_text("--env=Hopper-v4\n")
    (tmp_path / "toy_ssl.cfg").write_text("--flagfile=toy.cfg\n--method=ssl\n")
    assert shipped_flagfile("toy", "ssl") == str(tmp_path / "toy_ssl.cfg")
    assert shipped_flagfile("toy", "dsp") == env_flagfile("toy") == str(tmp_path / "toy.cfg")
    with pytest.raises(UsageError, match="flagfile 'nope.cfg' not found"):
        shipped_flagfile("nope", "dsp")
