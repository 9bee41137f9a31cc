"""Run a grid of training runs (methods × λ × pruning ratio × seeds), locally or on Ray.

    python -m dsp_tf.sweep --flagfile=configs/sweep_cartpole.cfg

Each grid point is an ordinary ``dsp_tf.train`` run in its own directory under
--sweep_dir, so a point can be inspected, evaluated or exported like any run.
A restarted sweep skips points whose summary.json exists (in --sweep_dir or in
one of the archives named by --archived_dir); a failing point is
recorded in status.csv with its error and the others go on. ``--dry_run``
lists which points are finished and which would run, before a long sweep
is started or resumed on another machine.
"""
from __future__ import annotations

import csv
import io
import itertools
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

from absl import flags, logging

from agents.layout import SUMMARY_FILE
from dsp_cli import cli
from dsp_cli.flagfiles import REPO_ROOT, env_flagfile, shipped_flagfile
from dsp_cli.shipped import shipped_ranking, shipped_reg_strength
from dsp_tf.errors import UsageError
from dsp_tf.files import atomic_write
from dsp_tf.masks import check_ranking, check_sparsity
from dsp_tf.methods import DEFAULT_RANKING, METHOD_NAMES, get_method
from dsp_tf.regularizers import check_strength

def define_flags() -> None:
    """Defined on demand so that importing this module never claims flag names."""
    flags.DEFINE_string("sweep_dir", None, "Directory holding one run directory per grid point.")
    flags.DEFINE_list("envs", ["cartpole"], "Environment flagfiles (configs/<name>.cfg) to sweep over.")
    flags.DEFINE_list("methods", ["ppo", "dsp"], "Methods to compare.")
    flags.DEFINE_list("reg_strengths", [], "Lambda values for methods with a penalty; METHOD=VALUE "
                                           "entries give that method its own values instead, "
                                           "ENV:METHOD=VALUE that method on one environment "
                                           "(e.g. 1e-4,ssl=1e-3,hopper:dsp=1e-6). Default: the λ each "
                                           "method's flagfile ships (configs/<env>_<method>.cfg, else "
                                           "configs/<env>.cfg).")
    flags.DEFINE_list("final_sparsities", ["0.93"], "Pruning ratios for pruning methods.")
    flags.DEFINE_list("rankings", [], "Cross-layer rankings (--ranking) for neuron-pruning methods (default: "
                                      "the one each method's flagfile sets, as for λ, else global).")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
    flags.DEFINE_list("small_layers", ["9", "9"], "Actor layers of the 'small' baseline.")
    flags.DEFINE_multi_string("train_flag", [], "Extra flag for every run, e.g. --train_flag=--num_env_steps=50000.")
    flags.DEFINE_enum("executor", "local", ["local", "ray"], "Where runs execute.")
    flags.DEFINE_integer("workers", max(1, os.cpu_count() or 1), "Local processes at once (default: one per core).")
    flags.DEFINE_string("ray_address", None, "Ray cluster address for --executor=ray (default: start a local Ray).")
    flags.DEFINE_boolean("dry_run", False, "Print each grid point and whether it is already finished, then exit: "
                                           "nothing is started or written.")
    flags.DEFINE_list("archived_dir", [],
                      "Archives made by dsp_tf.archive (e.g. docs/runs/sweep_cartpole), comma-separated: points "
                      "finished in any of them are skipped too, so a sweep continues on a machine that never ran "
                      "them and two sweeps sharing a point run it once.")


FLAGS = flags.FLAGS



@dataclass(frozen=True)
class Point:
    env: str
    method: str
    reg_strength: float
    final_sparsity: float
    seed: int
    ranking: str = "global"

    @property
    def name(self) -> str:
        """Runs made before --ranking existed ranked globally; their names carry no ranking."""
        method = get_method(self.method)
        parts = [self.method]
        if method.penalized:
            parts.append(f"lam{self.reg_strength:g}")
        if method.prunes:
            parts.append(f"p{self.final_sparsity:g}")
        if method.ranks_neurons and self.ranking != "global":
            parts.append(self.ranking)
        return os.path.join(self.env, "_".join(parts) + f"_s{self.seed}")

    def args(self, small_layers: Sequence[str], extra: Sequence[str]) -> List[str]:
        args = [f"--flagfile={shipped_flagfile(self.env, self.method)}", f"--method={self.method}",
                f"--seed={self.seed}",
                f"--reg_strength={self.reg_strength:g}", f"--final_sparsity={self.final_sparsity:g}"]
        if get_method(self.method).ranks_neurons:
            args.append(f"--ranking={self.ranking}")
        if self.method == "small":
            args.append(f"--actor_layers={','.join(small_layers)}")
        return args + list(extra)


def grid(envs, methods, reg_strengths, final_sparsities, seeds, rankings: Sequence[str] = (),
         method_reg_strengths: Optional[Dict[str, Sequence[float]]] = None) -> List[Point]:
    """A method gets points only along the settings it depends on (dsp_tf.methods). λ: a method's
    ``env:method`` entry in ``method_reg_strengths``, else its ``method`` entry, else
    ``reg_strengths``, else (none given) the λ its flagfile ships. Without ``rankings``, a ranking
    method trains with the ranking its flagfile ships."""
    points = []
    own = method_reg_strengths or {}
    for env, name in itertools.product(envs, methods):
        method = get_method(name)  # settings looked up once per (env, method), not once per seed
        lams = [0.0]
        if method.penalized:
            lams = own.get(f"{env}:{name}", own.get(name, reg_strengths)) or [shipped_reg_strength(env, name)]
        ratios = final_sparsities if method.prunes else [0.93]
        ranks = (list(rankings) or [shipped_ranking(env, name)]) if method.ranks_neurons else [DEFAULT_RANKING]
        for seed, lam, ratio, ranking in itertools.product(seeds, lams, ratios, ranks):
            points.append(Point(env, name, float(lam), float(ratio), int(seed), ranking))
    return points


def train_command(point: Point, sweep_dir: str, small_layers, extra) -> List[str]:
    return [sys.executable, "-m", "dsp_tf.train", *point.args(small_layers, extra),
            f"--root_dir={os.path.join(sweep_dir, point.name)}"]


def run_command(command: List[str], cwd: str) -> Tuple[int, str]:
    """Runs one training process; returns (exit code, last stderr line)."""
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return proc.returncode, (lines[-1] if lines else "")[:500]


#: How long the sweep waits for a Ray head's port before saying it cannot reach it (Ray itself retries for minutes).
RAY_CONNECT_SECONDS = 10.0


def _check_reachable(address: Optional[str]) -> None:
    """A HOST:PORT nobody listens on is named in one line at once, not after Ray's minutes of retries."""
    if not address or address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [::1]:6379, as Ray writes IPv6
    try:
        socket.create_connection((host, int(port)), timeout=RAY_CONNECT_SECONDS).close()
    except ValueError:
        raise UsageError(f"--ray_address must be HOST:PORT (or auto), got '{address}'") from None
    except OSError as e:
        raise UsageError(f"cannot reach a Ray head at {address} ({e.strerror or e}): start one there with "
                         f"`ray start --head --port={port}` and open the port to this machine") from None


def _ray_refusal(address: Optional[str], error: BaseException) -> str:
    """Ray's ConnectionError in one line; a head with token authentication (Ray's default since 2.5x)
    refuses a machine without its token, so that case says how to get it."""
    chain, cause = [], error
    while cause is not None:
        chain.append(f"{type(cause).__name__}: {cause}")
        cause = cause.__cause__ or cause.__context__
    if any("AuthToken" in c or "AuthenticationError" in c for c in chain):
        return (f"the Ray head at {address} refused this machine's token: print it on the head with "
                f"`ray get-auth-token`, then here `export RAY_AUTH_MODE=token RAY_AUTH_TOKEN=<token>` "
                f"(or copy it to ~/.ray/auth_token) and run the sweep again")
    return f"cannot connect to the Ray cluster at {address or 'a new local Ray'}: {error}"


def _ray_runner(address, workers: int):
    """Each run is a Ray task holding one CPU; without an address a local Ray is started."""
    try:
        import ray  # optional dependency: pip install -e ".[ray]"
        from ray.exceptions import RayError
    except ImportError:
        raise UsageError("--executor=ray needs ray: pip install -e '.[ray]'") from None

    if not ray.is_initialized():
        _check_reachable(address)
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     num_cpus=None if address else workers)
        except (ConnectionError, RayError) as e:  # RayError: AuthenticationError, a token asked for but not found
            raise UsageError(_ray_refusal(address, e)) from None
    remote = ray.remote(num_cpus=1)(run_command)

    def run_all(jobs):
        refs = [remote.remote(cmd, cwd) for cmd, cwd in jobs]
        return ray.get(refs)

    return run_all


def split_finished(points: Sequence[Point], sweep_dir: str,
                   archived_dir: Union[str, Sequence[str], None] = None) -> Tuple[List[Point], List[Point]]:
    """(finished, to run): a point is finished when its summary.json is in ``sweep_dir`` or an archive."""
    archives = [archived_dir] if isinstance(archived_dir, str) else list(archived_dir or [])
    places = [os.path.abspath(d) for d in [sweep_dir, *archives] if d]
    finished, todo = [], []
    for p in points:
        done = any(os.path.exists(os.path.join(d, p.name, SUMMARY_FILE)) for d in places)
        (finished if done else todo).append(p)
    return finished, todo


def run_sweep(points: List[Point], sweep_dir: str, small_layers, extra, executor: str = "local",
              workers: int = 1, ray_address=None,
              archived_dir: Union[str, Sequence[str], None] = None) -> List[Dict[str, str]]:
    """Runs the points not finished yet. Every path is resolved once, against the caller's
    working directory, so status.csv, the runs and the flagfiles agree wherever it is run."""
    sweep_dir = os.path.abspath(sweep_dir)
    finished, todo = split_finished(points, sweep_dir, archived_dir)
    runner = _ray_runner(ray_address, workers) if executor == "ray" and todo else None  # a bad cluster: nothing made
    os.makedirs(sweep_dir, exist_ok=True)
    status = [{"run": p.name, "state": "done (skipped)", "error": ""} for p in finished]
    logging.info("sweep: %d points, %d already finished, %d to run on %s", len(points),
                 len(points) - len(todo), len(todo), executor)
    jobs = [(train_command(p, sweep_dir, small_layers, extra), REPO_ROOT) for p in todo]
    t0 = time.time()
    if runner is not None:
        results = runner(jobs)
    else:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = list(pool.map(lambda job: run_command(*job), jobs))
    for p, (code, error) in zip(todo, results):
        ok = code == 0
        status.append({"run": p.name, "state": "done" if ok else f"failed (exit {code})",
                       "error": "" if ok else error})
        if not ok:
            logging.warning("run %s failed: %s", p.name, error)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["run", "state", "error"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(status)
    atomic_write(os.path.join(sweep_dir, "status.csv"), buf.getvalue())
    logging.info("sweep finished in %.0fs: %d ok, %d failed", time.time() - t0,
                 sum(s["state"].startswith("done") for s in status),
                 sum(s["state"].startswith("failed") for s in status))
    return status


def _floats(values, name):
    try:
        return [float(v) for v in values]
    except ValueError:
        raise UsageError(f"--{name} must be numbers, got {values}") from None


def _reg_strengths(values: Sequence[str]) -> Tuple[List[float], Dict[str, List[float]]]:
    """--reg_strengths: plain values for every penalised method, METHOD=VALUE for one method's own,
    ENV:METHOD=VALUE for its own on one environment (keyed "env:method"); none at all leaves each
    method the λ its flagfile ships (a comparison sweep names no λ: the flagfiles are its home). Like a METHOD entry for a
    method not in --methods, an ENV entry for an environment not in --envs is unused, so narrowing
    --envs on the command line keeps a sweep flagfile valid; the environment must exist, though."""
    plain, per_method = [], {}
    for value in values:
        key, _, lam = value.rpartition("=")
        env, colon, name = key.rpartition(":")
        if colon:
            try:
                env_flagfile(env)
            except UsageError:
                raise UsageError(f"--reg_strengths: '{env}' in '{value}' is not an environment "
                                 f"(no flagfile {env}.cfg)") from None
        if (name or colon) and (name not in METHOD_NAMES or not get_method(name).penalized):
            raise UsageError(f"--reg_strengths: '{name}' is not a method with a penalty "
                             f"(choose from {', '.join(m for m in METHOD_NAMES if get_method(m).penalized)})")
        try:
            lam = check_strength(lam)
        except ValueError:  # the trainer's rule; before, an 'inf' got through here to fail each run
            raise UsageError(f"--reg_strengths: '{value}' is not a finite number >= 0") from None
        (per_method.setdefault(key, []) if key else plain).append(lam)
    return plain, per_method


def _main() -> None:
    if not FLAGS.sweep_dir:
        raise UsageError("--sweep_dir is required")
    for name in ("envs", "methods", "seeds", "final_sparsities"):
        if not FLAGS[name].value:  # an empty grid would "finish" with 0 of 0 runs and leave a status.csv
            raise UsageError(f"--{name} is empty: name at least one")
    for env in FLAGS.envs:
        env_flagfile(env)
    for m in FLAGS.methods:
        if m not in METHOD_NAMES:
            raise UsageError(f"unknown method '{m}' (choose from {', '.join(METHOD_NAMES)})")
    for r in FLAGS.rankings:
        try:
            check_ranking(r)
        except ValueError as e:
            raise UsageError(f"--rankings: {e}") from None
    lams, per_method = _reg_strengths(FLAGS.reg_strengths)
    ratios = _floats(FLAGS.final_sparsities, "final_sparsities")
    for r in ratios:
        try:
            check_sparsity(r, "--final_sparsities")
        except ValueError as e:
            raise UsageError(str(e)) from None
    seeds = [int(s) for s in _floats(FLAGS.seeds, "seeds")]
    points = grid(FLAGS.envs, FLAGS.methods, lams, ratios, seeds, FLAGS.rankings, per_method)
    if FLAGS.dry_run:
        finished, todo = split_finished(points, FLAGS.sweep_dir, FLAGS.archived_dir)
        done = {p.name for p in finished}
        for p in points:
            print(f"{'finished' if p.name in done else 'to run':8}  {p.name}")
        print(f"{len(points)} points: {len(finished)} already finished, {len(todo)} to run "
              f"(dry run: nothing started)")
        return
    status = run_sweep(points, FLAGS.sweep_dir, FLAGS.small_layers, FLAGS.train_flag, FLAGS.executor,
                       FLAGS.workers, FLAGS.ray_address, FLAGS.archived_dir)
    failed = [s for s in status if s["state"].startswith("failed")]
    print(f"{len(status) - len(failed)} of {len(status)} runs finished; status in "
          f"{os.path.join(os.path.abspath(FLAGS.sweep_dir), 'status.csv')}")
    if failed:
        print(f"dsp_tf.sweep: {len(failed)} run(s) failed, first {failed[0]['run']}: {failed[0]['error']}",
              file=sys.stderr)
        sys.exit(1)


def main() -> None:
    define_flags()
    cli.own_flags_are_key(__name__)
    cli.run(_main, prog="dsp_tf.sweep")


if __name__ == "__main__":
    main()
