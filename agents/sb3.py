"""A Stable-Baselines3 PPO/A2C ``MlpPolicy`` (.zip) as a teacher, read without torch.

Most trained policies live in SB3 files, and asking for torch (and SB3) beside
TensorFlow to read one would double the install. The zip holds a JSON ``data``
record (spaces, ``policy_kwargs``) and ``policy.pth``, torch's zip of a pickled
``state_dict`` whose tensors are raw little-endian buffers: a restricted
unpickler maps them to NumPy and refuses anything else, so reading a teacher
runs no code from the file. ``VecNormalize`` statistics are read the same way
from ``vecnormalize.pkl`` (rl-baselines3-zoo's name) or ``vec_normalize.pkl``
beside the zip; without one the observations were used as they are.

The mapping is exact where the two policies agree: the ``pi`` network and
``action_net`` become a Dense chain (torch's ``Linear`` weight transposed), the
``vf`` network and ``value_net`` the critic (when tanh, as this project's critic is), ``log_std`` the action noise, and
VecNormalize's clip((x − μ)/√(σ² + ε), ±c) is this project's observation
normalisation. One difference stays: SB3 clips a Gaussian policy's mean to the
action bounds where this project's actors squash it with tanh, so a continuous
teacher is distilled with its clipped mean (``ActorMeta.action_head="clip"``)
and a student that starts from its weights acts like it only where the mean is
well inside the bounds.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from agents.errors import UsageError
from agents.inference import ActorMeta
from dsp_tf._keras import keras

#: The VecNormalize files looked for beside the zip: rl-baselines3-zoo's name, and SB3's docs' name.
NORMALIZER_FILES = ("vecnormalize.pkl", "vec_normalize.pkl")
#: torch activation classes of ``policy_kwargs["activation_fn"]`` → Keras names; SB3's default is Tanh.
ACTIVATIONS = {"Tanh": "tanh", "ReLU": "relu", "ELU": "elu"}
_STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                   "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
                   "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


@dataclass
class SB3Policy:
    actor: keras.Model  # normalised observation → logits or (unclipped) mean
    # The value network's weights in tf-agents' ValueNetwork order; None unless tanh (agents.networks'
    # critic is always tanh, so a ReLU value network would compute something else there).
    critic: Optional[List[np.ndarray]]
    critic_layers: List[int]
    meta: ActorMeta
    env_steps: int
    normalizer: Optional[str]  # the VecNormalize file read, if any


class _Stub:
    """Stands in for a class the file names but this reader has no use for (SB3's VecNormalize,
    gymnasium's spaces): it keeps the pickled state, so the statistics can be read from it."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"state": state})


def _stub(module: str, name: str):
    return type(name, (_Stub,), {"__module__": module})


class _StateDictUnpickler(pickle.Unpickler):
    """torch.save's data.pkl of a state_dict: an OrderedDict of tensors rebuilt from storages."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str):
        super().__init__(io.BytesIO(data))
        self._archive, self._prefix = archive, prefix

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return lambda data, requires_grad, hooks, *rest: data
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a state_dict")

    def persistent_load(self, pid):
        _, dtype, key, _location, _numel = pid
        return np.frombuffer(self._archive.read(f"{self._prefix}/data/{key}"), dtype=np.dtype(dtype).newbyteorder("<"))


def _rebuild_tensor(storage, offset, size, stride, *rest):
    size, stride = tuple(size), tuple(stride)
    if not size:
        return np.array(storage[offset])
    flat = storage[offset:]
    return np.lib.stride_tricks.as_strided(flat, shape=size, strides=[s * flat.itemsize for s in stride]).copy()


#: What a pickled VecNormalize may name besides SB3's and gymnasium's classes (stubbed): NumPy's array and
#: scalar rebuilders and plain containers. Nothing that can call code: a pickle is a program.
_NORMALIZER_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"), ("numpy", "ndarray"),
    ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"), ("collections", "OrderedDict"),
    ("copyreg", "_reconstructor"), *(("builtins", n) for n in ("object", "set", "frozenset", "tuple", "list",
                                                                "dict", "float", "int", "bool", "str", "complex")),
}


class _NormalizerUnpickler(pickle.Unpickler):
    """A pickled VecNormalize: NumPy arrays as they are, SB3's and gymnasium's classes as stubs,
    NumPy 2's module names read by NumPy 1, and nothing else."""

    def find_class(self, module, name):
        module = module.replace("numpy._core", "numpy.core")
        if module.startswith("numpy.random"):
            return lambda *a, **k: _Stub()  # a space's generator: not needed, and not portable across NumPy
        if (module, name) in _NORMALIZER_GLOBALS:
            return super().find_class(module, name)
        if module.split(".")[0] in ("stable_baselines3", "gymnasium", "gym"):
            return _stub(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a VecNormalize file")


def read_state_dict(blob: bytes) -> Dict[str, np.ndarray]:
    """torch.save's zip format (torch >= 1.6) of a dict of tensors, as NumPy arrays."""
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        pkl = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pkl) != 1:
            raise ValueError("not a torch zip file (no data.pkl)")
        prefix = pkl[0][: -len("/data.pkl")]
        byteorder = f"{prefix}/byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise ValueError("big-endian tensors")
        return dict(_StateDictUnpickler(archive.read(pkl[0]), archive, prefix).load())


def _dense_stack(state: Dict[str, np.ndarray], prefix: str) -> List[np.ndarray]:
    """[kernel, bias, ...] of an nn.Sequential of Linear layers and activations, in order."""
    indices = sorted({int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix)})
    out = []
    for i in indices:
        out += [state[f"{prefix}{i}.weight"].T, state[f"{prefix}{i}.bias"]]
    return out


def _normalization(path: str, obs_dim: int):
    """(mean, var, clip, epsilon) of the VecNormalize beside ``path``, or the identity, and the file read."""
    found = [os.path.join(os.path.dirname(os.path.abspath(path)), n) for n in NORMALIZER_FILES]
    found = [f for f in found if os.path.exists(f)]
    if len(found) > 1:
        raise UsageError(f"--teacher '{path}' has both {' and '.join(NORMALIZER_FILES)} beside it: keep the one "
                         "it was trained with")
    if not found:
        return [0.0] * obs_dim, [1.0] * obs_dim, 1e9, 0.0, None
    try:
        with open(found[0], "rb") as f:
            vn = _NormalizerUnpickler(f).load()
        if not vars(vn).get("norm_obs", True):
            return [0.0] * obs_dim, [1.0] * obs_dim, 1e9, 0.0, found[0]
        rms = vn.obs_rms
        mean, var = np.ravel(rms.mean).astype(float), np.ravel(rms.var).astype(float)
        clip, eps = float(vn.clip_obs), float(vn.epsilon)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise UsageError(f"cannot read {found[0]} (VecNormalize statistics): {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from None
    if mean.shape != (obs_dim,):
        raise UsageError(f"{found[0]} has statistics for {mean.size} observation features, the policy {obs_dim}")
    return mean.tolist(), var.tolist(), clip, eps, found[0]


def _read(path: str):
    """(data record, state_dict, Keras activation, pi stack, vf stack) of an SB3 MlpPolicy zip."""
    try:
        with zipfile.ZipFile(path) as z:
            data = json.loads(z.read("data"))
            state = read_state_dict(z.read("policy.pth"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError) as e:
        raise UsageError(f"cannot read --teacher '{path}' as a Stable-Baselines3 model: {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from None
    kwargs = data.get("policy_kwargs") or {}
    if data.get("use_sde") or kwargs.get("squash_output"):
        raise UsageError(f"--teacher '{path}' uses gSDE or a squashed output; only a plain Gaussian or categorical "
                         "MlpPolicy can be a teacher")
    activation = str(kwargs.get("activation_fn", "<class 'torch.nn.modules.activation.Tanh'>")).split(".")[-1].rstrip("'>")
    if activation not in ACTIVATIONS:
        raise UsageError(f"--teacher '{path}' uses activation {activation}; a teacher needs one of "
                         f"{', '.join(ACTIVATIONS)}")
    other = sorted({k.split(".")[0] for k in state} - {"mlp_extractor", "action_net", "value_net", "log_std"})
    if other or "action_net.weight" not in state or "value_net.weight" not in state:
        raise UsageError(f"--teacher '{path}' is not an actor-critic MlpPolicy (it has "
                         f"{', '.join(other) or 'no action_net or value_net'})")
    return (data, state, ACTIVATIONS[activation], _dense_stack(state, "mlp_extractor.policy_net."),
            _dense_stack(state, "mlp_extractor.value_net."))


def sb3_architecture(path: str) -> Dict[str, object]:
    """The student's network settings that let it start as this teacher: its hidden layers, critic and
    activation (RunConfig's names), as a run directory's config.json gives them for a teacher run."""
    _, _, activation, pi, vf = _read(path)
    return {"actor_layers": [int(w.shape[1]) for w in pi[::2]], "critic_layers": [int(w.shape[1]) for w in vf[::2]],
            "activation": activation}


def load_sb3(path: str, env: str, action_low: Optional[List[float]], action_high: Optional[List[float]],
             obs_dim: int, n_actions: int) -> SB3Policy:
    """The policy in SB3 zip ``path`` as this project's actor, critic and ActorMeta for ``env``, whose
    observation size, action count (or size) and bounds are given (discrete: no bounds); one-line
    UsageError for anything that is not an MlpPolicy of a matching environment."""
    data, state, activation, hidden, vf = _read(path)
    weights = hidden + [state["action_net.weight"].T, state["action_net.bias"]]
    discrete = action_low is None
    space = data.get("action_space") or {}
    if weights[0].shape[0] != obs_dim or weights[-1].shape[0] != n_actions or ("n" in space) != discrete:
        kind = f"{space.get('n')} discrete actions" if "n" in space else f"{space.get('_shape')} continuous actions"
        raise UsageError(f"--teacher '{path}' has {weights[0].shape[0]} observation features and {kind}: "
                         f"not {env}'s {obs_dim} and {n_actions} {'discrete' if discrete else 'continuous'} actions")
    body = [keras.Input((obs_dim,))]
    for i in range(0, len(hidden), 2):
        body.append(keras.layers.Dense(hidden[i].shape[1], activation=activation, name=f"hidden_{i // 2}"))
    body.append(keras.layers.Dense(n_actions, name="output"))
    actor = keras.Sequential(body, name="sb3_actor")
    actor.set_weights([w.astype(np.float32) for w in weights])
    critic = ([w.astype(np.float32) for w in vf + [state["value_net.weight"].T, state["value_net.bias"]]]
              if activation == "tanh" else None)
    mean, var, clip, eps, normalizer = _normalization(path, obs_dim)
    log_std = None if discrete else np.ravel(state["log_std"]).astype(float).tolist()
    meta = ActorMeta(env=env, discrete=discrete, obs_mean=mean, obs_var=var, obs_clip=clip, obs_epsilon=eps,
                     action_low=action_low, action_high=action_high, action_log_std=log_std,
                     action_head="tanh" if discrete else "clip")
    return SB3Policy(actor, critic, [int(w.shape[1]) for w in vf[::2]], meta, int(data.get("num_timesteps") or 0),
                     normalizer)
