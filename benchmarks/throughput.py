"""Training throughput on Hopper-v4: dense PPO, DSP-PPO and Stable-Baselines3 PPO, side by side.

    python benchmarks/throughput.py [--env_steps=163840] [--no_sb3] [--no_sweep]

Every run is a fresh process timed end to end (imports, graph tracing, training,
checkpoints, the final compaction and evaluation), one after the other, pinned
to the same core: ``dsp_tf.train`` with configs/hopper.cfg and hopper_ppo.cfg
(pruning schedule scaled into the budget), and, when the optional `bench` extra
is installed, benchmarks/sb3_ppo.py with the same networks and PPO schedule.
Then two DSP runs at once on the two cores, as ``dsp_tf.sweep`` runs them.
Writes benchmarks/results/throughput.{json,md}: env-steps/s, the ratio to SB3,
DSP/dense, our loop's time breakdown and each process's peak RSS.
Not a test: it measures.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

from agents.layout import SUMMARY_FILE

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PHASES = ("build", "first_update", "collect", "update", "prune", "log", "checkpoint")


def train_args(method: str, env_steps: int, root: str) -> List[str]:
    flagfile = "hopper_ppo.cfg" if method == "ppo" else "hopper.cfg"
    # hopper.cfg prunes from 20% to 60% of its 1M steps; keep those shares of the budget.
    begin, end = int(0.2 * env_steps), int(0.6 * env_steps)
    return [sys.executable, "-m", "dsp_tf.train", f"--flagfile={flagfile}", f"--num_env_steps={env_steps}",
            f"--prune_begin={begin}", f"--prune_end={end}", f"--prune_frequency={max(2048, (end - begin) // 20)}",
            f"--checkpoint_interval={env_steps // 2}", "--eval_episodes=1", f"--root_dir={root}"]


def timed(cmd: List[str], cores: Optional[List[int]], log_path: str) -> subprocess.Popen:
    def pin():
        if cores is not None:
            os.sched_setaffinity(0, cores)

    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pin)
    proc.start_time = time.perf_counter()
    proc.cmd = cmd
    return proc


def wait(proc: subprocess.Popen) -> Dict[str, float]:
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - proc.start_time
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark run failed: {shlex.join(proc.cmd)}")
    return {"wall_seconds": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2)}


def ours(method: str, env_steps: int, tmp: str, cores: Optional[List[int]], tag: str = "") -> Dict:
    root = os.path.join(tmp, f"{method}{tag}")
    result = wait(timed(train_args(method, env_steps, root), cores, root + ".log"))
    with open(os.path.join(root, SUMMARY_FILE), encoding="utf-8") as f:
        breakdown = json.load(f)["time_breakdown"]
    result["env_steps_per_second"] = round(env_steps / result["wall_seconds"], 1)
    result["time_breakdown"] = breakdown
    return result


def sb3(env_steps: int, tmp: str, cores: List[int]) -> Dict:
    cmd = [sys.executable, os.path.join(HERE, "sb3_ppo.py"), f"--env_steps={env_steps}"]
    result = wait(timed(cmd, cores, os.path.join(tmp, "sb3.log")))
    result["env_steps_per_second"] = round(env_steps / result["wall_seconds"], 1)
    return result


def markdown(report: Dict) -> str:
    n = report["env_steps"]
    runs = report["single_core"]
    lines = [f"# Training throughput, Hopper-v4, {n:,} env steps per run", "",
             f"Command: `{report['command']}`  ", f"Machine: {report['machine']}. Generated {report['date']}.", "",
             "| run (one core, whole process) | env-steps/s | wall s | peak RSS MB |", "| --- | --- | --- | --- |"]
    names = {"ppo": "dense PPO (dsp_tf.train)", "dsp": "DSP-PPO (dsp_tf.train)", "sb3": "SB3 PPO (same networks)"}
    for key, label in names.items():
        if key in runs:
            r = runs[key]
            lines.append(f"| {label} | {r['env_steps_per_second']:.0f} | {r['wall_seconds']:.1f} | "
                         f"{r['peak_rss_mb']:.0f} |")
    lines.append("")
    if "sb3" in runs:
        lines.append(f"**DSP-PPO / SB3 PPO: {report['dsp_over_sb3']:.2f}×**, dense PPO / SB3 PPO: "
                     f"{report['ppo_over_sb3']:.2f}× (env-steps/s).  ")
    lines.append(f"DSP / dense wall time: {report['dsp_over_dense_wall']:.3f}.  ")
    lines.append(f"Projected 1M-step Hopper DSP run on one core: {report['projected_1m_minutes']:.1f} min "
                 "(steady-state rate, plus the fixed start-up and final evaluation).")
    lines += ["", "Where one DSP-PPO process spends its time (seconds, from its summary.json):", "",
              "| phase | seconds | share |", "| --- | --- | --- |"]
    b = runs["dsp"]["time_breakdown"]
    total = runs["dsp"]["wall_seconds"]
    rows = [(p, b.get(f"{p}_seconds", 0.0)) for p in PHASES]
    rows.insert(3, ("  of which policy inference (NumPy)", b["policy_inference_seconds"]))
    rows.append(("imports, final compaction and evaluation",
                 total - sum(b.get(f"{p}_seconds", 0.0) for p in PHASES)))
    for name, sec in rows:
        lines.append(f"| {name} | {sec:.2f} | {100 * sec / total:.0f}% |")
    if "sweep" in report:
        s = report["sweep"]
        lines += ["", f"Two DSP-PPO runs at once on the two cores (as `dsp_tf.sweep` runs them): "
                  f"{s['aggregate_env_steps_per_second']:.0f} env-steps/s together, "
                  f"{s['per_run_env_steps_per_second']:.0f} each (one run alone: "
                  f"{runs['dsp']['env_steps_per_second']:.0f})."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env_steps", type=int, default=163840)
    parser.add_argument("--core", type=int, default=0, help="Core the single-core runs are pinned to.")
    parser.add_argument("--no_sb3", action="store_true", help="Skip Stable-Baselines3 even if installed.")
    parser.add_argument("--no_sweep", action="store_true", help="Skip the two-runs-on-two-cores measurement.")
    args = parser.parse_args()
    have_sb3 = importlib.util.find_spec("stable_baselines3") is not None and not args.no_sb3
    if not have_sb3 and not args.no_sb3:
        print("stable-baselines3 is not installed (pip install -e '.[bench]'); measuring ours only")
    report: Dict = {"env": "Hopper-v4", "env_steps": args.env_steps,
                    "command": "python benchmarks/throughput.py " + " ".join(sys.argv[1:]),
                    "date": time.strftime("%Y-%m-%d %H:%M"),
                    "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                    "single_core": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("ppo", "dsp"):
            print(f"timing {method} ...", flush=True)
            report["single_core"][method] = ours(method, args.env_steps, tmp, [args.core])
        if have_sb3:
            print("timing sb3 ...", flush=True)
            report["single_core"]["sb3"] = sb3(args.env_steps, tmp, [args.core])
        if not args.no_sweep and (os.cpu_count() or 1) >= 2:
            print("timing two runs at once ...", flush=True)
            start = time.perf_counter()
            procs = [timed(train_args("dsp", args.env_steps, os.path.join(tmp, f"sweep{i}")), None,
                           os.path.join(tmp, f"sweep{i}.log")) for i in range(2)]
            walls = [wait(p)["wall_seconds"] for p in procs]
            total = time.perf_counter() - start
            report["sweep"] = {"runs": 2, "wall_seconds": round(total, 2),
                               "aggregate_env_steps_per_second": round(2 * args.env_steps / total, 1),
                               "per_run_env_steps_per_second": round(args.env_steps / max(walls), 1)}
    runs = report["single_core"]
    dsp = runs["dsp"]
    b = dsp["time_breakdown"]
    fixed = b["build_seconds"] + b.get("first_update_seconds", 0.0) + (dsp["wall_seconds"] - b["process_seconds"])
    loop = dsp["wall_seconds"] - fixed
    report["projected_1m_minutes"] = round((fixed + loop * 1_000_000 / args.env_steps) / 60, 2)
    report["dsp_over_dense_wall"] = round(dsp["wall_seconds"] / runs["ppo"]["wall_seconds"], 3)
    if "sb3" in runs:
        report["dsp_over_sb3"] = round(dsp["env_steps_per_second"] / runs["sb3"]["env_steps_per_second"], 2)
        report["ppo_over_sb3"] = round(runs["ppo"]["env_steps_per_second"] / runs["sb3"]["env_steps_per_second"], 2)
    out = os.path.join(HERE, "results")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "throughput.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    md = markdown(report)
    with open(os.path.join(out, "throughput.md"), "w", encoding="utf-8") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
