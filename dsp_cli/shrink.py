"""Shrink a policy you already trained: distil it into a small network (or prune it, --method=dsp),
with itself as teacher, at the smallest size that keeps its return.

    python -m dsp_tf.shrink --teacher=runs/cartpole_ppo --keep=0.95 --root_dir=runs/cartpole_small

The teacher is a finished run of this project, a .h5/.keras actor with
actor_meta.json beside it, or a Stable-Baselines3 MlpPolicy .zip (its
VecNormalize file beside it, if it had one); a file needs --flagfile/--env for
the PPO settings, and an SB3 student takes the teacher's layers and activation
unless given. Each
student is an ordinary ``dsp_tf.train`` run: by default (STUDENT_METHOD, STUDENT_RECIPE) a small
network sized by the ratio, trained by supervised distillation on its own states (agents.distill);
with a pruning --method it starts from the teacher's weights and prunes on the cubic schedule. With --keep, the search looks for the largest ratio of --ratios whose
validated actor keeps keep × the teacher's return on --judge_episodes fresh episodes
(neither validation's, which picked the actor and so flatter it, nor the test's): by
default the largest ratio first, then bisection (--search=climb: ascending to the first
miss). --keep applies to the judged mean (default) or, --keep_on=cvar10, to the mean of the worst
decile of the judge's episodes, for a student that must not fail where its teacher does not. Each rung stops training at its first validation that keeps --keep of the
teacher's (--stop_share). The ratio found is copied to --root_dir, which dsp_tf.evaluate
and tflite_export then take as is.
--final_sparsity trains that one ratio straight into --root_dir instead, unless --keep
is given too (a flagfile such as cartpole.cfg sets --final_sparsity: with it, say
--keep to search the ratios).
Re-running the same command resumes the ladder where it stopped.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from absl import flags, logging

from agents.config import LEGACY_DEFAULTS, RunConfig, config_fields, from_dict
from agents.evaluation import episode_returns, judge_seeds
from agents.inference import inference_model, load_actor
from agents.layout import ARCHIVED_FILES, SEARCH_FILE, SHRINK_FILE, SUMMARY_FILE
from agents.envs import check_env_name
from agents.rundir import RunDirectory, read_finished_summary, refuse_teacher_overlap
from agents.sb3 import sb3_architecture
from agents.tails import cvar10
from agents.teacher import Teacher, check_teacher_path, load_teacher
from agents.training import train, use_threads
from dsp_cli import cli
from dsp_cli.shipped import known_method, method_settings, shipped_int
from dsp_tf.errors import UsageError
from dsp_tf.files import atomic_write
from dsp_tf.masks import check_sparsity, select_masks
from dsp_cli.flagdefs import define_flags_from, values_from_flags

#: How a run picks its shipped actor: the student's own procedure, not a setting it inherits, so a
#: teacher's config.json without them (older runs: no validation) gives what today's flagfile of the
#: environment ships (else RunConfig's default), not the legacy "off".
SELECTION_FIELDS = ("validation_interval", "validation_episodes")
#: A teacher's settings a student does not inherit: how the teacher itself was taught and stopped is not
#: the student's procedure (shrinking a shrunk student would otherwise stop early, or distil, unasked).
STUDENT_OWN = ("teacher", "stop_share", "recipe", "distill_epochs", "distill_batch_size", "distill_learning_rate",
               "replay_size", "action_noise")
#: Where the ladder's students live inside --root_dir.
LADDER_DIR = "ladder"
#: How a student ranks neurons across layers unless --ranking is given. Chosen on Walker2d tuning seeds
#: (docs/protocols/, "Tuning the student's recipe on Walker2d"): pruning a trained network by one global
#: ranking left DSP students a 4-neuron first layer (3-6 on LunarLander), a bottleneck the student never
#: trained around; each layer keeping its share trained better. Every neuron-ranking method takes it, so
#: students of different methods end with the same shapes.
STUDENT_RANKING = "per_layer"


#: A student's method and recipe unless given: chosen by the evidence of issue 43 (docs/protocols/
#: 2026-12-07-on-policy-distillation-for-shrinking.md, "Outcome of the evidence").
STUDENT_METHOD = "small"
STUDENT_RECIPE = "distill"
#: Per recipe, what a student takes unless given: its env steps as a share of its teacher's, and (distill)
#: ten parallel environments, so that one distillation iteration labels 20,480 states; chosen on tuning
#: teachers (the same protocol, "Outcome of the tuning").
RECIPE_DEFAULTS: Dict[str, Dict[str, object]] = {"ppo_kl": {"budget_fraction": 0.5},
                                                 "distill": {"budget_fraction": 0.25, "num_envs": 10}}


def define_flags() -> None:
    define_flags_from(RunConfig)
    FLAGS.set_default("method", STUDENT_METHOD)
    FLAGS.set_default("recipe", STUDENT_RECIPE)
    flags.DEFINE_float("keep", 0.95, "Keep at least this share of the teacher's return on the judge's episodes: "
                                     "the search looks for the largest of --ratios whose student keeps it; each "
                                     "student stops training once a validation keeps it (--stop_share=0: its "
                                     "whole budget).")
    flags.DEFINE_integer("judge_episodes", 20, "Episodes on which each rung's shipped actor and the teacher are "
                                               "compared (their own seeds, apart from validation and test).")
    flags.DEFINE_list("ratios", ["0.9", "0.93", "0.95", "0.97", "0.98", "0.99"],
                      "The ladder of pruning ratios (--final_sparsity given and --keep not: that one ratio only).")
    flags.DEFINE_enum("search", "bisect", list(SEARCHES),
                      "bisect: the largest ratio first, then halving the ratios between the largest that kept and "
                      "the smallest that did not; climb: ascending until the first that does not keep.")
    flags.DEFINE_enum("keep_on", "mean", list(KEEP_ON),
                      "Which judged score must keep --keep × the teacher's same score: mean, or cvar10 (the mean "
                      "of the worst 10% of the judge's episodes).")
    flags.DEFINE_float("budget_fraction", None, "The student's env steps as a share of the teacher's (its pruning "
                                                "schedule, validation and checkpoint intervals scale alike); "
                                                "default: the recipe's, " + ", ".join(
                                                    f"{r} {d['budget_fraction']}" for r, d in RECIPE_DEFAULTS.items())
                                                + "; --num_env_steps given: that instead.")


FLAGS = flags.FLAGS


def student_config(teacher_dir: Optional[str], given: Dict, budget_fraction: Optional[float] = None,
                   architecture: Optional[Dict] = None) -> RunConfig:
    """The teacher's own settings (env, network, PPO) with what the user gave on top, the method
    STUDENT_METHOD and the recipe STUDENT_RECIPE unless given, with that method's λ as the environment's flagfile ships it (not the teacher's:
    a dense teacher trained with none), the students' ranking (STUDENT_RANKING) unless --ranking is
    given, and the teacher's budget and schedule scaled
    by ``budget_fraction`` (kept on the rollout grid, the schedule's end on its mask grid, so the
    final ratio is reached): by default the recipe's share, and the recipe's other settings unless given
    (RECIPE_DEFAULTS). A teacher file (an SB3 zip) has no config.json: ``architecture`` gives its
    network settings (agents.sb3.sb3_architecture). A ``small`` student without --actor_layers is sized
    by the ratio (small_layers)."""
    base: Dict = dict(architecture or {})
    if teacher_dir is not None:
        run = RunDirectory(teacher_dir)
        base = {k: v for k, v in run.read_config().items() if k not in STUDENT_OWN}
        env = base.get("env", RunConfig.env)
        base["method"] = given.get("method", STUDENT_METHOD)
        # The student's method trains with its own λ, as the sweep would on this environment:
        # a dense teacher's config.json says λ = 0, which would silently drop DSP's penalty.
        base.update(method_settings(env, base["method"]))
        for name in SELECTION_FIELDS:  # a teacher from before validated actors still gets a validated student
            if name not in base:
                shipped = shipped_int(env, name)
                base[name] = getattr(RunConfig, name) if shipped is None else shipped
        # Not in config.json. The student is judged on the teacher's own test episodes, and on as many as its
        # environment's flagfile ships if that is more (the teacher is replayed on the same episodes anyway):
        # a teacher of 10 episodes made its students' worst decile one episode (issue 43).
        base["eval_episodes"] = max(run.final_eval_episodes(RunConfig.eval_episodes),
                                    shipped_int(env, "eval_episodes") or 0)
    if teacher_dir is None:  # a teacher file: no config.json to start from
        base["method"] = given.get("method", STUDENT_METHOD)
    recipe = given.get("recipe", STUDENT_RECIPE)
    defaults = RECIPE_DEFAULTS.get(recipe, {})
    if budget_fraction is None:
        budget_fraction = float(defaults.get("budget_fraction", 0.5))
    base.update({"recipe": recipe, **{k: v for k, v in defaults.items() if k != "budget_fraction"}})
    values = {**base, **given}
    if "ranking" not in given and known_method(values.get("method", RunConfig.method)).ranks_neurons:
        values["ranking"] = STUDENT_RANKING
    if values.get("method") == "small" and "actor_layers" not in given and "actor_layers" in base:
        values["actor_layers"] = small_layers(base["actor_layers"],
                                              values.get("final_sparsity", RunConfig.final_sparsity),
                                              values.get("min_neurons_per_layer", RunConfig.min_neurons_per_layer))
    cfg = from_dict(values)
    if "num_env_steps" not in given and teacher_dir is not None:
        if not 0 < budget_fraction <= 10:
            raise UsageError(f"--budget_fraction must be in (0, 10], got {budget_fraction}")
        step = cfg.steps_per_iteration

        def grid(x: float) -> int:
            return max(step, int(round(x / step)) * step)

        frequency = grid(cfg.prune_frequency * budget_fraction)
        begin = grid(cfg.prune_begin * budget_fraction) if cfg.prune_begin else 0
        end = begin + math.ceil((cfg.prune_end - cfg.prune_begin) * budget_fraction / frequency) * frequency
        scaled = {"num_env_steps": grid(cfg.num_env_steps * budget_fraction), "prune_begin": begin,
                  "prune_end": end, "prune_frequency": frequency}
        for name in ("validation_interval", "curve_interval", "checkpoint_interval"):
            if getattr(cfg, name) and name not in given:
                scaled[name] = grid(getattr(cfg, name) * budget_fraction)
        cfg = from_dict({**values, **{k: v for k, v in scaled.items() if k not in given}})
    return cfg


def small_layers(teacher_layers: Sequence[int], ratio: float, min_neurons: int = 1) -> List[int]:
    """A ``small`` student's hidden sizes: each of the teacher's layers keeping 1 - ratio of its neurons
    (128, 128 at 0.93: 9, 9) and at least ``min_neurons`` (--min_neurons_per_layer, the floor a pruned
    student keeps), so that it has as many neurons as a pruned student of the same ratio. Without this a
    ``small`` student would be trained at its teacher's size, which shrinks nothing; without the floor, a
    search's top rungs were smaller than the teacher's own floor, and refused (issue 43)."""
    return [max(1, min_neurons, int(round(n * (1.0 - ratio)))) for n in teacher_layers]


#: How the size search visits the ladder: ``bisect`` trains the largest ratio first (the smallest network
#: is often enough) and then halves the untried ratios between the largest that kept and the smallest that
#: did not; ``climb`` trains them in ascending order up to the first that does not keep.
SEARCHES = ("bisect", "climb")


#: The judged scores --keep can apply to (--keep_on), from a policy's returns on the judge's episodes.
KEEP_ON: Dict[str, Callable[[Sequence[float]], float]] = {"mean": lambda r: float(np.mean(r)), "cvar10": cvar10}
#: What search.json meant before a setting existed: a search made then is the same search today.
SEARCH_LEGACY = {"keep_on": "mean", "search": "climb", "student": LEGACY_DEFAULTS}

Returns = Union[float, Sequence[float]]


def judged_score(returns: Returns, on: str = "mean") -> float:
    """The score --keep_on names of a policy's judged returns (a number: one episode's, or a score already)."""
    if on not in KEEP_ON:
        raise UsageError(f"--keep_on must be one of {', '.join(KEEP_ON)}, got '{on}'")
    return KEEP_ON[on](np.atleast_1d(np.asarray(returns, np.float64)))


def keeps(student: Returns, teacher: Returns, keep: float, on: str = "mean") -> bool:
    """Whether the student keeps ``keep`` × the teacher's score on the same episodes: the one rule of
    the size search, whichever score it is on."""
    return judged_score(student, on) >= keep * judged_score(teacher, on)


class Ladder:
    """Which ratio the search trains next, from which kept so far. Both ways assume what the ladder
    is for: a larger ratio (fewer neurons) does not keep more of the teacher's return."""

    def __init__(self, ratios: Sequence[float], how: str):
        if how not in SEARCHES:
            raise UsageError(f"--search must be one of {', '.join(SEARCHES)}, got '{how}'")
        self.ratios, self.how = sorted(ratios), how
        self.kept, self.missed = -1, len(self.ratios)  # indices: the largest known to keep, the smallest not to
        self.trained = 0

    def next(self) -> Optional[float]:
        """The next ratio to train, None once the answer is known."""
        if self.missed - self.kept <= 1:
            return None
        if self.how == "climb":
            return self.ratios[self.kept + 1]
        if self.trained == 0:
            return self.ratios[self.missed - 1]
        return self.ratios[(self.kept + self.missed) // 2]

    def record(self, ratio: float, kept: bool) -> None:
        self.trained += 1
        if kept:
            self.kept = self.ratios.index(ratio)
        else:
            self.missed = self.ratios.index(ratio)

    def left_at_most(self) -> int:
        """Rungs still to train at most, for the search's ETA."""
        untried = self.missed - self.kept - 1
        if self.how == "climb" or untried == 0:
            return untried
        if self.trained == 0:  # the largest, then bisection of the others if it misses
            return 1 + math.ceil(math.log2(untried))
        return math.ceil(math.log2(untried + 1))

    @property
    def chosen(self) -> Optional[float]:
        return self.ratios[self.kept] if self.kept >= 0 else None


def search_ladder(ratios: Sequence[float], judged: Callable[[float], Tuple[Returns, Returns]], keep: float,
                  how: str = "bisect", on: str = "mean") -> Tuple[Optional[float], List[Tuple[float, float, float, bool]]]:
    """Trains rungs (``Ladder``'s order) until the largest ratio whose judged score (``on``: KEEP_ON)
    keeps ``keep`` × the teacher's on the same episodes is known; ``judged(ratio)`` trains one and gives
    (student's, teacher's) returns on the judge's episodes. Returns that ratio (None: not even the
    smallest) and (ratio, student's score, teacher's score, kept) rows in the order trained."""
    ladder, rows = Ladder(ratios, how), []
    ratio = ladder.next()
    while ratio is not None:
        student, teacher = judged(ratio)
        kept = keeps(student, teacher, keep, on)
        rows.append((ratio, judged_score(student, on), judged_score(teacher, on), kept))
        ladder.record(ratio, kept)
        ratio = ladder.next()
    return ladder.chosen, rows


def climb(ratios: Sequence[float], judged: Callable[[float], Tuple[Returns, Returns]],
          keep: float) -> Tuple[Optional[float], List[Tuple[float, float, float, bool]]]:
    """``search_ladder`` climbing: ascending, stopping at the first ratio below ``keep``."""
    return search_ladder(ratios, judged, keep, "climb")


def _given() -> Dict:
    """The RunConfig flags the user set (command line or flagfile); the rest come from the teacher."""
    values = values_from_flags(RunConfig)
    return {f.name: values[f.name] for f in config_fields() if FLAGS[f.name].present}


def _copy_run(src: str, dst: str) -> None:
    """The chosen student's light files into --root_dir, summary.json last (its presence marks a finished run)."""
    for name in sorted(ARCHIVED_FILES, key=lambda n: n == SUMMARY_FILE):
        path = os.path.join(src, name)
        if os.path.exists(path):
            tmp = os.path.join(dst, f"{name}.tmp{os.getpid()}")  # a leftover the run directory removes
            shutil.copyfile(path, tmp)
            os.replace(tmp, os.path.join(dst, name))


def _main() -> None:
    teacher = FLAGS["teacher"].value if FLAGS["teacher"].present else ""
    check_teacher_path(teacher)  # first: a missing or wrong teacher is named as such, whatever else is missing
    given = _given()
    if not given.get("root_dir"):
        raise UsageError("--root_dir is required")
    use_threads(given.get("tf_threads", RunConfig.tf_threads))  # before the teacher's files start TensorFlow
    if os.path.isfile(teacher):
        if "env" not in given:
            raise UsageError(f"--teacher '{teacher}' is a file: give --env (and the PPO settings, e.g. --flagfile)")
        check_env_name(given["env"])
    if not 0.0 < FLAGS.keep <= 1.0:
        raise UsageError(f"--keep must be in (0, 1], got {FLAGS.keep}")
    teacher_dir = teacher if os.path.isdir(teacher) else None
    architecture = None
    if os.path.isfile(teacher) and teacher.endswith(".zip"):  # the student starts as the SB3 teacher
        architecture = sb3_architecture(teacher)
    cfg = student_config(teacher_dir, given, FLAGS.budget_fraction, architecture)
    root = os.path.abspath(cfg.root_dir)
    refuse_teacher_overlap(root, teacher)
    if "final_sparsity" in given and not FLAGS["keep"].present:  # one ratio, straight into --root_dir
        logging.info("one ratio, %.2f (--final_sparsity); --keep would search the ratios instead", cfg.final_sparsity)
        train(cfg)
        return
    try:
        ratios = sorted({float(r) for r in FLAGS.ratios})
    except ValueError:
        raise UsageError(f"--ratios must be numbers, got {','.join(FLAGS.ratios)}") from None
    if not ratios:
        raise UsageError("--ratios must be a non-empty list in [0, 1)")
    for r in ratios:
        try:
            check_sparsity(r, "--ratios")
        except ValueError as e:
            raise UsageError(f"{e} (got {','.join(FLAGS.ratios)})") from None
    if FLAGS.judge_episodes <= 0:
        raise UsageError(f"--judge_episodes must be > 0, got {FLAGS.judge_episodes}")
    if cfg.validation_interval <= 0:
        raise UsageError("--keep judges each ratio by its validated actor: --validation_interval must be > 0")
    # A rung stops training once a validation keeps --keep of the teacher's (--stop_share=0: its whole budget).
    stop_share = given.get("stop_share", FLAGS.keep)

    def rung_config(ratio: float) -> RunConfig:
        # A rung is its own run (resumed or already done); --overwrite applies to the search as a whole;
        # a small student without --actor_layers is sized by the rung's ratio.
        resized = student_config(teacher_dir, {**given, "final_sparsity": ratio}, FLAGS.budget_fraction,
                                 architecture).actor_layers
        return dataclasses.replace(cfg, final_sparsity=ratio, root_dir=rung_dir(root, ratio), overwrite=False,
                                   stop_share=stop_share, actor_layers=resized)

    for r in ratios:  # every rung's settings checked before anything is made
        rung_config(r).validate()
    teacher = load_teacher(cfg.teacher, cfg.env)  # and the teacher against --env
    ratios = _distinct_sizes([rung_config(r) for r in ratios])

    search, identity = RunDirectory(root), _search_identity(rung_config(ratios[0]), ratios, teacher)
    if not cfg.overwrite and _already_done(search, identity):
        return
    seeds = judge_seeds(cfg.seed, FLAGS.judge_episodes)
    teacher_returns = teacher.returns(cfg.env, seeds)
    teacher_value = judged_score(teacher_returns, FLAGS.keep_on)
    if teacher_value <= 0:  # before anything is made
        raise UsageError(f"the teacher's judged {'return' if FLAGS.keep_on == 'mean' else 'worst decile'} is "
                         f"{teacher_value:.1f} over {len(seeds)} episodes: --keep, a share of it, means nothing "
                         f"for a score <= 0; train one ratio with --final_sparsity instead")
    search.prepare_search(identity, cfg.overwrite, cfg.teacher, SEARCH_LEGACY)
    summaries: Dict[float, Dict] = {}
    logging.info("the teacher's judged return: %.1f (worst decile %.1f) over %d episodes; a student keeps it at "
                 "%s >= %.1f (--keep=%g, --keep_on=%s)", judged_score(teacher_returns), cvar10(teacher_returns),
                 len(seeds), "a mean" if FLAGS.keep_on == "mean" else "a worst decile", FLAGS.keep * teacher_value,
                 FLAGS.keep, FLAGS.keep_on)
    started = time.time()

    ladder = Ladder(ratios, FLAGS.search)
    rows: List[Tuple[float, List[float], bool]] = []
    ratio = ladder.next()
    while ratio is not None:
        k = ladder.trained + 1
        with cli.log_prefix(f"rung {k}/{k + ladder.left_at_most() - 1} (ratio {ratio:g}) | "):
            rung = rung_config(ratio)
            summaries[ratio] = train(rung)
            mlp, meta = load_actor(rung.root_dir, "compact")
            returns = episode_returns(inference_model(mlp, meta), cfg.env, seeds, meta.discrete)
            kept = keeps(returns, teacher_returns, FLAGS.keep, FLAGS.keep_on)
            rows.append((ratio, returns, kept))
            ladder.record(ratio, kept)
            left = ladder.left_at_most()
            value = judged_score(returns, FLAGS.keep_on)
            logging.info("judged %.1f (worst decile %.1f) over %d episodes, %s %.1f%% of the teacher's (%s); at most "
                         "%d rung(s) left, search ETA about %s", judged_score(returns), cvar10(returns), len(seeds),
                         "mean" if FLAGS.keep_on == "mean" else "worst decile",
                         100 * value / teacher_value if teacher_value else float("nan"),
                         "kept" if kept else "below --keep", left, _fmt_duration((time.time() - started) / k * left))
        ratio = ladder.next()
    chosen = ladder.chosen
    _report(root, rows, teacher_returns, summaries, chosen, stop_share)


def _search_identity(rung: RunConfig, ratios: Sequence[float], teacher: Teacher) -> Dict:
    """What makes two size searches the same search: a rung's settings (its ratio and directory aside:
    the --stop_share it really trains with included), the teacher it reads (its absolute path and the
    hash of its summary or file) and the search's own flags."""
    student = {k: v for k, v in rung.identity().items() if k != "final_sparsity"}
    student["teacher"] = os.path.abspath(rung.teacher)
    return {"student": student, "teacher_sha256": teacher.identity["sha256"], "ratios": list(ratios),
            "keep": FLAGS.keep, "keep_on": FLAGS.keep_on, "judge_episodes": FLAGS.judge_episodes,
            "search": FLAGS.search}


def _already_done(search: RunDirectory, identity: Dict) -> bool:
    """A finished search (this search's settings, its ladder written and the chosen student copied) is
    answered in one line, with nothing created, locked or rewritten."""
    if search.finished_as(SEARCH_FILE, identity, SEARCH_LEGACY) is None:
        return False  # not this search, not finished, or killed during the final copy (redone)
    try:
        with open(search.path(SHRINK_FILE), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return False
    chosen = record.get("chosen_ratio") if isinstance(record, dict) else None
    summary = read_finished_summary(search.root)
    logging.info("already done: ratio %g shrunk to %s neurons, greedy test return %.1f; %s holds it "
                 "(--overwrite searches afresh)", chosen, summary.get("compact", {}).get("neurons", "?"),
                 float(summary.get("return_mean", float("nan"))), search.root)
    return True


def _report(root: str, rows: Sequence[Tuple[float, List[float], bool]], teacher_returns: Sequence[float],
            summaries: Dict[float, Dict], chosen: Optional[float], stop_share: float) -> None:
    """Prints the ladder as an aligned table, writes shrink.json (with the ``stop_share`` its rungs trained with), and copies the chosen student into --root_dir."""
    teacher_value, teacher_tail = judged_score(teacher_returns), cvar10(teacher_returns)

    def share(value: float, of: float) -> float:
        return round(value / of, 4) if of else float("nan")

    table = []
    for ratio, returns, kept in sorted(rows, key=lambda row: row[0]):
        s = summaries[ratio]
        value, tail = judged_score(returns), cvar10(returns)
        validation = float(s["selection"]["validation_return"])
        table.append({"ratio": ratio, "neurons": s["compact"]["neurons"], "weights": s["compact"]["weights"],
                      "validation_return": validation, "judged_return": value,
                      "share_of_teacher": share(value, teacher_value), "judged_cvar10": round(tail, 3),
                      "cvar10_share_of_teacher": share(tail, teacher_tail), "kept": kept,
                      "test_return": s["return_mean"], "test_cvar10": s.get("return_cvar10"),
                      "env_steps": s["env_steps"], "judged_returns": list(returns),
                      "run": os.path.relpath(rung_dir(root, ratio), root)})
    header = ("ratio", "neurons", "weights", "env steps", "judged return", "of teacher", "test return",
              "judged worst decile", "of teacher", "")
    lines = [[f"{r['ratio']:g}", str(r["neurons"]), str(r["weights"]), str(r["env_steps"]), f"{r['judged_return']:.1f}",
              f"{100 * r['share_of_teacher']:.1f}%", f"{r['test_return']:.1f}", f"{r['judged_cvar10']:.1f}",
              f"{100 * r['cvar10_share_of_teacher']:.1f}%", "kept" if r["kept"] else "below --keep"] for r in table]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    logging.info("the size search (teacher's judged return %.1f, worst decile %.1f; --keep=%g on the %s):",
                 teacher_value, teacher_tail, FLAGS.keep, "mean" if FLAGS.keep_on == "mean" else "worst decile")
    for line in [list(header)] + lines:
        logging.info("  %s", "  ".join(cell.rjust(w) for cell, w in zip(line, widths)).rstrip())
    record = {"keep": FLAGS.keep, "keep_on": FLAGS.keep_on, "judge_episodes": FLAGS.judge_episodes,
              "search": FLAGS.search, "stop_share": stop_share,
              "teacher_judged_return": teacher_value, "teacher_judged_cvar10": round(teacher_tail, 3),
              "teacher_judged_returns": list(teacher_returns),
              "teacher_validation_return": summaries[rows[0][0]]["teacher_validation_return"],
              "chosen_ratio": chosen, "ladder": table}
    atomic_write(os.path.join(root, SHRINK_FILE), json.dumps(record, indent=2))
    if chosen is None:
        raise UsageError(f"no ratio kept {FLAGS.keep:.0%} of the teacher's judged "
                         f"{'return' if FLAGS.keep_on == 'mean' else 'worst decile'} "
                         f"({judged_score(teacher_returns, FLAGS.keep_on):.1f}); "
                         f"the ladder is in {os.path.join(root, SHRINK_FILE)}")
    _copy_run(rung_dir(root, chosen), root)
    s = summaries[chosen]
    logging.info("shrunk: ratio %g, neurons %d → %d, weights %d → %d; greedy test return %.1f vs the teacher's "
                 "%.1f; %s holds it (policy.h5 to hand on; dsp_tf.evaluate, tflite_export)", chosen,
                 s["dense"]["neurons"], s["compact"]["neurons"], s["dense"]["weights"], s["compact"]["weights"],
                 s["return_mean"], s["teacher_return"], root)


def student_size(cfg: RunConfig) -> Optional[Tuple[int, ...]]:
    """The hidden sizes a student of ``cfg`` ends with, where they are known before it trains: a method
    that prunes nothing keeps --actor_layers; a neuron method ranking per layer keeps each layer's share
    (and --min_neurons_per_layer); otherwise (a global ranking, random weights) None."""
    method = known_method(cfg.method)
    if not method.prunes:
        return tuple(cfg.actor_layers)
    if not method.ranks_neurons or cfg.ranking != "per_layer":
        return None
    ones = [np.ones(n, np.float32) for n in cfg.actor_layers]
    scores = [np.arange(n, dtype=np.float32) for n in cfg.actor_layers]
    masks = select_masks(scores, ones, cfg.final_sparsity, cfg.min_neurons_per_layer, cfg.threshold, cfg.ranking)
    return tuple(int(m.sum()) for m in masks)


def _distinct_sizes(rungs: Sequence[RunConfig]) -> List[float]:
    """The ratios of ``rungs`` that give networks of different sizes: neighbouring ratios can leave the
    same network (1-1 for 0.97, 0.98 and 0.99 of a 64-64 actor; 4-4 for a small student whose teacher
    floors layers at 4), which would be trained and judged again for nothing."""
    kept: Dict[Tuple[int, ...], float] = {}
    out = []
    for cfg in rungs:
        size = student_size(cfg)
        if size is not None and size in kept:
            logging.info("ratio %g leaves the same %s network as ratio %g: not trained again",
                         cfg.final_sparsity, "-".join(map(str, size)), kept[size])
            continue
        if size is not None:
            kept[size] = cfg.final_sparsity
        out.append(cfg.final_sparsity)
    return out


def _fmt_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{int(round(seconds))}s"
    minutes = int(round(seconds / 60))
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def rung_dir(root: str, ratio: float) -> str:
    return os.path.join(root, LADDER_DIR, f"p{ratio}")


#: What ``--help`` lists (``--helpfull``: every flag, the PPO settings a student inherits from its teacher too).
#: Settings a student inherits from its teacher (env, seed, network) are left out: their defaults do not apply.
HELP_FLAGS = ("teacher", "root_dir", "keep", "keep_on", "ratios", "search", "judge_episodes", "method", "recipe",
              "budget_fraction", "confirm_top", "overwrite")


def main() -> None:
    define_flags()
    cli.key_flags([name for name in HELP_FLAGS if name in FLAGS])
    cli.run(_main, prog="dsp_tf.shrink")
