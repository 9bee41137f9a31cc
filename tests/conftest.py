import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def learned_cartpole(tmp_path_factory):
    """A short DSP run on CartPole that learns (about a minute): shared by the learning and export tests."""
    from agents.config import RunConfig
    from agents.training import train

    root = tmp_path_factory.mktemp("learned") / "cartpole_dsp"
    cfg = RunConfig(env="CartPole-v1", method="dsp", seed=0, num_env_steps=30720, root_dir=str(root),
                    num_envs=4, rollout_steps=256, minibatch_size=256, learning_rate=1e-3,
                    reg_strength=1e-4, final_sparsity=0.93, prune_begin=4096, prune_end=20480,
                    prune_frequency=2048, eval_episodes=5, checkpoint_interval=10240)
    return root, train(cfg)
