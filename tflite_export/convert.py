"""Keras actor → TFLite flatbuffers (float32 and full-integer int8).

Only what a microcontroller can run is accepted: Dense layers, element-wise
activations and an actor's two small layers (observation normalisation and
action bounds, recognised by tflite_export.actor_layers). Anything else is refused up front with the
layer named, instead of failing deep inside the converter.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from dsp_tf._keras import keras, tf
from dsp_tf.chain import ELEMENTWISE_LAYERS
from dsp_tf.errors import UsageError
from dsp_tf.quiet import quiet_native_output
from tflite_export.actor_layers import check_recognised, computing_layers, is_bounded_action, is_normalization


def _check_layer(layer: keras.layers.Layer) -> None:
    if isinstance(layer, (keras.layers.Dense,) + ELEMENTWISE_LAYERS):
        return
    if is_normalization(layer) or is_bounded_action(layer):
        try:
            check_recognised(layer)
        except ValueError as e:
            raise UsageError(str(e)) from None
        return
    raise UsageError(f"cannot export layer '{layer.name}' of type {type(layer).__name__}: "
                     "only Dense, element-wise activation and observation/action layers are supported")


def check_exportable(model: keras.Model) -> None:
    """Refuses, naming the layer, what a board cannot run, before the converter fails obscurely."""
    if not isinstance(model, keras.Model):
        raise UsageError(f"expected a Keras model, got {type(model).__name__}")
    for layer in computing_layers(model):
        _check_layer(layer)
    if len(model.inputs) != 1 or len(model.outputs) != 1 or len(model.inputs[0].shape) != 2:
        raise UsageError("the actor must map one observation vector to one output vector")


def _converter(model: keras.Model) -> tf.lite.TFLiteConverter:
    # A concrete function with batch size 1: what a board invokes, and no
    # dynamic-shape bookkeeping in the flatbuffer.
    dim = int(model.inputs[0].shape[-1])
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, dim], tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
    # Conversion metadata (converter version, environment) is of no use on a board.
    converter.exclude_conversion_metadata = True
    return converter


def strip_for_board(flatbuffer: bytes) -> bytes:
    """Drops what only desktop tooling reads: tensor and subgraph names, signature
    definitions and the model description. Ops, tensors, buffers and quantisation
    are untouched, so both interpreters compute the same outputs; a compact
    actor's file shrinks by about a third, since its names outweigh its weights.
    """
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    model.description = None
    model.signatureDefs = None
    for subgraph in model.subgraphs:
        subgraph.name = None
        for tensor in subgraph.tensors:
            tensor.name = None
    builder = flatbuffers.Builder(len(flatbuffer))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def to_float32(model: keras.Model) -> bytes:
    check_exportable(model)
    with quiet_native_output():  # the converter's op summary and SavedModel notices
        converter = _converter(model)
        return strip_for_board(converter.convert())


def check_observations(actor: keras.Model, observations) -> np.ndarray:
    """[N, obs_dim] finite float32, N ≥ 1, or a ValueError saying what is wrong."""
    x = np.asarray(observations)
    width = int(actor.inputs[0].shape[-1])
    if x.ndim != 2 or x.shape[0] < 1:
        raise UsageError(f"observations must be a non-empty [N, {width}] array, got shape {x.shape}")
    if x.shape[1] != width:
        raise UsageError(f"observations have {x.shape[1]} features but the actor takes {width}")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise UsageError("observations must be finite numbers (found NaN, inf or non-numbers)")
    return x.astype(np.float32)


def to_int8(model: keras.Model, representative: np.ndarray) -> bytes:
    """Full-integer model with int8 input and output, calibrated on ``representative``.

    Calibration data must be observations the policy actually meets: ranges
    from random noise would waste the 256 levels on states that never occur.
    """
    check_exportable(model)
    representative = check_observations(model, representative)

    def dataset() -> Iterable:
        for row in representative:
            yield [row[None, :]]

    converter = _converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with quiet_native_output():
        return strip_for_board(converter.convert())
