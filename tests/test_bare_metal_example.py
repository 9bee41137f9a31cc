"""examples/bare_metal: the generated policy in a bare-metal program on QEMU boards gives the host's outputs."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tflite_export.c_policy import CPolicyLibrary, host_compiler
from tflite_export.exporter import convert_actor

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "bare_metal")
MAKE_OBSERVATIONS = os.path.abspath(os.path.join(EXAMPLE, "make_observations.py"))
RUN = os.path.abspath(os.path.join(os.path.dirname(__file__), "data", "cartpole_dsp_s0"))
TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm")
pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in TOOLS) or host_compiler() is None,
    reason="needs arm-none-eabi-gcc, qemu-system-arm and a host C compiler "
           "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")


@pytest.fixture(scope="module")
def cartpole(tmp_path_factory):
    from agents import inference

    mlp, meta = inference.load_actor(RUN, "compact")
    model = inference.inference_model(mlp, meta)
    rng = np.random.default_rng(0)
    obs = (np.asarray(meta.obs_mean) + rng.normal(size=(60, 4)) * np.sqrt(meta.obs_var)).astype(np.float32)
    converted = convert_actor(model, obs[:30], c_prefix="cartpole_policy", discrete=True)
    policy_dir = tmp_path_factory.mktemp("policy")
    for name, text in converted.c_policy.files.items():
        (policy_dir / name).write_text(text)
    return converted.c_policy, obs[30:], policy_dir


def _run(board, elf, cwd):
    r = subprocess.run(["qemu-system-arm", "-M", board, "-nographic", "-monitor", "none", "-serial", "none",
                        "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
                       cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return [line for line in (r.stdout + r.stderr).splitlines() if "| saturated" in line]


@pytest.mark.parametrize("board", ["mps2-an386", "microbit"])
def test_example_reads_observations_and_writes_the_hosts_actions(cartpole, tmp_path, board):
    policy, obs, policy_dir = cartpole
    elf = tmp_path / "policy.elf"
    subprocess.run(["bash", os.path.join(EXAMPLE, "build.sh"), str(policy_dir), board, str(elf), policy.ident],
                   check=True)
    obs.astype("<f4").tofile(tmp_path / "observations.bin")
    lines = _run(board, elf, tmp_path)
    lib = CPolicyLibrary(policy)
    assert len(lines) == len(obs)
    for line, o in zip(lines, obs):
        raw = lib.int8_raw(o)
        assert line == (" ".join(str(int(v)) for v in raw) + f" | saturated {lib.saturated(o)} | action "
                        f"{int(np.argmax(raw))}")
    assert any("saturated 0" not in line for line in lines)  # some observations were outside the range


def _build(policy, policy_dir, board, elf, *mode):
    subprocess.run(["bash", os.path.join(EXAMPLE, "build.sh"), str(policy_dir), board, str(elf), policy.ident, *mode],
                   check=True)


def test_integer_only_example_on_a_cortex_m0_reads_sensor_counts_and_reports_saturation(cartpole, tmp_path):
    """Issue 39: the integer-only build takes int16 sensor counts through <prefix>_int16_q, whose integer
    quantiser counts the features outside the calibrated range, so the board flags them with no float."""
    policy, obs, policy_dir = cartpole
    elf = tmp_path / "policy.elf"
    _build(policy, policy_dir, "microbit", elf, "integer-only")
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    assert "__aeabi_f" not in nm and "__aeabi_d" not in nm and "cartpole_policy_int8_raw" not in nm
    assert "cartpole_policy_int16_q" in nm
    lib = CPolicyLibrary(policy)
    counts = policy.int16.counts(obs)
    counts.astype("<i2").tofile(tmp_path / "observations.bin")
    lines = _run("microbit", elf, tmp_path)
    assert lines == [" ".join(str(int(v)) for v in lib.int16_q(x)) + f" | saturated {lib.quantize_int16(x)[1]} | "
                     f"action {int(np.argmax(lib.int16_q(x)))}" for x in counts]
    assert any("saturated 0" not in line for line in lines)  # the Gaussian states leave the range now and then


def test_int8_input_example_runs_the_quantised_records_and_says_saturation_is_unknown(cartpole, tmp_path):
    policy, obs, policy_dir = cartpole
    elf = tmp_path / "policy.elf"
    _build(policy, policy_dir, "microbit", elf, "int8-input")
    lib = CPolicyLibrary(policy)
    q = np.stack([lib.quantize(o)[0] for o in obs])
    q.astype(np.int8).tofile(tmp_path / "observations.bin")
    lines = _run("microbit", elf, tmp_path)
    assert [line.split(" |")[0] for line in lines] == [" ".join(str(int(v)) for v in lib.int8_q(r)) for r in q]
    assert all(" | saturated - | " in line for line in lines)


def _make_observations(*args, cwd):
    return subprocess.run([sys.executable, MAKE_OBSERVATIONS, f"--root_dir={RUN}", *args], cwd=cwd,
                          capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


@pytest.mark.parametrize("board, fmt, mode", [("mps2-an386", "float32", ()), ("microbit", "int16", ("integer-only",)),
                                              ("microbit", "int8", ("int8-input",))])
def test_observations_script_writes_held_out_states_and_qemu_prints_the_hosts_outputs(cartpole, tmp_path, board,
                                                                                      fmt, mode):
    """make_observations.py: the run's policy on held-out episodes, in the format each build reads; the board's
    lines are the host build's for every record."""
    from agents.envs import make_gym
    from agents.evaluation import HELD_OUT_OFFSET, held_out_seeds

    policy, _, policy_dir = cartpole
    r = _make_observations(f"--policy_dir={policy_dir}", f"--c_prefix={policy.ident}", f"--format={fmt}",
                           "--episodes=2", "--max_observations=120", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith(f"observations.bin: 120 {fmt} records of")
    data = (tmp_path / "observations.bin").read_bytes()
    dtype = {"float32": "<f4", "int16": "<i2", "int8": "i1"}[fmt]
    records = np.frombuffer(data, dtype).reshape(-1, policy.observation_size)
    assert len(records) == 120
    # The first record is the first state of the held-out range's last-but-one episode (seed 0's run).
    env = make_gym("CartPole-v1")
    first, _ = env.reset(seed=held_out_seeds(0, HELD_OUT_OFFSET)[-2])
    env.close()
    lib = CPolicyLibrary(policy)
    expected = {"float32": lambda o: o, "int16": lambda o: policy.int16.counts(o[None])[0],
                "int8": lambda o: lib.quantize(o)[0]}[fmt](np.asarray(first, np.float32))
    np.testing.assert_array_equal(records[0], expected)

    elf = tmp_path / "policy.elf"
    _build(policy, policy_dir, board, elf, *mode)
    lines = _run(board, elf, tmp_path)
    host = {"float32": lambda x: (lib.int8_raw(x), str(lib.saturated(x))),
            "int16": lambda x: (lib.int16_q(x), str(lib.quantize_int16(x)[1])),
            "int8": lambda x: (lib.int8_q(x), "-")}[fmt]
    assert lines == [" ".join(str(int(v)) for v in out) + f" | saturated {n} | action {int(np.argmax(out))}"
                     for out, n in map(host, records)]


def test_observations_script_refuses_bad_input_in_one_line_and_writes_nothing(cartpole, tmp_path):
    policy, _, policy_dir = cartpole
    other = tmp_path / "other"
    other.mkdir()
    header = (policy_dir / f"{policy.ident}.h").read_text()
    (other / f"{policy.ident}.h").write_text(header.replace(
        " *\n", " * Trained policy: env CartPole-v1, summary_json_sha256 " + "0" * 64 + "\n *\n", 1))
    for args, message in (([f"--policy_dir={policy_dir}"], "actor_policy.h' not found"),
                          ([f"--policy_dir={other}", f"--c_prefix={policy.ident}"], "was exported from another run"),
                          ([f"--policy_dir={policy_dir}", f"--c_prefix={policy.ident}", "--format=int4"], "int4"),
                          ([f"--policy_dir={policy_dir}", f"--c_prefix={policy.ident}", "--episodes=0"],
                           "--episodes and --max_observations must be >= 1")):
        r = _make_observations(*args, cwd=tmp_path)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and message in lines[-1] and lines[-1].startswith("make_observations.py: error:"), \
            r.stderr[-1000:]
        assert os.listdir(tmp_path) == ["other"]


def test_build_script_refuses_a_bad_board(cartpole, tmp_path):
    r = subprocess.run(["bash", os.path.join(EXAMPLE, "build.sh"), str(cartpole[2]), "no-board", str(tmp_path / "x.elf")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].endswith("unknown board 'no-board' (mps2-an386 or microbit)")
    assert not (tmp_path / "x.elf").exists()
