"""What a size search costs, in units of one student: the issue-41 goal is ``--keep=0.95`` on
CartPole from a 500-scoring teacher in at most 2x the time of one student.

    python benchmarks/search_cost.py --out=benchmarks/results/search_cost.json

Three commands on the same teacher (an archived dense PPO run of the CartPole comparison),
one after another in fresh processes, each timed from start to exit (TensorFlow's start-up
included, as a user waits for it):
  one student   ``dsp_tf.shrink --final_sparsity=0.93`` (one ratio, its whole budget);
  before        ``--keep=0.95 --search=climb --stop_share=0``: the search as it was (ascending,
                every rung its whole budget);
  now           ``--keep=0.95``: the largest ratio first, then bisection; each rung stops at
                its first validation that keeps --keep of the teacher's.
Run it on an otherwise idle machine: the three share its load only if nothing else runs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

#: The student procedure the recorded results used (dsp_tf.shrink's defaults have changed since).
STUDENT = ("--method=dsp", "--recipe=ppo_kl")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEACHER = os.path.join("docs", "runs", "sweep_cartpole", "cartpole", "ppo_s0")
ARMS = {
    "one student": ["--final_sparsity=0.93"],
    "before": ["--keep=0.95", "--search=climb", "--stop_share=0"],
    "now": ["--keep=0.95"],
}


def timed(args: List[str], root_dir: str) -> Dict:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dsp_tf.shrink", f"--teacher={TEACHER}", f"--root_dir={root_dir}",
                           *STUDENT, *args], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip().splitlines()[-1]}")
    with open(os.path.join(root_dir, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    row = {"seconds": round(seconds, 1), "neurons": summary["compact"]["neurons"],
           "test_return": summary["return_mean"], "student_env_steps": summary["env_steps"]}
    shrink = os.path.join(root_dir, "shrink.json")
    if os.path.exists(shrink):
        with open(shrink, encoding="utf-8") as f:
            record = json.load(f)
        row.update(chosen_ratio=record["chosen_ratio"], rungs_trained=[r["ratio"] for r in record["ladder"]],
                   env_steps_all_rungs=sum(r["env_steps"] for r in record["ladder"]))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="", help="also write the JSON here")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in ARMS.items():
            rows[name] = timed(flags, os.path.join(tmp, name.replace(" ", "_")))
            print(f"{name:12s} {json.dumps(rows[name])}", flush=True)
    one = rows["one student"]["seconds"]
    result = {"teacher": TEACHER.replace(os.sep, "/"), "command": "python benchmarks/search_cost.py",
              "arms": {k: {**v, "flags": " ".join(ARMS[k])} for k, v in rows.items()},
              "before_in_students": round(rows["before"]["seconds"] / one, 2),
              "now_in_students": round(rows["now"]["seconds"] / one, 2), "goal_in_students": 2.0}
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
