"""README's Layout holds for a new method, environment and export target: each is the one line the docs
name (docs/reproduce.md, "Adding one"), and nothing else needs to know about it to train and export.

The method's and the environment's lines are added to their module's source text, as a contributor
would, and the patched module is loaded under its own name before anything imports it, in a fresh
process; the export target's entry is appended to the list its line would be in.
"""
import json
import subprocess
import sys
import textwrap

from clitools import REPO

SCRIPT = textwrap.dedent('''
    import importlib.util, json, pathlib, sys

    def with_line_added(name, path, anchor, line):
        """Loads module ``name`` from ``path`` with ``line`` added after ``anchor``, as if edited."""
        assert name not in sys.modules, name
        source = pathlib.Path(path).read_text(encoding="utf-8")
        assert source.count(anchor) == 1, anchor
        source = source.replace(anchor, anchor + line, 1)
        spec = importlib.util.spec_from_loader(name, loader=None, origin=path)
        module = importlib.util.module_from_spec(spec)
        module.__file__ = path
        sys.modules[name] = module
        exec(compile(source, path, "exec"), module.__dict__)

    import dsp_tf
    # A method: one Method(...) entry in dsp_tf/methods.py. This one prunes neurons by the L2 norm of
    # their incoming weights, without a penalty.
    with_line_added("dsp_tf.methods", "dsp_tf/methods.py", "_ALL = (\\n",
        "    Method('toy', 'prune neurons by the norm of their incoming weights', unit='neuron',\\n"
        "           scorer=lambda rng: (lambda layers, masks: neuron_group_norms(layers, masks))),\\n")
    # An environment: one EnvEntry in agents/envs.py (the gym id it names must be registered).
    import gymnasium
    gymnasium.register("ToyPole-v0", entry_point="gymnasium.envs.classic_control:CartPoleEnv",
                       max_episode_steps=60)
    import agents
    with_line_added("agents.envs", "agents/envs.py", "ENVIRONMENTS: Dict[str, EnvEntry] = {e.gym_id: e for e in (\\n",
                    "    EnvEntry('ToyPole-v0', 'toypole'),\\n")

    from agents.config import RunConfig
    from agents.envs import env_slug
    from agents.training import train
    from dsp_tf.methods import METHOD_NAMES
    cfg = RunConfig(env="ToyPole-v0", method="toy", seed=0, num_env_steps=4096, root_dir=sys.argv[1],
                    num_envs=2, rollout_steps=256, minibatch_size=256, final_sparsity=0.5, prune_begin=512,
                    prune_end=2048, prune_frequency=512, ranking="per_layer", eval_episodes=2, validation_interval=1024,
                    validation_episodes=2, checkpoint_interval=4096, actor_layers=[8, 8], critic_layers=[8, 8])
    summary = train(cfg)

    # An export target: one Target in tflite_export/targets.py; export_actor writes its files with the others.
    # (tflite_export's package imports the exporter, which imports targets: the entry goes into the list)
    from tflite_export.targets import TARGETS, Target
    TARGETS.append(Target('toy', lambda e: {f'{e.name}_sizes.txt': f'{len(e.float32)} {len(e.int8)}'}))
    import numpy as np
    from agents.inference import inference_model, load_actor
    from tflite_export.exporter import export_actor
    mlp, meta = load_actor(sys.argv[1], "compact")
    observations = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32) * [1, 1, 0.1, 1]
    sizes = export_actor(inference_model(mlp, meta), sys.argv[2], observations)
    print(json.dumps({"toy_file": sizes.get("actor_sizes.txt", 0), "tflite": [sizes["actor_float32.tflite"],
                      sizes["actor_int8.tflite"]]}))
    print(json.dumps({"methods": list(METHOD_NAMES), "slug": env_slug("ToyPole-v0"),
                      "neurons": [summary["dense"]["neurons"], summary["compact"]["neurons"]],
                      "env": summary["env"], "method": summary["method"]}))
''')


def test_a_new_method_environment_and_export_target_are_one_line_each(tmp_path):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "run"), str(tmp_path / "export")], cwd=REPO, capture_output=True,
                            text=True, timeout=600, env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3",
                                                         "HOME": str(tmp_path), "PYTHONPATH": REPO})
    assert result.returncode == 0, result.stderr[-3000:]
    exported, out = (json.loads(line) for line in result.stdout.strip().splitlines()[-2:])
    float32, int8 = exported["tflite"]
    assert (tmp_path / "export" / "actor_sizes.txt").read_text() == f"{float32} {int8}"
    assert out["methods"][0] == "toy" and out["slug"] == "toypole"
    assert out["env"] == "ToyPole-v0" and out["method"] == "toy"
    assert out["neurons"] == [16, 8]  # half of each 8-neuron layer removed by the new ranking
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["compact_layers"][:2] == [4, 4]
