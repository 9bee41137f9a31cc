"""The compact actor as plain C99: no TFLite Micro, no heap, no static RAM, no runtime.

A compact actor has a few hundred weights; shipping it through TFLite Micro
costs the flatbuffer, the interpreter's code and an arena. ``<prefix>.c``
computes the same outputs with the weights as ``const`` arrays (flash) and two
small buffers on the stack. Three ways in, because boards differ:

* ``<prefix>_int8_q(q, out)``: int8 observation in, int8 output out, integer
  arithmetic only. It is the int8 graph of ``actor_int8.tflite`` itself
  (weights, biases, scales and zero points of the shipped flatbuffer, never
  Keras), op by op with the arithmetic of TFLite Micro's reference kernels
  (tflite_export.c_kernels), so its output equals the TFLM interpreter's bit
  for bit. Compiled with ``-D<PREFIX>_INTEGER_ONLY`` the object holds no
  float operation at all, which is what a Cortex-M0+ or an M4 without FPU
  wants: every float operation there is a libgcc call costing flash and time.
  The quantisation parameters are header macros, so the caller can quantise
  its own sensor values.
* ``<prefix>_int16_q(x, out)``: int16 sensor counts in (``observation =
  x * LSB``), integer only: a fixed-point quantiser per feature
  (tflite_export.c_int16) in front of ``_int8_q``, for boards whose sensors
  give integers and that have no FPU.
* ``<prefix>_int8(obs, out)`` / ``_int8_raw``: the convenience wrapper, raw
  float observation in; it applies the per-feature input map and quantises
  (a few float operations per feature), runs ``_int8_q`` and dequantises. It
  returns how many features were outside the range the int8 input covers:
  those are clamped to the range's end, silently in TFLite Micro, so the
  count is the one signal a board has that the policy sees something it was
  not calibrated for.
* ``<prefix>_float(obs, out)``: the Keras actor in float32 (needs <math.h>).

For a continuous action the bounding (``tanh``, and ``mid``/``half`` unless
they are 0 and 1) is already inside the int8 graph (the converter turns
BoundedAction into TANH, MUL and ADD ops), so the int8 variant applies no
float ``tanh`` of its own. For discrete actions ``<prefix>_argmax_q`` picks
the action from the int8 output without dequantising.

The header carries the model's SHA-256 and the generator's version (a board
log can say which policy it runs) and, when the caller knows them, the run it
came from and each input's name and unit and each output's meaning (this library
has no environments: dsp_cli.export passes them from agents.env_docs); it lists
the inputs with the range each one covers and the outputs, and documents saturation. All symbols start with the
prefix and every helper is ``static``, so two policies link into one firmware.
The generated C relies on ``>>`` of a negative integer being an arithmetic
shift (GCC, Clang, Arm Compiler and IAR all do this).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from dsp_tf._keras import keras
from tflite_export.c_array import c_identifier
from tflite_export.c_build import C_FLAGS, CPolicyLibrary, compile_shared, host_compiler  # noqa: F401 - public API
from tflite_export.actor_layers import action_bounds
from tflite_export.c_int16 import Int16Input, c_parts as int16_c_parts, fit_int16_input
from tflite_export.c_float import DENSE_FLOAT, _float_forward, bounded_action
from tflite_export.c_int8 import _Emitter, _Int8Graph, _int8_graph, c_float_literal
from tflite_export.c_kernels import _helper_closure, _run_layers_c, both_table_kernels, helper_text, layer_struct
from tflite_export.input_scaling import FeatureScaling
from tflite_export.runtimes import quantize_int8
from tflite_export.tflite_graph import UnsupportedForC, _read_graph, quantize_multiplier  # noqa: F401 - public API

#: Bumped whenever the generated C changes meaning or interface; written into every generated file.
C_GENERATOR_VERSION = 4


def generator_version() -> str:
    """'tflite_export C generator N (dsp-tf X.Y.Z)': which code wrote a policy file."""
    try:
        from importlib.metadata import version  # noqa: WPS433

        package = version("dsp-tf")
    except Exception:  # noqa: BLE001 - running from a source tree that is not installed
        package = "unknown"
    return f"tflite_export C generator {C_GENERATOR_VERSION} (dsp-tf {package})"


@dataclass
class CPolicy:
    """The generated files and what a caller needs to drive and check them."""

    ident: str
    header: str
    source: str
    observation_size: int
    output_size: int
    output_scale: float
    output_zero_point: int
    input_scale: float
    input_zero_point: int
    scaling: Optional[FeatureScaling]  # None: per-tensor input
    discrete: bool
    model_sha256: str
    input_low: np.ndarray  # the raw range each feature's int8 input covers
    input_high: np.ndarray
    int16: Optional[Int16Input]  # the int16 fixed-point input of <ident>_int16_q (None: not generated)
    int16_skipped: Optional[str] = None  # why not
    c_tanh: str = "table"  # how TANH/LOGISTIC are computed (tflite_export.c_tables)

    @property
    def files(self) -> Dict[str, str]:
        return {f"{self.ident}.h": self.header, f"{self.ident}.c": self.source}

    @property
    def integer_only_macro(self) -> str:
        return f"{self.ident.upper()}_INTEGER_ONLY"

    def saturated_features(self, observations: np.ndarray) -> np.ndarray:
        """Per observation, how many features the C wrappers report as outside the input range
        (the same float32 test: NaN counts as outside)."""
        return features_outside(observations, self.scaling, self.input_scale, self.input_zero_point)


def features_outside(observations: np.ndarray, scaling: Optional[FeatureScaling], input_scale: float,
                     input_zero_point: int) -> np.ndarray:
    """Per observation, how many features the C wrappers count as outside the calibrated input range,
    from the input map alone (what a header's macros hold): a host tool can say how many states of a
    recording a board will flag without compiling the policy."""
    inside = _inside_range(scaling, input_scale, input_zero_point, observations)
    return np.sum(~inside, axis=1)


def _inside_range(scaling: Optional[FeatureScaling], scale: float, zero_point: int,
                  observations: np.ndarray) -> np.ndarray:
    """Per feature, whether the float wrappers take it as inside the input range (their float32 test)."""
    obs = np.atleast_2d(np.asarray(observations, np.float32))
    with np.errstate(invalid="ignore", over="ignore"):
        if scaling is not None:
            z = (obs - scaling.offset) * scaling.inv_half_range
            return (z >= np.float32(-1)) & (z <= np.float32(1))
        v = np.clip(np.nan_to_num(obs / np.float32(scale), nan=-1000.0), -1000.0, 1000.0)
        r = np.trunc(v + np.where(v < 0, np.float32(-0.5), np.float32(0.5))) + zero_point
        return (r >= -128) & (r <= 127)


def _prefix_file_scope_names(source: str, header: str, ident: str) -> str:
    """``source`` with every name of its own (the static helpers ``ap_*``, types and ``k_*`` tables, which
    the header does not declare) prefixed by ``ident``: statics keep two policies apart at link time but
    not in a unity build (one translation unit including both .c files)."""
    public = set(re.findall(r"\w+", header)) | {ident}
    return re.sub(r"\b(?:ap|k)_\w+", lambda m: m.group() if m.group() in public else f"{ident}_{m.group()}",
                  source)


def _sha256_weights(actor: keras.Model) -> str:
    digest = hashlib.sha256()
    for w in actor.get_weights():
        digest.update(np.ascontiguousarray(w, np.float32).tobytes())
    return digest.hexdigest()


def _brace(values) -> str:
    return "{" + ", ".join(c_float_literal(v) for v in np.ravel(np.asarray(values, np.float32))) + "}"


def _input_ranges(scaling: Optional[FeatureScaling], scale: float, zero_point: int,
                  obs_dim: int) -> Tuple[np.ndarray, np.ndarray]:
    """The raw observation range each feature's int8 input covers (beyond it: saturation)."""
    if scaling is not None:
        half = 1.0 / scaling.inv_half_range.astype(np.float64)
        return scaling.offset - half, scaling.offset + half
    lo, hi = (-128 - zero_point) * scale, (127 - zero_point) * scale
    return np.full(obs_dim, lo), np.full(obs_dim, hi)


def _comment_text(text: str) -> str:
    """``text`` safe inside a C block comment on one line (names come from the caller)."""
    return " ".join(str(text).replace("*/", "* /").split())


def _input_lines(low: np.ndarray, high: np.ndarray, names: Sequence[str], units: Sequence[str]) -> str:
    """One line per input feature: index, name, unit, the range its int8 input covers."""
    width = max(len(f"{v:.6g}") for v in np.concatenate([low, high]))
    names = [_comment_text(n) for n in names]
    units = [_comment_text(u) or "?" for u in units]
    name_w, unit_w = max(len(n) for n in names), max(len(u) for u in units)
    index_w = len(f"[{len(names) - 1}]")
    return "".join(f" *   {f'[{i}]':<{index_w}} {names[i]:<{name_w}}  {units[i]:<{unit_w}}  "
                   f"{low[i]:>{width}.6g} .. {high[i]:.6g}\n" for i in range(len(names)))


def _output_lines(ident: str, out_dim: int, bounded, discrete: bool, names: Sequence[str]) -> str:
    names = [_comment_text(n) for n in names]
    index_w = len(f"[{out_dim - 1}]")
    if bounded is not None:
        lo, hi = action_bounds(bounded, np.float64)
        return "".join(f" *   {f'[{k}]':<{index_w}} in [{float(lo[k]):.6g}, {float(hi[k]):.6g}]: {names[k]}\n"
                       for k in range(out_dim))
    if discrete:
        return ("".join(f" *   {f'[{k}]':<{index_w}} logit of action {k}: {names[k]}\n" for k in range(out_dim)) +
                f" *   the action is the argmax ({ident}_argmax_q / {ident}_argmax; ties: the lowest index)\n")
    return "".join(f" *   {f'[{k}]':<{index_w}} {names[k]} (unbounded)\n" for k in range(out_dim))


def _identity_lines(identity: Optional[Mapping[str, object]]) -> str:
    """Which trained policy this is (env, method, seed, chosen step, the run's summary.json hash, ...),
    so that a board log or a file found on a disk can be traced back to its run."""
    if not identity:
        return ""
    lines, line = [], " * Trained policy:"
    items = [f"{_comment_text(k)} {_comment_text(v)}" for k, v in identity.items()]
    for n, item in enumerate(items):
        item += "," if n < len(items) - 1 else ""
        if len(line) + 1 + len(item) > 110:
            lines.append(line)
            line = " *  "
        line += " " + item
    return "\n".join(lines + [line]) + "\n"


def _header_doc(ident: str, upper: str, obs_dim: int, out_dim: int, model_name: str, sha: str, keras_sha: str,
                low: np.ndarray, high: np.ndarray, range_note: str, bounded, discrete: bool, per_feature: bool,
                int16_doc: str, int16_usage: str, c_tanh: str = "table",
                input_names: Optional[Sequence[str]] = None, input_units: Optional[Sequence[str]] = None,
                output_names: Optional[Sequence[str]] = None,
                identity: Optional[Mapping[str, object]] = None) -> str:
    inputs = _input_lines(low, high, input_names or [f"feature {i}" for i in range(obs_dim)],
                          input_units or ["?"] * obs_dim)
    outputs = _output_lines(ident, out_dim, bounded, discrete,
                            output_names or [f"output {k}" for k in range(out_dim)])
    return (
        f"/* Generated by {generator_version()}.\n"
        f" * int8 model: {model_name}, sha256 {sha}\n"
        f" * float32 model: the Keras actor's weights, sha256 {keras_sha}\n"
        + _identity_lines(identity) +
        " *\n"
        " * The compact actor as plain C99: no heap, no static RAM, no runtime library.\n"
        " *\n"
        f" *   int8_t q[{upper}_OBSERVATION_SIZE], raw[{upper}_OUTPUT_SIZE];\n"
        f" *   {ident}_int8_q(q, raw);          integer only: quantised observation in, int8 output out\n"
        + int16_usage +
        f" *   n = {ident}_int8(obs, out);      raw float observation in, dequantised output out\n"
        f" *   {ident}_float(obs, out);         the Keras actor in float32 (tanhf/expf from <math.h>)\n"
        " *\n"
        f" * {ident}_int8_q computes what TFLite Micro computes on {model_name}, bit for bit, with integer\n"
        f" * arithmetic only. Compile {ident}.c with -D{upper}_INTEGER_ONLY to leave every float function out\n"
        " * (Cortex-M0+, or an M4 without FPU: no soft-float library code is linked then).\n"
        + (" * TANH/LOGISTIC: one int8 table per layer, generated by the exporter with TFLite Micro's routine\n"
           " * for every input and cut to the inputs between its saturated ends (export with --c_tanh=computed\n"
           " * to run the routine per neuron instead).\n"
           if c_tanh == "table" else
           " * TANH/LOGISTIC: TFLite Micro's fixed-point routine per neuron (--c_tanh=computed: no tables,\n"
           " * more instructions; the default --c_tanh=table gives the same outputs).\n") +
        " * q and the output must not overlap (the first layer reads q while the last writes the output).\n"
        " *\n"
        f" * Inputs ({upper}_OBSERVATION_SIZE): observation[i] in this order, in the unit given (\"?\": the\n"
        " * environment's own, not known to the exporter). Index, name, unit, and the range the int8 input covers\n"
        f" * ({_comment_text(range_note)}):\n" + inputs +
        " * Quantising (what the float wrappers do, and what an integer caller must do):\n"
        + (f" *   z = (obs - {upper}_INPUT_OFFSET[i]) * {upper}_INPUT_INV_HALF_RANGE[i]   (the range -> [-1, 1])\n"
           if per_feature else " *   z = obs   (one scale for every feature)\n") +
        f" *   q = clamp(round(z / {upper}_INPUT_SCALE) + {upper}_INPUT_ZERO_POINT, -128, 127)\n" +
        " * Saturation: a feature outside its range is clamped to the range's end (z = -1 or 1) and the\n"
        " * policy acts as if the observation were there; its actions out there were never checked.\n"
        f" * {ident}_quantize_observation, {ident}_int8_raw and {ident}_int8 return how many features were\n"
        " * outside (0: none; a NaN counts as outside and lands on the low end): use it as a flag or a counter.\n"
        " * Inside the network, int8 values saturate as TFLite Micro's kernels do.\n"
        " *\n"
        + int16_doc + " *\n"
        f" * Outputs ({upper}_OUTPUT_SIZE): int8 output o dequantises to\n"
        f" * ({upper}_OUTPUT_SCALE * (o - {upper}_OUTPUT_ZERO_POINT)); index, meaning:\n" + outputs +
        " *\n"
        " * Compile as C99 (-std=c99, or -ffp-contract=off) so the float wrappers round as on the host.\n"
        " */\n")


def _quantize_function(ident: str, upper: str, obs_dim: int, per_feature: bool) -> Tuple[str, str]:
    """(the input map's constants, ``<ident>_quantize_observation``): raw observation -> int8 input,
    in the float32 steps of input_scaling.quantize_observation."""
    if per_feature:
        prepare = ("        float z = (observation[i] - k_input_offset[i]) * k_input_inv_half_range[i];\n"
                   "        float v;\n        int32_t r;\n"
                   "        saturated += (z >= -1.0f && z <= 1.0f) ? 0 : 1;\n"
                   "        /* clip(z, -1, 1), written so that a NaN observation lands on -1 */\n"
                   "        z = (z > -1.0f) ? z : -1.0f;\n        z = (z < 1.0f) ? z : 1.0f;\n"
                   f"        v = z / {upper}_INPUT_SCALE;\n")
        map_constants = (f"static const float k_input_offset[{obs_dim}] = {upper}_INPUT_OFFSET;\n"
                         f"static const float k_input_inv_half_range[{obs_dim}] = {upper}_INPUT_INV_HALF_RANGE;\n")
        saturate = ""
    else:
        prepare = (f"        float v = observation[i] / {upper}_INPUT_SCALE;\n        int32_t r;\n"
                   "        /* far outside the int8 range either way; keeps the conversion below defined (and NaN low) */\n"
                   "        v = (v > -1000.0f) ? v : -1000.0f;\n        v = (v < 1000.0f) ? v : 1000.0f;\n")
        map_constants = ""
        saturate = "        saturated += (r >= -128 && r <= 127) ? 0 : 1;\n"
    sig = f"{ident}_quantize_observation("
    quantize = (
        f"int {sig}const float observation[{upper}_OBSERVATION_SIZE],\n"
        f"{' ' * (len(sig) + 4)}int8_t q[{upper}_OBSERVATION_SIZE])\n"
        "{\n    int i, saturated = 0;\n"
        f"    for (i = 0; i < {obs_dim}; ++i) {{\n"
        + prepare +
        "        /* rounding half away from zero: v - 0.5f is exactly -(|v| + 0.5f) */\n"
        f"        r = (int32_t)(v + ((v < 0.0f) ? -0.5f : 0.5f)) + {upper}_INPUT_ZERO_POINT;\n" + saturate +
        "        q[i] = (int8_t)((r < -128) ? -128 : ((r > 127) ? 127 : r));\n"
        "    }\n    return saturated;\n}\n")
    return map_constants, quantize


def _argmax_functions(ident: str, upper: str, out_dim: int) -> Tuple[str, str]:
    """(``<ident>_argmax_q`` on the int8 output, ``<ident>_argmax`` on the float one)."""
    argmax_q = (f"\nint {ident}_argmax_q(const int8_t output[{upper}_OUTPUT_SIZE])\n"
                "{\n    int i, best = 0;\n"
                f"    for (i = 1; i < {out_dim}; ++i) {{\n        best = (output[i] > output[best]) ? i : best;\n"
                "    }\n    return best;\n}\n")
    return argmax_q, argmax_q.replace("_argmax_q(const int8_t", "_argmax(const float")


def _int8_part(g: _Int8Graph, ident: str, upper: str, obs_dim: int, out_dim: int, argmax_q: str) -> str:
    """The integer-only half of the source: tables, kernels and ``<ident>_int8_q``."""
    int8_types = f"typedef {g.bias_type} ap_bias_t;\n" + layer_struct(g.per_channel, g.tables, g.acts) if g.layer_rows else ""
    layer_table = ""
    if g.layer_rows:
        scale = "m, shift, " if g.per_channel else "m, "
        flag = "per_channel" if g.per_channel else "shift"
        columns = (f"w, bias, {scale}act_table, n_in, n_out, act_first, act_last, x_zero_point, y_zero_point, y_min,"
                   f" y_max, {flag}{', act' if both_table_kernels(g.acts) else ''}" if g.tables else
                   f"w, bias, {scale}act_m, n_in, n_out, act_radius, x_zero_point, y_zero_point, y_min, y_max,\n"
                   f"   {flag}, act, act_shift")
        layer_table = (f"/* {columns} */\n"
                       f"static const ap_layer k_layers[{len(g.layer_rows)}] = {{\n" + ",\n".join(g.layer_rows)
                       + "\n};\n")
    helpers = "".join(helper_text(h, g.per_channel, g.all_bias) for h in _helper_closure(g.helpers))
    if g.layer_rows:
        helpers += _run_layers_c(g.acts)
    buffers = f"    int8_t a[{g.width}], b[{g.width}];" if g.layer_rows else f"    int8_t a[{g.width}];"
    copy_in = "" if g.reads_input else (f"    for (i = 0; i < {obs_dim}; ++i) {{\n        a[i] = q[i];\n    }}\n")
    copy_out = "" if g.writes_output else (f"    for (i = 0; i < {out_dim}; ++i) {{\n        output[i] = v[i];\n    }}\n")
    declare = ("    int8_t *v = a;\n" if g.uses_v or copy_out else "") + ("    int i;\n" if copy_in or copy_out else "")
    return (
        "/* ---- int8 variant: integer only ---- */\n" + int8_types + "".join(g.constants) + layer_table
        + helpers +
        f"\nvoid {ident}_int8_q(const int8_t q[{upper}_OBSERVATION_SIZE], int8_t output[{upper}_OUTPUT_SIZE])\n"
        f"{{\n{buffers}\n" + declare + copy_in
        + "".join(line + "\n" for line in g.body) + copy_out + "}\n" + argmax_q)


def _float_wrappers(ident: str, upper: str, obs_dim: int, out_dim: int, map_constants: str, quantize: str) -> str:
    """The int8 variant's float entry points (raw observation in, dequantised output out)."""
    return (
        "/* ---- int8 variant: float observation in, float output out ---- */\n" + map_constants + "\n" + quantize +
        f"\nint {ident}_int8_raw(const float observation[{upper}_OBSERVATION_SIZE], "
        f"int8_t output[{upper}_OUTPUT_SIZE])\n"
        f"{{\n    int8_t q[{obs_dim}];\n    int saturated = {ident}_quantize_observation(observation, q);\n"
        f"    {ident}_int8_q(q, output);\n    return saturated;\n}}\n"
        f"\nint {ident}_int8(const float observation[{upper}_OBSERVATION_SIZE], float output[{upper}_OUTPUT_SIZE])\n"
        f"{{\n    int8_t raw[{out_dim}];\n    int i, saturated = {ident}_int8_raw(observation, raw);\n"
        f"    for (i = 0; i < {out_dim}; ++i) {{\n"
        f"        output[i] = (float)((int32_t)raw[i] - {upper}_OUTPUT_ZERO_POINT) * {upper}_OUTPUT_SCALE;\n"
        "    }\n    return saturated;\n}\n")


def _float_part(fe: _Emitter, ident: str, upper: str, f_width: int, argmax_f: str) -> str:
    return ("\n/* ---- float32 variant ---- */\n" + "".join(fe.constants) + (DENSE_FLOAT if fe.helpers else "") +
            f"\nvoid {ident}_float(const float observation[{upper}_OBSERVATION_SIZE], "
            f"float output[{upper}_OUTPUT_SIZE])\n"
            f"{{\n{fe.buffers('float', f_width)}\n    int i;\n"
            + "\n".join(fe.body) + "\n}\n" + argmax_f)


def _macros(upper: str, ident: str, obs_dim: int, out_dim: int, sha: str, discrete: bool, inp, out,
            scaling: Optional[FeatureScaling], low: np.ndarray, high: np.ndarray) -> str:
    macros = (f"#define {upper}_OBSERVATION_SIZE {obs_dim}\n#define {upper}_OUTPUT_SIZE {out_dim}\n"
              f"#define {upper}_MODEL_SHA256 \"{sha}\"\n"
              f"#define {upper}_GENERATOR \"{generator_version()}\"\n"
              f"#define {upper}_DISCRETE {int(discrete)}  /* 1: outputs are logits, {ident}_argmax_q exists */\n\n"
              "/* Quantisation of the int8 input and output tensors (real = scale * (q - zero_point)). Every float\n"
              "   macro is a float literal exactly equal to the float32 the model holds: it initialises a float\n"
              "   (array) under -Werror=float-conversion. */\n"
              f"#define {upper}_INPUT_SCALE {c_float_literal(inp.scale)}\n"
              f"#define {upper}_INPUT_ZERO_POINT ({inp.zero_point})\n"
              f"#define {upper}_OUTPUT_SCALE {c_float_literal(out.scale)}\n"
              f"#define {upper}_OUTPUT_ZERO_POINT ({out.zero_point})\n")
    if scaling is not None:
        macros += ("/* Per-feature input map, as initialisers: z = (obs - OFFSET) * INV_HALF_RANGE takes [LOW, HIGH]\n"
                   "   to [-1, 1]; e.g. static const float lo[] = " f"{upper}_INPUT_LOW; */\n"
                   f"#define {upper}_INPUT_OFFSET {_brace(scaling.offset)}\n"
                   f"#define {upper}_INPUT_INV_HALF_RANGE {_brace(scaling.inv_half_range)}\n")
    return macros + f"#define {upper}_INPUT_LOW {_brace(low)}\n#define {upper}_INPUT_HIGH {_brace(high)}\n"


def _declarations(ident: str, upper: str, discrete: bool, int16_declarations: str) -> str:
    argmax_decl = (f"int {ident}_argmax_q(const int8_t output[{upper}_OUTPUT_SIZE]);\n" if discrete else "")
    return (
        f"void {ident}_int8_q(const int8_t q[{upper}_OBSERVATION_SIZE], int8_t output[{upper}_OUTPUT_SIZE]);\n"
        + argmax_decl + int16_declarations +
        f"\n#ifndef {upper}_INTEGER_ONLY\n"
        "/* Each returns how many observation features were outside the input range (clamped). */\n"
        f"int {ident}_quantize_observation(const float observation[{upper}_OBSERVATION_SIZE], "
        f"int8_t q[{upper}_OBSERVATION_SIZE]);\n"
        f"int {ident}_int8_raw(const float observation[{upper}_OBSERVATION_SIZE], "
        f"int8_t output[{upper}_OUTPUT_SIZE]);\n"
        f"int {ident}_int8(const float observation[{upper}_OBSERVATION_SIZE], float output[{upper}_OUTPUT_SIZE]);\n"
        f"void {ident}_float(const float observation[{upper}_OBSERVATION_SIZE], float output[{upper}_OUTPUT_SIZE]);\n"
        + (f"int {ident}_argmax(const float output[{upper}_OUTPUT_SIZE]);\n" if discrete else "") +
        f"#endif\n")


def _int16_doc(ident: str, upper: str, int16: Optional[Int16Input], skipped: Optional[str]) -> str:
    if int16 is None:
        return f" * {skipped}.\n"
    note = ("LSB given to the exporter" if int16.frac_bits is None
            else f"Q-format by default: x = round(observation * 2^{upper}_INT16_FRAC_BITS[i])")
    return (f" * int16 input ({ident}_int16_q, {ident}_quantize_int16): observation[i] = x[i] * {upper}_INT16_LSB[i]\n"
            f" * ({note}).\n"
            f" * Counts outside [{upper}_INT16_LOW[i], {upper}_INT16_HIGH[i]] are outside the range: clamped and\n"
            " * counted as above. One integer multiply, add and shift per feature map x to q;\n"
            f" * q is the float quantiser's rounded half up (error below {max(int16.max_error_steps, 1e-4):.1g} steps), "
            "so it\n"
            " * differs from the float wrappers' q by at most one step, and only next to a rounding boundary.\n")


def _int16_input(scaling: Optional[FeatureScaling], inp, low: np.ndarray, high: np.ndarray, obs_dim: int,
                 int16_lsb: Optional[np.ndarray]) -> Tuple[Optional[Int16Input], Optional[str]]:
    """(the int16 input's fixed-point map, or None and why): a user's LSB that cannot work is a usage
    error (raised); a range the default LSB cannot resolve only leaves the int16 entry point out."""
    inside = lambda obs: _inside_range(scaling, inp.scale, inp.zero_point, obs)  # noqa: E731
    try:
        if scaling is not None:  # the float quantiser's value before rounding, zero point included
            slope = scaling.inv_half_range.astype(np.float64) / inp.scale
            intercept = inp.zero_point - scaling.offset.astype(np.float64) * slope
            ends = quantize_int8(np.array([-1.0, 1.0], np.float32), inp.scale, inp.zero_point)
            return fit_int16_input(low, high, slope, intercept, (int(ends[0]), int(ends[1])), inside, int16_lsb), None
        # the float wrapper flags a feature only once it rounds beyond -128 / 127: half a step past the range
        slope, intercept = np.full(obs_dim, 1.0 / inp.scale), np.full(obs_dim, float(inp.zero_point))
        half_step = 0.5 * (1 - 1e-6) * inp.scale
        return fit_int16_input(low - half_step, high + half_step, slope, intercept, (-128, 127), inside,
                               int16_lsb), None
    except UnsupportedForC as e:
        return None, str(e)


def generate(actor: keras.Model, int8: bytes, scaling: Optional[FeatureScaling], ident: str = "actor_policy",
             model_name: str = "actor_int8.tflite", discrete: Optional[bool] = None,
             range_note: str = "the calibration observations' range",
             int16_lsb: Optional[np.ndarray] = None, c_tanh: str = "table",
             input_names: Optional[Sequence[str]] = None, input_units: Optional[Sequence[str]] = None,
             output_names: Optional[Sequence[str]] = None,
             identity: Optional[Mapping[str, object]] = None) -> CPolicy:
    """``{ident}.h`` / ``{ident}.c`` for ``actor`` (float32 variant) and its int8 flatbuffer.

    ``scaling`` is the per-feature input map the int8 model was converted with
    (None for a per-tensor input); ``discrete`` says whether the outputs are
    logits (None: yes unless the actor ends in action bounds); ``range_note``
    says in the header where the input ranges come from; ``int16_lsb`` is what
    one count of each feature's int16 reading is worth (None: a power of two
    from the range, tflite_export.c_int16); ``c_tanh`` is "table" (TANH/LOGISTIC by a 256-byte table
    per layer: fast) or "computed" (TFLite Micro's routine per neuron: no tables, for parts short of
    flash), bit-identical either way (tflite_export.c_tables). ``input_names``/``input_units``
    (one per observation feature), ``output_names`` (one per output: an action's meaning) and
    ``identity`` (label -> value, e.g. env, method, seed) document the interface in the header; this
    library knows no environment, so the caller supplies them (default: "feature i", "output i").
    Raises UnsupportedForC, naming the layer or op, for anything the generator cannot
    reproduce exactly, and ValueError for names of the wrong count.
    """
    ident = c_identifier(ident)
    upper = ident.upper()
    fe = _Emitter("k_f")
    obs_dim, out_dim, f_width = _float_forward(actor, fe)
    g = _int8_graph(int8, c_tanh=c_tanh)
    inp, out = g.input, g.output
    if int(np.prod(inp.shape)) != obs_dim or int(np.prod(out.shape)) != out_dim:
        raise UnsupportedForC("the int8 model's input/output sizes differ from the Keras actor's")
    for what, values, size in (("input_names", input_names, obs_dim), ("input_units", input_units, obs_dim),
                               ("output_names", output_names, out_dim)):
        if values is not None and len(values) != size:
            raise ValueError(f"{what} has {len(values)} entries; the actor has {size}")
    bounded = bounded_action(actor)
    discrete = bounded is None if discrete is None else bool(discrete)
    sha, keras_sha = hashlib.sha256(int8).hexdigest(), _sha256_weights(actor)
    low, high = _input_ranges(scaling, inp.scale, inp.zero_point, obs_dim)
    map_constants, quantize = _quantize_function(ident, upper, obs_dim, scaling is not None)
    int16, int16_skipped = _int16_input(scaling, inp, low, high, obs_dim, int16_lsb)
    int16_macros, int16_declarations, int16_source = ("", "", "") if int16 is None else \
        int16_c_parts(int16, ident, upper, obs_dim)
    argmax_q, argmax_f = _argmax_functions(ident, upper, out_dim) if discrete else ("", "")
    source = (
        f"/* Generated by {generator_version()}.\n"
        f"   int8 model: {model_name}, sha256 {sha}; float32 model: Keras weights, sha256 {keras_sha}.\n"
        f"   The compact actor as plain C99 ({obs_dim} observation features in, {out_dim} outputs out); see {ident}.h.\n"
        "   No heap, no static RAM: constants are const (flash), working buffers are on the stack. */\n"
        f"#include \"{ident}.h\"\n\n"
        f"#ifndef {upper}_INTEGER_ONLY\n#include <math.h>\n#endif\n\n"
        + _int8_part(g, ident, upper, obs_dim, out_dim, argmax_q) + "\n" + int16_source
        + f"\n#ifndef {upper}_INTEGER_ONLY\n" + _float_wrappers(ident, upper, obs_dim, out_dim, map_constants, quantize)
        + _float_part(fe, ident, upper, f_width, argmax_f) + f"#endif  /* {upper}_INTEGER_ONLY */\n")
    doc = _header_doc(ident, upper, obs_dim, out_dim, model_name, sha, keras_sha, np.asarray(low, np.float32),
                      np.asarray(high, np.float32), range_note, bounded, discrete, scaling is not None,
                      _int16_doc(ident, upper, int16, int16_skipped),
                      "" if int16 is None else
                      f" *   n = {ident}_int16_q(x, raw);     integer only: int16 counts in (obs = x * {upper}_INT16_LSB[i])\n",
                      c_tanh, input_names, input_units, output_names, identity)
    header = (
        doc + f"#ifndef {upper}_H_\n#define {upper}_H_\n\n#include <stdint.h>\n\n"
        "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
        + _macros(upper, ident, obs_dim, out_dim, sha, discrete, inp, out, scaling, low, high) + int16_macros + "\n"
        + _declarations(ident, upper, discrete, int16_declarations) +
        "\n#ifdef __cplusplus\n}\n#endif\n\n"
        f"#endif  /* {upper}_H_ */\n")
    source = _prefix_file_scope_names(source, header, ident)
    return CPolicy(ident, header, source, obs_dim, out_dim, out.scale, out.zero_point, inp.scale, inp.zero_point,
                   scaling, discrete, sha, np.asarray(low, np.float64), np.asarray(high, np.float64), int16,
                   int16_skipped, c_tanh)
