"""A Stable-Baselines3 model as the teacher (issue 26's stretch): read without torch, it computes
what SB3 computed for the same observations (tests/data/sb3/make_fixtures.py recorded SB3's
outputs), a student starts as it, a shrink from it finishes, and bad files are refused."""
import io
import json
import os
import pickle
import shutil
import zipfile

import numpy as np
import pytest

from clitools import PPO_KL_DSP, last_line, run_module
from agents.inference import inference_model
from agents.networks import build_critic
from agents.teacher import load_teacher

DATA = os.path.join(os.path.dirname(__file__), "data", "sb3")
TEACHERS = {"cartpole": "CartPole-v1", "hopper": "Hopper-v4"}


def _expected(name):
    with open(os.path.join(DATA, name, "expected.json")) as f:
        e = json.load(f)
    return {k: np.asarray(v, np.float32) for k, v in e.items()}


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


@pytest.mark.parametrize("name", list(TEACHERS))
def test_an_sb3_teacher_acts_and_values_as_sb3_did(name):
    teacher = load_teacher(os.path.join(DATA, name, "ppo.zip"), TEACHERS[name])
    e = _expected(name)
    out = inference_model(teacher.mlp, teacher.meta)(e["observations"]).numpy()
    if teacher.meta.discrete:  # torch's Categorical keeps normalised logits: compare log-probabilities
        np.testing.assert_allclose(_log_softmax(out), e["logits"], atol=1e-5)
        np.testing.assert_array_equal(out.argmax(-1), e["actions"])
    else:  # SB3's greedy action: the mean clipped to the bounds (a quarter of these are clipped)
        np.testing.assert_allclose(out, e["actions"], atol=1e-5)
        assert 0 < np.mean(np.abs(out) == 1.0) < 1
        np.testing.assert_allclose(teacher.meta.action_log_std, e["log_std"], rtol=1e-6)
        assert teacher.meta.obs_clip == 10.0 and teacher.meta.obs_epsilon == 1e-8  # VecNormalize's
    if teacher.mlp.layers[0].get_config()["activation"] != "tanh":
        assert teacher.critic is None  # this project's critic is tanh: a ReLU value network cannot start it
        return
    # The value network in tf-agents' critic, on the same normalised observations as the actor's.
    import tensorflow as tf
    from tf_agents.specs import tensor_spec
    from agents.inference import ObservationNormalization

    spec = tensor_spec.TensorSpec((e["observations"].shape[1],), tf.float32)
    critic = build_critic(spec, teacher.critic_layers)
    critic.create_variables()
    critic.set_weights(teacher.critic)
    m = teacher.meta
    normalized = ObservationNormalization(m.obs_mean, m.obs_var, m.obs_clip, m.obs_epsilon)(e["observations"])
    values, _ = critic(normalized)
    np.testing.assert_allclose(values.numpy(), e["values"], rtol=1e-4, atol=1e-4)


def test_the_reader_runs_no_code_from_the_file(tmp_path):
    """A pickle that would call os.system is refused as not a state_dict, before anything runs."""
    class Evil:
        def __reduce__(self):
            return os.system, ("touch " + str(tmp_path / "pwned"),)

    bad = tmp_path / "evil.zip"
    shutil.copy(os.path.join(DATA, "cartpole", "ppo.zip"), bad)
    policy = tmp_path / "policy.pth"
    with zipfile.ZipFile(policy, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(Evil()))
    with zipfile.ZipFile(os.path.join(DATA, "cartpole", "ppo.zip")) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.namelist():
            dst.writestr(item, policy.read_bytes() if item == "policy.pth" else src.read(item))
    from agents.errors import UsageError
    with pytest.raises(UsageError, match="cannot read --teacher .* as a Stable-Baselines3 model: UnpicklingError"):
        load_teacher(str(bad), "CartPole-v1")
    assert not (tmp_path / "pwned").exists()


def test_a_vecnormalize_file_runs_no_code_either(tmp_path):
    class Evil:
        def __reduce__(self):
            return eval, ("__import__('os').system('touch " + str(tmp_path / "pwned") + "')",)

    folder = tmp_path / "teacher"
    shutil.copytree(os.path.join(DATA, "hopper"), folder)
    (folder / "vecnormalize.pkl").write_bytes(pickle.dumps(Evil()))
    from agents.errors import UsageError
    with pytest.raises(UsageError, match="VecNormalize statistics.*builtins.eval is not part of a VecNormalize file"):
        load_teacher(str(folder / "ppo.zip"), "Hopper-v4")
    assert not (tmp_path / "pwned").exists()


def test_a_student_starts_as_its_sb3_teacher(tmp_path):
    """Same layers and activation (taken from the teacher), its critic and normalisation: before any
    update the student's actor computes the teacher's logits and its critic the teacher's values."""
    from agents.config import from_dict
    from agents.numpy_policy import observation_stats
    from agents.training import build_learner
    from agents.sb3 import sb3_architecture

    path = os.path.join(DATA, "cartpole", "ppo.zip")
    assert sb3_architecture(path) == {"actor_layers": [64, 64], "critic_layers": [64, 64], "activation": "tanh"}
    cfg = from_dict({**sb3_architecture(path), "env": "CartPole-v1", "method": "dsp", "teacher": path,
                     "root_dir": str(tmp_path / "s")})
    learner = build_learner(cfg)
    e = _expected("cartpole")
    mean, var = observation_stats(learner.agent)
    student_meta = learner.teacher.meta.__class__(env="CartPole-v1", discrete=True, obs_mean=list(mean),
                                                  obs_var=list(var))
    student = inference_model(learner.pruner.model, student_meta)(e["observations"]).numpy()
    np.testing.assert_allclose(_log_softmax(student), e["logits"], atol=1e-4)
    normalized = (e["observations"] - mean) / np.sqrt(var + student_meta.obs_epsilon)
    values, _ = learner.agent._value_net(normalized.astype(np.float32))  # noqa: SLF001
    np.testing.assert_allclose(values.numpy(), e["values"], rtol=1e-3, atol=1e-3)


def test_shrink_an_sb3_teacher(tmp_path):
    out = tmp_path / "shrunk"
    result = run_module("dsp_tf.shrink", *PPO_KL_DSP, f"--teacher={os.path.join(DATA, 'cartpole', 'ppo.zip')}",
                        "--env=CartPole-v1", "--flagfile=cartpole.cfg", "--final_sparsity=0.8", "--num_env_steps=2048",
                        "--rollout_steps=128", "--num_envs=4", "--prune_begin=512", "--prune_end=1536",
                        "--prune_frequency=512", "--validation_interval=512", "--eval_episodes=2",
                        "--curve_interval=0", f"--root_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["teacher"] == "ppo.zip" and summary["teacher_layers"] == [64, 64]
    assert summary["teacher_env_steps"] is None  # the fixture was saved before any training step
    assert summary["teacher_return"] > 0 and summary["dense"]["neurons"] == 128
    assert result.stderr.count("Stable-Baselines3 MlpPolicy 64-64, no VecNormalize file beside it") == 1


def test_keep_searches_the_ratios_though_the_flagfile_sets_one_ratio(tmp_path):
    """A file teacher needs a flagfile, and every shipped one sets --final_sparsity: --keep given, the
    ratios are searched (before, the flagfile's one ratio was trained and --keep silently ignored)."""
    out = tmp_path / "ladder"
    result = run_module("dsp_tf.shrink", *PPO_KL_DSP, f"--teacher={os.path.join(DATA, 'cartpole', 'ppo.zip')}",
                        "--env=CartPole-v1", "--flagfile=cartpole.cfg", "--keep=0.01", "--ratios=0.5,0.8",
                        "--num_env_steps=1024", "--rollout_steps=128", "--num_envs=4", "--prune_begin=256",
                        "--prune_end=768", "--prune_frequency=256", "--validation_interval=256", "--eval_episodes=1",
                        "--curve_interval=0", "--actor_layers=16,16", f"--root_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "shrink.json").read_text())
    # the search's record, its largest ratio tried first (which kept --keep=0.01, so the search is done)
    assert [r["ratio"] for r in record["ladder"]] == [0.8] and record["chosen_ratio"] == 0.8
    assert json.loads((out / "summary.json").read_text())["final_sparsity"] == 0.8
    assert "not applied" not in result.stderr  # the thread pools were set before the teacher started TensorFlow


@pytest.fixture()
def bad_sb3(tmp_path):
    not_sb3 = tmp_path / "not_sb3.zip"
    with zipfile.ZipFile(not_sb3, "w") as z:
        z.writestr("hello.txt", "hi")
    both = tmp_path / "both" / "ppo.zip"
    shutil.copytree(os.path.join(DATA, "hopper"), both.parent)
    shutil.copy(both.parent / "vecnormalize.pkl", both.parent / "vec_normalize.pkl")
    return {"not sb3": (str(not_sb3), "CartPole-v1", "as a Stable-Baselines3 model: KeyError"),
            "other env": (os.path.join(DATA, "cartpole", "ppo.zip"), "LunarLander-v3",
                          "has 4 observation features and 2 discrete actions: not LunarLander-v3's 8 and 4"),
            "both normalizers": (str(both), "Hopper-v4", "has both vecnormalize.pkl and vec_normalize.pkl beside it")}


@pytest.mark.parametrize("case", ["not sb3", "other env", "both normalizers"])
def test_bad_sb3_teachers_are_one_line_exit_2_and_leave_nothing(bad_sb3, tmp_path, case):
    path, env, message = bad_sb3[case]
    out = tmp_path / "student"
    result = run_module("dsp_tf.shrink", f"--teacher={path}", f"--root_dir={out}", f"--env={env}",
                        "--final_sparsity=0.9")
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in last_line(result.stderr) and "Traceback" not in result.stderr
    assert not out.exists()


def _edited_cartpole(path, pickle_edit=None, members=None):
    """The CartPole fixture with its policy.pth edited (issue 42): ``pickle_edit`` = (old, new) bytes of
    data.pkl, each found exactly once; ``members`` replaces whole members of policy.pth."""
    with zipfile.ZipFile(os.path.join(DATA, "cartpole", "ppo.zip")) as src:
        outer = {n: src.read(n) for n in src.namelist()}
    with zipfile.ZipFile(io.BytesIO(outer["policy.pth"])) as src:
        inner = {n: src.read(n) for n in src.namelist()}
    if pickle_edit:
        old, new = pickle_edit
        assert inner["archive/data.pkl"].count(old) == 1
        inner["archive/data.pkl"] = inner["archive/data.pkl"].replace(old, new)
    inner.update(members or {})
    policy = io.BytesIO()
    with zipfile.ZipFile(policy, "w") as z:
        for name, blob in inner.items():
            z.writestr(name, blob)
    outer["policy.pth"] = policy.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for name, blob in outer.items():
            z.writestr(name, blob)
    return str(path)


#: The first tensor's bytes in the fixture's data.pkl: its persistent id ('storage', torch.FloatStorage,
#: '0', 'cpu', 256), then offset 0, sizes (64, 4), strides (4, 1).
_STORAGE_TAG, _FLOAT, _NUMEL = b"X\x07\x00\x00\x00storageq\x04", b"ctorch\nFloatStorage\n", b"M\x00\x01tq\x08"
_STRIDES = b"K\x04K\x01\x86q\n"
#: Each a cartpole zip that today's reader trusted, and the one line it is refused with now.
UNTRUSTED = {
    "strides beyond the storage": ({"pickle_edit": (_STRIDES, b"J\x00\x00\x10\x00K\x01\x86q\n")},
                                   "policy.pth/archive/data/0 (tensor 'mlp_extractor.policy_net.0.weight'): sizes "
                                   "(64, 4) and strides (1048576, 1) from offset 0 reach element 66060291 of a "
                                   "storage of 256"),
    "storage cut short": ({"members": {"archive/data/2": b"\0" * 8192}},
                          "policy.pth/archive/data/2 holds 8192 bytes, not the 4096 float32 values (16384 bytes) its "
                          "persistent id claims"),
    "persistent id of another kind": ({"pickle_edit": (_STORAGE_TAG, b"X\x07\x00\x00\x00tensorsq\x04")},
                                      "policy.pth/archive/data.pkl: a persistent id is not ('storage', "
                                      "floating-point storage type, key, location, element count)"),
    "persistent id's count": ({"pickle_edit": (_NUMEL, b"M\x00\x02tq\x08")},
                              "policy.pth/archive/data/0 holds 1024 bytes, not the 512 float32 values (2048 bytes)"),
    "integer storage": ({"pickle_edit": (_FLOAT, b"ctorch\nIntStorage\n")},
                        "policy.pth/archive/data.pkl: torch.IntStorage holds no policy weights, which are floating "
                        "point (FloatStorage, DoubleStorage, HalfStorage)"),
}


@pytest.mark.parametrize("case", list(UNTRUSTED))
def test_an_sb3_file_is_checked_before_it_is_read(tmp_path, case):
    """Issue 42: sizes, strides, persistent ids and storage types are the file's claims. Strides beyond the
    storage crashed the process (exit 139), a short storage was read past its end into the weights, and
    the rest were taken as they came; now each is one line, exit 2, and no run directory."""
    edit, message = UNTRUSTED[case]
    path = _edited_cartpole(tmp_path / "ppo.zip", **edit)
    out = tmp_path / "student"
    result = run_module("dsp_tf.shrink", *PPO_KL_DSP, f"--teacher={path}", "--env=CartPole-v1",
                        "--flagfile=cartpole.cfg", "--final_sparsity=0.8", "--num_env_steps=1024", "--rollout_steps=128", "--num_envs=4",
                        "--prune_begin=256", "--prune_end=768", "--prune_frequency=256", "--eval_episodes=1",
                        f"--root_dir={out}")
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    line = last_line(result.stderr)
    assert f"cannot read --teacher '{path}' as a Stable-Baselines3 model: {message}" in line, line
    assert "Traceback" not in result.stderr and not out.exists()
