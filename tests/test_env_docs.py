"""The interface registry (agents.env_docs) and the C header it documents (issue 39)."""
import numpy as np
import pytest

from agents.env_docs import INTERFACES, interface_names
from agents.envs import ENVIRONMENTS, env_spaces
from dsp_tf import extras


@pytest.mark.parametrize("env_name", sorted(INTERFACES))
def test_every_entry_has_as_many_names_as_the_environment_has_features_and_actions(env_name):
    entry = ENVIRONMENTS[env_name]
    if entry.extra and extras.missing_extra(entry.extra):
        pytest.skip(f"{env_name} needs the {entry.extra} extra")
    spaces = env_spaces(env_name)
    docs = INTERFACES[env_name]
    assert len(docs.observations) == spaces.obs_dim and len(docs.actions) == spaces.n_actions
    assert len({f.name for f in docs.observations}) == spaces.obs_dim  # no two features share a name


@pytest.mark.parametrize("env_name", ["highway-fast-v0", "merge-v0"])
def test_the_driving_tasks_scales_are_the_environments_own(env_name):
    """Kinematics normalises each feature by its features_range: the unit the header states is that range."""
    if extras.missing_extra("driving"):
        pytest.skip("needs the driving extra")
    from agents.envs import make_gym
    env = make_gym(env_name)
    env.reset(seed=0)
    ranges = env.unwrapped.observation_type.features_range
    env.close()
    units = {f.name.split(" ")[-2] if "(" in f.name else f.name.split(" ")[-1]: f.unit
             for f in INTERFACES[env_name].observations[:5]}
    assert units["x"] == f"1 = {ranges['x'][1]:g} m" and units["y"] == f"1 = {ranges['y'][1]:g} m"
    assert units["vx"] == f"1 = {ranges['vx'][1]:g} m/s"


def test_cartpole_names_units_and_actions():
    names, units, outputs = interface_names("CartPole-v1", 4, 2)
    assert names == ["cart position", "cart velocity", "pole angle", "pole angular velocity"]
    assert units == ["m", "m/s", "rad", "rad/s"]
    assert outputs == ["push the cart to the left", "push the cart to the right"]
    names, units, outputs = interface_names("Hopper-v4", 11, 3)
    assert names[0].startswith("z-coordinate") and units[0] == "m" and units[-1] == "rad/s"
    assert outputs[0].startswith("torque on the thigh joint")


@pytest.mark.parametrize("env_name, obs_dim, out_dim", [("NoSuchEnv-v0", 3, 2), ("CartPole-v1", 5, 3)])
def test_an_unknown_environment_or_other_sizes_fall_back_to_numbered_names(env_name, obs_dim, out_dim):
    names, units, outputs = interface_names(env_name, obs_dim, out_dim)
    assert names == [f"feature {i}" for i in range(obs_dim)] and units == ["?"] * obs_dim
    assert outputs == [f"output {k}" for k in range(out_dim)]


def _cartpole_policy(**interface):
    import os

    from agents import inference
    from tflite_export.exporter import convert_actor

    root = os.path.join(os.path.dirname(__file__), "data", "cartpole_dsp_s0")
    mlp, meta = inference.load_actor(root, "compact")
    model = inference.inference_model(mlp, meta)
    obs = (np.asarray(meta.obs_mean) + np.random.default_rng(0).normal(size=(60, 4)) * np.sqrt(meta.obs_var))
    return convert_actor(model, obs.astype(np.float32), discrete=True, c_interface=interface or None).c_policy


def _doc_lines(header, first, last):
    doc = header[:header.index("*/")].splitlines()
    start = next(i for i, line in enumerate(doc) if line.startswith(first))
    end = next(i for i in range(start + 1, len(doc)) if doc[i].startswith(last))
    return doc[start + 1:end]


def test_the_header_lists_each_input_with_name_unit_and_range_and_each_output_with_its_meaning():
    names, units, outputs = interface_names("CartPole-v1", 4, 2)
    identity = {"env": "CartPole-v1", "method": "dsp", "seed": 0, "chosen_step": 250880,
                "summary_json_sha256": "0" * 64}
    policy = _cartpole_policy(input_names=names, input_units=units, output_names=outputs, identity=identity)
    inputs = [line for line in _doc_lines(policy.header, " * Inputs", " * Quantising") if line.startswith(" *   [")]
    assert len(inputs) == 4
    for i, line in enumerate(inputs):
        # index, name, unit, then the range the int8 input covers (the INPUT_LOW / INPUT_HIGH macros)
        fields = line.split("  ")
        assert line.startswith(f" *   [{i}] {names[i]} ") and units[i] in [f.strip() for f in fields]
        low, high = line.rsplit(" .. ", 1)
        assert float(low.split()[-1]) == pytest.approx(policy.input_low[i], rel=1e-5)
        assert float(high) == pytest.approx(policy.input_high[i], rel=1e-5)
    out = _doc_lines(policy.header, " * Outputs", " * Compile")
    assert " *   [0] logit of action 0: push the cart to the left" in out
    assert " *   [1] logit of action 1: push the cart to the right" in out
    assert (" * Trained policy: env CartPole-v1, method dsp, seed 0, chosen_step 250880, summary_json_sha256 "
            + "0" * 64) in policy.header.replace("\n *   ", " ")


def test_without_names_the_header_numbers_inputs_and_outputs():
    policy = _cartpole_policy()
    assert " *   [0] feature 0  ?  " in policy.header and " *   [3] feature 3  ?  " in policy.header
    assert " *   [1] logit of action 1: output 1" in policy.header and "Trained policy" not in policy.header
    with pytest.raises(ValueError, match="input_names has 3 entries; the actor has 4"):
        _cartpole_policy(input_names=["a", "b", "c"])
