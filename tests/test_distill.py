"""--recipe=distill (issue 43): the supervised loss against NumPy, the states labelled are the student's
own, and a run killed after a checkpoint resumes to the same result."""
import json
import shutil

import numpy as np
import pytest

from clitools import TINY, progress_without_timing, run_module
from agents.distill import supervised_loss
from dsp_tf._keras import tf
from helpers import softmax


def test_the_discrete_loss_is_the_kl_of_the_teachers_softmax_from_the_students():
    rng = np.random.default_rng(0)
    teacher, student = rng.normal(size=(9, 4)) * 3, rng.normal(size=(9, 4))
    p, q = softmax(teacher), softmax(student)
    expected = np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=-1))
    got = supervised_loss(tf.constant(teacher, tf.float32), tf.constant(student, tf.float32), True)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    assert float(supervised_loss(tf.constant(teacher, tf.float32), tf.constant(teacher, tf.float32), True)) == \
        pytest.approx(0.0, abs=1e-6)


def test_the_gaussian_loss_is_the_mean_gap_of_the_pre_squash_means_over_a_fixed_sigma():
    rng = np.random.default_rng(1)
    teacher, student = rng.normal(size=(6, 3)) * 2, rng.normal(size=(6, 3))
    log_std = tf.Variable(np.log([0.3, 0.7, 1.5]).astype(np.float32))
    mean = tf.Variable(student.astype(np.float32))
    with tf.GradientTape() as tape:
        got = supervised_loss(tf.constant(teacher, tf.float32), mean, False, log_std)
    expected = np.mean(np.sum((teacher - student) ** 2 / (2 * np.exp(log_std.numpy()) ** 2), axis=-1))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    d_mean, d_log_std = tape.gradient(got, [mean, log_std])
    np.testing.assert_allclose(d_mean.numpy(), (student - teacher) / np.exp(log_std.numpy()) ** 2 / 6, rtol=1e-4)
    assert d_log_std is None  # σ is fixed: the loss cannot fall by widening the noise


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("teacher") / "ppo"
    result = run_module("dsp_tf.train", *TINY, "--method=ppo", "--num_env_steps=6144", f"--root_dir={root}")
    assert result.returncode == 0, result.stderr[-2000:]
    return root


def _replay_actions(logits_of, observations, seed):
    """The actions the collector's generator gives for these observations when ``logits_of`` acts."""
    rng = np.random.default_rng(seed)
    return np.stack([np.argmax(logits_of(observations[:, t]) + rng.gumbel(size=(observations.shape[0], 2)), -1)
                     for t in range(observations.shape[1])], 1)


def test_after_the_first_iteration_the_states_labelled_are_the_students_own(teacher_run, tmp_path):
    """Iteration 0: the teacher's sampled actions made the states; then the student's (a 16-16 actor from
    its own initialisation, so the two differ). Every visited state, and only those, is in the replay,
    labelled with the teacher's logits."""
    from agents.config import from_dict
    from agents.distill import Distiller
    from agents.envs import training_seed
    from agents.rollout import LAST, RolloutCollector
    from agents.training import build_learner

    config = json.loads((teacher_run / "config.json").read_text())
    cfg = from_dict({**config, "method": "dsp", "teacher": str(teacher_run), "root_dir": str(tmp_path / "s"),
                     "recipe": "distill", "actor_layers": [16, 16], "distill_epochs": 2, "replay_size": 100_000})
    learner = build_learner(cfg)
    distiller = Distiller(learner)
    collector = RolloutCollector(learner.envs, distiller.acting, cfg.rollout_steps)
    collector.reset([training_seed(cfg.seed, i) for i in range(cfg.num_envs)])
    teacher_logits = lambda obs: distiller.teacher_model(obs, training=False).numpy()  # noqa: E731
    student_logits = lambda obs: learner.collect_policy.distribution(obs)[0]["logits"]  # noqa: E731
    added = 0
    for iteration, acting in enumerate(("teacher", "student", "student")):
        step0 = iteration * cfg.steps_per_iteration
        distiller.before_collect(step0)
        rollout, _, _ = collector.collect((cfg.seed, step0 * 2))
        obs, actions = rollout.observation.numpy(), rollout.action.numpy()
        mine = _replay_actions(teacher_logits if acting == "teacher" else student_logits, obs, [cfg.seed, step0 * 2])
        other = _replay_actions(student_logits if acting == "teacher" else teacher_logits, obs, [cfg.seed, step0 * 2])
        np.testing.assert_array_equal(actions, mine, err_msg=f"iteration {iteration}: not the {acting}'s actions")
        assert np.mean(actions != other) > 0.05  # the other policy would have acted otherwise
        distiller.update(rollout, step0)
        decided = rollout.step_type.numpy()[:, :-1] != LAST
        states = obs[:, :-1][decided]
        n = len(states)
        np.testing.assert_array_equal(learner.distill.observations.numpy()[added:added + n], states)
        np.testing.assert_allclose(learner.distill.labels.numpy()[added:added + n], teacher_logits(states), atol=1e-5)
        added += n
        assert int(learner.distill.added.numpy()) == added and n > 0.9 * cfg.steps_per_iteration
    assert int(learner.distill.gradient_steps.numpy()) > 0


def test_a_killed_distill_run_resumes_to_the_same_result(teacher_run, tmp_path):
    """Killed after its checkpoint at step 3072 (its last checkpoint and summary removed, as kill -9
    leaves it), the same command resumes there and ends as the uninterrupted run: the replay, optimizer,
    gradient steps and the confirmed judge's candidates are in the checkpoint."""
    args = [*TINY, f"--teacher={teacher_run}", "--recipe=distill", "--actor_layers=16,16", "--num_env_steps=3584",
            "--prune_begin=512", "--prune_end=1536", "--prune_frequency=512", "--final_sparsity=0.5",
            "--checkpoint_interval=1024", "--validation_interval=512", "--confirm_top=2", "--confirm_episodes=2",
            "--replay_size=1500"]
    straight = tmp_path / "straight"
    result = run_module("dsp_tf.train", *args, f"--root_dir={straight}")
    assert result.returncode == 0, result.stderr[-2000:]
    killed = tmp_path / "killed"
    shutil.copytree(straight, killed, ignore=shutil.ignore_patterns(".lock"))
    for path in killed.glob("checkpoints/ckpt-3584*"):
        path.unlink()
    for name in ("summary.json", "progress.csv", "actor_compact.h5", "actor_dense.h5"):
        (killed / name).unlink(missing_ok=True)
    resumed = run_module("dsp_tf.train", *args, f"--root_dir={killed}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stderr and "at env step 3072" in resumed.stderr
    a = json.loads((straight / "summary.json").read_text())
    b = json.loads((killed / "summary.json").read_text())
    assert a["recipe"] == "distill" and a["gradient_steps"] > 0 and a["teacher_env_steps"] == 6144
    assert a["env_steps"] == 3584 and len(a["selection"]["confirmation"]["candidates"]) == 2
    for key in ("env_steps", "gradient_steps", "return_mean", "eval_returns", "compact_layers", "selection"):
        assert a[key] == b[key], key
    assert progress_without_timing(straight) == progress_without_timing(killed)
