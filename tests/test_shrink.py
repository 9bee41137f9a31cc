"""Shrinking a trained policy (issue 26): the distillation term, a student that starts as its
teacher, the ladder's stopping rule, a tiny shrink end to end, and bad teachers refused."""
import json

import numpy as np
import pytest

from clitools import PPO_KL_DSP, TINY, last_line, run_module

PINNED = {"method": "dsp", "recipe": "ppo_kl"}  # PPO_KL_DSP as student_config's given settings
from agents.inference import ActorMeta
from agents.networks import squash_to_bounds
from agents.teacher import policy_kl
from dsp_cli.shrink import Ladder, climb, search_ladder
from dsp_tf._keras import keras, tf
import tensorflow_probability as tfp
from helpers import softmax


def test_categorical_distillation_is_the_kl_of_the_softmaxes():
    rng = np.random.default_rng(0)
    teacher, student = rng.normal(size=(7, 3)) * 2, rng.normal(size=(7, 3))
    meta = ActorMeta(env="CartPole-v1", discrete=True, obs_mean=[0.0], obs_var=[1.0])
    got = policy_kl(tf.constant(teacher, tf.float32),
                    tfp.distributions.Categorical(logits=tf.constant(student, tf.float32)), meta)
    p, q = softmax(teacher), softmax(student)
    expected = np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=-1))
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_gaussian_distillation_weighs_the_mean_gap_by_the_students_variance():
    rng = np.random.default_rng(1)
    low, high = np.array([-1.0, -2.0]), np.array([1.0, 0.5])
    teacher_out, student_loc = rng.normal(size=(5, 2)), rng.uniform(-0.9, 0.4, size=(5, 2))
    sigma = np.array([0.3, 0.7])
    meta = ActorMeta(env="Hopper-v4", discrete=False, obs_mean=[0.0], obs_var=[1.0],
                     action_low=low.tolist(), action_high=high.tolist())
    student = tfp.distributions.MultivariateNormalDiag(loc=tf.constant(student_loc, tf.float32),
                                                       scale_diag=tf.constant(np.tile(sigma, (5, 1)), tf.float32))
    got = policy_kl(tf.constant(teacher_out, tf.float32), student, meta)
    mu_t = (high + low) / 2 + (high - low) / 2 * np.tanh(teacher_out)
    expected = np.mean(np.sum((mu_t - student_loc) ** 2 / (2 * sigma ** 2), axis=-1))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    assert np.allclose(squash_to_bounds(tf.constant(teacher_out, tf.float32), low, high).numpy(), mu_t, atol=1e-6)


def test_gaussian_distillation_moves_the_mean_not_the_noise():
    """Through σ_S the term only falls as the noise grows: a live scale would let distillation
    inflate the student's action noise (it did, on Walker2d)."""
    meta = ActorMeta(env="Hopper-v4", discrete=False, obs_mean=[0.0], obs_var=[1.0],
                     action_low=[-1.0, -1.0], action_high=[1.0, 1.0])
    loc = tf.Variable(np.array([[0.5, -0.2], [0.1, 0.3]], np.float32))
    log_std = tf.Variable(np.log(np.array([0.3, 0.7], np.float32)))
    teacher_out = tf.constant([[1.0, 0.4], [-0.6, 0.9]], tf.float32)
    with tf.GradientTape() as tape:
        student = tfp.distributions.MultivariateNormalDiag(loc=loc, scale_diag=tf.exp(log_std) * tf.ones_like(loc))
        value = policy_kl(teacher_out, student, meta)
    d_loc, d_log_std = tape.gradient(value, [loc, log_std])
    mu_t = np.tanh(teacher_out.numpy())
    expected = (loc.numpy() - mu_t) / np.exp(log_std.numpy()) ** 2 / 2  # d/dμ_S of the batch mean
    assert np.allclose(d_loc.numpy(), expected, rtol=1e-4)
    assert d_log_std is None or np.allclose(d_log_std.numpy(), 0.0)


def test_the_ladder_stops_at_the_first_ratio_below_keep():
    student = {0.9: 500.0, 0.93: 490.0, 0.95: 470.0, 0.97: 480.0}
    trained = []

    def validated(ratio):
        trained.append(ratio)
        return student[ratio], 500.0

    chosen, rows = climb([0.97, 0.9, 0.95, 0.93], validated, keep=0.95)
    assert chosen == 0.93
    assert trained == [0.9, 0.93, 0.95]  # 0.97 is never trained: 0.95 already lost the return
    assert [r[3] for r in rows] == [True, True, False]
    none, _ = climb([0.9], lambda r: (100.0, 500.0), keep=0.95)
    assert none is None


def test_bisection_trains_the_largest_first_then_halves_the_rest():
    ratios = [0.5, 0.6, 0.7, 0.8, 0.9]
    for first_miss in range(len(ratios) + 1):  # every place the return can start to fall
        trained = []

        def judged(ratio):
            trained.append(ratio)
            return (500.0 if ratios.index(ratio) < first_miss else 100.0), 500.0

        chosen, rows = search_ladder(ratios, judged, keep=0.95)
        assert chosen == (ratios[first_miss - 1] if first_miss else None), first_miss
        assert trained[0] == 0.9  # the smallest network first: if it keeps, the search is one student
        assert len(trained) == len(set(trained)) <= 1 + 3  # then ceil(log2(4 + 1)) rungs at most
        assert [r[3] for r in rows] == [ratios.index(r) < first_miss for r in trained]
    assert search_ladder(ratios, lambda r: (500.0, 500.0), keep=0.95)[1] == [(0.9, 500.0, 500.0, True)]


def test_keep_on_the_worst_decile_stops_where_the_mean_would_not():
    """A student that averages 96% of its teacher by failing twice in 20 episodes keeps on the mean and
    not on the worst decile: --keep_on=cvar10 chooses the larger network that does not fail."""
    from dsp_cli.shrink import judged_score, keeps

    teacher = [500.0] * 20
    student = {0.5: [500.0] * 20, 0.7: [500.0] * 18 + [300.0] * 2, 0.9: [500.0] * 15 + [100.0] * 5}
    assert np.mean(student[0.7]) == 480.0 and np.sort(student[0.7])[:2].mean() == 300.0
    assert keeps(student[0.7], teacher, 0.95) and not keeps(student[0.7], teacher, 0.95, "cvar10")
    assert judged_score(student[0.9], "cvar10") == 100.0 and judged_score(student[0.9]) == 400.0
    for on, chosen in (("mean", 0.7), ("cvar10", 0.5)):
        trained = []

        def judged(ratio):
            trained.append(ratio)
            return student[ratio], teacher

        got, rows = search_ladder([0.5, 0.7, 0.9], judged, keep=0.95, on=on)
        assert got == chosen, on
        assert trained == [0.9, 0.5, 0.7]  # the largest, then bisection: the same rungs, another answer
        assert [r[3] for r in rows] == [False, True, on == "mean"]
        assert rows[-1][1:3] == ((480.0, 500.0) if on == "mean" else (300.0, 500.0))
    with pytest.raises(Exception, match="--keep_on must be one of mean, cvar10"):
        judged_score(teacher, "median")


def test_the_ladders_eta_counts_the_rungs_it_can_still_train():
    ladder = Ladder([0.5, 0.6, 0.7, 0.8, 0.9], "bisect")
    assert ladder.left_at_most() == 4 and ladder.next() == 0.9
    ladder.record(0.9, False)
    assert ladder.left_at_most() == 3 and ladder.next() == 0.6  # 4 untried: 0.6, then 0.7 or 0.5, then 0.8
    ladder.record(0.6, True)
    assert ladder.left_at_most() == 2 and ladder.next() == 0.7
    climbing = Ladder([0.5, 0.6, 0.7], "climb")
    assert climbing.left_at_most() == 3 and climbing.next() == 0.5


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("teacher") / "ppo"
    result = run_module("dsp_tf.train", *TINY, "--method=ppo", "--num_env_steps=6144", f"--root_dir={root}")
    assert result.returncode == 0, result.stderr[-2000:]
    return root


def test_a_student_starts_as_its_teacher(teacher_run, tmp_path):
    """Before any pruning or update, the student's masked actor (with its normaliser) computes the
    teacher's saved actor's outputs."""
    from agents.config import RunConfig, from_dict
    from agents.inference import inference_model, load_actor
    from agents.numpy_policy import observation_stats
    from agents.training import build_learner

    config = json.loads((teacher_run / "config.json").read_text())
    cfg = from_dict({**config, "method": "dsp", "teacher": str(teacher_run), "root_dir": str(tmp_path / "s")})
    learner = build_learner(cfg)
    mlp, meta = load_actor(str(teacher_run), "dense")
    obs = np.random.default_rng(2).normal(size=(64, 4)).astype(np.float32) * [1.0, 1.0, 0.1, 1.0]
    mean, var = observation_stats(learner.agent)
    np.testing.assert_allclose(mean, meta.obs_mean, rtol=1e-6)
    np.testing.assert_allclose(var, meta.obs_var, rtol=1e-5)
    student = inference_model(learner.pruner.model, meta)(obs).numpy()
    teacher = inference_model(mlp, meta)(obs).numpy()
    np.testing.assert_allclose(student, teacher, atol=1e-6)
    assert isinstance(cfg, RunConfig)


def test_shrink_a_tiny_teacher(teacher_run, tmp_path):
    out = tmp_path / "shrunk"
    # Climbing, each rung its whole budget: every rung of the ladder is trained (the default search is below).
    climbing = ("--search=climb", "--stop_share=0")
    result = run_module("dsp_tf.shrink", *PPO_KL_DSP, f"--teacher={teacher_run}", f"--root_dir={out}",
                        "--ratios=0.5,0.8",
                        "--keep=0.01", "--validation_interval=512", "--eval_episodes=2", *climbing)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    record = json.loads((out / "shrink.json").read_text())
    assert record["chosen_ratio"] == 0.8 and [r["ratio"] for r in record["ladder"]] == [0.5, 0.8]
    assert summary["teacher"] == teacher_run.name and summary["final_sparsity"] == 0.8
    teacher_summary = json.loads((teacher_run / "summary.json").read_text())
    assert summary["teacher_return"] == teacher_summary["return_mean"]  # the same test episodes, the same actor
    assert summary["teacher_env_steps"] == teacher_summary["env_steps"] == 6144
    assert summary["env_steps"] == 3072  # half the teacher's budget by default
    # Gradient steps beside env steps: one per PPO minibatch, student and teacher alike.
    config = json.loads((out / "config.json").read_text())
    per_rollout = config["num_epochs"] * (config["num_envs"] * config["rollout_steps"] // config["minibatch_size"])
    assert summary["gradient_steps"] == 6 * per_rollout and teacher_summary["gradient_steps"] == 12 * per_rollout
    assert summary["compact"]["neurons"] < summary["dense"]["neurons"]
    assert "shrunk: ratio 0.8," in result.stderr
    # It talks: every rung's progress from its first rollout, prefixed, and an aligned table with the test return.
    assert "rung 1/2 (ratio 0.5) | step 512/3072 (17%)" in result.stderr
    assert "rung 2/2 (ratio 0.8) | judged " in result.stderr and "search ETA about" in result.stderr
    assert "ratio  neurons  weights  env steps  judged return  of teacher  test return" in result.stderr
    # The ladder judged each rung on its own episodes: the chosen actor and the teacher, replayed on them here.
    from agents.evaluation import judge_seeds, mean_return, run_episodes
    from agents.inference import inference_model, load_actor
    from dsp_tf.numpy_forward import keras_step
    seeds = judge_seeds(summary["seed"], 20)
    mlp, meta = load_actor(str(out), "compact")
    teacher_mlp, teacher_meta = load_actor(str(teacher_run), "dense")
    assert record["judge_episodes"] == 20
    assert record["ladder"][-1]["judged_return"] == pytest.approx(
        mean_return(inference_model(mlp, meta), "CartPole-v1", seeds, True))
    assert record["teacher_judged_return"] == pytest.approx(
        mean_return(inference_model(teacher_mlp, teacher_meta), "CartPole-v1", seeds, True))
    assert record["ladder"][-1]["share_of_teacher"] == pytest.approx(
        record["ladder"][-1]["judged_return"] / record["teacher_judged_return"], abs=1e-4)
    # ... and their tails: the worst decile of the same episodes (20: the worst two), and the student's failures
    from agents.tails import cvar10
    judged = [e.ret for e in run_episodes(keras_step(inference_model(mlp, meta)), "CartPole-v1", seeds, True)]
    assert record["ladder"][-1]["judged_returns"] == pytest.approx(judged)
    assert record["ladder"][-1]["judged_cvar10"] == pytest.approx(np.sort(judged)[:2].mean(), abs=1e-3)
    assert record["teacher_judged_cvar10"] == pytest.approx(cvar10(record["teacher_judged_returns"]), abs=1e-3)
    assert record["keep_on"] == "mean" and "judged worst decile" in result.stderr
    assert summary["return_cvar10"] == pytest.approx(cvar10(summary["eval_returns"]), abs=1e-3)
    assert summary["teacher_return_cvar10"] == pytest.approx(cvar10(teacher_summary["eval_returns"]), abs=1e-3)
    assert summary["failure_rate"] == pytest.approx(np.mean(
        np.array(summary["eval_returns"]) < 0.5 * np.median(teacher_summary["eval_returns"])), abs=1e-4)
    assert "FLOPs, λ 0.0001, per_layer ranking, from teacher ppo (distillation 1)" in result.stderr
    from study.archive import archive_runs
    archive = tmp_path.parent / f"{tmp_path.name}_archive"
    archive_runs(str(tmp_path), str(archive))  # the ladder's record is kept with the run
    assert json.loads((archive / "shrunk" / "shrink.json").read_text()) == record
    assert (archive / "shrunk" / "ladder" / "p0.5" / "summary.json").exists()
    # The same search again: answered in one line, nothing rewritten; another search into its root: refused.
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    again = run_module("dsp_tf.shrink", *PPO_KL_DSP, f"--teacher={teacher_run}", f"--root_dir={out}",
                       "--ratios=0.5,0.8",
                       "--keep=0.01", "--validation_interval=512", *climbing)
    assert again.returncode == 0 and "already done: ratio 0.8 " in last_line(again.stderr), again.stderr[-2000:]
    other = run_module("dsp_tf.shrink", *PPO_KL_DSP, f"--teacher={teacher_run}", f"--root_dir={out}",
                       "--ratios=0.5,0.9",
                       "--keep=0.01", "--validation_interval=512", *climbing)
    assert other.returncode == 2 and "holds a size search made with other flags (ratios)" in last_line(other.stderr)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file() and p.name != ".lock"} == before
    evaluated = run_module("dsp_tf.evaluate", f"--root_dir={out}")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert json.loads((out / "evaluation.json").read_text())["returns"] == summary["eval_returns"]


def test_the_default_search_trains_the_smallest_network_first_and_stops_it_once_it_keeps(teacher_run, tmp_path):
    out = tmp_path / "shrunk"
    result = run_module("dsp_tf.shrink", *PPO_KL_DSP, f"--teacher={teacher_run}", f"--root_dir={out}",
                        "--ratios=0.5,0.8",
                        "--keep=0.01", "--validation_interval=512")
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "shrink.json").read_text())
    assert record["chosen_ratio"] == 0.8 and [r["ratio"] for r in record["ladder"]] == [0.8]
    summary = json.loads((out / "summary.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["stop_share"] == 0.01 and config["num_env_steps"] == 3072
    # it stopped at the first validation once the final mask was on: that validation's actor is the one kept
    assert summary["env_steps"] < 3072 and summary["selection"]["chosen_step"] == summary["env_steps"]
    assert "rung 1/2 (ratio 0.8) | " in result.stderr and "the run stops at step" in result.stderr
    assert not (out / "ladder" / "p0.5").exists()
    assert record["search"] == "bisect" and record["stop_share"] == 0.01
    # Rungs trained to their whole budget, or climbed, are another search: refused, not "already done".
    for other in ("--stop_share=0", "--search=climb"):
        again = run_module("dsp_tf.shrink", *PPO_KL_DSP, f"--teacher={teacher_run}", f"--root_dir={out}",
                           "--ratios=0.5,0.8",
                           "--keep=0.01", "--validation_interval=512", other)
        assert again.returncode == 2 and "made with other flags" in last_line(again.stderr), other


def test_a_distilled_student_from_its_own_initialisation_keeps_its_teachers_return(teacher_run, tmp_path):
    """--recipe=distill: a 16-16 student (not the teacher's 32-32 shape, so it starts from its own
    initialisation, at CartPole's chance return of ~20) pruned to 8-8 on the schedule, judged on the
    judge's 20 episodes. Untrained or trained on the wrong targets it would score near chance."""
    out = tmp_path / "distilled"
    result = run_module("dsp_tf.shrink", "--method=dsp", f"--teacher={teacher_run}", f"--root_dir={out}",
                        "--ratios=0.5", "--keep=0.01", "--validation_interval=512", "--stop_share=0", "--recipe=distill",
                        "--actor_layers=16,16", "--budget_fraction=0.5", "--num_envs=4")  # the tiny teacher's grid
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "shrink.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    rung = record["ladder"][0]
    assert summary["recipe"] == "distill" and summary["compact_layers"][:-1] == [8, 8]
    assert summary["env_steps"] == 3072 and summary["teacher_env_steps"] == 6144
    assert summary["gradient_steps"] >= 6 * 10  # 6 iterations × 10 epochs, at least one batch each
    assert record["teacher_judged_return"] > 100  # a teacher worth distilling: chance is ~20
    assert rung["judged_return"] >= 0.8 * record["teacher_judged_return"], rung
    assert "--recipe=distill: 10 epochs per iteration" in result.stderr


def test_a_student_trains_with_its_methods_shipped_settings_not_the_dense_teachers(teacher_run, tmp_path):
    """The sweep's dense teachers have λ = 0 in config.json; a DSP student that inherited it trained
    without DSP's penalty (the first evidence of issue 26 did). The student's method brings its own λ,
    as the sweep trains that method on the environment, and students rank per layer; what the user gives
    still wins."""
    import shutil
    from dsp_cli.shipped import shipped_reg_strength
    from dsp_cli.shrink import STUDENT_RANKING, student_config

    teacher = tmp_path / "sweep_teacher"
    shutil.copytree(teacher_run, teacher)
    config = json.loads((teacher / "config.json").read_text())
    (teacher / "config.json").write_text(json.dumps({**config, "reg_strength": 0.0, "ranking": "per_layer"}))
    dsp = student_config(str(teacher), {"method": "dsp"}, 0.5)
    assert dsp.method == "dsp"
    assert dsp.reg_strength == shipped_reg_strength("cartpole", "dsp") == 1e-4  # configs/cartpole.cfg
    assert dsp.ranking == STUDENT_RANKING == "per_layer"  # not the flagfile's global: chosen for students
    assert student_config(str(teacher), {"method": "dsp", "ranking": "global"}, 0.5).ranking == "global"
    ssl = student_config(str(teacher), {"method": "ssl"}, 0.5)
    assert ssl.reg_strength == shipped_reg_strength("cartpole", "ssl") == 1e-3  # configs/cartpole_ssl.cfg
    assert student_config(str(teacher), {"reg_strength": 3e-5}, 0.5).reg_strength == 3e-5
    assert student_config(str(teacher), {"method": "dropout"}, 0.5).reg_strength == 0.0  # no penalty: untouched


def test_a_small_student_is_sized_by_its_ratio_unless_its_layers_are_given(teacher_run):
    """A small student at the teacher's own size shrank nothing: each layer keeps 1 - ratio of the teacher's
    neurons (128, 128 at 0.93: 9, 9, the issue-26 baseline), unless --actor_layers says otherwise."""
    from dsp_cli.shrink import small_layers, student_config

    assert small_layers([128, 128], 0.93) == [9, 9] and small_layers([64, 32], 0.99) == [1, 1]
    assert small_layers([128, 128], 0.99, min_neurons=4) == [4, 4]  # the teacher's floor, as a pruned student
    teacher = json.loads((teacher_run / "config.json").read_text())["actor_layers"]
    small = student_config(str(teacher_run), {"method": "small", "final_sparsity": 0.5}, 0.5)
    assert small.actor_layers == [round(n / 2) for n in teacher]
    assert student_config(str(teacher_run), {"method": "small", "actor_layers": [3]}, 0.5).actor_layers == [3]
    assert student_config(str(teacher_run), {"method": "dsp", "final_sparsity": 0.5}, 0.5).actor_layers == teacher


def test_a_teacher_is_played_once_per_set_of_episodes(teacher_run, monkeypatch):
    """Every rung of a search compares its student with the same teacher on the same episodes: the teacher is
    played once per process and set of episodes, with the numbers playing it gives; a changed actor is played
    again."""
    from agents import teacher as teachers
    from agents.inference import inference_model

    played, real = [], teachers.episode_returns
    monkeypatch.setattr(teachers, "episode_returns", lambda *a: played.append(a[2]) or real(*a))
    monkeypatch.setattr(teachers, "_PLAYED", {})
    one, other = (teachers.load_teacher(str(teacher_run), "CartPole-v1") for _ in range(2))  # two reads, one actor
    returns = one.returns("CartPole-v1", [1, 3])
    assert other.returns("CartPole-v1", [1, 3]) == returns and played == [[1, 3]]
    assert returns == real(inference_model(one.mlp, one.meta), "CartPole-v1", [1, 3], one.meta.discrete)
    one.returns("CartPole-v1", [5])
    assert played == [[1, 3], [5]]
    weights = other.mlp.get_weights()
    other.mlp.set_weights([w * 0.5 for w in weights])
    other.returns("CartPole-v1", [1, 3])
    assert len(played) == 3


def test_a_small_student_keeps_its_teachers_neuron_floor(teacher_run, tmp_path):
    """A teacher whose config.json floors its layers (Hopper's flagfile ships --min_neurons_per_layer=4) floors
    its small students alike: a search's top rungs are the floor's network, trained once, not a 1-1 network
    refused by --min_neurons_per_layer (the default --keep search on Hopper was refused before)."""
    import shutil

    from dsp_cli.shrink import _distinct_sizes, student_config

    teacher = tmp_path / "floored"
    shutil.copytree(teacher_run, teacher)
    config = json.loads((teacher / "config.json").read_text())
    (teacher / "config.json").write_text(json.dumps({**config, "min_neurons_per_layer": 4}))
    rungs = [student_config(str(teacher), {"method": "small", "final_sparsity": r, "root_dir": str(tmp_path / "s"),
                                           "teacher": str(teacher)}) for r in (0.5, 0.9, 0.99, 0.999)]
    for rung in rungs:
        rung.validate()
    assert config["actor_layers"] == [32, 32]  # tests/clitools.py's TINY
    assert [r.actor_layers for r in rungs] == [[16, 16], [4, 4], [4, 4], [4, 4]]  # 0.9 of 32 is 3: floored
    assert _distinct_sizes(rungs) == [0.5, 0.9]


def test_a_recipe_brings_its_own_budget_and_environments_unless_given(teacher_run):
    """RECIPE_DEFAULTS: distill students take a quarter of the teacher's steps on ten environments (chosen on
    tuning teachers), ppo_kl students half on the teacher's own; what the user gives wins."""
    from dsp_cli.shrink import RECIPE_DEFAULTS, STUDENT_METHOD, STUDENT_RECIPE, student_config

    teacher = json.loads((teacher_run / "config.json").read_text())
    default = student_config(str(teacher_run), {})
    assert default.recipe == STUDENT_RECIPE and default.method == STUDENT_METHOD
    ppo_kl = student_config(str(teacher_run), {"recipe": "ppo_kl"})
    assert ppo_kl.num_envs == teacher["num_envs"] and ppo_kl.num_env_steps == 3072  # half of 6,144
    distill = student_config(str(teacher_run), {"recipe": "distill"})
    assert distill.num_envs == RECIPE_DEFAULTS["distill"]["num_envs"] == 10
    assert distill.num_env_steps == 10 * teacher["rollout_steps"]  # a quarter of 6,144 on the 1,280-step grid
    mine = student_config(str(teacher_run), {"recipe": "distill", "num_envs": 2}, budget_fraction=0.5)
    assert mine.num_envs == 2 and mine.num_env_steps == 3072


def test_a_student_is_tested_on_at_least_as_many_episodes_as_its_flagfile_ships(teacher_run):
    """Issue 43: a teacher tested on 2 episodes gave its students a worst decile of one episode; the student
    plays cartpole.cfg's 20 (its teacher replayed on the same 20), or what is given."""
    from dsp_cli.shipped import shipped_int
    from dsp_cli.shrink import student_config

    assert json.loads((teacher_run / "summary.json").read_text())["eval_episodes"] == 2
    assert student_config(str(teacher_run), {}, 0.5).eval_episodes == shipped_int("CartPole-v1", "eval_episodes") == 20
    assert student_config(str(teacher_run), {"eval_episodes": 3}, 0.5).eval_episodes == 3


@pytest.fixture()
def bad_teachers(tmp_path, teacher_run):
    skip = keras.Input((4,))
    h = keras.layers.Dense(8)(skip)
    branched = keras.Model(skip, keras.layers.Add()([h, keras.layers.Dense(8)(h)]))
    branched_file = tmp_path / "branched" / "actor.h5"
    branched_file.parent.mkdir()
    branched.save(branched_file, save_format="h5")
    (branched_file.parent / "actor_meta.json").write_text((teacher_run / "actor_meta.json").read_text())
    lonely = tmp_path / "lonely" / "actor.h5"
    lonely.parent.mkdir()
    branched.save(lonely, save_format="h5")
    return {"missing": (str(tmp_path / "nope"), "does not exist"),
            "not a run": (str(tmp_path), "is not a run directory"),
            "branched": (str(branched_file), "has a layer of class 'Add'"),
            "no meta": (str(lonely), "needs actor_meta.json beside it")}


@pytest.mark.parametrize("case", ["missing", "not a run", "branched", "no meta"])
def test_bad_teachers_are_one_line_exit_2_and_leave_nothing(bad_teachers, tmp_path, case):
    path, message = bad_teachers[case]
    out = tmp_path / "student"
    result = run_module("dsp_tf.shrink", f"--teacher={path}", f"--root_dir={out}", "--env=CartPole-v1",
                        "--flagfile=cartpole.cfg")
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in last_line(result.stderr) and "Traceback" not in result.stderr
    assert not out.exists()


def test_a_judge_without_episodes_is_refused_before_training(teacher_run, tmp_path):
    out = tmp_path / "student"
    result = run_module("dsp_tf.shrink", f"--teacher={teacher_run}", f"--root_dir={out}", "--judge_episodes=0")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "--judge_episodes must be > 0, got 0" in last_line(result.stderr) and "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("run_seed", [0, 3, 101])
def test_the_judges_episodes_are_neither_validations_nor_the_tests(run_seed):
    from agents.evaluation import final_test_seeds, held_out_seeds, judge_seeds
    judge = set(judge_seeds(run_seed, 1000))
    assert len(judge) == 1000
    assert not judge & set(held_out_seeds(run_seed, 1000)) and not judge & set(final_test_seeds(run_seed, 1000))


def test_a_teacher_of_another_environment_is_refused(teacher_run, tmp_path):
    out = tmp_path / "student"
    result = run_module("dsp_tf.train", "--flagfile=hopper.cfg", f"--teacher={teacher_run}", f"--root_dir={out}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "was trained on CartPole-v1, not Hopper-v4" in last_line(result.stderr)
    assert not out.exists()


def test_a_teacher_from_before_validated_actors_gets_a_validated_student(teacher_run, tmp_path):
    """An older run's config.json has no validation settings (they read as 0, i.e. off, for that run);
    its student is a new run and validates as today's flagfile of the environment ships (cartpole.cfg),
    scaled to its budget like the rest."""
    import shutil

    from dsp_cli.shrink import student_config

    old = tmp_path / "old_teacher"
    shutil.copytree(teacher_run, old)
    config = json.loads((old / "config.json").read_text())
    for name in ("validation_interval", "validation_episodes"):
        config.pop(name)
    (old / "config.json").write_text(json.dumps(config))
    cfg = student_config(str(old), {"root_dir": str(tmp_path / "s"), **PINNED}, budget_fraction=0.5)
    from dsp_cli.flagfiles import find_flagfile, flagfile_value

    shipped = {name: int(flagfile_value(find_flagfile("cartpole.cfg"), name))
               for name in ("validation_interval", "validation_episodes")}
    assert cfg.validation_episodes == shipped["validation_episodes"]
    step = cfg.steps_per_iteration
    assert cfg.validation_interval == max(step, round(shipped["validation_interval"] * 0.5 / step) * step) > 0
    kept = student_config(str(teacher_run), {"root_dir": str(tmp_path / "t"), **PINNED}, budget_fraction=0.5)
    assert kept.validation_interval == max(step, round(json.loads((teacher_run / "config.json").read_text())
                                                       ["validation_interval"] * 0.5 / step) * step)


def test_a_student_of_an_archived_continuous_teacher_starts_with_its_action_noise(tmp_path):
    """An archived run keeps no checkpoint; its actor_meta.json carries the action noise, so a student
    does not start exploring with std 1 (which sent Hopper students falling from their first rollout)."""
    import shutil
    from agents.training import build_learner

    teacher = tmp_path / "teacher"
    result = run_module("dsp_tf.train", "--flagfile=hopper.cfg", "--method=ppo", "--num_envs=1", "--rollout_steps=512",
                        "--num_env_steps=1024", "--minibatch_size=64", "--num_epochs=1", "--validation_interval=0",
                        "--curve_interval=0", "--eval_episodes=1", "--actor_layers=16,16", "--critic_layers=16,16",
                        f"--root_dir={teacher}")
    assert result.returncode == 0, result.stderr[-2000:]
    meta = json.loads((teacher / "actor_meta.json").read_text())
    assert len(meta["action_log_std"]) == 3  # Hopper's three torques
    archived = tmp_path / "archived"
    shutil.copytree(teacher, archived, ignore=shutil.ignore_patterns("checkpoints", "summaries"))
    noise = [-0.7, -0.4, -1.1]  # not what any fresh actor starts with (0)
    (archived / "actor_meta.json").write_text(json.dumps({**meta, "action_log_std": noise}))
    from dsp_cli.shrink import student_config
    cfg = student_config(str(archived), {"teacher": str(archived), "root_dir": str(tmp_path / "student"), **PINNED},
                         0.5)
    learner = build_learner(cfg)
    np.testing.assert_allclose(learner.agent._actor_net.log_std.numpy(), noise, rtol=1e-6)  # noqa: SLF001


def test_ratios_that_leave_the_same_network_are_trained_once():
    """The neuron floor makes 0.97, 0.98 and 0.99 of a 32-32 actor the same 1-1 network: one student, not three;
    a small student floored at 4 neurons is 4-4 from 0.97 on; a global ranking's sizes are not known ahead."""
    from agents.config import RunConfig
    from dsp_cli.shrink import _distinct_sizes, small_layers

    def rungs(ratios, **kw):
        return [RunConfig(final_sparsity=r, **kw) for r in ratios]

    assert _distinct_sizes(rungs([0.5, 0.8, 0.97, 0.98, 0.99], actor_layers=[32, 32], method="dsp",
                                 ranking="per_layer")) == [0.5, 0.8, 0.97]
    ladder = [0.9, 0.93, 0.95, 0.97, 0.98, 0.99]
    assert _distinct_sizes(rungs(ladder, actor_layers=[256, 256], method="dsp", ranking="per_layer")) == ladder
    assert _distinct_sizes(rungs(ladder, actor_layers=[32, 32], method="dsp", ranking="global")) == ladder
    small = [RunConfig(final_sparsity=r, method="small", min_neurons_per_layer=4,
                       actor_layers=small_layers([128, 128], r, 4)) for r in ladder]
    assert [c.actor_layers for c in small] == [[13, 13], [9, 9], [6, 6], [4, 4], [4, 4], [4, 4]]
    assert _distinct_sizes(small) == [0.9, 0.93, 0.95, 0.97]


