"""Export a training run's actor for TensorFlow Lite and TensorFlow Lite Micro.

    python -m tflite_export --root_dir=runs/hopper_dsp_s0 --output_dir=export/hopper

Writes actor_float32.tflite, actor_int8.tflite, actor_int8.cc/.h and
actor_int8_input.json (the compact actor; the last two hold the per-feature
input map, see tflite_export.input_scaling), actor_policy.c/.h (the compact
actor as plain C99, float32 and int8, see tflite_export.c_policy), the TFLite
files for the dense actor (actor_dense_*), export_report.json and, with --gif,
policy_int8.gif (tflite_export.animation).
"""
from __future__ import annotations

from absl import flags

from dsp_tf import cli

def define_flags() -> None:
    """Defined on demand so that importing this module never claims flag names."""
    flags.DEFINE_string("root_dir", None, "Run directory written by dsp_tf.train.")
    flags.DEFINE_string("output_dir", None, "Where the exported files go.")
    flags.DEFINE_integer("num_observations", 1000, "Recorded observations for int8 calibration (as many again are used to check).")
    flags.DEFINE_integer("eval_episodes", None, "Episodes for the return check (default: the run's).")
    flags.DEFINE_enum("int8_input", "per_feature", ["per_feature", "per_tensor"],
                      "per_feature: each observation feature gets its own int8 range (the map is in the C header "
                      "and actor_int8_input.json); per_tensor: the raw observation with one scale, as TFLite does.")
    flags.DEFINE_bool("gif", False, "Driving tasks: also write policy_int8.gif, the int8 actor (TFLite Micro) "
                      "acting the run's first evaluation episode, rendered off-screen (one frame per decision).")
    flags.DEFINE_enum("input_range", "episodes", ["training", "episodes", "observation_space"],
                      "Raw observation range the int8 input covers (beyond it a feature saturates): training = the "
                      "training rollouts' mean +- 4 std joined with the policy's episodes, within the observation "
                      "space; episodes = the policy's own greedy episodes; observation_space = the env's finite "
                      "bounds. See tflite_export/input_range.py.")
    flags.DEFINE_string("calibration_range", None, "Overrides --input_range: 'lo:hi' for every feature or "
                        "'lo:hi,lo:hi,...' one pair per observation feature, in raw units.")
    flags.DEFINE_string("c_prefix", "actor_policy", "Names the plain-C policy's files (<prefix>.c/.h), functions "
                        "and macros, so that two policies link into one firmware.")
    flags.DEFINE_integer("latency_invokes", 1000, "Invokes per latency measurement (the median is reported).")


FLAGS = flags.FLAGS


def _main() -> None:
    from dsp_tf.errors import UsageError
    from tflite_export.exporter import export_run

    if not FLAGS.root_dir or not FLAGS.output_dir:
        raise UsageError("--root_dir and --output_dir are required")
    r = export_run(FLAGS.root_dir, FLAGS.output_dir, FLAGS.num_observations, FLAGS.eval_episodes,
                   FLAGS.latency_invokes, FLAGS.int8_input, FLAGS.gif, FLAGS.input_range,
                   FLAGS.calibration_range, FLAGS.c_prefix)
    d, c = r["models"]["dense"], r["models"]["compact"]
    agree = ", ".join(f"{k} {v:.4g}" for k, v in c["int8_vs_keras"].items() if k != "tied_top_outputs_rate")
    print(f"{r['env']} {r['method']}: int8 {d['int8_bytes']} -> {c['int8_bytes']} bytes, "
          f"TFLM int8 invoke {d['median_invoke_latency_us']['tflite_micro_int8_us']:.1f} -> "
          f"{c['median_invoke_latency_us']['tflite_micro_int8_us']:.1f} us, return keras "
          f"{r['returns']['keras_compact']['mean']:.1f} vs int8 {r['returns']['tflite_micro_int8_compact']['mean']:.1f} "
          f"(int8 vs Keras: {agree}); {_driving_line(r)}"
          f"{_c_policy_line(r)}; report in {FLAGS.output_dir}/export_report.json")


def _driving_line(r: dict) -> str:
    d = r.get("driving")
    if d is None:
        return ""
    verdict = "within" if d["int8_within_limit"] else "OVER"
    return (f"collisions in {d['episodes']} episodes keras {d['keras_collisions']} vs TFLM int8 "
            f"{d['tflite_micro_int8_collisions']} ({verdict} the limit of {d['int8_extra_collisions_allowed']:g} "
            f"more); ")


def _c_policy_line(r: dict) -> str:
    c = r["c_policy"]
    if not c["written"]:
        return f"no C policy ({c['reason']})"
    line = "C policy written"
    check = c.get("int8_vs_tflite_micro")
    if check:
        line += f", int8 identical to TFLM on {100 * check['identical_output_rate']:.1f}% of states"
    variants = c["footprint"].get("variants")
    if variants:
        v, dense = variants["int8"], r["models"]["dense"]["tflite_micro_memory"]["int8"]
        line += (f", int8 {v['flash_bytes']} B flash + {v['ram_bytes']} B RAM on {c['footprint']['target']} "
                 f"(dense TFLM int8: {dense['model_bytes']} B model + {dense['min_arena_bytes']} B arena)")
    else:
        line += f" ({c['footprint']['note']})"
    return line


def main() -> None:
    cli.require_extras("tflite_export", "rl", "export")  # a run directory is read by the agent layer
    define_flags()
    cli.run(_main, prog="tflite_export")


if __name__ == "__main__":
    main()
