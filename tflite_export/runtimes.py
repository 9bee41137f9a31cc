"""Running a flatbuffer in the TFLite interpreter and in the TFLite Micro runtime.

Both wrappers take and return float observations/outputs and do the int8
(de)quantisation with the model's own scale and zero point, so callers compare
models without caring about their input type.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from dsp_tf.quiet import quiet_native_output

try:  # LiteRT, the interpreter's new home: tf.lite.Interpreter is deprecated since TF 2.19.
    from ai_edge_litert.interpreter import Interpreter
    INTERPRETER = "LiteRT (ai-edge-litert)"
except ImportError:  # an install without the export extra: same API, still in TensorFlow
    from dsp_tf._keras import tf

    Interpreter = tf.lite.Interpreter
    INTERPRETER = "tf.lite"


def quantize_int8(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float32 → int8, rounding half away from zero, as TFLite's QUANTIZE op and our C helper do."""
    v = np.asarray(x, np.float32) / np.float32(scale)
    v = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)) + np.float32(zero_point)
    return np.clip(v, -128, 127).astype(np.int8)


def _quantize(x, detail_dtype, scale, zero_point):
    if detail_dtype == np.int8:
        return quantize_int8(x, scale, zero_point)
    return x.astype(np.float32)


def _dequantize(y, scale, zero_point):
    if y.dtype == np.int8:
        return (y.astype(np.float32) - zero_point) * scale
    return y.astype(np.float32)


class TFLiteRunner:
    def __init__(self, model: bytes):
        with quiet_native_output():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
            self.interpreter = Interpreter(model_content=model, num_threads=1)
            self.interpreter.allocate_tensors()
        self._in = self.interpreter.get_input_details()[0]
        self._out = self.interpreter.get_output_details()[0]

    def input_quantization(self):
        """(scale, zero point) of the input tensor; (0.0, 0) for a float input."""
        scale, zp = self._in["quantization"]
        return float(scale), int(zp)

    def output_quantization(self):
        """(scale, zero point) of the output tensor; (0.0, 0) for a float output."""
        scale, zp = self._out["quantization"]
        return float(scale), int(zp)

    def set(self, obs: np.ndarray) -> None:
        scale, zp = self.input_quantization()
        self.interpreter.set_tensor(self._in["index"], _quantize(obs[None].astype(np.float32), self._in["dtype"], scale, zp))

    def invoke(self) -> None:
        self.interpreter.invoke()

    def get(self) -> np.ndarray:
        return _dequantize(self.interpreter.get_tensor(self._out["index"])[0], *self.output_quantization())

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        self.set(obs)
        self.invoke()
        return self.get()


def _micro_quantization(details):
    q = details["quantization_parameters"]
    return (float(q["scales"][0]) if len(q["scales"]) else 0.0,
            int(q["zero_points"][0]) if len(q["zero_points"]) else 0)


class MicroRunner(TFLiteRunner):
    """Same interface on the TFLite Micro interpreter (what runs on the board)."""

    def __init__(self, model: bytes):
        from tflite_micro import runtime

        self.interpreter = runtime.Interpreter.from_bytes(model)
        self._in = self.interpreter.get_input_details(0)
        self._out = self.interpreter.get_output_details(0)

    def input_quantization(self):
        return _micro_quantization(self._in)

    def set(self, obs: np.ndarray) -> None:
        scale, zp = self.input_quantization()
        self.interpreter.set_input(_quantize(obs[None].astype(np.float32), self._in["dtype"], scale, zp), 0)

    def output_quantization(self):
        return _micro_quantization(self._out)

    def get(self) -> np.ndarray:
        return _dequantize(self.interpreter.get_output(0)[0], *self.output_quantization())


class ScaledInput:
    """A runner whose raw observations first go through the per-feature input map,
    as the board's generated ``*_quantize_observation`` helper does."""

    def __init__(self, runner: TFLiteRunner, scaling):
        self.runner, self.scaling = runner, scaling

    def set(self, obs: np.ndarray) -> None:
        self.runner.set(self.scaling.apply(obs))

    def invoke(self) -> None:
        self.runner.invoke()

    def get(self) -> np.ndarray:
        return self.runner.get()

    def input_quantization(self):
        return self.runner.input_quantization()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        self.set(obs)
        self.invoke()
        return self.get()


def median_invoke_seconds(runner: TFLiteRunner, obs: np.ndarray, invokes: int = 1000) -> float:
    """Median wall time of ``invoke`` alone (input set once), after a short warm-up."""
    runner.set(obs)
    for _ in range(20):
        runner.invoke()
    times = []
    for _ in range(invokes):
        t = time.perf_counter()
        runner.invoke()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
