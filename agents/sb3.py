"""A Stable-Baselines3 PPO/A2C ``MlpPolicy`` (.zip) as a teacher, read without torch.

Most trained policies live in SB3 files, and asking for torch (and SB3) beside
TensorFlow to read one would double the install. The zip holds a JSON ``data``
record (spaces, ``policy_kwargs``) and ``policy.pth``, torch's zip of a pickled
``state_dict`` whose tensors are raw little-endian buffers: a restricted
unpickler maps them to NumPy and refuses anything else, so reading a teacher
runs no code from the file. Nor does it trust the file's sizes: every storage's
length, tensor's offset, sizes and strides and persistent id is checked before
an element is taken (issue 42), so a malformed file is a one-line UsageError,
never a crash or weights read from beyond a storage. ``VecNormalize``
statistics are read the same way from ``vecnormalize.pkl`` (rl-baselines3-zoo's
name) or ``vec_normalize.pkl`` beside the zip; without one the observations
were used as they are.

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
import math
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional

import numpy as np

from agents.errors import UsageError
from agents.inference import ActorMeta
from dsp_tf._keras import keras

#: The VecNormalize files looked for beside the zip: rl-baselines3-zoo's name, and SB3's docs' name.
NORMALIZER_FILES = ("vecnormalize.pkl", "vec_normalize.pkl")
#: torch activation classes of ``policy_kwargs["activation_fn"]`` → Keras names; SB3's default is Tanh.
ACTIVATIONS = {"Tanh": "tanh", "ReLU": "relu", "ELU": "elu"}


class _StorageType(NamedTuple):
    """A torch storage class the pickle names (``torch.FloatStorage``): how its member's bytes are read."""
    name: str
    dtype: np.dtype


#: The storages a policy's weights may come in, little-endian: an MlpPolicy holds floating point only, so
#: integer or bool bytes are refused rather than converted into weights.
_STORAGE_TYPES = {n: _StorageType(n, np.dtype(d))
                  for n, d in (("FloatStorage", "<f4"), ("DoubleStorage", "<f8"), ("HalfStorage", "<f2"))}
#: More dimensions than any state_dict tensor of a policy has (1-D and 2-D); keeps the index arithmetic small.
_MAX_DIMS = 8


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


class TorchFileError(ValueError):
    """A torch file that is not a state_dict of floating-point tensors inside their storages; the
    message names the file and its member or tensor."""


class _Storage(NamedTuple):
    """One storage: its member's bytes as elements, checked against its persistent id (a tuple, so the
    pickle cannot change it afterwards)."""
    member: str
    values: np.ndarray


class _Tensor(NamedTuple):
    """What the pickle gave ``_rebuild_tensor``, unchecked: it is checked and gathered once the
    state_dict is read, so that an error can name the tensor."""
    storage: object
    offset: object
    size: object
    stride: object


def _rebuild_tensor(storage, offset, size, stride, *rest) -> _Tensor:
    return _Tensor(storage, offset, size, stride)


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e).strip() else ""


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class _StateDictUnpickler(pickle.Unpickler):
    """torch.save's data.pkl of a state_dict: an OrderedDict of tensors rebuilt from storages. Every
    storage it names is checked here, before it is read; ``where`` names the file in messages."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, where: str):
        super().__init__(io.BytesIO(data))
        self._archive, self._prefix, self._where = archive, prefix, where
        self._storages: Dict[str, _Storage] = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return lambda data, requires_grad, hooks, *rest: data
        if module == "torch" and name in _STORAGE_TYPES:
            return _STORAGE_TYPES[name]
        if module == "torch" and name.endswith("Storage"):
            raise TorchFileError(f"{self._where}/{self._prefix}/data.pkl: torch.{name} holds no policy weights, "
                                 f"which are floating point ({', '.join(_STORAGE_TYPES)})")
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a state_dict")

    def persistent_load(self, pid):
        """torch's ('storage', storage type, key, location, element count): the member ``data/<key>``,
        whose length must be the count's."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and isinstance(pid[0], str) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str) and isinstance(pid[3], str)
                and _is_int(pid[4]) and pid[4] >= 0):
            raise TorchFileError(f"{self._where}/{self._prefix}/data.pkl: a persistent id is not ('storage', "
                                 "floating-point storage type, key, location, element count)")
        _, kind, key, _location, numel = pid
        member = f"{self._prefix}/data/{key}"
        if member not in self._storages:
            try:
                size = self._archive.getinfo(member).file_size
            except KeyError:
                raise TorchFileError(f"{self._where}/{self._prefix}/data.pkl names storage {key!r:.40}, which "
                                     "is not in the file") from None
            blob = b""
            if size == numel * kind.dtype.itemsize:  # the zip's declared size first: read nothing too large
                blob = self._archive.read(member)
                size = len(blob)
            if size != numel * kind.dtype.itemsize:
                raise TorchFileError(f"{self._where}/{member} holds {size} bytes, not the {numel} "
                                     f"{kind.dtype.name} values ({numel * kind.dtype.itemsize} bytes) its "
                                     "persistent id claims")
            self._storages[member] = _Storage(member, np.frombuffer(blob, dtype=kind.dtype))
        storage = self._storages[member]
        if storage.values.dtype != kind.dtype or storage.values.size != numel:
            raise TorchFileError(f"{self._where}/{member} is named as two different storages")
        return storage


def _gather(name: str, tensor: _Tensor, where: str) -> np.ndarray:
    """``tensor``'s elements taken by index from its storage, once every index is known to lie inside it:
    the offset, sizes and strides are the file's, and as_strided would read wherever they point."""
    if not isinstance(tensor.storage, _Storage):
        raise TorchFileError(f"{where}: tensor '{name:.80}' has no storage")
    storage, offset, size, stride = tensor
    what = f"{where}/{storage.member} (tensor '{name:.80}')"
    if not (_is_int(offset) and offset >= 0 and isinstance(size, tuple) and isinstance(stride, tuple)
            and len(size) == len(stride) <= _MAX_DIMS and all(_is_int(x) and x >= 0 for x in size + stride)):
        raise TorchFileError(f"{what}: its offset, sizes and strides are not non-negative integers, as many "
                             f"strides as sizes (at most {_MAX_DIMS})")
    count, n = math.prod(size), storage.values.size
    if count > n:  # a policy's tensors repeat no element, so none holds more than its storage
        raise TorchFileError(f"{what}: sizes {size} make {count} values, more than its storage's {n}")
    last = offset + sum((k - 1) * s for k, s in zip(size, stride)) if count else offset - 1
    if last >= n:
        raise TorchFileError(f"{what}: sizes {size} and strides {stride} from offset {offset} reach element "
                             f"{last} of a storage of {n}")
    index = np.asarray(offset, dtype=np.int64)
    for k, s in zip(size, stride):
        index = index[..., None] + np.arange(k, dtype=np.int64) * (s if k > 1 else 0)
    return np.asarray(storage.values.take(index))  # take checks the bounds again, and copies


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


def read_state_dict(blob: bytes, where: str = "the torch file") -> Dict[str, np.ndarray]:
    """torch.save's zip format (torch >= 1.6) of a dict of tensors, as NumPy arrays. Nothing in it is
    trusted: a TorchFileError or UnpicklingError naming ``where`` and its member (or a zip error) for
    anything but a state_dict of floating-point tensors that lie inside their storages."""
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        pkl = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pkl) != 1:
            raise TorchFileError(f"{where} is not a torch zip file (no data.pkl)")
        prefix = pkl[0][: -len("/data.pkl")]
        byteorder = f"{prefix}/byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise TorchFileError(f"{where} has big-endian tensors")
        try:
            loaded = _StateDictUnpickler(archive.read(pkl[0]), archive, prefix, where).load()
        except TorchFileError:
            raise
        except Exception as e:  # noqa: BLE001 - a malformed pickle fails in many ways, all of them the file's
            kind = "" if isinstance(e, pickle.UnpicklingError) else f"{type(e).__name__}: "
            raise pickle.UnpicklingError(f"{where}/{pkl[0]}: {kind}{_first_line(e)}") from None
        if not isinstance(loaded, dict) or not all(isinstance(k, str) and isinstance(v, _Tensor)
                                                   for k, v in dict.items(loaded)):
            raise TorchFileError(f"{where}/{pkl[0]} is not a state_dict of tensors")
        return {k: _gather(k, v, where) for k, v in dict.items(loaded)}


_LAYER = re.compile(r"(0|[1-9][0-9]*)\.(weight|bias)")


def _dense_stack(path: str, state: Dict[str, np.ndarray], prefix: str, head: str) -> List[np.ndarray]:
    """[kernel, bias, ...] of the Linear layers of nn.Sequential ``prefix`` (activations between them
    have no weights) and then of ``head``, in order. The file's sizes are not trusted: each layer must
    have a 2-D weight and a matching bias, chained to the layer before it."""
    names = [k[len(prefix):] for k in state if k.startswith(prefix)]
    if not all(_LAYER.fullmatch(n) for n in names):
        raise UsageError(f"--teacher '{path}' has tensors under {prefix} that are not Linear layers' weights")
    out: List[np.ndarray] = []
    for layer in [f"{prefix}{i}" for i in sorted({int(n.split(".")[0]) for n in names})] + [head]:
        w, b = state.get(f"{layer}.weight"), state.get(f"{layer}.bias")
        if (w is None or b is None or w.ndim != 2 or b.shape != w.shape[:1] or 0 in w.shape
                or (out and w.shape[1] != out[-1].shape[0])):
            raise UsageError(f"--teacher '{path}' has a layer {layer} that is not a Linear layer after the one "
                             f"before it: weight {None if w is None else w.shape}, bias "
                             f"{None if b is None else b.shape}")
        out += [w.T, b]
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
    """(data record, state_dict, Keras activation, pi stack, vf stack) of an SB3 MlpPolicy zip; each stack
    ends with its head (action_net, value_net), and all of its sizes agree."""
    try:
        with zipfile.ZipFile(path) as z:
            data = json.loads(z.read("data"))
            state = read_state_dict(z.read("policy.pth"), "policy.pth")
        if not isinstance(data, dict) or not all(isinstance(data.get(k) or {}, dict)
                                                 for k in ("policy_kwargs", "action_space")):
            raise ValueError("its data record is not an SB3 one")
    except Exception as e:  # noqa: BLE001 - the file is data: whatever it makes fail is the same user error
        detail = _first_line(e) if isinstance(e, TorchFileError) else f"{type(e).__name__}: {_first_line(e)}"
        raise UsageError(f"cannot read --teacher '{path}' as a Stable-Baselines3 model: {detail}") from None
    kwargs = data.get("policy_kwargs") or {}
    if data.get("use_sde") or kwargs.get("squash_output"):
        raise UsageError(f"--teacher '{path}' uses gSDE or a squashed output; only a plain Gaussian or categorical "
                         "MlpPolicy can be a teacher")
    activation = str(kwargs.get("activation_fn", "<class 'torch.nn.modules.activation.Tanh'>")).split(".")[-1].rstrip("'>")
    if activation not in ACTIVATIONS:
        raise UsageError(f"--teacher '{path}' uses activation {activation}; a teacher needs one of "
                         f"{', '.join(ACTIVATIONS)}")
    parts = {".".join(k.split(".")[:2]) if k.startswith("mlp_extractor.") else k.split(".")[0] for k in state}
    other = sorted(parts - {"mlp_extractor.policy_net", "mlp_extractor.value_net", "action_net", "value_net",
                            "log_std"})
    if other or "action_net.weight" not in state or "value_net.weight" not in state:
        raise UsageError(f"--teacher '{path}' is not an actor-critic MlpPolicy (it has "
                         f"{', '.join(other) or 'no action_net or value_net'})")
    pi = _dense_stack(path, state, "mlp_extractor.policy_net.", "action_net")
    vf = _dense_stack(path, state, "mlp_extractor.value_net.", "value_net")
    log_std = state.get("log_std")  # a Gaussian policy's, one per action; a categorical one has none
    log_std_shape = pi[-1].shape if "n" not in (data.get("action_space") or {}) else None
    if (vf[0].shape[0] != pi[0].shape[0] or vf[-1].shape != (1,)
            or getattr(log_std, "shape", None) != log_std_shape):
        raise UsageError(f"--teacher '{path}' is not an actor-critic MlpPolicy: its actor reads {pi[0].shape[0]} "
                         f"features and its critic {vf[0].shape[0]}, its value net has {vf[-1].shape[0]} outputs, "
                         f"{pi[-1].shape[0]} actions and log_std {None if log_std is None else log_std.shape}")
    return data, state, ACTIVATIONS[activation], pi, vf


def sb3_architecture(path: str) -> Dict[str, object]:
    """The student's network settings that let it start as this teacher: its hidden layers, critic and
    activation (RunConfig's names), as a run directory's config.json gives them for a teacher run."""
    _, _, activation, pi, vf = _read(path)
    return {"actor_layers": [int(w.shape[1]) for w in pi[:-2:2]],
            "critic_layers": [int(w.shape[1]) for w in vf[:-2:2]], "activation": activation}


def load_sb3(path: str, env: str, action_low: Optional[List[float]], action_high: Optional[List[float]],
             obs_dim: int, n_actions: int) -> SB3Policy:
    """The policy in SB3 zip ``path`` as this project's actor, critic and ActorMeta for ``env``, whose
    observation size, action count (or size) and bounds are given (discrete: no bounds); one-line
    UsageError for anything that is not an MlpPolicy of a matching environment."""
    data, state, activation, weights, vf = _read(path)
    hidden = weights[:-2]
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
    critic = [w.astype(np.float32) for w in vf] if activation == "tanh" else None
    mean, var, clip, eps, normalizer = _normalization(path, obs_dim)
    log_std = None if discrete else np.ravel(state["log_std"]).astype(float).tolist()
    meta = ActorMeta(env=env, discrete=discrete, obs_mean=mean, obs_var=var, obs_clip=clip, obs_epsilon=eps,
                     action_low=action_low, action_high=action_high, action_log_std=log_std,
                     action_head="tanh" if discrete else "clip")
    return SB3Policy(actor, critic, [int(w.shape[1]) for w in vf[:-2:2]], meta, int(data.get("num_timesteps") or 0),
                     normalizer)
