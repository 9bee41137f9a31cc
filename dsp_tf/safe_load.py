"""Loading a shared Keras file without running code from it.

Keras 2's HDF5 loader rebuilds a ``Lambda`` layer from the Python bytecode saved in
the file (and ``safe_mode`` does not apply to HDF5), so opening a policy someone
sent you would run whatever they put there. A policy is a plain chain of layers
this project knows, so the saved model config is read as JSON first, before
anything is deserialised, and every layer must be of a class on an allow-list;
anything else (``Lambda`` first of all) is refused with one line naming it. A
``.keras`` file is checked the same way and then loaded with ``safe_mode``.
"""
from __future__ import annotations

import json
import os
import zipfile
from typing import Any, Iterable, Iterator, Optional

from dsp_tf._keras import keras
from dsp_tf.chain import ELEMENTWISE_ACTIVATIONS
from dsp_tf.errors import UsageError

#: Keras's own layers and models a Dense policy (masked or compact) is made of.
KERAS_CLASSES = frozenset({
    "Sequential", "Functional", "Model", "InputLayer", "Dense", "Activation", "Dropout", "ReLU",
    "LeakyReLU", "ELU", "GaussianNoise", "NeuronMask", "Normalization", "Rescaling", "Flatten"})
#: Activations given by name (a dict or any other form could name a registered callable).
SAFE_ACTIVATIONS = ELEMENTWISE_ACTIVATIONS | {"softmax"}
#: Keras's own objects a layer's config may hold besides layers: initializers, regularizers,
#: constraints, dtype policies. Each is rebuilt by name from Keras itself, with no code from the file.
KERAS_OBJECTS = frozenset({
    "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform", "LecunNormal", "Zeros", "Ones",
    "Constant", "RandomNormal", "RandomUniform", "TruncatedNormal", "Orthogonal", "Identity", "VarianceScaling",
    "L1", "L2", "L1L2", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "RadialConstraint",
    "DTypePolicy", "Policy", "function", "__tuple__"})
#: Where a serialised object may say it comes from (Keras 3 and tf_keras write ``module``).
SAFE_MODULES = ("keras", "tf_keras", "dsp_tf", "agents", "builtins")
#: Classes whose config holds further layers.
MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})


def _layers(config: dict) -> Iterator[dict]:
    """Every layer config of a model config, the models nested in it included."""
    yield config
    if config.get("class_name") in MODEL_CLASSES:
        for layer in (config.get("config") or {}).get("layers") or []:
            if not isinstance(layer, dict):
                raise ValueError("a layer entry is not a config")
            yield from _layers(layer)


def _objects(value: Any) -> Iterator[dict]:
    """Every serialised object (a dict with a ``class_name``) anywhere in a config."""
    if isinstance(value, dict):
        if "class_name" in value:
            yield value
        for item in value.values():
            yield from _objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item)


def _activation_name(activation: Any) -> Optional[str]:
    """A built-in's name: a string, or Keras 3's {"class_name": "function", "config": name} form; None
    for anything else (a dict naming a class, a list), which is refused."""
    if isinstance(activation, str):
        return activation
    if isinstance(activation, dict) and activation.get("class_name") == "function" \
            and isinstance(activation.get("config"), str):
        return activation["config"]
    return None


def _check_origin(obj: dict, path: str) -> None:
    """Keras's loaders also find a class by ``registered_name`` and ``module``: both must agree with
    the allow-listed ``class_name``, or a file could name any class registered in the process."""
    kind = obj.get("class_name")
    registered, module = obj.get("registered_name"), obj.get("module")
    same = registered in (None, kind) or (isinstance(registered, str) and registered.endswith(f">{kind}")
                                          and registered.split(">")[0] in SAFE_MODULES)
    if kind == "function":
        same = registered in (None, obj.get("config"))
    if not same:
        raise UsageError(f"'{path}': an object of class '{kind}' is registered as {registered!r}: refused")
    if module is not None and not (isinstance(module, str) and module.split(".")[0] in SAFE_MODULES):
        raise UsageError(f"'{path}': an object of class '{kind}' comes from module {module!r}: refused")


def check_model_config(config: Any, path: str, allowed: Iterable[str] = ()) -> None:
    """Refuses a saved model config holding anything outside the allow-lists, naming it."""
    allowed = KERAS_CLASSES | frozenset(allowed)
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise UsageError(f"'{path}' holds no Keras model config")
    try:
        layers = list(_layers(config))
        objects = list(_objects(config))
    except (ValueError, AttributeError, TypeError, RecursionError):
        raise UsageError(f"'{path}' has a malformed model config") from None
    layer_ids = {id(layer) for layer in layers}
    for layer in layers:
        kind = layer.get("class_name")
        inner = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        name = inner.get("name", layer.get("name", "?"))
        if kind == "Lambda":
            raise UsageError(f"'{path}' has a Lambda layer ('{name}'), which would run code saved in the "
                             "file: refused (a policy file holds Dense layers only)")
        if kind not in allowed:
            raise UsageError(f"'{path}' has a layer of class '{kind}' ('{name}'), which this tool does not "
                             f"load (it loads: {', '.join(sorted(allowed))})")
        if "activation" in inner and _activation_name(inner["activation"]) not in SAFE_ACTIVATIONS:
            raise UsageError(f"'{path}': layer '{name}' has activation {str(inner['activation'])[:60]}, "
                             "not one of Keras's built-in element-wise activations: refused")
    for obj in objects:
        if id(obj) not in layer_ids and obj.get("class_name") not in KERAS_OBJECTS | allowed:
            raise UsageError(f"'{path}' holds an object of class {str(obj.get('class_name'))[:60]!r}, which this "
                             "tool does not load: refused")
        _check_origin(obj, path)


def saved_model_config(path: str) -> dict:
    """The model config a .h5 or .keras file holds, read as JSON without deserialising anything."""
    try:
        if path.endswith(".keras"):
            with zipfile.ZipFile(path) as z:
                return json.loads(z.read("config.json"))
        import h5py

        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except Exception as e:  # noqa: BLE001 - zip/h5 readers raise many types for one bad file
        raise UsageError(f"cannot read '{path}' as a Keras model file: {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from None
    if raw is None:
        raise UsageError(f"'{path}' holds weights only, no model config: save the whole model")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(raw)
    except (ValueError, TypeError, RecursionError) as e:
        raise UsageError(f"'{path}' has an unreadable model config: {type(e).__name__}") from None


def load_model_safely(path: str, allowed: Iterable[str] = (),
                      custom_objects: Optional[dict] = None) -> keras.Model:
    """``keras.models.load_model(path, compile=False)`` after checking that the file holds only
    layers of Keras's own Dense-chain classes and ``allowed`` (registered custom classes the
    caller knows). One UsageError naming the file for anything refused or unreadable."""
    if not os.path.isfile(path):
        raise UsageError(f"'{path}' does not exist")
    if not path.endswith((".h5", ".keras")):
        raise UsageError(f"'{path}' is not a Keras model file (.h5 or .keras)")
    check_model_config(saved_model_config(path), path, allowed)
    kwargs = {"safe_mode": True} if path.endswith(".keras") else {}
    try:
        return keras.models.load_model(path, compile=False, custom_objects=custom_objects, **kwargs)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise UsageError(f"cannot read '{path}': {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from None
