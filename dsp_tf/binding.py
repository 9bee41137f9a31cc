"""Which Keras a model belongs to, and the little dsp_tf needs from that Keras.

dsp_tf serves two Kerases with one API: Keras 3 (what ``import keras`` gives on
TensorFlow >= 2.16, on any of its backends) and tf_keras (Keras 2, which tfmot
and tf-agents need). A model carries its Keras in its classes, so every public
function asks ``binding_of(model)`` instead of assuming one Keras for the whole
process: nothing global has to be switched, and the import order of ``keras``,
``tensorflow`` and ``dsp_tf`` does not matter.

``KerasBinding`` declares what the rest of the library may use: the Keras API
module, the tensor operations of the penalties (``keras.ops`` on Keras 3, ``tf``
on tf_keras, so Keras 3 runs on JAX and PyTorch too), the layer types a chain may
hold, and the classes dsp_tf adds to a model (``NeuronMask``, the callback).
Each binding is built once, on first use, and registers those classes with its
Keras so saved models reload.
"""
from __future__ import annotations

import abc
import functools
import importlib.metadata
import sys
import warnings
from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np


def keras3_installed() -> bool:
    """Whether the ``keras`` distribution is Keras 3, asked without importing it (TF 2.15 installs Keras 2.15)."""
    try:
        return int(importlib.metadata.version("keras").split(".")[0]) >= 3
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False


def import_keras3() -> Any:
    """``import keras`` (Keras 3). When it imports TensorFlow, the C++ start-up notices TensorFlow
    writes before any log level applies are kept out of the terminal (shown if the import fails)."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    from dsp_tf.quiet import quiet_native_output

    with quiet_native_output():
        import keras
    return keras


class NeuronMask(abc.ABC):
    """Multiplies each unit by a fixed 0/1 value (Eq. 8: h = σ(θh) ⊙ m), as a Keras layer.

    The mask is a non-trainable variable so that it is checkpointed with the model
    and compiled graphs read its current value after an update. Each Keras has its
    own layer class (``binding_of(model).NeuronMask``); ``isinstance(layer,
    NeuronMask)`` is true for both. ``NeuronMask(units)`` builds a layer of the
    default Keras (``default_binding``).
    """

    def __new__(cls, units: int, **kwargs):
        return default_binding().NeuronMask(units, **kwargs)


class _NeuronMaskMethods:
    """The body of both Kerases' NeuronMask; ``_binding`` and ``_cast`` are set on each concrete class.

    ``_cast`` is the backend's own function (``tf.cast``, ``keras.ops.cast``), not a method of ours:
    autograph, which traces tf_keras's ``call``, then leaves it alone instead of converting our source.
    """

    _binding: "KerasBinding"
    _cast: Callable

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        self.mask = self.add_weight(
            name="mask", shape=(self.units,), initializer="ones",
            trainable=False, dtype=self.dtype)
        super().build(input_shape)

    def call(self, inputs):
        return inputs * self._cast(self.mask, inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config["units"] = self.units
        return config


class KerasBinding(abc.ABC):
    """What dsp_tf uses of one Keras. Tensor functions take and return that Keras's tensors."""

    #: "keras3" or "tf_keras": in messages and tests.
    name: str
    #: The Keras API module (``keras`` or ``tf_keras``).
    keras: Any
    #: This Keras's NeuronMask layer class.
    NeuronMask: type
    #: Whether the pruner ranks neurons on NumPy copies of the kernels (see ``StructuredPruner._omega``).
    numpy_scores: bool

    def __init__(self, keras_module: Any, cast: Callable):
        self.keras = keras_module
        layers = keras_module.layers
        #: Layers that keep the feature count and act per unit.
        self.elementwise_layers: Tuple[type, ...] = (
            layers.Activation, layers.Dropout, layers.ReLU, layers.LeakyReLU, layers.ELU, layers.GaussianNoise)
        #: Layers allowed in front of the first Dense only (they act on the model's input).
        self.front_layers: Tuple[type, ...] = (layers.Normalization, layers.Flatten, layers.Rescaling)
        #: Layers that take several tensors: a model with one is not a chain.
        self.merge_layers: Tuple[type, ...] = (
            layers.Add, layers.Subtract, layers.Multiply, layers.Average, layers.Maximum, layers.Minimum,
            layers.Concatenate, layers.Dot)
        self.NeuronMask = type("NeuronMask", (_NeuronMaskMethods, layers.Layer),
                               {"__module__": "dsp_tf.chain", "__qualname__": "NeuronMask", "_binding": self,
                                "_cast": staticmethod(cast), "__doc__": NeuronMask.__doc__})
        NeuronMask.register(self.NeuronMask)
        #: Layers dsp_tf adds to a masked model besides the masks (identities, skipped when reading a chain).
        self.hook_layers: Tuple[type, ...] = ()
        self._callback_class: Optional[type] = None

    def owns(self, obj: Any) -> bool:
        """Whether ``obj`` is a layer (or model) of this Keras."""
        return isinstance(obj, self.keras.layers.Layer)

    @property
    def callback_class(self) -> type:
        """StructuredPruningCallback on this Keras's Callback (built on first use: callbacks imports the pruner)."""
        if self._callback_class is None:
            from dsp_tf.callbacks import StructuredPruningCallback, _CallbackMethods

            self._callback_class = type("StructuredPruningCallback",
                                        (_CallbackMethods, self.keras.callbacks.Callback),
                                        {"__module__": "dsp_tf.callbacks", "__doc__": StructuredPruningCallback.__doc__})
            StructuredPruningCallback.register(self._callback_class)
        return self._callback_class

    def register(self, *classes: type) -> None:
        """Makes ``classes`` known to this Keras's deserialisation, as "dsp_tf>Name" and as the bare name."""
        for cls in classes:
            self.keras.utils.register_keras_serializable(package="dsp_tf", name=cls.__name__)(cls)
            self.keras.utils.get_custom_objects()[cls.__name__] = cls

    @abc.abstractmethod
    def masked_model(self, inputs, outputs, name: str, penalty: Optional[Callable[[], Any]]):
        """A functional model from ``inputs`` to ``outputs`` whose fit loss includes ``penalty()``."""

    # Tensor operations, on this Keras's tensors.
    @abc.abstractmethod
    def sum(self, x, axis: Optional[int] = None): ...

    @abc.abstractmethod
    def square(self, x): ...

    @abc.abstractmethod
    def sqrt(self, x): ...

    @abc.abstractmethod
    def abs(self, x): ...

    @abc.abstractmethod
    def cast(self, x, dtype): ...

    @abc.abstractmethod
    def float32(self, x):
        """``x`` (NumPy, list or tensor) as a float32 tensor."""

    @abc.abstractmethod
    def add_n(self, xs: Sequence): ...

    @abc.abstractmethod
    def is_tensor(self, x) -> bool:
        """A tensor or variable of this Keras's backend."""

    @abc.abstractmethod
    def to_numpy(self, x) -> np.ndarray: ...

    def __repr__(self) -> str:
        return f"<dsp_tf binding {self.name}>"


class _TfKeras(KerasBinding):
    name = "tf_keras"
    numpy_scores = False

    def __init__(self, keras_module, tf):
        super().__init__(keras_module, tf.cast)
        self.tf = tf
        from dsp_tf.regularizers import REGULARIZERS

        # Bare names only, as before Keras 3 support: "NeuronMask" and the schedule are found by
        # tf_keras's loader (and tfmot's) among the global custom objects.
        keras_module.utils.get_custom_objects()["NeuronMask"] = self.NeuronMask
        from dsp_tf.schedule import DynamicPruningSchedule

        keras_module.utils.get_custom_objects()[DynamicPruningSchedule.__name__] = DynamicPruningSchedule
        self.register(*REGULARIZERS)
        if not issubclass(REGULARIZERS[0], keras_module.regularizers.Regularizer):
            # Where Keras 3 is installed they subclass its Regularizer (one class serves both Kerases);
            # tf_keras serialises them all the same, but would warn each time that they are not its own.
            warnings.filterwarnings("ignore", category=UserWarning,
                                    message=r"The `keras.regularizers.serialize\(\)` API .*dsp_tf\.regularizers")

    def masked_model(self, inputs, outputs, name, penalty):
        model = self.keras.Model(inputs, outputs, name=name)
        if penalty is not None:
            # tf_keras adds zero-argument callables to model.losses, so model.fit
            # users get the penalty in their training loss with no extra code.
            model.add_loss(penalty)
        return model

    def sum(self, x, axis=None):
        return self.tf.reduce_sum(x, axis=axis)

    def square(self, x):
        return self.tf.square(x)

    def sqrt(self, x):
        return self.tf.sqrt(x)

    def abs(self, x):
        return self.tf.abs(x)

    def cast(self, x, dtype):
        return self.tf.cast(x, dtype)

    def float32(self, x):
        return self.tf.cast(self.tf.convert_to_tensor(x), self.tf.float32)

    def add_n(self, xs):
        return self.tf.add_n(list(xs))

    def is_tensor(self, x):
        return self.tf.is_tensor(x) or isinstance(x, self.tf.Variable)

    def to_numpy(self, x):
        return np.asarray(x.numpy()) if self.is_tensor(x) else np.asarray(x)


class _PruningPenaltyMethods:
    """Identity layer that adds the pruner's penalty to the model's losses on each call.

    Keras 3 has no callable losses (``Model.add_loss`` takes tensors made inside
    ``call``), so the penalty is computed inside a layer's call, where Keras 3
    collects it on every backend. The penalty is not saved: a reloaded masked
    model has this layer as an identity, as tf_keras drops a callable loss.
    """

    def __init__(self, penalty: Optional[Callable[[], Any]] = None, **kwargs):
        super().__init__(**kwargs)
        self._penalty = penalty

    def call(self, inputs):
        if self._penalty is not None:
            self.add_loss(self._penalty())
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return super().get_config()


class _Keras3(KerasBinding):
    name = "keras3"
    numpy_scores = True

    def __init__(self, keras_module):
        super().__init__(keras_module, keras_module.ops.cast)
        self.ops = keras_module.ops
        self.PruningPenalty = type("PruningPenalty", (_PruningPenaltyMethods, keras_module.layers.Layer),
                                   {"__module__": "dsp_tf.chain", "__doc__": _PruningPenaltyMethods.__doc__})
        self.hook_layers = (self.PruningPenalty,)
        from dsp_tf.regularizers import REGULARIZERS

        self.register(self.NeuronMask, self.PruningPenalty, *REGULARIZERS)

    def masked_model(self, inputs, outputs, name, penalty):
        if penalty is not None:
            outputs = self.PruningPenalty(penalty, name=f"{name}_penalty")(outputs)
        return self.keras.Model(inputs, outputs, name=name)

    def sum(self, x, axis=None):
        return self.ops.sum(x, axis=axis)

    def square(self, x):
        return self.ops.square(x)

    def sqrt(self, x):
        return self.ops.sqrt(x)

    def abs(self, x):
        return self.ops.abs(x)

    def cast(self, x, dtype):
        return self.ops.cast(x, dtype)

    def float32(self, x):
        return self.ops.cast(self.ops.convert_to_tensor(x), "float32")

    def add_n(self, xs):
        return functools.reduce(self.ops.add, list(xs))

    def is_tensor(self, x):
        return self.keras.ops.is_tensor(x) or isinstance(x, self.keras.Variable)

    def to_numpy(self, x):
        if isinstance(x, self.keras.Variable):
            return np.asarray(x.numpy())  # half the time of convert_to_numpy, on every backend
        return np.asarray(self.ops.convert_to_numpy(x))


@functools.lru_cache(maxsize=None)
def tf_keras_binding() -> KerasBinding:
    """The tf_keras binding. Where ``dsp_tf._keras`` (the tf_keras path: tfmot, the agent layer) is
    loaded, its module; otherwise ``tf_keras`` imported as it is, so TF_USE_LEGACY_KERAS stays unset."""
    if "dsp_tf._keras" in sys.modules or not keras3_installed():
        from dsp_tf._keras import keras, tf
    else:
        import tensorflow as tf
        import tf_keras as keras
    return _TfKeras(keras, tf)


@functools.lru_cache(maxsize=None)
def keras3_binding() -> KerasBinding:
    """The Keras 3 binding (on whichever backend Keras 3 was started with)."""
    return _Keras3(import_keras3())


def default_binding() -> KerasBinding:
    """For what has no model to tell (``NeuronMask(units)``): tf_keras once its path is taken or
    where no Keras 3 is installed (TensorFlow 2.15), else Keras 3."""
    if "dsp_tf._keras" in sys.modules or not keras3_installed():
        return tf_keras_binding()
    return keras3_binding()


def _loaded_bindings():
    """Bindings for the Kerases already imported in this process (detection imports nothing)."""
    keras3 = sys.modules.get("keras")
    if keras3 is not None and keras3_installed():
        yield keras3_binding
    if "tf_keras" in sys.modules:
        yield tf_keras_binding


def binding_of(model_or_layers: Any, what: str = "model") -> KerasBinding:
    """The binding of the Keras ``model_or_layers`` (a model, a layer or a list of layers) was built with.

    ValueError naming what was given when it is none of these, so that a NumPy
    array, a PyTorch module or a standalone Keras 2 model (TensorFlow 2.15's
    ``keras`` package, which dsp_tf does not serve) fails in one line.
    """
    probe = model_or_layers
    if isinstance(model_or_layers, (list, tuple)):
        if not model_or_layers:
            raise ValueError(f"expected a Keras {what} or a list of its Dense layers, got an empty list")
        probe = model_or_layers[0]
    for get in _loaded_bindings():
        binding = get()
        if binding.owns(probe):
            return binding
    raise ValueError(f"expected a Keras {what} (Keras 3 or tf_keras) or a list of its Dense layers, "
                     f"got {type(probe).__module__}.{type(probe).__name__}")


def binding_of_tensor(x: Any) -> Optional[KerasBinding]:
    """The binding whose backend ``x`` is a tensor or variable of, or None."""
    for get in _loaded_bindings():
        binding = get()
        if binding.is_tensor(x):
            return binding
    return None
