"""The run's actor is the best validated one (issue 25): seeds apart, a scripted collapse,
the final size, and the summary, evaluator and exporter agreeing on it."""
import dataclasses
import json

import numpy as np
import pytest

from clitools import TINY, run_module
from agents.config import RunConfig
from agents.envs import training_seed
from agents.evaluation import final_test_seeds, held_out_seeds
from agents.ppo import clip_epsilon, penalty_scale
from agents.selection import BestActor
from agents.training import validation_due
from dsp_tf._keras import tf


@pytest.mark.parametrize("run_seed", [0, 1, 4, 123456])
def test_validation_seeds_are_disjoint_from_training_and_test_seeds(run_seed):
    validation = set(held_out_seeds(run_seed, 1000))
    test = set(final_test_seeds(run_seed, 1000))
    training = {training_seed(run_seed, i) for i in range(200_000)}  # resets of a 25M-step, 8-env run
    assert len(validation) == 1000 and len(test) == 1000
    assert not validation & test
    assert not validation & training
    assert not test & training


def _scripted_state(value):
    """Two variables standing in for an actor's weights and normaliser."""
    return [tf.Variable(np.full((3, 2), value, np.float32)), tf.Variable(np.full(2, -value, np.float32))]


def test_a_scripted_collapse_keeps_the_earlier_actor():
    """A learning curve that reaches 500 twice and then drops: the later 500 is kept (ties → later),
    and swapping it in gives its weights while the live (collapsed) ones come back after."""
    state = _scripted_state(0.0)
    best = BestActor(state)
    curve = [(1000, 120.0), (2000, 500.0), (3000, 500.0), (4000, 180.0), (5000, 35.0)]
    kept = []
    for step, value in curve:
        for var, new in zip(state, _scripted_state(step)):
            var.assign(new)
        kept.append(best.offer(state, step, value))
    assert kept == [True, True, True, False, False]
    assert int(best.step.numpy()) == 3000 and float(best.value.numpy()) == 500.0
    assert int(best.checks.numpy()) == 5
    with best.swapped_in(state):
        np.testing.assert_array_equal(state[0].numpy(), np.full((3, 2), 3000.0))
        np.testing.assert_array_equal(state[1].numpy(), np.full(2, -3000.0))
    np.testing.assert_array_equal(state[0].numpy(), np.full((3, 2), 5000.0))


def test_nothing_is_chosen_before_the_first_validation():
    best = BestActor(_scripted_state(1.0))
    assert not best.chosen
    best.offer(_scripted_state(2.0), 10, -1e9)  # any return is kept first, however poor
    assert best.chosen and int(best.step.numpy()) == 10


#: A scripted noisy learning curve: each check's true return (what many episodes would say) and its
#: five-episode validation, which was lucky at step 8000 (a 200-actor scoring 500).
TRUE = {1000: 100.0, 2000: 200.0, 3000: 300.0, 4000: 400.0, 5000: 420.0, 6000: 450.0, 7000: 300.0,
        8000: 200.0, 9000: 250.0, 10000: 150.0}
VALIDATION = {1000: 110.0, 2000: 190.0, 3000: 310.0, 4000: 380.0, 5000: 440.0, 6000: 430.0, 7000: 290.0,
              8000: 500.0, 9000: 240.0, 10000: 160.0}


def _validate_curve(keep):
    state = _scripted_state(0.0)
    best = BestActor(state, keep=keep)
    for step in TRUE:
        for var, new in zip(state, _scripted_state(step)):
            var.assign(new)
        best.offer(state, step, VALIDATION[step])
    return state, best


def test_the_confirmed_judge_picks_the_check_that_best_of_n_does_not():
    from agents.selection import confirm

    state, best = _validate_curve(keep=3)
    assert int(best.step.numpy()) == 8000  # best of ten validations: the lucky one
    assert best.candidates() == [(8000, 500.0), (5000, 440.0), (6000, 430.0)]
    played = []

    def true_return():  # the confirmation's many fresh episodes: the actor swapped in, read from its weights
        step = int(state[0].numpy()[0, 0])
        assert np.all(state[1].numpy() == -step)  # every variable of that actor, not a mix
        played.append(step)
        return TRUE[step]

    rank, rows = confirm(best, state, true_return)
    assert played == [8000, 5000, 6000] and rank == 2
    assert rows[rank] == {"step": 6000, "validation_return": 430.0, "confirmation_return": 450.0}
    assert max(TRUE, key=TRUE.get) == rows[rank]["step"]  # the best true check of the curve
    np.testing.assert_array_equal(state[0].numpy(), np.full((3, 2), 10000.0))  # the live actor is back
    with best.swapped_in(state, rank):
        np.testing.assert_array_equal(state[0].numpy(), np.full((3, 2), 6000.0))
    # A confirmation that cannot tell them apart ships what best-of-N would.
    assert confirm(best, state, lambda: 450.0)[0] == 0


def test_candidates_rank_like_the_best_did_and_one_kept_is_todays_best_actor():
    _, one = _validate_curve(keep=1)
    _, three = _validate_curve(keep=3)
    assert one.candidates() == three.candidates()[:1] and int(one.checks.numpy()) == 10
    # ties: the later above the earlier, as the best always was
    state = _scripted_state(0.0)
    best = BestActor(state, keep=2)
    for step, value in ((1, 5.0), (2, 7.0), (3, 5.0), (4, 7.0), (5, 1.0)):
        for var, new in zip(state, _scripted_state(step)):
            var.assign(new)
        best.offer(state, step, value)
    assert best.candidates() == [(4, 7.0), (2, 7.0)]
    with best.swapped_in(state, 1):
        assert state[0].numpy()[0, 0] == 2.0
    # keep=1 checkpoints hold what they did before candidates existed: old checkpoints still restore.
    assert not hasattr(one, "runners_up")


def test_the_candidates_survive_a_checkpoint(tmp_path):
    """A resumed run confirms the same candidates, with their weights."""
    _, best = _validate_curve(keep=3)
    path = tf.train.Checkpoint(best=best).save(str(tmp_path / "ckpt"))
    fresh = BestActor(_scripted_state(-1.0), keep=3)
    tf.train.Checkpoint(best=fresh).restore(path).assert_existing_objects_matched()
    assert fresh.candidates() == best.candidates() and int(fresh.checks.numpy()) == 10
    state = _scripted_state(0.0)
    for rank, (step, _) in enumerate(fresh.candidates()):
        with fresh.swapped_in(state, rank):
            np.testing.assert_array_equal(state[1].numpy(), np.full(2, -float(step)))


def test_validation_starts_at_the_final_mask_and_includes_the_last_rollout():
    cfg = RunConfig(root_dir="x", num_env_steps=10_240, num_envs=1, rollout_steps=512, prune_begin=1024,
                    prune_end=4096, prune_frequency=1024, validation_interval=2000)
    steps = [(s, s + 512) for s in range(0, 10_240, 512)]
    due = [end for start, end in steps if validation_due(cfg, start, end, end == 10_240)]
    assert cfg.final_mask_step == 4096
    assert due == [4096, 6144, 8192, 10_240]
    off = RunConfig(root_dir="x", validation_interval=0)
    assert not any(validation_due(off, s, e, True) for s, e in steps)


def test_penalty_and_clip_schedules():
    cfg = RunConfig(root_dir="x", num_env_steps=10_000, num_envs=1, rollout_steps=1000, prune_begin=1000,
                    prune_end=4000, prune_frequency=1000, clip_ratio=0.2)
    assert [penalty_scale(cfg, s) for s in (0, 3000, 4000, 9000)] == [1.0] * 4  # "keep"
    off = dataclasses.replace(cfg, penalty_after_schedule="off")
    assert [penalty_scale(off, s) for s in (3000, 4000, 9000)] == [1.0, 0.0, 0.0]
    fade = dataclasses.replace(cfg, penalty_after_schedule="anneal")
    assert [penalty_scale(fade, s) for s in (3000, 4000, 7000, 9000)] == pytest.approx([1.0, 1.0, 0.5, 1 / 6])
    assert clip_epsilon(cfg, 5000) == 0.2
    annealed = dataclasses.replace(cfg, anneal_clip=True)
    assert [clip_epsilon(annealed, s) for s in (0, 5000, 9000)] == pytest.approx([0.2, 0.1, 0.02])


@pytest.fixture(scope="module")
def validated_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("validated") / "run"
    result = run_module("dsp_tf.train", *TINY, "--num_env_steps=6144", "--validation_interval=1024",
                        "--validation_episodes=2", f"--root_dir={root}")
    assert result.returncode == 0, result.stderr[-2000:]
    return root, result


def test_the_chosen_actor_has_the_final_size_and_is_what_the_tools_use(validated_run):
    root, result = validated_run
    summary = json.loads((root / "summary.json").read_text())
    sel = summary["selection"]
    assert sel["rule"] == "best_validation" and sel["validation_checks"] == 4  # 3072, 4096, 5120, 6144
    assert 3072 <= sel["chosen_step"] <= 6144
    assert summary["compact_layers"] == sel["last_compact_layers"]  # the final size, whichever step won
    rows = [r for r in (root / "progress.csv").read_text().splitlines()[1:] if r.split(",")[-1]]
    validated = {int(r.split(",")[0]): float(r.split(",")[-1]) for r in rows}
    assert max(validated.values()) == sel["validation_return"]
    assert max(s for s, v in validated.items() if v == sel["validation_return"]) == sel["chosen_step"]
    assert "kept the actor of step" in result.stderr

    evaluated = run_module("dsp_tf.evaluate", f"--root_dir={root}")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    evaluation = json.loads((root / "evaluation.json").read_text())
    assert evaluation["returns"] == summary["eval_returns"]
    assert evaluation["hidden_units"] == summary["compact_layers"][:-1]


def test_a_confirmed_run_ships_its_best_confirmed_candidate(tmp_path):
    root = tmp_path / "run"
    result = run_module("dsp_tf.train", *TINY, "--num_env_steps=6144", "--validation_interval=1024",
                        "--validation_episodes=2", "--confirm_top=3", "--confirm_episodes=3", f"--root_dir={root}")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((root / "summary.json").read_text())
    sel = summary["selection"]
    confirmation = sel["confirmation"]
    candidates = confirmation["candidates"]
    rows = [r for r in (root / "progress.csv").read_text().splitlines()[1:] if r.split(",")[-1]]
    validated = sorted(((float(r.split(",")[-1]), int(r.split(",")[0])) for r in rows), reverse=True)
    assert [(c["validation_return"], c["step"]) for c in candidates] == validated[:3]  # the top 3, best first
    chosen = candidates[confirmation["chosen_rank"]]
    assert chosen["confirmation_return"] == max(c["confirmation_return"] for c in candidates)
    assert (sel["chosen_step"], sel["validation_return"]) == (chosen["step"], chosen["validation_return"])
    assert "confirmation (step: validation → confirmed return)" in result.stderr
    # before the scoring's minutes on long episodes, one line says what is being played
    assert ("training done; playing the last actor on 2 test episodes; the best 3 validated actors on 3 fresh "
            "episodes each; the shipped actor on 2 test episodes") in result.stderr
    # The shipped actor is the confirmed one: replayed on the confirmation's own episodes it scores what it did.
    from agents.evaluation import confirm_seeds, mean_return
    from agents.inference import inference_model, load_actor
    from agents.tails import cvar10
    mlp, meta = load_actor(str(root), "compact")
    assert mean_return(inference_model(mlp, meta), "CartPole-v1", confirm_seeds(summary["seed"], 3),
                       True) == pytest.approx(chosen["confirmation_return"], abs=1e-3)
    assert summary["return_cvar10"] == pytest.approx(np.sort(summary["eval_returns"])[:1].mean())
    assert json.loads((root / "config.json").read_text())["confirm_top"] == 3


def test_confirmation_episodes_are_their_own(tmp_path):
    from agents.evaluation import confirm_seeds, judge_seeds
    for run_seed in (0, 7):
        confirmation = set(confirm_seeds(run_seed, 1000))
        others = set(held_out_seeds(run_seed, 1000)) | set(final_test_seeds(run_seed, 1000)) | \
            set(judge_seeds(run_seed, 1000))
        assert len(confirmation) == 1000 and not confirmation & others
    refused = run_module("dsp_tf.train", *TINY, "--validation_interval=0", "--confirm_top=2",
                         f"--root_dir={tmp_path / 'x'}")
    assert refused.returncode == 2 and "--confirm_top plays the best validated actors again" in refused.stderr
    assert not (tmp_path / "x").exists()


def test_validation_off_ships_the_last_actor(tmp_path):
    root = tmp_path / "run"
    result = run_module("dsp_tf.train", *TINY, "--validation_interval=0", f"--root_dir={root}")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((root / "summary.json").read_text())
    assert summary["selection"] == {"rule": "last", "chosen_step": summary["env_steps"]}
    assert "kept the actor" not in result.stderr


def test_an_annealed_clip_range_reaches_the_traced_loss_without_retracing():
    """tf-agents compares ε with 0 in Python at trace time and uses it as a tensor in the loss;
    a ClipRange must do both, and a new value must reach an already traced (XLA) function."""
    from agents.ppo import ClipRange

    clip = ClipRange(0.2)
    assert clip > 0.0

    @tf.function(jit_compile=True)
    def clipped(ratio):
        return tf.clip_by_value(ratio, 1 - clip, 1 + clip), tf.greater(tf.abs(ratio - 1.0), clip)

    ratio = tf.constant([0.5, 1.05, 1.5])
    low, outside = clipped(ratio)
    np.testing.assert_allclose(low.numpy(), [0.8, 1.05, 1.2], rtol=1e-6)
    assert outside.numpy().tolist() == [True, False, True]
    clip.variable.assign(0.01)
    low, outside = clipped(ratio)
    np.testing.assert_allclose(low.numpy(), [0.99, 1.01, 1.01], rtol=1e-6)
    assert outside.numpy().tolist() == [True, True, True]
    assert clipped.experimental_get_tracing_count() == 1


def test_a_validation_line_says_new_best_tie_or_the_best_it_fell_short_of():
    from agents.training import validation_note
    assert validation_note(500.0, True, [], (2048, 500.0)) == " (new best: kept)"
    assert validation_note(500.0, True, [(2048, 480.0)], (4096, 500.0)) == " (new best: kept)"
    assert validation_note(500.0, True, [(2048, 500.0)], (4096, 500.0)) == " (ties the best, step 2048's: the later is kept)"
    assert validation_note(450.0, False, [(2048, 500.0)], (2048, 500.0)) == " (best 500.0 at step 2048)"
