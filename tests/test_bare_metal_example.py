"""examples/bare_metal: the generated policy in a bare-metal program on QEMU boards gives the host's outputs."""
import os
import shutil
import subprocess

import numpy as np
import pytest

from tflite_export.c_policy import CPolicyLibrary, host_compiler
from tflite_export.exporter import convert_actor

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "bare_metal")
TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm")
pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in TOOLS) or host_compiler() is None,
    reason="needs arm-none-eabi-gcc, qemu-system-arm and a host C compiler "
           "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")


@pytest.fixture(scope="module")
def cartpole(tmp_path_factory):
    from agents import inference

    mlp, meta = inference.load_actor(os.path.join(os.path.dirname(__file__), "data", "cartpole_dsp_s0"), "compact")
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


def test_integer_only_example_on_a_cortex_m0(cartpole, tmp_path):
    policy, obs, policy_dir = cartpole
    elf = tmp_path / "policy.elf"
    subprocess.run(["bash", os.path.join(EXAMPLE, "build.sh"), str(policy_dir), "microbit", str(elf), policy.ident,
                    "integer-only"], check=True)
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    assert "__aeabi_f" not in nm and "__aeabi_d" not in nm and "cartpole_policy_int8_raw" not in nm
    lib = CPolicyLibrary(policy)
    q = np.stack([lib.quantize(o)[0] for o in obs])
    q.astype(np.int8).tofile(tmp_path / "observations.bin")
    lines = _run("microbit", elf, tmp_path)
    assert [line.split(" |")[0] for line in lines] == [" ".join(str(int(v)) for v in lib.int8_q(r)) for r in q]


def test_build_script_refuses_a_bad_board(cartpole, tmp_path):
    r = subprocess.run(["bash", os.path.join(EXAMPLE, "build.sh"), str(cartpole[2]), "no-board", str(tmp_path / "x.elf")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].endswith("unknown board 'no-board' (mps2-an386 or microbit)")
    assert not (tmp_path / "x.elf").exists()
