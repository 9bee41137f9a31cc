"""The plain-C policy: int8 bit for bit as TFLite Micro computes it, float32 as Keras does."""
import os
import re
import shutil
import subprocess
import sys

import flatbuffers
import numpy as np
import pytest

import qemu_m4
from dsp_cli.export import c_policy_report, episode_returns, record_observations
from dsp_tf import keras
from tflite_export.c_policy import CPolicyLibrary, _read_graph, generate, host_compiler
from dsp_tf.numpy_forward import keras_step
from tflite_export.checks import outputs, raw_int8_outputs
from tflite_export.exporter import convert_actor
from tflite_export.footprint import _covered_bytes, c_policy_footprint, max_stack, tflite_micro_memory
from tflite_export.input_scaling import quantize_observation
from tflite_export.qemu_bench import available as qemu_bench_available
from tflite_export.runtimes import TFLiteRunner

pytestmark = pytest.mark.skipif(host_compiler() is None, reason="no C compiler on this machine")

SCALES = np.array([0.01, 0.1, 1.0, 3.0, 10.0, 0.5], np.float32)


def _actor(activation="tanh", hidden=(9, 5), out=2, bounds=None, seed=0):
    """An exported-style actor: normalisation, a Dense chain with random biases, maybe bounded actions."""
    from agents.inference import BoundedAction, ObservationNormalization

    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((len(SCALES),))
    x = ObservationNormalization(rng.normal(size=len(SCALES)) * SCALES, (SCALES * rng.uniform(0.5, 2, len(SCALES))) ** 2,
                                 clip=5.0)(inputs)
    for units in hidden:
        x = keras.layers.Dense(units, activation=activation, bias_initializer=keras.initializers.RandomNormal(0, 0.3))(x)
    x = keras.layers.Dense(out, bias_initializer=keras.initializers.RandomNormal(0, 0.3))(x)
    if bounds is not None:
        x = BoundedAction(*bounds)(x)
    return keras.Model(inputs, x)


def _observations(seed, n):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, len(SCALES))) * SCALES).astype(np.float32)


def _op_names(int8):
    return [op[0] for op in _read_graph(int8)[2]]


CASES = {
    # name: (actor kwargs, int8 input, ops the int8 graph must contain)
    "discrete_tanh": (dict(), "per_feature", {"FULLY_CONNECTED", "TANH"}),
    "discrete_relu": (dict(activation="relu"), "per_feature", {"FULLY_CONNECTED"}),
    "continuous_unit_bounds": (dict(out=3, bounds=([-1, -1, -1], [1, 1, 1])), "per_feature",
                               {"FULLY_CONNECTED", "TANH"}),
    "continuous_other_bounds": (dict(out=3, bounds=([-2, 0, -0.4], [2, 1, 0.4])), "per_feature",
                                {"FULLY_CONNECTED", "TANH", "MUL", "ADD"}),
    "per_tensor_input": (dict(out=3, bounds=([-2, 0, -0.4], [2, 1, 0.4])), "per_tensor",
                         {"SUB", "MUL", "MINIMUM", "MAXIMUM", "FULLY_CONNECTED", "TANH", "ADD"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_int8_is_bit_exact_and_float32_matches_keras(case):
    kwargs, int8_input, ops = CASES[case]
    actor = _actor(**kwargs)
    converted = convert_actor(actor, _observations(0, 300), int8_input=int8_input)
    assert ops <= set(_op_names(converted.int8))  # the kernels this case is about are really there
    assert converted.c_policy is not None, converted.c_policy_skipped
    assert {"actor_policy.c", "actor_policy.h"} <= set(converted.files)
    lib = CPolicyLibrary(converted.c_policy)

    unseen = _observations(1, 400)
    unseen[200:] *= 3.0  # beyond the calibration ranges: the int8 input and the clip windows saturate
    unseen = np.concatenate([unseen, np.full((2, len(SCALES)), 1e30, np.float32) * [[1], [-1]]])
    np.testing.assert_array_equal(lib.batch(lib.int8_raw, unseen), raw_int8_outputs(converted, unseen))
    # the float outputs of the int8 variant are the runners' dequantised outputs
    np.testing.assert_array_equal(lib.batch(lib.int8, unseen), outputs(converted.int8_runner(), unseen))
    np.testing.assert_allclose(lib.batch(lib.float32, unseen), actor(unseen).numpy(), atol=1e-5, rtol=0)

    # the C input map quantises exactly as the Python helper the runners use
    if converted.scaling is not None:
        scale, zero_point = TFLiteRunner(converted.int8).input_quantization()
        q = np.stack([lib.int8_q(quantize_observation(o, converted.scaling, scale, zero_point))
                      for o in unseen])
        np.testing.assert_array_equal(lib.batch(lib.int8_raw, unseen), q)


def _tflm_forward(int8, q_rows):
    """TFLite Micro's int8 output for int8 inputs given directly."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(int8)
    rows = []
    for q in q_rows:
        interpreter.set_input(np.asarray(q, np.int8)[None], 0)
        interpreter.invoke()
        rows.append(np.array(interpreter.get_output(0)[0], np.int8))
    return np.stack(rows)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_tanh_and_logistic_match_tflite_micro_on_all_256_inputs(activation):
    """The fixed-point TANH/LOGISTIC kernels over every int8 input, at input scales from 1e-4 to 0.5."""
    every = np.arange(-128, 128, dtype=np.int8)
    for spread in (0.01, 0.2, 1.0, 3.0, 8.0, 60.0):
        actor = keras.Sequential([keras.Input((4,)), keras.layers.Activation(activation)])
        rep = (np.random.default_rng(0).normal(size=(200, 4)) * spread).astype(np.float32)
        converted = convert_actor(actor, rep, int8_input="per_tensor")
        assert _op_names(converted.int8) == ["TANH" if activation == "tanh" else "LOGISTIC"]
        q_rows = np.stack([np.roll(every, k)[:4] for k in range(0, 256)])  # each feature sees all 256 values
        tflm = _tflm_forward(converted.int8, q_rows)
        assert converted.c_policy.c_tanh == "table" and "_ap_lookup" in converted.c_policy.source
        computed = generate(actor, converted.int8, None, c_tanh="computed")
        assert "_ap_lookup" not in computed.source
        for policy in (converted.c_policy, computed):  # the default table and TFLM's routine per neuron
            lib = CPolicyLibrary(policy)
            np.testing.assert_array_equal(lib.batch(lib.int8_q, q_rows), tflm)


def _per_channel(int8):
    """The same flatbuffer with every FULLY_CONNECTED's weights requantised per output channel."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(int8, 0))
    graph = model.subgraphs[0]
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) != schema.BuiltinOperator.FULLY_CONNECTED:
            continue
        x, w, b = (graph.tensors[i] for i in op.inputs)
        q = np.frombuffer(bytes(bytearray(model.buffers[w.buffer].data)), np.int8).reshape(w.shape)
        real = q.astype(np.float64) * w.quantization.scale[0]
        scales = np.maximum(np.abs(real).max(1), 1e-8) / 127.0
        model.buffers[w.buffer].data = np.clip(np.round(real / scales[:, None]), -127, 127).astype(np.int8).ravel().view(np.uint8)
        w.quantization.scale = scales.astype(np.float32)
        w.quantization.zeroPoint = np.zeros(len(scales), np.int64)
        w.quantization.quantizedDimension = 0
        bias = np.frombuffer(bytes(bytearray(model.buffers[b.buffer].data)), np.int32) * b.quantization.scale[0]
        bias_scales = (np.float32(x.quantization.scale[0]) * scales).astype(np.float32)
        model.buffers[b.buffer].data = np.round(bias / bias_scales).astype(np.int32).view(np.uint8)
        b.quantization.scale = bias_scales
        b.quantization.zeroPoint = np.zeros(len(scales), np.int64)
    builder = flatbuffers.Builder(len(int8))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_per_channel_weight_scales_are_bit_exact():
    actor = _actor()
    converted = convert_actor(actor, _observations(0, 300))
    per_channel = _per_channel(converted.int8)
    fc_weights = [op[1][1] for op in _read_graph(per_channel)[2] if op[0] == "FULLY_CONNECTED"]
    assert all(len(w.scales) == w.data.shape[0] > 1 for w in fc_weights)
    policy = generate(actor, per_channel, converted.scaling)
    lib = CPolicyLibrary(policy)
    scale, zero_point = TFLiteRunner(per_channel).input_quantization()
    unseen = _observations(2, 300)
    q_rows = np.stack([quantize_observation(o, converted.scaling, scale, zero_point) for o in unseen])
    expected = _tflm_forward(per_channel, q_rows)
    assert not np.array_equal(expected, _tflm_forward(converted.int8, q_rows))  # per-channel changed the model
    np.testing.assert_array_equal(lib.batch(lib.int8_raw, unseen), expected)


def test_layers_without_bias_are_bit_exact():
    """The generator drops the bias branch when every layer has one; without, the branch must be right."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input((3,))
    x = keras.layers.Dense(7, activation="tanh", use_bias=False)(inputs)
    x = keras.layers.Dense(5, activation="tanh", bias_initializer=keras.initializers.RandomNormal(0, 0.3))(x)
    actor = keras.Model(inputs, keras.layers.Dense(2, use_bias=False)(x))
    converted = convert_actor(actor, np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32))
    assert "if (l->bias)" in converted.c_policy.source
    q_rows = np.random.default_rng(1).integers(-128, 128, size=(2000, 3))
    lib = _integer_only(converted.c_policy)
    np.testing.assert_array_equal(lib.batch(lib.int8_q, q_rows), _tflm_forward(converted.int8, q_rows))


def test_unsupported_layers_skip_the_c_policy_but_not_the_export():
    actor = _actor(activation="elu")
    converted = convert_actor(actor, _observations(0, 100))
    assert converted.c_policy is None and "elu" in converted.c_policy_skipped
    assert "actor_policy.c" not in converted.files and "actor_int8.tflite" in converted.files
    report = c_policy_report(converted, outputs(keras_step(actor), _observations(1, 5)), _observations(1, 5))
    assert report == {"written": False, "reason": converted.c_policy_skipped}


FINISHED_CARTPOLE = os.path.join(os.path.dirname(__file__), "data", "cartpole_dsp_s0")


@pytest.fixture(scope="module")
def cartpole():
    """The finished CartPole DSP actor converted on observations its greedy policy meets."""
    from agents import inference
    from agents.envs import evaluation_seed

    mlp, meta = inference.load_actor(FINISHED_CARTPOLE, "compact")
    model = inference.inference_model(mlp, meta)
    observed = record_observations(keras_step(model), meta.env, [evaluation_seed(0, 100_000 + i) for i in range(20)],
                                   800, meta.discrete)
    return model, meta, convert_actor(model, observed[:400]), observed[400:]


def test_real_cartpole_actor_checks_returns_and_footprint(cartpole):
    from agents.envs import evaluation_seed

    model, meta, converted, check = cartpole
    seeds = [evaluation_seed(0, i) for i in range(3)]
    report = c_policy_report(converted, outputs(keras_step(model), check), check, meta.env, seeds, meta.discrete)
    assert report["int8_vs_tflite_micro"]["identical_output_rate"] == 1.0
    assert report["float32_vs_keras_max_abs_error"] <= 1e-5
    keras_returns = episode_returns(keras_step(model), meta.env, seeds, meta.discrete)
    tflm_returns = episode_returns(converted.int8_runner(), meta.env, seeds, meta.discrete)
    assert report["returns"]["c_int8"]["returns"] == tflm_returns["returns"]  # same actions, every step
    assert report["returns"]["c_float32"]["mean"] == pytest.approx(keras_returns["mean"], rel=0.02)

    footprint = report["footprint"]
    for variant in ("int8", "int8_raw", "float32"):
        v = footprint["variants"][variant]
        assert v["flash_bytes"] > v["rodata_bytes"] > 0 and v["stack_bytes"] > 0
    int8 = footprint["variants"]["int8"]
    # No heap, no static RAM, no library code: everything the int8 call needs is its code, its
    # constants and its stack, and that stack fits the 256-byte RAM budget.
    assert int8["static_ram_bytes"] == 0 and int8["library_bytes"] == 0 and int8["stack_excludes"] == []
    assert int8["ram_bytes"] <= 256
    # the constants alone: 104 int8 weights, 19 biases, the 4-feature input map
    assert int8["rodata_bytes"] >= 104 + 19 * 2 + 2 * 4 * 4


def test_without_a_host_compiler_the_report_says_the_checks_were_not_run(cartpole, monkeypatch):
    import tflite_export.checks as checks

    model, _, converted, check = cartpole
    monkeypatch.setattr(checks, "host_compiler", lambda: None)
    report = c_policy_report(converted, outputs(keras_step(model), check[:5]), check[:5])
    assert report["written"] and report["checks"].startswith("not run: no host C compiler")
    assert "int8_vs_tflite_micro" not in report and "returns" not in report


def test_without_the_arm_compiler_the_footprint_says_so_and_uses_the_host(cartpole):
    policy = cartpole[2].c_policy
    fp = c_policy_footprint(policy, arm_gcc="no-such-arm-none-eabi-gcc")
    assert fp["target"] == "host" and "no-such-arm-none-eabi-gcc not found" in fp["note"]
    assert fp["variants"]["int8"]["flash_bytes"] > 0 and fp["variants"]["int8"]["stack_bytes"] > 0


def test_max_stack_follows_the_deepest_call_chain():
    ci = ('graph: { title: "p.c"\n'
          'node: { title: "p.c:leaf" label: "leaf\\np.c:1:1\\n8 bytes (static)" }\n'
          'node: { title: "p.c:mid" label: "mid\\np.c:2:1\\n24 bytes (static)" }\n'
          'node: { title: "entry" label: "entry\\np.c:3:1\\n16 bytes (static)" }\n'
          'node: { title: "tanhf" label: "tanhf\\nmath.h:1:1" shape : ellipse }\n'
          'edge: { sourcename: "entry" targetname: "p.c:leaf" }\n'
          'edge: { sourcename: "entry" targetname: "p.c:mid" }\n'
          'edge: { sourcename: "p.c:mid" targetname: "p.c:leaf" }\n'
          'edge: { sourcename: "p.c:mid" targetname: "tanhf" }\n}\n')
    assert max_stack(ci, "entry") == (16 + 24 + 8, ["tanhf"])
    with pytest.raises(RuntimeError, match="recursion"):
        max_stack(ci.replace('"p.c:mid" targetname: "tanhf"', '"p.c:mid" targetname: "entry"'), "entry")


def test_library_stack_reads_prologues_and_follows_calls():
    from tflite_export.footprint import library_stack

    disassembly = (
        "00008020 <__aeabi_fadd>:\n"
        "    8020:\tb5f8      \tpush\t{r3, r4, r5, r6, r7, lr}\n"
        "    8178:\tf000 fa32 \tbl\t85e0 <__clzsi2>\n"
        "000085e0 <__clzsi2>:\n"
        "    85e0:\t2800      \tcmp\tr0, #0\n"
        "00008600 <expf>:\n"
        "    8600:\te92d 41f0 \tstmdb\tsp!, {r4, r5, r6, r7, r8, lr}\n"
        "    8604:\ted2d 8b04 \tvpush\t{d8-d9}\n"
        "    8608:\tb083      \tsub\tsp, #12\n"
        "    860a:\tf7ff fd09 \tbl\t8020 <__aeabi_fadd>\n")
    assert library_stack(disassembly) == {"__aeabi_fadd": 24, "__clzsi2": 0, "expf": 24 + 16 + 12 + 24}
    graph = ('node: { title: "p.c:entry" label: "entry\\n16 bytes (static)" }\n'
             'edge: { sourcename: "p.c:entry" targetname: "expf" }\n'
             'edge: { sourcename: "p.c:entry" targetname: "memcpy" }\n')
    assert max_stack(graph, "entry", library_stack(disassembly)) == (16 + 76, ["memcpy"])


def test_library_bytes_count_aliases_and_nested_entry_points_once():
    # __aeabi_fadd and __addsf3 at one address; __aeabi_fsub an entry point inside __aeabi_fadd
    assert _covered_bytes([(0x100, 40), (0x100, 40), (0x104, 36), (0x200, 8)]) == 48
    assert _covered_bytes([]) == 0


def _runs_with_arena(model_path, size):
    code = ("import sys, numpy as np\nfrom tflite_micro import runtime\n"
            "it = runtime.Interpreter.from_bytes(open(sys.argv[1], 'rb').read(), arena_size=int(sys.argv[2]))\n"
            "d = it.get_input_details(0)\nit.set_input(np.zeros(d['shape'], d['dtype']), 0)\nit.invoke()\n")
    return subprocess.run([sys.executable, "-c", code, model_path, str(size)], capture_output=True).returncode == 0


def test_tflite_micro_arena_is_the_smallest_that_runs(cartpole, tmp_path):
    int8 = cartpole[2].int8
    memory = tflite_micro_memory(int8)
    assert memory["model_bytes"] == len(int8)
    assert memory["min_arena_bytes"] >= memory["arena_used_bytes"] > 0
    path = tmp_path / "m.tflite"
    path.write_bytes(int8)
    assert _runs_with_arena(str(path), memory["min_arena_bytes"])
    assert not _runs_with_arena(str(path), memory["min_arena_bytes"] - 1)


@pytest.mark.skipif(not qemu_m4.available(), reason=f"needs {qemu_m4.ARM_GCC} and {qemu_m4.QEMU}")
def test_cortex_m4_build_under_qemu_computes_what_the_host_computes(cartpole, tmp_path):
    policy, check = cartpole[2].c_policy, cartpole[3][:25]
    raw, floats = qemu_m4.run(policy.files, policy.ident, check, str(tmp_path))
    lib = CPolicyLibrary(policy)
    assert raw.shape == (25, policy.output_size)
    np.testing.assert_array_equal(raw, lib.batch(lib.int8_raw, check))
    # newlib's tanhf on the board and glibc's on the host may differ in the last bit
    np.testing.assert_allclose(floats, lib.batch(lib.float32, check), rtol=0, atol=1e-6)



# ---- issue 27: integer-only path, prefixes, saturation, targets ------------------------------------
ARM_GCC_PRESENT = shutil.which("arm-none-eabi-gcc") is not None
HOPPER = os.path.join(os.path.dirname(__file__), "..", "docs", "runs", "sweep_mujoco", "hopper", "dsp_lam1e-05_p0.93_s0")


#: What a Cortex-M0/M0+ compiler defines: the generated C then multiplies 32x32->64 from 16-bit halves.
ARMV6M = "-D__ARM_ARCH_6M__"


def _integer_only(policy, *flags):
    return CPolicyLibrary(policy, extra_flags=[f"-D{policy.integer_only_macro}", *flags])


@pytest.mark.parametrize("multiply", [(), (ARMV6M,)], ids=["int64", "armv6m_halves"])
def test_integer_only_path_is_bit_exact_with_tflite_micro_on_every_input(multiply):
    """A hand-built 2-feature actor: all 65,536 int8 inputs through the build without any float function,
    with the 64-bit multiply and with the Cortex-M0+ one from 16-bit halves."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((2,))
    x = keras.layers.Dense(6, activation="tanh", bias_initializer=keras.initializers.RandomNormal(0, 0.3))(inputs)
    x = keras.layers.Dense(5, activation="tanh", bias_initializer=keras.initializers.RandomNormal(0, 0.3))(x)
    actor = keras.Model(inputs, keras.layers.Dense(3)(x))
    converted = convert_actor(actor, np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32))
    lib = _integer_only(converted.c_policy, *multiply)
    assert lib.integer_only
    grid = np.stack(np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)), -1).reshape(-1, 2).astype(np.int8)
    raw = lib.batch(lib.int8_q, grid)
    np.testing.assert_array_equal(raw, _tflm_forward(converted.int8, grid))
    assert {lib.argmax_q(r) for r in raw[::97]} <= {0, 1, 2}
    np.testing.assert_array_equal([lib.argmax_q(r) for r in raw[::97]], np.argmax(raw[::97], axis=1))


def _load_archived(root):
    from agents import inference

    mlp, meta = inference.load_actor(root, "compact")
    return inference.inference_model(mlp, meta), meta


@pytest.mark.parametrize("which", ["cartpole", "hopper"])
def test_integer_only_path_is_bit_exact_on_real_actors(which, cartpole):
    if which == "cartpole":
        model, meta, converted, check = cartpole
    else:
        model, meta = _load_archived(HOPPER)
        check = _spread(meta, 400)
        converted = convert_actor(model, check[:200], discrete=meta.discrete)
        assert converted.c_policy.discrete is False and "_argmax_q(const" not in converted.c_policy.header
    policy = converted.c_policy
    lib = _integer_only(policy)
    rng = np.random.default_rng(5)
    q_rows = np.concatenate([
        rng.integers(-128, 128, size=(2000, policy.observation_size)),  # every corner of the int8 space
        [quantize_observation(o, converted.scaling, policy.input_scale, policy.input_zero_point) for o in check]])
    np.testing.assert_array_equal(lib.batch(lib.int8_q, q_rows), _tflm_forward(converted.int8, q_rows))


@pytest.mark.parametrize("multiply", [(), (ARMV6M,)], ids=["int64", "armv6m_halves"])
def test_mul_high_equals_gemmlowp_on_edges_and_random_pairs(multiply, cartpole, tmp_path):
    """ap_mul_high, both ways of multiplying, against the Python transcription (c_tables._mul_high) of
    gemmlowp's SaturatingRoundingDoublingHighMul, on the extremes and 200,000 random pairs."""
    import ctypes

    from tflite_export.c_policy import compile_shared
    from tflite_export.c_tables import _mul_high

    policy = cartpole[2].c_policy
    probe = (f'#include "{policy.ident}.inc"\n'
             "void probe(const int32_t *a, const int32_t *b, int32_t *out, int n)\n{\n"
             f"    int i;\n    for (i = 0; i < n; ++i) {{\n        out[i] = {policy.ident}_ap_mul_high(a[i], b[i]);\n    }}\n}}\n")
    files = {f"{policy.ident}.h": policy.header, f"{policy.ident}.inc": policy.source, "probe.c": probe}
    lib = ctypes.CDLL(compile_shared(files, str(tmp_path), extra_flags=["-Wno-unused-function", *multiply]))
    edges = [-(1 << 31), -(1 << 31) + 1, -(1 << 30), -65537, -65536, -65535, -1, 0, 1, 65535, 65536,
             (1 << 30), (1 << 31) - 1]
    rng = np.random.default_rng(11)
    a = np.concatenate([np.repeat(edges, len(edges)), rng.integers(-(1 << 31), 1 << 31, 200_000)]).astype(np.int32)
    b = np.concatenate([np.tile(edges, len(edges)), rng.integers(-(1 << 31), 1 << 31, 200_000)]).astype(np.int32)
    out = np.zeros_like(a)
    lib.probe(*(x.ctypes.data_as(ctypes.c_void_p) for x in (a, b, out)), len(a))
    expected = np.array([_mul_high(int(x), int(y)) for x, y in zip(a, b)], np.int32)
    np.testing.assert_array_equal(out, expected)


def _computed_kernel(policy, act, directory):
    """The computed kernel (``<ident>_ap_tanh`` / ``_logistic``) of a --c_tanh=computed policy, called
    directly on inputs -128..127 with a layer's parameters: the generated .c is included into a probe
    (its helpers are static)."""
    import ctypes

    from tflite_export.c_policy import compile_shared

    probe = (f'#include "{policy.ident}.inc"\n'
             "void probe(int8_t *v, int32_t zero_point, int32_t radius, int32_t m, int shift)\n{\n"
             f"    {policy.ident}_ap_{act}(v, 256, zero_point, radius, m, shift);\n}}\n")
    files = {f"{policy.ident}.h": policy.header, f"{policy.ident}.inc": policy.source, "probe.c": probe}
    os.makedirs(directory, exist_ok=True)
    lib = ctypes.CDLL(compile_shared(files, str(directory), extra_flags=["-Wno-unused-function"]))

    def outputs(zero_point, radius, m, shift):
        v = np.arange(-128, 128, dtype=np.int8)
        lib.probe(v.ctypes.data_as(ctypes.c_void_p), zero_point, radius, m, shift)
        return v
    return outputs


@pytest.mark.parametrize("which", ["cartpole", "hopper"])
def test_activation_tables_are_the_computed_kernel_on_every_input(which, cartpole, tmp_path):
    """Issue 39: every layer's TANH/LOGISTIC table equals the computed routine (the one that is bit-exact
    with TFLite Micro) on all 256 inputs, and --c_tanh=computed is still bit-exact with TFLite Micro."""
    from tflite_export.c_int8 import _int8_graph
    from tflite_export.c_tables import expand_odd, expand_trimmed

    if which == "cartpole":
        model, meta, converted, check = cartpole
    else:
        model, meta = _load_archived(HOPPER)
        check = _spread(meta, 200)
        converted = convert_actor(model, check[:100], discrete=meta.discrete)
    computed = generate(model, converted.int8, converted.scaling, discrete=meta.discrete, c_tanh="computed")
    graph = _int8_graph(converted.int8)
    tables = graph.activation_tables
    assert len(tables) >= (1 if which == "cartpole" else 3)
    source = converted.c_policy.source
    kernels = {act: _computed_kernel(computed, act, tmp_path / act) for act in {args[0] for args in tables.values()}}
    stored = 0
    for name, (act, *params) in tables.items():
        # the table as the board gets it: the array in the generated C, read through the lookup's clamp
        body = re.search(rf"{converted.c_policy.ident}_{name}\[(\d+)\] = \{{([^}}]*)\}};", source)
        entries = np.array([int(v) for v in body.group(2).split(",")], np.int8)
        kernel, first, last = graph.table_kinds[name]
        assert int(body.group(1)) == len(entries)
        if kernel == "lookup_odd":  # half a table: the input zero point is the table's args[1]
            assert len(entries) == last + 1
            board = expand_odd(entries.tolist(), params[0])
        else:
            assert len(entries) == last - first + 1
            board = expand_trimmed(first, entries.tolist())
        np.testing.assert_array_equal(np.array(board, np.int8), kernels[act](*params))
        stored += len(entries)
    assert stored < 256 * len(tables)  # the saturated ends and the upper half are left out
    q_rows = np.random.default_rng(7).integers(-128, 128, size=(500, computed.observation_size)).astype(np.int8)
    expected = _tflm_forward(converted.int8, q_rows)
    np.testing.assert_array_equal(_batch_int8_q(computed, q_rows), expected)
    np.testing.assert_array_equal(_batch_int8_q(converted.c_policy, q_rows), expected)  # the tables, in C


def _batch_int8_q(policy, q_rows):
    lib = _integer_only(policy)
    return lib.batch(lib.int8_q, q_rows)


def _spread(meta, n):
    """Observations around the training statistics (no environment needed)."""
    rng = np.random.default_rng(0)
    return (np.asarray(meta.obs_mean) + rng.normal(size=(n, len(meta.obs_mean))) * np.sqrt(meta.obs_var)
            ).astype(np.float32)


@pytest.mark.skipif(not ARM_GCC_PRESENT, reason="needs arm-none-eabi-gcc (apt-get install gcc-arm-none-eabi)")
@pytest.mark.parametrize("cpu", [["-mcpu=cortex-m0plus"], ["-mcpu=cortex-m4", "-mfloat-abi=soft"]])
def test_integer_only_object_has_no_float_symbol(cartpole, tmp_path, cpu):
    policy = cartpole[2].c_policy
    for name, text in policy.files.items():
        (tmp_path / name).write_text(text)

    def symbols(*defines):
        obj = tmp_path / "p.o"
        subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-mthumb", *cpu,
                        "-Os", *defines, "-c", str(tmp_path / f"{policy.ident}.c"), "-o", str(obj)], check=True)
        return subprocess.run(["arm-none-eabi-nm", str(obj)], capture_output=True, text=True, check=True).stdout

    integer_only = symbols(f"-D{policy.integer_only_macro}")
    assert f"{policy.ident}_int8_q" in integer_only and f"{policy.ident}_int8_raw" not in integer_only
    assert f"{policy.ident}_int16_q" in integer_only
    assert not [l for l in integer_only.splitlines() if "__aeabi_f" in l or "__aeabi_d" in l]
    assert "__aeabi_f" in symbols()  # the float wrappers of the full build do need them on this core


def test_two_prefixes_link_into_one_program_and_the_header_says_what_it_holds(tmp_path):
    from tflite_export.c_policy import compile_shared, generator_version

    left = convert_actor(_actor(seed=1), _observations(0, 200), c_prefix="left_policy")
    right = convert_actor(_actor(seed=2, out=3), _observations(0, 200), c_prefix="right_policy")
    files = {**left.c_policy.files, **right.c_policy.files}
    assert set(files) == {"left_policy.c", "left_policy.h", "right_policy.c", "right_policy.h"}
    # a program using both, and the header's macros as initialisers
    files["both.c"] = ('#include "left_policy.h"\n#include "right_policy.h"\n'
                       "static const float lo[] = LEFT_POLICY_INPUT_LOW;\n"
                       "static const float hi[] = RIGHT_POLICY_INPUT_HIGH;\n"
                       "int both(const float *obs, int8_t *l, int8_t *r)\n{\n"
                       "    return left_policy_int8_raw(obs, l) + right_policy_int8_raw(obs, r)"
                       " + (lo[0] < hi[0]);\n}\n")
    import ctypes

    lib = ctypes.CDLL(compile_shared(files, str(tmp_path)))
    obs = _observations(3, 20)
    for o in obs:
        l, r = np.zeros(2, np.int8), np.zeros(3, np.int8)
        lib.both(o.ctypes.data_as(ctypes.c_void_p), l.ctypes.data_as(ctypes.c_void_p),
                 r.ctypes.data_as(ctypes.c_void_p))
        np.testing.assert_array_equal(l, raw_int8_outputs(left, o[None])[0])
        np.testing.assert_array_equal(r, raw_int8_outputs(right, o[None])[0])
    header = left.c_policy.header
    import hashlib
    assert hashlib.sha256(left.int8).hexdigest() in header and generator_version() in header
    assert f'LEFT_POLICY_MODEL_SHA256 "{hashlib.sha256(left.int8).hexdigest()}"' in header
    assert "Saturation:" in header and "[5]" in header and "logit of action" in header
    assert "generated by" in left.c_policy.source.lower() and left.c_policy.model_sha256 in left.c_policy.source


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ for the TFLite Micro arrays (.cc)")
def test_two_prefixed_exports_link_and_unity_build_into_one_firmware(tmp_path):
    """Issue 39: --c_prefix also names the TFLite Micro arrays and every file-scope name of the policy,
    so two exports (each in its own directory, as written) link into one program, and one translation
    unit can include both policies' .c files (a unity build) and both arrays' .cc files."""
    exports = {p: convert_actor(_actor(seed=s, out=2 + s), _observations(0, 200), c_prefix=p)
               for s, p in ((0, "left"), (1, "right"))}
    for prefix, converted in exports.items():
        (tmp_path / prefix).mkdir()
        for name, data in converted.files.items():
            if name.endswith((".c", ".h", ".cc")):
                (tmp_path / prefix / name).write_text(data)
        assert f"g_{prefix}_actor_int8_model_data" in converted.files["actor_int8.h"]
        assert not re.search(r"\b(?:ap|k)_\w+", converted.c_policy.source)  # no unprefixed name of its own
    main = ('#include "left/actor_int8.h"\n#include "right/actor_int8.h"\n'
            '#include "left/left.h"\n#include "right/right.h"\n'
            "int main()\n{\n    int8_t q[6] = {0}, l[2], r[3];\n    left_int8_q(q, l);\n    right_int8_q(q, r);\n"
            "    return (int)(g_left_actor_int8_model_data_size + g_right_actor_int8_model_data_size"
            " + (unsigned)g_left_actor_int8_model_data[0] + (unsigned)g_right_actor_int8_model_data[0]) & 1;\n}\n")
    (tmp_path / "main.cc").write_text(main)
    run = lambda *cmd: subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)  # noqa: E731
    objects = []
    for prefix in exports:
        for src, compiler, std in ((f"{prefix}/{prefix}.c", "gcc", "-std=c99"), (f"{prefix}/actor_int8.cc", "g++",
                                                                                    "-std=c++11")):
            obj = src.replace("/", "_") + ".o"
            r = run(compiler, std, "-Wall", "-Wextra", "-Werror", "-c", src, "-o", obj)
            assert r.returncode == 0, r.stderr
            objects.append(obj)
    r = run("g++", "-std=c++11", "-Wall", "-Werror", "main.cc", *objects, "-o", "firmware")
    assert r.returncode == 0, r.stderr  # no "multiple definition"
    # unity builds: both policies in one C translation unit, both arrays in one C++ one
    (tmp_path / "unity.c").write_text('#include "left/left.c"\n#include "right/right.c"\n')
    r = run("gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Ileft", "-Iright", "-c", "unity.c")
    assert r.returncode == 0, r.stderr
    (tmp_path / "unity.cc").write_text('#include "left/actor_int8.cc"\n#include "right/actor_int8.cc"\n')
    r = run("g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-Ileft", "-Iright", "-c", "unity.cc")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("int8_input", ["per_feature", "per_tensor"])
def test_every_float_macro_initialises_a_float_array_under_float_conversion_errors(int8_input, tmp_path):
    """Issue 39: the header's quantisation constants are float literals exactly equal to the float32
    values (INT16_LSB is 2^-FRAC_BITS exactly, not the double 6.10351562e-05), so each one initialises
    a float (array) with -Werror=float-conversion, as C99 and as C++11."""
    from decimal import Decimal

    policy = convert_actor(_actor(out=3), _observations(0, 200), int8_input=int8_input).c_policy
    macros = dict(re.findall(r"#define (\w+) (\{[^}]*\}|-?[0-9][0-9.e+-]*f)\n", policy.header))
    upper = policy.ident.upper()
    expected = {"INPUT_SCALE", "OUTPUT_SCALE", "INPUT_LOW", "INPUT_HIGH", "INT16_LSB"}
    expected |= {"INPUT_OFFSET", "INPUT_INV_HALF_RANGE"} if int8_input == "per_feature" else set()
    assert {f"{upper}_{m}" for m in expected} <= set(macros)
    lines = [f'#include "{policy.ident}.h"']
    for k, (name, value) in enumerate(sorted(macros.items())):
        lines.append(f"static const float m{k}[] = {name};" if value.startswith("{") else
                     f"static const float m{k} = {name};")
    lines.append("const float *all[] = {" + ", ".join(f"{'' if macros[n].startswith('{') else '&'}m{k}"
                                                      for k, n in enumerate(sorted(macros))) + "};")
    for name, value in (("INPUT_SCALE", policy.input_scale), ("OUTPUT_SCALE", policy.output_scale)):
        assert np.float32(macros[f"{upper}_{name}"][:-1]) == np.float32(value)
    lsb = [Decimal(t[:-1]) for t in re.findall(r"[0-9.e+-]+f", macros[f"{upper}_INT16_LSB"])]
    frac = [int(v) for v in re.search(rf"#define {upper}_INT16_FRAC_BITS \{{([^}}]*)\}}", policy.header)
            .group(1).split(",")]
    assert lsb == [Decimal(2) ** -f for f in frac]  # exactly, as decimals
    (tmp_path / policy.ident).with_suffix(".h").write_text(policy.header)
    for source, compiler, std in (("m.c", "gcc", "-std=c99"), ("m.cc", "g++", "-std=c++11")):
        if shutil.which(compiler) is None:
            continue
        (tmp_path / source).write_text("\n".join(lines) + "\n")
        # the issue's own command line, and the stricter one (-pedantic, -Wdouble-promotion, all errors)
        for flags in (["-Wall", "-Wextra", "-Werror=float-conversion", "-Wconversion"],
                      ["-Wall", "-Wextra", "-pedantic", "-Werror", "-Wfloat-conversion", "-Wconversion",
                       "-Wdouble-promotion"]):
            r = subprocess.run([compiler, std, *flags, "-c", source, "-o", source + ".o"], cwd=tmp_path,
                               capture_output=True, text=True)
            assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    # What the compiler made of each literal is exactly the float32 the model and the map hold (read back
    # with %a: no decimal rounding in between).
    (tmp_path / "print.c").write_text(
        "\n".join(lines[:-1]) + "\n#include <stdio.h>\n"
        "int main(void) {\n" + "".join(
            f"    {{ const float *p = {'' if macros[n].startswith('{') else '&'}m{k}; unsigned i; "
            f"for (i = 0; i < sizeof(m{k}) / sizeof(float); ++i) printf(\"%a \", (double)p[i]); "
            f"printf(\"\\n\"); }}\n" for k, n in enumerate(sorted(macros))) + "    return 0;\n}\n")
    r = subprocess.run([host_compiler(), "-std=c99", "print.c", "-o", "print"], cwd=tmp_path, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    printed = dict(zip(sorted(macros), subprocess.run([str(tmp_path / "print")], capture_output=True, text=True,
                                                      check=True).stdout.splitlines()))
    as_read = {name: [float.fromhex(t) for t in text.split()] for name, text in printed.items()}
    expected = {"INPUT_SCALE": [policy.input_scale], "OUTPUT_SCALE": [policy.output_scale],
                "INPUT_LOW": policy.input_low, "INPUT_HIGH": policy.input_high, "INT16_LSB": policy.int16.lsb}
    if policy.scaling is not None:
        expected.update(INPUT_OFFSET=policy.scaling.offset, INPUT_INV_HALF_RANGE=policy.scaling.inv_half_range)
    for name, values in expected.items():
        assert as_read[f"{upper}_{name}"] == [float(np.float32(v)) for v in np.ravel(values)], name


def test_a_saturated_input_raises_the_flag(cartpole):
    policy = cartpole[2].c_policy
    lib = CPolicyLibrary(policy)
    inside = (policy.input_low + policy.input_high) / 2
    assert lib.saturated(inside.astype(np.float32)) == 0
    assert lib.quantize(inside.astype(np.float32))[1] == 0
    beyond = inside.copy()
    beyond[2] = policy.input_high[2] + 0.1 * (policy.input_high[2] - policy.input_low[2])  # the pole angle
    assert lib.saturated(beyond.astype(np.float32)) == 1
    q, count = lib.quantize(beyond.astype(np.float32))
    edge = inside.copy()
    edge[2] = policy.input_high[2]
    assert count == 1 and q[2] == lib.quantize(edge.astype(np.float32))[0][2]  # clamped to the range's end
    both = beyond.copy()
    both[0] = np.nan
    assert lib.saturated(both.astype(np.float32)) == 2
    check = cartpole[3]
    wide = check * 20
    np.testing.assert_array_equal([lib.saturated(o) for o in np.concatenate([check, wide])],
                                  policy.saturated_features(np.concatenate([check, wide])))
    assert policy.saturated_features(wide).max() > 0


def test_a_bad_prefix_is_refused():
    from dsp_tf.errors import UsageError

    with pytest.raises(UsageError, match="not a C identifier"):
        convert_actor(_actor(), _observations(0, 50), c_prefix="2bad-name")


@pytest.mark.skipif(not qemu_bench_available(), reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_targets_table_counts_instructions_and_recommends(cartpole):
    from tflite_export.footprint import TARGETS, target_table

    from tflite_export.c_int8 import _int8_graph

    converted = cartpole[2]
    tables = len(_int8_graph(converted.int8).activation_tables)
    table = target_table(converted.c_policy, cartpole[3][:8], kernels=converted.c_policy_kernels)
    assert set(table["targets"]) == set(TARGETS) and "not cycles" in table["instructions"]
    assert "empty main" in table["call_site"] and table["c_tanh"] == "table"
    for target, row in table["targets"].items():
        v = row["variants"]
        # issue 39: both TANH kernels per target, the shipped one's figures being the variants' own; the
        # tables cost flash (less than 256 B each: saturated ends and one odd half left out) and save
        # instructions, the outputs being the same
        kernels = row["kernels"]
        assert set(kernels) == {"table", "computed"} and kernels["table"]["int8_q"] is v["int8_q"]
        table_q, computed_q = kernels["table"]["int8_q"], kernels["computed"]["int8_q"]
        assert computed_q["rodata_bytes"] < table_q["rodata_bytes"] < computed_q["rodata_bytes"] + 256 * tables
        assert 2 * table_q["instructions_per_call"] < computed_q["instructions_per_call"]
        assert row["kernel_recommendation"].startswith(f"{target}: table")
        for name, variant in v.items():
            assert variant["call_site_static_ram_bytes"] > 0 and variant["empty_main_flash_bytes"] > 0
            if name in ("int8_q", "int16_q"):  # integer only: nothing shared with the start-up code, so a
                # real call site costs a little on top of the entry point linked alone
                assert 0 < variant["call_site_flash_bytes"] - variant["flash_bytes"] < 200
            else:  # the float variants share library code (memset, ...) with newlib-nano's start-up
                assert variant["call_site_flash_bytes"] > 0.8 * variant["flash_bytes"]
        assert v["int8_q"]["float_library_symbols"] == [] and v["int8_q"]["static_ram_bytes"] == 0
        assert v["int8_q"]["flash_bytes"] < v["int8"]["flash_bytes"]
        assert all(x["instructions_per_call"] > 100 for x in v.values())
        assert row["recommendation"].startswith(target)
        # issue 39: library frames (libgcc soft float, libm) are in the stack figures, nothing left out
        assert all(x["stack_excludes"] == [] for x in v.values()), target
    soft = table["targets"]["cortex-m0plus"]["variants"]
    assert soft["int8"]["float_library_symbols"] and soft["float32"]["float_library_symbols"]


@pytest.mark.parametrize("int8_input", ["per_feature", "per_tensor"])
def test_int16_input_is_the_float_quantiser_in_integers(int8_input):
    """<prefix>_int16_q: the fixed-point quantiser against the exact affine map in float64 (equal except
    within its documented error of a rounding boundary), the float wrapper's clamping and saturation
    count, and TFLite Micro on the int8 input it makes; in the build without any float function."""
    converted = convert_actor(_actor(out=3), _observations(0, 300), int8_input=int8_input)
    policy, fixed = converted.c_policy, converted.c_policy.int16
    lib, integer_only = CPolicyLibrary(policy), _integer_only(policy)
    rng = np.random.default_rng(7)
    counts = np.concatenate([
        rng.integers(-32768, 32768, size=(1500, policy.observation_size)),  # far outside the range too
        fixed.counts(_observations(8, 1500)),
        [fixed.x_low, fixed.x_high, fixed.x_low - 1, fixed.x_high + 1]]).astype(np.int16)
    got = [integer_only.quantize_int16(x) for x in counts]
    q16 = np.stack([g[0] for g in got])
    saturated = np.array([g[1] for g in got])
    # the exact map: the float quantiser's value before rounding, in float64, rounded half up
    obs = counts.astype(np.float64) * fixed.lsb
    low, high = fixed.x_low * fixed.lsb, fixed.x_high * fixed.lsb
    if int8_input == "per_feature":
        s = converted.scaling
        pre = (np.clip(obs, low, high) - s.offset.astype(np.float64)) * s.inv_half_range / policy.input_scale
    else:
        pre = np.clip(obs, low, high) / policy.input_scale
    pre = pre + policy.input_zero_point
    exact = np.clip(np.floor(pre + 0.5), -128, 127)
    outside = (obs < low - 1e-12) | (obs > high + 1e-12)
    exact = np.where(outside, np.where(obs < low, fixed.q_low, fixed.q_high), exact)  # the float path's range end
    boundary = (np.abs(pre + 0.5 - np.round(pre + 0.5)) <= fixed.max_error_steps) & ~outside
    assert fixed.max_error_steps < 2 ** -6
    assert np.all((q16 == exact) | boundary) and np.mean(q16[~outside] == exact[~outside]) >= 0.97
    assert np.mean(outside) > 0.3  # the random counts reach far beyond the range
    np.testing.assert_array_equal(saturated, np.sum(outside, axis=1))
    # the float wrapper on the same values: its q within one step, its saturation count the same
    floats = [lib.quantize(o.astype(np.float32)) for o in obs]
    steps = np.abs(np.stack([f[0] for f in floats]).astype(int) - q16.astype(int))
    assert steps.max() <= 1 and np.all(steps[outside] == 0) and np.mean(steps == 0) >= 0.98
    np.testing.assert_array_equal([f[1] for f in floats], saturated)
    out = integer_only.batch(integer_only.int16_q, counts[::5])
    np.testing.assert_array_equal(out, _tflm_forward(converted.int8, q16[::5]))


def test_int16_lsb_given_by_the_user_and_refused_when_too_coarse():
    from dsp_tf.errors import UsageError
    from tflite_export.c_int16 import parse_lsb

    assert parse_lsb(None, 6) is None and list(parse_lsb("0.5", 3)) == [0.5, 0.5, 0.5]
    lsb = np.array([1e-3, 1e-3, 1e-2, 1e-2, 0.05, 1e-3])
    converted = convert_actor(_actor(), _observations(0, 300), int16_lsb=lsb)
    fixed = converted.c_policy.int16
    assert fixed.frac_bits is None and np.array_equal(fixed.lsb, lsb)
    assert "INT16_FRAC_BITS" not in converted.c_policy.header and "LSB given to the exporter" in converted.c_policy.header
    lib = _integer_only(converted.c_policy)
    inside = fixed.counts((converted.c_policy.input_low + converted.c_policy.input_high) / 2)
    assert lib.quantize_int16(inside)[1] == 0
    for text, message in (("1,2", "has 2 values"), ("a", "not a comma-separated"), ("-1", "finite number > 0"),
                          ("nan", "finite number > 0")):
        with pytest.raises(UsageError, match=message):
            parse_lsb(text, 6)
    with pytest.raises(UsageError, match="narrower than one count"):
        convert_actor(_actor(), _observations(0, 300), int16_lsb=np.full(6, 1e3))
    with pytest.raises(UsageError, match="feature 0's input range .* needs counts beyond int16 at an LSB of 1e-09"):
        convert_actor(_actor(), _observations(0, 300), int16_lsb=np.full(6, 1e-9))


def test_a_range_the_default_lsb_cannot_resolve_leaves_only_the_int16_entry_point_out():
    """A feature far from zero with a narrow range (20000 +- 0.3): no power of two holds its values and
    resolves the range; the rest of the C policy is still written, and the header and report say why."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((3,))
    actor = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(4, activation="tanh")(inputs)))
    obs = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
    obs[:, 0] = 20000 + 0.1 * obs[:, 0]
    converted = convert_actor(actor, obs)
    policy = converted.c_policy
    assert policy is not None and policy.int16 is None and "no int16 entry point: feature 0" in policy.int16_skipped
    assert "_int16_q" not in policy.source and policy.int16_skipped in policy.header
    lib = CPolicyLibrary(policy)
    report = c_policy_report(converted, outputs(keras_step(actor), obs[:20]), obs[:20])
    assert report["int16_input"] == {"written": False, "reason": policy.int16_skipped}
    assert report["int8_vs_tflite_micro"]["identical_output_rate"] == 1.0 and lib.int8_q(np.zeros(3)).shape == (2,)


def test_int16_range_ends_are_the_float_wrappers_own():
    """At each feature's range end the int16 path and the float wrapper agree on inside / outside, also
    where the end is the normaliser's clip window in float32 (9.99999985 for a unit feature clipped at
    10, as Hopper's velocities are): count 10240 of 2^-10 is 10.0, above that end, yet the float test
    takes it as inside; so must the int16 path. The last count inside is inside for both, the next
    one outside for both."""
    from agents.inference import ObservationNormalization  # noqa: WPS433

    keras.utils.set_random_seed(5)
    inputs = keras.Input((2,))
    x = ObservationNormalization(np.zeros(2), np.ones(2), clip=10.0, epsilon=0.0)(inputs)
    x = keras.layers.Dense(6, activation="tanh")(x)
    actor = keras.Model(inputs, keras.layers.Dense(2)(x))
    calibration = np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32)
    calibration[:2] = [[1000.0, -1000.0], [-1000.0, 1000.0]]  # beyond the window: the range is the window
    converted = convert_actor(actor, calibration)
    policy, fixed = converted.c_policy, converted.c_policy.int16
    assert np.allclose(policy.input_high, 10.0, rtol=1e-6) and list(fixed.frac_bits) == [10, 10]
    assert list(fixed.x_high) == [10240, 10240] and list(fixed.x_low) == [-10240, -10240]
    lib, integer_only = CPolicyLibrary(policy), _integer_only(policy)
    for counts, expected in (((fixed.x_low, fixed.x_high), 0), ((fixed.x_low - 1, fixed.x_high + 1), 1)):
        for row in counts:
            row = row.astype(np.int16)
            as_read = (row.astype(np.float64) * fixed.lsb).astype(np.float32)
            q, flagged = integer_only.quantize_int16(row)
            assert flagged == policy.saturated_features(as_read[None])[0] == expected * 2
            steps = np.abs(q.astype(int) - lib.quantize(as_read)[0].astype(int))
            # outside: the float wrapper's value at the end, exactly; on the end: a tie, within one step
            assert steps.max() == 0 if expected else steps.max() <= 1
