"""A trained policy as the teacher of a smaller one (``--teacher``, ``dsp_tf.shrink``).

Most people who need a small policy already have a trained one. The student
starts from the teacher's actor (when it has the teacher's shape), its
observation statistics and, when the teacher's checkpoint is there, its critic
and action noise; it is then pruned on the cubic schedule while PPO continues,
with a distillation term KL(π_teacher ‖ π_student) on each minibatch's
observations keeping it close to what the teacher does (Rusu et al. 2016;
PoPS, Livne & Cohen 2020, prunes with distillation the same way).

The teacher is a finished run directory of this project (its saved dense actor
and actor_meta.json: the validated actor, if the run chose one), a Keras
actor file (.h5/.keras: a chain of Dense layers from normalised observation to
logits or pre-squash mean) with an actor_meta.json beside it, or a
Stable-Baselines3 MlpPolicy .zip with its VecNormalize file, if any, beside it
(agents.sb3: its critic and action noise come with it).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow_probability as tfp

from agents.errors import UsageError
from agents.envs import EnvSpaces, env_spaces
from agents.evaluation import episode_returns
from agents.inference import ACTOR_CLASSES, ActorMeta, ObservationNormalization, inference_model, load_actor, read_meta
from agents.layout import CONFIG_FILE, META_FILE, SUMMARY_FILE
from agents.networks import squash_to_bounds
from agents.sb3 import load_sb3
from dsp_tf._keras import keras, tf
from dsp_tf.chain import dense_chain
from dsp_tf.safe_load import load_model_safely


#: Teacher.returns's episodes already played in this process: (actor digest, env, seeds) → returns.
_PLAYED: Dict[Tuple[str, str, Tuple[int, ...]], List[float]] = {}


def _actor_digest(mlp: keras.Model, meta: ActorMeta) -> str:
    h = hashlib.sha256(json.dumps(dataclasses.asdict(meta), sort_keys=True, default=str).encode())
    for w in mlp.get_weights():
        h.update(str(w.shape).encode())
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


@dataclass
class Teacher:
    name: str  # the run directory's or file's name, as summary.json records it
    mlp: keras.Model  # normalised observation → logits or pre-squash mean; frozen
    meta: ActorMeta
    env_steps: Optional[int]  # what the teacher trained for, when its summary says (compute is stated)
    run_dir: Optional[str]  # a run directory's path (its checkpoint gives the critic); None for a file
    # A file's own critic (an SB3 model's value network, in tf-agents' ValueNetwork weight order), if it has one.
    critic: Optional[List[np.ndarray]] = None
    critic_layers: Optional[List[int]] = None
    note: str = ""  # what the student's log says of where the teacher came from (a file's own reading)
    identity: Dict = field(default_factory=dict)  # what it was read from, fixed when it was read (identify)

    def record(self, student_root: str) -> Dict:
        """Which teacher exactly, for the student's summary.json: a name alone is ambiguous (an archive
        holds several runs of one name), so its path relative to the student's run and the hash taken
        when it was read (``identify``)."""
        rel = os.path.relpath(self.identity["path"], os.path.abspath(student_root))
        return {**{k: v for k, v in self.identity.items() if k != "path"}, "env": self.meta.env,
                "env_steps": self.env_steps, "path": rel}

    @property
    def hidden_layers(self) -> List[int]:
        return [d.units for d in dense_chain(self.mlp).hidden]

    def returns(self, env: str, seeds: Sequence[int]) -> List[float]:
        """The teacher's greedy return on each of ``seeds``, played once per process: a size search trains
        its rungs in one process, and each rung compares its student with the same teacher on the same test
        and validation episodes (a third of a rung's scoring). Keyed by the actor's weights and metadata, so a
        different teacher, or the same one changed, is played again."""
        key = (_actor_digest(self.mlp, self.meta), env, tuple(int(s) for s in seeds))
        if key not in _PLAYED:
            model = inference_model(self.mlp, self.meta, name="teacher_actor")
            _PLAYED[key] = episode_returns(model, env, seeds, self.meta.discrete)
        return list(_PLAYED[key])

    def model(self) -> keras.Model:
        """Raw observation → the teacher's logits or pre-squash mean, with its own normalisation
        (the student's normaliser keeps moving; the teacher's statistics are the ones it learnt with)."""
        inputs = keras.Input((len(self.meta.obs_mean),))
        x = ObservationNormalization(self.meta.obs_mean, self.meta.obs_var, self.meta.obs_clip,
                                     self.meta.obs_epsilon)(inputs)
        model = keras.Model(inputs, self.mlp(x), name="teacher")
        model.trainable = False
        return model


def identify(path: str) -> Dict:
    """A teacher's path and the SHA-256 of what identifies it (a run's summary.json, or the file), taken
    when it is read: a teacher retrained or moved during a student's run cannot change what is recorded,
    and a size search over another teacher at the same path is another search."""
    path = os.path.abspath(path)
    hashed = os.path.join(path, SUMMARY_FILE) if os.path.isdir(path) else path
    with open(hashed, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    record = {"path": path, "sha256_of": os.path.basename(hashed), "sha256": digest}
    if os.path.isdir(path):
        with open(os.path.join(path, CONFIG_FILE), encoding="utf-8") as f:
            config = json.load(f)
        record.update({k: config.get(k) for k in ("env", "method", "seed", "final_sparsity")})
    return record


def distillation(teacher: Teacher, coef: float):
    """The loss term PPO adds for a student: coef · KL(π_teacher ‖ π_student) on a minibatch's raw
    observations (any outer shape; PPO's minibatches are [batch, 1, features])."""
    model = teacher.model()

    def term(observations: tf.Tensor, student: tfp.distributions.Distribution) -> tf.Tensor:
        flat = tf.reshape(tf.cast(observations, tf.float32), [-1, observations.shape[-1]])
        out = model(flat, training=False)
        out = tf.reshape(out, tf.concat([tf.shape(observations)[:-1], tf.shape(out)[-1:]], 0))
        return coef * policy_kl(out, student, teacher.meta)

    return term


#: Teachers already read in this process, by (path, env, file state): a size search checks every rung's
#: settings and judges with the same teacher, which reads the same files each time otherwise.
_LOADED: Dict[Tuple, "Teacher"] = {}


def check_teacher_path(path: str) -> None:
    """The one-line answer for a --teacher that cannot be one, before any other flag is looked at."""
    if not path:
        raise UsageError("--teacher is required (a finished run directory, a .h5/.keras actor file or a "
                         "Stable-Baselines3 .zip)")
    if not os.path.exists(path):
        raise UsageError(f"--teacher '{path}' does not exist (a finished run directory, a .h5/.keras actor file "
                         "or a Stable-Baselines3 .zip)")
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, CONFIG_FILE)):
            raise UsageError(f"--teacher '{path}' is not a run directory (no {CONFIG_FILE})")
    elif not path.endswith((".h5", ".keras", ".zip")):
        raise UsageError(f"--teacher '{path}' is neither a run directory, a .h5/.keras actor file nor a "
                         "Stable-Baselines3 .zip")


def load_teacher(path: str, env: str) -> Teacher:
    """The teacher at ``path`` for a student on ``env``; one-line UsageError for anything unusable,
    including a policy whose observation or action sizes are not ``env``'s."""
    check_teacher_path(path)
    stat = os.stat(path)  # a directory's changes when a file is written into it (atomic renames)
    key = (os.path.abspath(path), env, stat.st_mtime_ns, stat.st_size)
    if key not in _LOADED:
        _LOADED[key] = _load_teacher(path, env)
    return _LOADED[key]


def _load_teacher(path: str, env: str) -> Teacher:
    spaces = env_spaces(env)
    if os.path.isdir(path):
        try:
            mlp, meta = load_actor(path, "dense")
        except UsageError as e:
            raise UsageError(f"--teacher '{path}' has no usable saved actor: is the run finished? ({e})") from None
        env_steps = _summary_steps(path)
        name, run_dir = os.path.basename(os.path.normpath(path)), os.path.abspath(path)
    elif path.endswith(".zip"):
        return _sb3_teacher(path, env, spaces)
    else:
        meta_path = os.path.join(os.path.dirname(os.path.abspath(path)), META_FILE)
        if not os.path.exists(meta_path):
            raise UsageError(f"--teacher '{path}' needs {META_FILE} beside it (env, observation mean and variance, "
                             "action bounds), as dsp_tf.train writes")
        try:
            mlp = load_model_safely(path, ACTOR_CLASSES)
        except UsageError as e:
            raise UsageError(f"--teacher: {e}") from None
        meta = read_meta(meta_path)
        env_steps, name, run_dir = None, os.path.basename(path), None
    try:
        dense_chain(mlp)
    except (ValueError, TypeError) as e:
        raise UsageError(f"--teacher '{path}' is not a chain of Dense layers: {str(e).splitlines()[0]}") from None
    if meta.env != env:
        raise UsageError(f"--teacher '{path}' was trained on {meta.env}, not {env}")
    _check_fits(path, mlp, meta, env, spaces)
    return Teacher(name, mlp, meta, env_steps, run_dir, identity=identify(path))


def _check_fits(path: str, mlp: keras.Model, meta: ActorMeta, env: str, spaces: EnvSpaces) -> None:
    """A teacher whose sizes are not the environment's would train until TensorFlow fails."""
    inputs, outputs = int(mlp.input_shape[-1]), int(mlp.output_shape[-1])
    kind = "discrete" if spaces.discrete else "continuous"
    problem = None
    if meta.discrete != spaces.discrete:
        problem = f"its actions are {'discrete' if meta.discrete else 'continuous'}, {env}'s are {kind}"
    elif inputs != spaces.obs_dim or len(meta.obs_mean) != spaces.obs_dim:
        problem = f"it takes {inputs} observation values ({META_FILE}: {len(meta.obs_mean)}), {env} gives " \
                  f"{spaces.obs_dim}"
    elif outputs != spaces.n_actions:
        problem = f"it gives {outputs} outputs, {env} has {spaces.n_actions} {kind} action" \
                  f"{'s' if spaces.discrete else ' values'}"
    elif not spaces.discrete and (len(meta.action_low or ()) != spaces.n_actions
                                  or len(meta.action_high or ()) != spaces.n_actions):
        problem = f"its {META_FILE} has action bounds of another size than {env}'s {spaces.n_actions}"
    if problem:
        raise UsageError(f"--teacher '{path}' does not fit {env}: {problem}")


def _sb3_teacher(path: str, env: str, spaces: EnvSpaces) -> Teacher:
    """An SB3 file names no environment: its spaces are checked against ``env``'s."""
    low = None if spaces.discrete else list(spaces.action_low)
    high = None if spaces.discrete else list(spaces.action_high)
    policy = load_sb3(path, env, low, high, spaces.obs_dim, spaces.n_actions)
    note = "teacher {}: Stable-Baselines3 MlpPolicy {}, {}; {}".format(
        os.path.basename(path), "-".join(str(d.units) for d in dense_chain(policy.actor).hidden),
        f"observations normalised as {os.path.basename(policy.normalizer)} says" if policy.normalizer
        else "no VecNormalize file beside it: observations used as they are",
        "its value network starts the critic" if policy.critic is not None
        else "its value network is not tanh like this project's critic, which starts afresh")
    return Teacher(os.path.basename(path), policy.actor, policy.meta, policy.env_steps or None, None,
                   policy.critic, policy.critic_layers, note, identity=identify(path))


def _summary_steps(run_dir: str) -> int:
    """The env steps a teacher run trained for: its summary.json must say (the student records them)."""
    path = os.path.join(run_dir, SUMMARY_FILE)
    if not os.path.exists(path):
        raise UsageError(f"--teacher '{run_dir}' has no {SUMMARY_FILE}: the run is not finished "
                         "(run its dsp_tf.train command again to finish it)")
    try:
        with open(path, encoding="utf-8") as f:
            steps = json.load(f)["env_steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"env_steps is {steps!r}")
        return steps
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"--teacher '{run_dir}': {SUMMARY_FILE} is unreadable ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from None


def policy_kl(teacher_out: tf.Tensor, student: tfp.distributions.Distribution, meta: ActorMeta) -> tf.Tensor:
    """Mean over the batch of KL(π_teacher ‖ π_student).

    Categorical: the teacher's logits. Gaussian: the teacher's greedy action (its mean squashed,
    or clipped for an SB3 teacher) with the student's own scale (the greedy policy that ships is
    the mean): the KL is then Σ_d (μ_T − μ_S)² / (2σ_S²). The scale is held constant on both sides:
    through σ_S that sum only falls as the noise grows, so a live scale lets distillation inflate
    the student's action noise wherever its mean misses the teacher's (on Walker2d students' noise
    grew from ~0.45 to 0.9–2.6 and their training returns fell to ~250, ~2,200 once fixed; docs/RESULTS.md); the noise is PPO's to learn.
    """
    if meta.discrete:
        teacher = tfp.distributions.Categorical(logits=teacher_out)
    else:
        low, high = np.asarray(meta.action_low, np.float32), np.asarray(meta.action_high, np.float32)
        loc = (tf.clip_by_value(teacher_out, low, high) if meta.action_head == "clip"
               else squash_to_bounds(teacher_out, low, high))
        scale = tf.stop_gradient(student.stddev())
        teacher = tfp.distributions.MultivariateNormalDiag(loc=loc, scale_diag=scale)
        student = tfp.distributions.MultivariateNormalDiag(loc=student.mean(), scale_diag=scale)
    return tf.reduce_mean(teacher.kl_divergence(student))


def start_from_teacher(teacher: Teacher, mlp: keras.Model, normalizer) -> bool:
    """Copies the teacher's actor into ``mlp`` when the shapes agree (returns whether it did) and
    its observation statistics into tf-agents' streaming normaliser, weighted as the teacher's
    env steps (or 1e6), so that the student sees observations as the teacher did and keeps learning them."""
    same = [w.shape for w in mlp.get_weights()] == [w.shape for w in teacher.mlp.get_weights()]
    if same:
        mlp.set_weights(teacher.mlp.get_weights())
    count = float(teacher.env_steps or 1_000_000)
    counts, avgs, m2s, carries = (tf.nest.flatten(v) for v in normalizer.variables)
    counts[0].assign(tf.fill(counts[0].shape, count))
    avgs[0].assign(np.asarray(teacher.meta.obs_mean, np.float32))
    # The student divides by √(var + its ε): the teacher's variance shifted by the two ε's gives the teacher's
    # scale exactly (the same ε for a teacher of this project; SB3's VecNormalize uses 1e-8).
    var = np.asarray(teacher.meta.obs_var, np.float32) + np.float32(teacher.meta.obs_epsilon - ActorMeta.obs_epsilon)
    m2s[0].assign(np.maximum(var, np.float32(0.0)) * np.float32(count))
    carries[0].assign(tf.zeros_like(carries[0]))
    return same
