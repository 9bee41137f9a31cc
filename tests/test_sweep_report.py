"""Sweeps (local processes and Ray) and the report built from them."""
import csv
import json

import numpy as np
import os

import pytest

from study.archive import KEPT_FILES, archive_runs
from study.report import make_report
from study.sweep import Point, grid, run_sweep
from clitools import REPO, last_line, run_module
from dsp_tf.errors import UsageError
from dsp_tf.methods import METHOD_NAMES

TRAIN_FLAGS = ["--num_env_steps=2048", "--rollout_steps=128", "--num_envs=4", "--prune_begin=512",
               "--prune_end=1536", "--prune_frequency=512", "--checkpoint_interval=1024", "--eval_episodes=2",
               "--actor_layers=32,32", "--critic_layers=32,32"]


def test_grid_gives_non_pruning_methods_one_point_per_seed():
    points = grid(["cartpole"], ["ppo", "dsp", "pops"], [1e-5, 1e-4], [0.9, 0.93], [0, 1])
    names = [p.name for p in points]
    assert len(names) == len(set(names))
    assert sum(p.method == "ppo" for p in points) == 2
    assert sum(p.method == "dsp" for p in points) == 8
    assert sum(p.method == "pops" for p in points) == 4  # no penalty: ratios only


def test_grid_trains_with_the_ranking_the_environment_flagfile_ships_unless_told(tmp_path, monkeypatch):
    from dsp_cli import flagfiles

    monkeypatch.setattr(flagfiles, "CONFIG_DIRS", (str(tmp_path),))
    (tmp_path / "base.cfg").write_text("--env=Hopper-v4\n--ranking=global\n")
    (tmp_path / "toy.cfg").write_text("--flagfile=base.cfg\n--ranking=per_layer\n")
    shipped = {p.method: p for p in grid(["toy"], ["ppo", "dsp", "dropout"], [1e-5], [0.93], [0])}
    assert (shipped["dsp"].ranking, shipped["dropout"].ranking, shipped["ppo"].ranking) == \
        ("per_layer", "per_layer", "global")
    assert shipped["dsp"].name.endswith("_per_layer_s0") and "--ranking=per_layer" in shipped["dsp"].args([], [])
    told = grid(["toy"], ["dsp"], [1e-5], [0.93], [0], ["global", "layer_normalized"])
    assert [p.ranking for p in told] == ["global", "layer_normalized"]
    assert [p.ranking for p in grid(["base"], ["dsp"], [1e-5], [0.93], [0])] == ["global"]


def test_a_method_can_have_its_own_lambdas():
    from study.sweep import _reg_strengths

    plain, own = _reg_strengths(["1e-4", "ssl=1e-3", "ssl=1e-5", "l1=0"])
    assert plain == [1e-4] and own == {"ssl": [1e-3, 1e-5], "l1": [0.0]}
    points = grid(["cartpole"], ["dsp", "ssl", "l1", "ppo"], plain, [0.93], [0], method_reg_strengths=own)
    assert sorted((p.method, p.reg_strength) for p in points) == \
        [("dsp", 1e-4), ("l1", 0.0), ("ppo", 0.0), ("ssl", 1e-5), ("ssl", 1e-3)]
    for bad, message in ((["ppo=1e-3"], "'ppo' is not a method with a penalty"),
                         (["magic=1e-3"], "'magic' is not a method with a penalty"),
                         (["cartpole:=1e-3"], "'' is not a method with a penalty"),
                         (["hoper:dsp=1e-3"], "'hoper' in 'hoper:dsp=1e-3' is not an environment"),
                         (["ssl=-1"], "'ssl=-1' is not a finite number >= 0"),
                         (["ssl=x"], "'ssl=x' is not a finite number >= 0")):
        with pytest.raises(UsageError, match=message):
            _reg_strengths(bad)


def test_a_method_can_have_its_own_lambda_on_one_environment():
    """The per-environment entry wins over the method's and the plain values, on that environment only."""
    from study.sweep import _reg_strengths

    plain, own = _reg_strengths(["1e-5", "ssl=1e-4", "hopper:dsp=1e-6", "walker2d:ssl=1e-3"])
    assert own == {"ssl": [1e-4], "hopper:dsp": [1e-6], "walker2d:ssl": [1e-3]}
    points = grid(["hopper", "walker2d"], ["dsp", "ssl"], plain, [0.93], [0], method_reg_strengths=own)
    assert sorted((p.env, p.method, p.reg_strength) for p in points) == \
        [("hopper", "dsp", 1e-6), ("hopper", "ssl", 1e-4), ("walker2d", "dsp", 1e-5), ("walker2d", "ssl", 1e-3)]
    # Narrowing the environments leaves the other environment's entry unused, not refused.
    assert sorted((p.env, p.method, p.reg_strength) for p in grid(["walker2d"], ["dsp"], plain, [0.93], [0],
                                                                   method_reg_strengths=own)) == \
        [("walker2d", "dsp", 1e-5)]


def test_without_lambdas_each_method_trains_with_the_lambda_its_flagfile_ships(tmp_path, monkeypatch):
    """A comparison sweep names no λ: <env>_<method>.cfg, else <env>.cfg, else the trainer's default."""
    from dsp_cli import flagfiles
    from study.sweep import _reg_strengths

    monkeypatch.setattr(flagfiles, "CONFIG_DIRS", (str(tmp_path),))
    (tmp_path / "toy.cfg").write_text("--env=Hopper-v4\n--reg_strength=1e-6\n")
    (tmp_path / "toy_ssl.cfg").write_text("--flagfile=toy.cfg\n--method=ssl\n--reg_strength=1e-4\n--ranking=per_layer\n")
    (tmp_path / "bare.cfg").write_text("--env=Hopper-v4\n")
    plain, own = _reg_strengths([])
    assert (plain, own) == ([], {})
    points = {(p.env, p.method): p for p in grid(["toy", "bare"], ["dsp", "ssl", "l1", "ppo"], plain, [0.93], [0],
                                                    method_reg_strengths=own)}
    assert {k: p.reg_strength for k, p in points.items()} == {
        ("toy", "dsp"): 1e-6, ("toy", "ssl"): 1e-4, ("toy", "l1"): 1e-6, ("toy", "ppo"): 0.0,
        ("bare", "dsp"): 1e-5, ("bare", "ssl"): 1e-5, ("bare", "l1"): 1e-5, ("bare", "ppo"): 0.0}
    ssl = points[("toy", "ssl")]
    assert ssl.ranking == "per_layer" and points[("toy", "dsp")].ranking == "global"
    assert ssl.args([], [])[0] == f"--flagfile={tmp_path / 'toy_ssl.cfg'}"  # its other settings come along
    assert points[("toy", "dsp")].args([], [])[0] == f"--flagfile={tmp_path / 'toy.cfg'}"
    # Named values still win, so a λ grid needs no flagfile edits.
    assert {p.reg_strength for p in grid(["toy"], ["ssl"], [1e-3], [0.93], [0])} == {1e-3}
    for bad in ("small", "-1e-4", "inf"):
        (tmp_path / "toy_l1.cfg").write_text(f"--flagfile=toy.cfg\n--reg_strength={bad}\n")
        with pytest.raises(UsageError, match=f"toy_l1.cfg: --reg_strength must be a finite number >= 0, got '{bad}'"):
            grid(["toy"], ["l1"], [], [0.93], [0])


def test_local_sweep_skips_finished_records_failures_and_reports(tmp_path):
    sweep = tmp_path / "sweep"
    broken = Point("cartpole", "ssl", -1.0, 0.9, 0)  # a negative lambda: this run must fail alone
    points = grid(["cartpole"], ["ppo", "dsp"], [1e-4], [0.9], [0]) + [broken]
    status = run_sweep(points, str(sweep), ["9", "9"], TRAIN_FLAGS, workers=2)
    states = {s["run"]: s for s in status}
    assert states[os.path.join("cartpole", "ppo_s0")]["state"] == "done"
    assert states[os.path.join("cartpole", "dsp_lam0.0001_p0.9_s0")]["state"] == "done"
    failed = states[broken.name]
    assert failed["state"] == "failed (exit 2)" and "--reg_strength: strength (lambda) must be finite and >= 0" in failed["error"]
    with open(sweep / "status.csv", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == 3

    again = run_sweep(points[:2], str(sweep), ["9", "9"], TRAIN_FLAGS, workers=2)
    assert all(s["state"] == "done (skipped)" for s in again)

    out = tmp_path / "report"
    result = make_report(str(sweep), str(out))
    rows = {r["method"]: r for r in result["rows"]}
    assert set(rows) == {"ppo", "dsp"}
    assert rows["dsp"]["neurons_removed_pct"] >= 89.0 and rows["ppo"]["neurons_removed_pct"] == 0.0
    assert "| CartPole-v1 | dsp | 0.0001 | 0.9 |" in (out / "results.md").read_text()
    for name in ("learning_curves_cartpole.png", "neurons_per_layer_cartpole.png", "weights_heatmap_cartpole.png"):
        assert (out / "figures" / name).read_bytes()[:4] == b"\x89PNG"

    # The archive keeps only the light files of finished runs, and the report reads it like the sweep.
    archive = tmp_path / "archive"
    archived, skipped = archive_runs(str(sweep), str(archive))
    assert sorted(archived) == sorted(p.name for p in points[:2]) and skipped == []
    kept = {f.name for f in archive.rglob("*") if f.is_file()}
    assert kept <= set(KEPT_FILES) and "summary.json" in kept and "actor_dense.h5" in kept
    assert not (archive / broken.name).exists()  # the failed run left no summary
    make_report(str(archive), str(tmp_path / "report2"))
    assert (tmp_path / "report2" / "results.csv").read_text() == (out / "results.csv").read_text()

    # A fresh machine with only the archive continues the sweep without redoing its points.
    again = run_sweep(points[:2], str(tmp_path / "fresh"), ["9", "9"], TRAIN_FLAGS,
                      archived_dir=[str(tmp_path / "other_archive"), str(archive)])
    assert all(s["state"] == "done (skipped)" for s in again)


def test_ray_executor_runs_a_tiny_grid_on_a_local_ray(tmp_path):
    ray = pytest.importorskip("ray")
    try:
        status = run_sweep(grid(["cartpole"], ["ppo"], [0.0], [0.9], [0]), str(tmp_path / "sweep"), ["9", "9"],
                           TRAIN_FLAGS, executor="ray", workers=1)
    finally:
        ray.shutdown()
    assert [s["state"] for s in status] == ["done"]
    assert (tmp_path / "sweep" / "cartpole" / "ppo_s0" / "summary.json").exists()


def test_a_ray_head_nobody_runs_is_one_line_at_once_and_leaves_nothing(tmp_path):
    pytest.importorskip("ray")
    import socket
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_module("dsp_tf.sweep", f"--sweep_dir={tmp_path / 'sw'}", "--envs=cartpole", "--methods=ppo",
                        "--seeds=0", "--executor=ray", f"--ray_address=127.0.0.1:{port}", timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"cannot reach a Ray head at 127.0.0.1:{port}" in last_line(result.stderr)
    assert f"ray start --head --port={port}" in last_line(result.stderr)
    assert not (tmp_path / "sw").exists()


def test_a_ray_head_that_refuses_the_token_says_how_to_get_it():
    from study.sweep import _ray_refusal

    def raised():  # Ray 2.60's chain: ConnectionError from RuntimeError from AuthenticationError
        try:
            try:
                raise PermissionError("RPC error: InvalidAuthToken: Authentication token is missing or incorrect.")
            except PermissionError as e:
                raise RuntimeError("Failed to connect to GCS.") from e
        except RuntimeError as e:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.2:6379") from e

    with pytest.raises(ConnectionError) as info:
        raised()
    line = _ray_refusal("10.0.0.2:6379", info.value)
    assert "ray get-auth-token" in line and "RAY_AUTH_MODE=token RAY_AUTH_TOKEN=" in line and "\n" not in line
    assert "Failed to connect" in _ray_refusal("10.0.0.2:6379", ConnectionError("Failed to connect"))
    ray = pytest.importorskip("ray")  # RAY_AUTH_MODE=token without a token: Ray raises its own error, unchained
    direct = _ray_refusal("10.0.0.2:6379", ray.exceptions.AuthenticationError("Authentication token is missing"))
    assert "ray get-auth-token" in direct


def test_a_run_moved_to_superseded_is_not_archived_back(tmp_path):
    """Re-archiving the sweep that made a superseded run must not put it back among the current runs,
    whether the archive is one sweep's (docs/runs/<sweep>) or the whole tree's (docs/runs)."""
    import shutil

    from clitools import run_module

    for seed in (0, 1):
        _fake_run(tmp_path / "runs" / "sweep", "dsp", seed, 100.0 + seed, 1e-5, 0.93)
    tree = tmp_path / "docs" / "runs"
    moved = tree / "superseded" / "sweep" / "cartpole" / "dsp_lam1e-05_p0.93_s1"
    shutil.copytree(tmp_path / "runs" / "sweep" / "cartpole" / "dsp_lam1e-05_p0.93_s1", moved)

    for source, archive in ((tmp_path / "runs" / "sweep", tree / "sweep"), (tmp_path / "runs", tree)):
        archived, skipped = archive_runs(str(source), str(archive))
        assert [os.path.basename(a) for a in archived] == ["dsp_lam1e-05_p0.93_s0"]
        assert [(os.path.basename(r), k) for r, k in skipped] == [("dsp_lam1e-05_p0.93_s1", str(moved))]
        assert not (tree / "sweep" / "cartpole" / "dsp_lam1e-05_p0.93_s1").exists()

    r = run_module("dsp_tf.archive", f"--source_dir={tmp_path / 'runs' / 'sweep'}", f"--archive_dir={tree / 'sweep'}")
    assert r.returncode == 0
    assert f"not archived: cartpole/dsp_lam1e-05_p0.93_s1 (superseded, kept in {moved})" in r.stdout
    assert "archived 1 finished run(s)" in r.stdout


def test_a_rerun_with_other_settings_under_a_superseded_name_is_archived(tmp_path):
    """Runs are superseded because they are re-run with other settings under the same name (the CartPole
    re-run with validated actors): the superseded copy holds back only the same run, not the new one."""
    import json
    import shutil

    _fake_run(tmp_path / "runs" / "sweep", "dsp", 0, 100.0, 1e-5, 0.93)
    run = tmp_path / "runs" / "sweep" / "cartpole" / "dsp_lam1e-05_p0.93_s0"
    tree = tmp_path / "docs" / "runs"
    shutil.copytree(run, tree / "superseded" / "sweep" / "cartpole" / run.name)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "validation_interval": 12500}))  # the re-run
    archived, skipped = archive_runs(str(tmp_path / "runs" / "sweep"), str(tree / "sweep"))
    assert [os.path.basename(a) for a in archived] == [run.name] and skipped == []
    assert json.loads((tree / "sweep" / "cartpole" / run.name / "config.json").read_text())["validation_interval"] == 12500


def test_a_size_search_that_kept_nothing_is_archived_with_its_ladder(tmp_path):
    """A search whose rungs all missed --keep has no summary.json at its root, only shrink.json: that ladder
    is its result, and the archive keeps it beside the rungs. A search killed while copying its chosen student
    in (shrink.json names a ratio, no summary.json yet) is not finished; another search under an archived
    one's name is refused, the same one updated."""
    from dsp_tf.errors import UsageError

    _fake_run(tmp_path / "runs" / "search" / "ladder", "small", 0, 100.0)
    root, docs = tmp_path / "runs" / "search", tmp_path / "docs"
    nothing = '{"keep": 0.97, "chosen_ratio": null, "ladder": [{"ratio": 0.93, "kept": false}]}'
    (root / "shrink.json").write_text(nothing)
    (root / "checkpoints").mkdir()
    half = tmp_path / "runs" / "half"
    half.mkdir()
    (half / "shrink.json").write_text('{"keep": 0.97, "chosen_ratio": 0.93, "ladder": []}')
    (half / "config.json").write_text("{}")
    archived, _ = archive_runs(str(tmp_path / "runs"), str(docs))
    assert "search" in archived and "half" not in archived and not (docs / "half").exists()
    assert (docs / "search" / "shrink.json").read_text() == nothing
    assert not (docs / "search" / "checkpoints").exists()
    assert "search" in archive_runs(str(tmp_path / "runs"), str(docs))[0]  # the same search again: updated
    (root / "shrink.json").write_text(nothing.replace("0.97", "0.95"))  # another search, same name
    with pytest.raises(UsageError, match="already holds another run"):
        archive_runs(str(tmp_path / "runs"), str(docs))
    assert (docs / "search" / "shrink.json").read_text() == nothing


def test_archive_cli_refuses_a_missing_source(tmp_path):
    from clitools import last_line, run_module

    r = run_module("dsp_tf.archive", f"--source_dir={tmp_path / 'nope'}", f"--archive_dir={tmp_path / 'a'}")
    assert r.returncode == 2 and "does not exist" in last_line(r.stderr)
    assert not (tmp_path / "a").exists()


def _row(method, ret, std, seeds, ratio=None, lam=None, neurons=17):
    return {"env": "CartPole-v1", "method": method, "reg_strength": lam, "final_sparsity": ratio,
            "ranking": "global" if method in ("dsp", "ssl", "dropout") else None, "return_mean": ret, "return_std": std, "seeds": seeds, "neurons": neurons, "env_steps": 250000,
            "actor_layers": "9x9" if method == "small" else "128x128"}


def test_headline_dsp_row_is_chosen_by_seeds_and_ratio_never_by_return():
    from study.report_markdown import dsp_vs_small, summary_table
    from study.report_runs import headline_row

    rows = [_row("dsp", 300.0, 50.0, "0 1 2", 0.93, 1e-4),
            _row("dsp", 500.0, 0.0, "0", 0.93, 1e-3),  # a sensitivity-grid point: better, but one seed
            _row("dsp", 480.0, 5.0, "0 1 2", 0.8, 1e-4),
            _row("small", 400.0, 20.0, "0 1 2", neurons=18), _row("ppo", 450.0, 30.0, "0 1 2", neurons=256)]
    assert headline_row(rows, "CartPole-v1", "dsp") is rows[0]
    assert "DSP is lower by more than one standard deviation" in dsp_vs_small(rows, "CartPole-v1")
    table = summary_table(rows)
    assert "| CartPole-v1 | 250,000 | 3 of 8 | 450.0 ± 30.0 (3) | 300.0 ± 50.0 (3), 17 | 400.0 ± 20.0 (3) " \
        "| lower (> 1 std) |" in table
    assert "| Walker2d-v4 | — | 0 of 8 | not run |" in table  # a paper environment without runs is a visible gap


def test_headline_follows_the_ranking_the_environment_flagfile_ships(tmp_path, monkeypatch):
    from dsp_cli import flagfiles
    from study.report_runs import headline_row

    monkeypatch.setattr(flagfiles, "CONFIG_DIRS", (str(tmp_path),))
    rows = [dict(_row("dsp", 100.0, 1.0, "0 1 2 3 4", 0.93, 1e-5), env=env, ranking=ranking)
            for env in ("Hopper-v4", "Walker2d-v4") for ranking in ("global", "per_layer")]
    (tmp_path / "hopper.cfg").write_text("--env=Hopper-v4\n--ranking=global\n--ranking=per_layer\n")
    assert headline_row(rows, "Hopper-v4", "dsp")["ranking"] == "per_layer"  # the flagfile's last word
    assert headline_row(rows, "Walker2d-v4", "dsp")["ranking"] == "global"  # no flagfile: the default
    (tmp_path / "hopper.cfg").write_text("--env=Hopper-v4\n")
    assert headline_row(rows, "Hopper-v4", "dsp")["ranking"] == "global"


def test_headline_follows_the_lambda_the_method_flagfile_ships(tmp_path, monkeypatch):
    """A λ grid's cell with more seeds does not displace the shipped λ's cell."""
    from dsp_cli import flagfiles
    from study.report_runs import headline_row

    monkeypatch.setattr(flagfiles, "CONFIG_DIRS", (str(tmp_path),))
    seven, five = "0 1 2 3 4 5 6", "0 1 2 3 4"
    rows = [_row("ssl", 100.0, 1.0, seven, 0.93, 1e-5), _row("ssl", 90.0, 1.0, five, 0.93, 1e-3),
            _row("ssl", 80.0, 1.0, five, 0.93, 1e-4),
            _row("dsp", 100.0, 1.0, seven, 0.93, 1e-5), _row("dsp", 90.0, 1.0, five, 0.93, 1e-4)]
    (tmp_path / "cartpole.cfg").write_text("--env=CartPole-v1\n--reg_strength=1e-4\n")
    (tmp_path / "cartpole_ssl.cfg").write_text("--flagfile=cartpole.cfg\n--reg_strength=1e-3\n")
    assert headline_row(rows, "CartPole-v1", "ssl") is rows[1]  # its own flagfile's λ
    assert headline_row(rows, "CartPole-v1", "dsp") is rows[4]  # the environment's
    (tmp_path / "cartpole_ssl.cfg").unlink()
    assert headline_row(rows, "CartPole-v1", "ssl") is rows[2]  # now the environment's too
    # The ranking comes first: the shipped ranking at another λ beats the shipped λ at another ranking.
    ranked = [dict(rows[4], ranking="per_layer"), dict(rows[3])]
    assert headline_row(ranked, "CartPole-v1", "dsp") is ranked[1]
    # A flagfile that exists but is broken stops the report instead of being read as a default.
    (tmp_path / "cartpole_ssl.cfg").write_text("--flagfile=cartpole.cfg\n--reg_strength=-1\n")
    with pytest.raises(UsageError, match="cartpole_ssl.cfg: --reg_strength must be a finite number >= 0"):
        headline_row(rows, "CartPole-v1", "ssl")


def test_the_paper_module_names_declared_methods_and_registered_environments():
    """study.paper types each method's part and the paper's numbers once; a renamed method or a
    retired environment must fail here, not leave a table silently empty."""
    from agents.envs import ENVIRONMENTS
    from study.paper import PAPER, ROLES

    assert set(ROLES) <= set(METHOD_NAMES)
    assert set(PAPER) <= set(ENVIRONMENTS)


def _fake_run(root, method, seed, ret, lam=None, ratio=None, layers=(128, 128), ranking=None):
    """A finished run's two report inputs, written by hand: the report only aggregates them."""
    import json

    run = root / "cartpole" / f"{method}_lam{lam}_p{ratio}{'_' + ranking if ranking else ''}_s{seed}"
    run.mkdir(parents=True)
    stats = {"neurons": 17, "weights": 200, "flops": 400.0}
    (run / "config.json").write_text(json.dumps(
        {"env": "CartPole-v1", "method": method, "reg_strength": lam or 0.0, "final_sparsity": ratio or 0.93,
         "actor_layers": list(layers), "num_env_steps": 250000, "seed": seed,
         **({"ranking": ranking} if ranking else {})}))
    (run / "summary.json").write_text(json.dumps(
        {"return_mean": ret, "return_std": 1.0, "dense": {"neurons": 256, "weights": 17000, "flops": 34000.0},
         "compact": stats, "compact_layers": [9, 8, 2]}))


def test_a_seed_held_by_two_sweeps_counts_once_and_each_grid_method_gets_a_panel(tmp_path):
    from study.report_figures import _grid_methods, sensitivity
    from study.report_runs import aggregate, headline_groups, load_runs

    _fake_run(tmp_path / "sweep_a", "dsp", 0, 100.0, 1e-4, 0.93)
    _fake_run(tmp_path / "sweep_a", "dsp", 1, 200.0, 1e-4, 0.93)
    _fake_run(tmp_path / "sweep_b", "dsp", 0, 400.0, 1e-4, 0.93)  # the same point, run again elsewhere
    _fake_run(tmp_path / "sweep_b", "dsp", 0, 300.0, 1e-3, 0.93)
    _fake_run(tmp_path / "sweep_b", "pops", 0, 50.0, None, 0.9)
    runs, unreadable = load_runs(str(tmp_path))
    assert unreadable == []
    rows = aggregate(runs)
    shared = next(r for r in rows if r["method"] == "dsp" and r["reg_strength"] == 1e-4)
    assert shared["seeds"] == "0 1" and shared["return_mean"] == pytest.approx(150.0)  # sweep_a's seed 0 kept

    # The per-run figures draw each method's headline group only, not every grid cell.
    assert [(r["method"], r["reg_strength"]) for r in headline_groups(rows, "CartPole-v1")] == \
        [("dsp", 1e-4), ("pops", None)]
    assert _grid_methods(rows, "CartPole-v1") == ["dsp"]  # pops has a single point: no grid to draw
    assert sensitivity(rows, "CartPole-v1", str(tmp_path / "s.png"))
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    assert not sensitivity([r for r in rows if r["reg_strength"] != 1e-3], "CartPole-v1", str(tmp_path / "t.png"))


def test_a_grid_cell_holds_the_headline_ranking_only(tmp_path):
    """Another ranking's runs at a grid point are a different method variant, not that cell's value."""
    from study.report_figures import _grid_cells, _grid_methods
    from study.report_runs import aggregate, load_runs

    _fake_run(tmp_path, "dsp", 0, 100.0, 1e-4, 0.93)
    _fake_run(tmp_path, "dsp", 1, 200.0, 1e-4, 0.93)
    _fake_run(tmp_path, "dsp", 0, 999.0, 1e-4, 0.93, ranking="per_layer")
    rows = aggregate(load_runs(str(tmp_path))[0])
    assert _grid_methods(rows, "CartPole-v1") == []  # one (λ, ratio) point in two rankings is no grid

    _fake_run(tmp_path, "dsp", 0, 300.0, 1e-3, 0.93)
    rows = aggregate(load_runs(str(tmp_path))[0])
    cells = _grid_cells(rows, "CartPole-v1", "dsp")
    assert sorted((r["reg_strength"], r["ranking"], r["return_mean"]) for r in cells) == \
        [(1e-4, "global", 150.0), (1e-3, "global", 300.0)]


def test_statistics_against_hand_computation():
    from study.statistics import improvement_probability, iqm_interval

    # IQM: the middle half. Of 8 values, drop the 2 lowest and 2 highest and average the rest.
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0]
    iqm, lo, hi = iqm_interval(values)
    assert iqm == pytest.approx((3 + 4 + 5 + 6) / 4)
    assert min(values) <= lo <= iqm <= hi <= max(values)
    # P(X > Y) over all pairs, ties counting half: x=(1,3) vs y=(2,2) wins 2 of 4 pairs.
    assert improvement_probability([1.0, 3.0], [2.0, 2.0])[0] == pytest.approx(0.5)
    assert improvement_probability([2.0, 2.0], [2.0, 2.0])[0] == pytest.approx(0.5)
    p, lo, hi = improvement_probability([5.0, 6.0, 7.0, 8.0, 9.0], [1.0, 2.0, 3.0, 4.0, 5.0])
    assert p == pytest.approx((25 - 0.5) / 25)  # every pair wins but the one tie 5 = 5
    assert lo <= p <= hi <= 1.0
    # Regenerating a report gives the same intervals, whatever ran before in the process.
    seeds = [1428.2, 2085.1, 728.1, 3167.1, 3190.9]  # five seeds whose interval depends on the draw
    assert iqm_interval(seeds) == iqm_interval(seeds) == iqm_interval(seeds)


def test_sample_std_over_seeds_and_single_seeds_marked():
    from study.report_markdown import mean_std
    from study.report_runs import aggregate

    def run(seed, ret):
        return {"dir": f"r{seed}", "config": {"env": "CartPole-v1", "method": "ppo", "seed": seed,
                                                "reg_strength": 0.0, "final_sparsity": 0.93,
                                                "actor_layers": [8], "num_env_steps": 100},
                "summary": {"return_mean": ret, "return_std": 99.0, "compact_layers": [8, 2],
                            **{k: {"neurons": 8, "weights": 50, "flops": 100.0} for k in ("dense", "compact")}}}

    three = aggregate([run(0, 1.0), run(1, 2.0), run(2, 6.0)])[0]
    assert three["return_std"] == pytest.approx(np.std([1.0, 2.0, 6.0], ddof=1))
    assert three["seed_returns"] == "1.0 2.0 6.0"
    one = aggregate([run(0, 7.0)])[0]
    assert one["return_std"] is None and mean_std(one) == "7.0 (1 seed)"


def test_a_repeated_seed_counts_once_and_is_named():
    from study.report_runs import aggregate, duplicate_seeds

    def run(directory, seed, ret):
        return {"dir": directory, "config": {"env": "CartPole-v1", "method": "ppo", "seed": seed, "reg_strength": 0.0,
                                             "final_sparsity": 0.93, "actor_layers": [8], "num_env_steps": 100},
                "summary": {"return_mean": ret, "return_std": 0.0, "compact_layers": [8, 2],
                            **{k: {"neurons": 8, "weights": 50, "flops": 100.0} for k in ("dense", "compact")}}}

    runs = [run("a/s0", 0, 100.0), run("a/s1", 1, 200.0), run("b/s0", 0, 500.0)]
    assert duplicate_seeds(runs) == [("b/s0", "a/s0")]
    (row,) = aggregate(runs)
    assert row["seeds"] == "0 1" and row["return_mean"] == 150.0  # the first copy, not the better one


def test_a_cell_never_mixes_settings_and_superseded_runs_are_not_read(tmp_path):
    from study.report_runs import aggregate, load_runs, mixed_settings, superseded_runs

    def run(directory, seed, ret, **settings):
        config = {"env": "CartPole-v1", "method": "ppo", "seed": seed, "reg_strength": 0.0, "final_sparsity": 0.93,
                  "actor_layers": [8], "num_env_steps": 100, "discount": 0.99, "checkpoint_interval": 10, **settings}
        return {"dir": directory, "config": config,
                "summary": {"return_mean": ret, "return_std": 0.0, "compact_layers": [8, 2],
                            **{k: {"neurons": 8, "weights": 50, "flops": 100.0} for k in ("dense", "compact")}}}

    runs = [run("new/s0", 0, 500.0, discount=0.98), run("old/s0", 0, 100.0), run("old/s1", 1, 200.0),
            run("old/s2", 2, 300.0, checkpoint_interval=99),  # where episodes are cut is a draw, not a setting
            run("odd/s3", 3, 900.0, reg_strength=1.0),  # nor does λ for a method without a penalty
            # A setting added later: runs without the key used its legacy value, so this one joins them ...
            run("new/s4", 4, 400.0, reward_normalization="reward_std"),
            run("new/s5", 5, 1000.0, reward_normalization="return_std")]  # ... and this one does not
    assert mixed_settings(runs) == [
        ("new/s0", "trained with other settings (discount) than its cell's 5 run(s)"),
        ("new/s5", "trained with other settings (reward_normalization) than its cell's 5 run(s)")]
    (row,) = aggregate(runs)
    assert row["seeds"] == "0 1 2 3 4" and row["return_mean"] == pytest.approx(380.0)

    _fake_run(tmp_path / "sweep", "dsp", 0, 100.0, 1e-4, 0.93)
    _fake_run(tmp_path / "superseded" / "sweep", "dsp", 1, 900.0, 1e-4, 0.93)
    runs, unreadable = load_runs(str(tmp_path))
    assert [r["config"]["seed"] for r in runs] == [0] and unreadable == []
    assert [os.path.basename(d) for d in superseded_runs(str(tmp_path))] == ["dsp_lam0.0001_p0.93_s1"]
    assert len(load_runs(str(tmp_path / "superseded"))[0]) == 1  # read when asked for by name


def test_sparse_greedy_evaluations_make_one_joined_curve(tmp_path):
    from study.report_figures import seed_curve

    members = []
    for seed, values in enumerate(([10.0, 20.0], [14.0, 30.0])):
        run = tmp_path / f"s{seed}"
        run.mkdir()
        rows = ["step,return,eval_return"] + [f"{s},1.0," for s in (500, 1000)] + \
               [f"{s},1.0,{v}" for s, v in zip((2500, 5000), values)]
        (run / "progress.csv").write_text("\n".join(rows) + "\n")
        members.append({"dir": str(run), "config": {"num_env_steps": 5000}})
    x, mean, std, n = seed_curve(members, "eval_return", bins=50)
    assert n == 2 and list(mean) == [12.0, 25.0]  # two evaluations, no empty bins in between
    assert std == pytest.approx([np.std([10, 14], ddof=1), np.std([20, 30], ddof=1)])
    assert 2400 < x[0] < 2600 and 4900 < x[1] <= 5000
    assert seed_curve(members, "no_such_column", bins=50) is None


def test_learning_curves_are_greedy_only_when_every_drawn_run_has_greedy_evaluations(tmp_path):
    from study.report_markdown import curve_caption
    from study.report_runs import aggregate, curve_source, load_runs

    for seed in (0, 1):
        _fake_run(tmp_path, "dsp", seed, 100.0, 1e-4, 0.93)
    runs_dir = tmp_path / "cartpole"
    greedy_rows = "step,return,eval_return\n1000,1.0,\n2000,2.0,50.0\n"
    (runs_dir / "dsp_lam0.0001_p0.93_s0" / "progress.csv").write_text(greedy_rows)
    (runs_dir / "dsp_lam0.0001_p0.93_s1" / "progress.csv").write_text("step,return,eval_return\n1000,1.0,\n")
    rows = aggregate(load_runs(str(tmp_path))[0])
    source = curve_source(rows, "CartPole-v1")
    assert source.column == "return" and source.drawn == 2
    assert [os.path.basename(d) for d in source.without] == ["dsp_lam0.0001_p0.93_s1"]
    assert curve_caption(source).startswith("Learning curves: training-episode returns")
    assert "1 of the 2 runs drawn" in curve_caption(source)

    (runs_dir / "dsp_lam0.0001_p0.93_s1" / "progress.csv").write_text(greedy_rows)
    assert curve_source(rows, "CartPole-v1") == ("eval_return", [], 2)
    assert curve_caption(curve_source(rows, "CartPole-v1")).startswith("Learning curves: greedy returns")


SHIPPED_SWEEPS = sorted(os.path.relpath(os.path.join(d, f), REPO)
                        for d in (os.path.join(REPO, "configs"), os.path.join(REPO, "configs", "tuning"))
                        for f in os.listdir(d) if f.startswith("sweep_") and f.endswith(".cfg"))


@pytest.mark.parametrize("flagfile", SHIPPED_SWEEPS)
def test_every_shipped_sweep_flagfile_plans_its_grid_and_a_dry_run_writes_nothing(flagfile, tmp_path):
    sweep_dir = tmp_path / "sweep"
    r = run_module("dsp_tf.sweep", f"--flagfile={flagfile}", f"--sweep_dir={sweep_dir}", "--dry_run", timeout=120)
    assert r.returncode == 0, r.stderr
    *points, total = r.stdout.strip().splitlines()
    assert points and all(line.split()[0] in ("finished", "to") for line in points)
    assert total.startswith(f"{len(points)} points: ") and total.endswith("(dry run: nothing started)")
    assert not sweep_dir.exists()


METHOD_FLAGFILES = sorted(f for f in os.listdir(os.path.join(REPO, "configs"))
                          if f.endswith(".cfg") and f[:-4].rpartition("_")[2] in METHOD_NAMES)


@pytest.mark.parametrize("name", METHOD_FLAGFILES)
def test_each_method_flagfile_trains_the_method_it_is_named_for(name):
    """configs/<env>_<method>.cfg is where the sweep and the report look up a method's λ and ranking;
    one that trained another method, or another environment, would be read for the wrong cell."""
    from dsp_cli import flagfiles

    env, _, method = name[:-4].rpartition("_")
    path = os.path.join(REPO, "configs", name)
    assert flagfiles.flagfile_value(path, "method") == method
    assert flagfiles.flagfile_value(path, "env") == flagfiles.flagfile_value(os.path.join(REPO, "configs", f"{env}.cfg"), "env")


@pytest.mark.parametrize("flagfile, points", [("sweep_cartpole.cfg", 40), ("sweep_lunarlander.cfg", 40),
                                              ("sweep_mujoco.cfg", 80)])
def test_each_comparison_flagfile_names_exactly_its_archived_runs(tmp_path, flagfile, points):
    """Every point of a comparison's sweep flagfile (per-method and per-environment λ included) is a
    run in docs/runs: a changed setting in the flagfile would name runs that were never made."""
    r = run_module("dsp_tf.sweep", f"--flagfile=configs/{flagfile}", f"--sweep_dir={tmp_path / 's'}",
                   "--dry_run", timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == \
        f"{points} points: {points} already finished, 0 to run (dry run: nothing started)"


@pytest.mark.parametrize("value", ["inf", "nan", "-1e-4", "x"])
def test_sweep_refuses_the_lambdas_training_refuses(value):
    """One rule for λ (dsp_tf.regularizers.check_strength): an 'inf' used to pass the sweep and fail each run."""
    from study.sweep import _reg_strengths

    with pytest.raises(UsageError, match=f"--reg_strengths: '{value}' is not a finite number >= 0"):
        _reg_strengths([value])
    with pytest.raises(UsageError, match=f"--reg_strengths: 'dsp={value}' is not a finite number >= 0"):
        _reg_strengths([f"dsp={value}"])


def _fake_student(root, env_dir, arm, seed, ret, teacher, validation=None, teacher_validation=None,
                  layers=(5, 12, 4), **extra):
    import json

    run = root / env_dir / f"{arm}_s{seed}"
    run.mkdir(parents=True)
    summary = {"env": "LunarLander-v3", "return_mean": ret, "teacher_return": teacher, "env_steps": 500,
               "teacher_env_steps": 1000, "compact": {"neurons": 17, "weights": 140}, "compact_layers": list(layers)}
    if validation is not None:
        summary.update(selection={"validation_return": validation}, teacher_validation_return=teacher_validation)
    if "confirmation" in extra:
        summary["selection"]["confirmation"] = extra.pop("confirmation")
    summary.update(extra)
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def test_the_report_tables_shrink_students_against_their_teachers(tmp_path):
    """Numbers against NumPy on the same summaries; an unfinished student is named, superseded ones unread;
    nothing about students is written without --shrink_dir."""
    _fake_run(tmp_path / "runs", "ppo", 0, 100.0)
    shrink = tmp_path / "shrink"
    dsp = [(0, 240.0, 250.0, 270.0, 300.0), (1, 180.0, 280.0, 290.0, 290.0)]
    for seed, ret, teacher, val, tval in dsp:
        _fake_student(shrink, "lunarlander", "dsp", seed, ret, teacher, val, tval)
    _fake_student(shrink, "lunarlander", "small", 0, 260.0, 250.0, 240.0, 300.0, layers=(9, 9, 4))
    _fake_student(shrink, "lunarlander", "small", 1, 270.0, 280.0, 280.0, 290.0, layers=(9, 9, 4))
    (shrink / "lunarlander" / "dropout_s0").mkdir()  # started, never finished
    (shrink / "lunarlander" / "ppo_s0").mkdir()  # a plain training run: not a student
    (shrink / "lunarlander" / "ppo_s0" / "summary.json").write_text('{"env": "LunarLander-v3", "return_mean": 1.0}')
    _fake_student(shrink, "superseded", "dsp", 0, 1.0, 250.0)
    out = tmp_path / "out"
    result = make_report(str(tmp_path / "runs"), str(out), results_markdown=str(out / "RESULTS.md"),
                         shrink_dir=str(shrink))
    assert result["students"] == 4  # the superseded student is not read
    with open(out / "shrink.csv") as f:
        rows = {r["arm"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"dsp", "small"}
    returns = np.array([d[1] for d in dsp])
    assert float(rows["dsp"]["return_mean"]) == pytest.approx(returns.mean())
    assert float(rows["dsp"]["return_std"]) == pytest.approx(returns.std(ddof=1), rel=1e-5)
    assert float(rows["dsp"]["share_of_teacher"]) == pytest.approx(np.mean(returns / [250.0, 280.0]), rel=1e-5)
    assert float(rows["dsp"]["validation_share"]) == pytest.approx(np.mean([270 / 300, 290 / 290]), rel=1e-5)
    text = (out / "RESULTS.md").read_text()
    section = text[text.index("## Shrinking trained policies"):]
    assert "| `dsp` | 0,1 | 210.0 ± 42.4 |" in section and "| 5-12, 5-12 |" in section
    assert "P(dsp > small) = " in section
    assert "dropout_s0" in section and "not finished" in section
    assert "ppo_s0`: not a student of dsp_tf.shrink (summary.json has no 'teacher_return')" in section
    plain = tmp_path / "plain"
    make_report(str(tmp_path / "runs"), str(plain), results_markdown=str(plain / "RESULTS.md"))
    assert not (plain / "shrink.csv").exists() and "Shrinking trained" not in (plain / "RESULTS.md").read_text()


def test_report_refuses_a_missing_shrink_dir_before_writing_anything(tmp_path):
    _fake_run(tmp_path / "runs", "ppo", 0, 100.0)
    result = run_module("dsp_tf.report", f"--sweep_dir={tmp_path / 'runs'}", f"--output_dir={tmp_path / 'out'}",
                        f"--shrink_dir={tmp_path / 'nope'}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"dsp_tf.report: error: --shrink_dir '{tmp_path / 'nope'}' does not exist")
    assert not (tmp_path / "out").exists()


def _fake_search(root, name, ladder, chosen, student=None, teacher=None):
    """A finished size search as dsp_tf.shrink leaves it: shrink.json, and the chosen student's summary.json."""
    path = root / name
    path.mkdir(parents=True)
    (path / "shrink.json").write_text(json.dumps({
        "keep": 0.97, "keep_on": "mean", "judge_episodes": 20, "chosen_ratio": chosen,
        "ladder": [{"ratio": r, "kept": k, "run": f"ladder/p{r}"} for r, k in ladder]}))
    if chosen is not None:
        (path / "summary.json").write_text(json.dumps({
            "env": "Hopper-v4", "seed": 0, "method": "small", "recipe": "distill", "compact_layers": [9, 9, 3],
            "compact": {"weights": 207}, "eval_returns": list(student), "return_mean": float(np.mean(student)),
            "return_cvar10": float(np.sort(student)[:1].mean()), "teacher_return": float(np.mean(teacher)),
            "teacher_return_cvar10": float(np.sort(teacher)[:1].mean()), "env_steps": 245760,
            "teacher_env_steps": 1000000}))


def test_the_report_tables_size_searches_against_their_teachers(tmp_path, capsys):
    """Shares against NumPy on the same returns; a search that kept nothing says so; an unfinished one is
    named on stderr and in the section; nothing about searches without --ladder_dir."""
    _fake_run(tmp_path / "runs", "ppo", 0, 100.0)
    ladder = tmp_path / "ladder"
    student = np.array([3000.0, 3500.0, 3600.0, 3400.0, 3550.0, 3450.0, 3600.0, 3500.0, 3300.0, 3520.0])
    teacher = np.array([3600.0, 3650.0, 3700.0, 3620.0, 3680.0, 3640.0, 3660.0, 3690.0, 3610.0, 3630.0])
    _fake_search(ladder, "hopper_keep0.97_small_distill_s0", [(0.97, False), (0.93, True), (0.95, False)], 0.93,
                 student, teacher)
    _fake_search(ladder, "walker2d_keep0.97_small_distill_s0", [(0.97, False), (0.9, False)], None)
    (ladder / "walker2d_keep0.97_small_distill_s1").mkdir()  # started, never finished
    out = tmp_path / "out"
    make_report(str(tmp_path / "runs"), str(out), results_markdown=str(out / "RESULTS.md"), ladder_dir=str(ladder))
    section = (out / "RESULTS.md").read_text().split("## Size searches")[1]
    mean_share, cvar_share = student.mean() / teacher.mean(), student.min() / teacher.min()  # 10 episodes: 1 each
    assert (f"| `hopper_keep0.97_small_distill_s0` | small, distill | 0.97 (20 episodes) | 0.93 ✓, 0.95 ✗, 0.97 ✗ | 0.93 | 9-9 | "
            f"207 | {student.mean():.1f} ({teacher.mean():.1f}) | {100 * mean_share:.1f}% | {100 * cvar_share:.1f}% "
            f"| 10 |") in section
    assert "| `walker2d_keep0.97_small_distill_s0` | — | 0.97 (20 episodes) | 0.9 ✗, 0.97 ✗ | nothing kept |" in section
    assert "walker2d_keep0.97_small_distill_s1`: not finished (no shrink.json)" in section
    assert f"left out search '{ladder / 'walker2d_keep0.97_small_distill_s1'}': not finished" in capsys.readouterr().err
    from study.report_ladder import _share

    assert _share(-60.0, -20.0) is None and _share(50.0, 0.0) is None  # no share of a score <= 0
    plain = tmp_path / "plain"
    make_report(str(tmp_path / "runs"), str(plain), results_markdown=str(plain / "RESULTS.md"))
    assert "Size searches" not in (plain / "RESULTS.md").read_text()


def test_report_refuses_a_missing_ladder_dir_before_writing_anything(tmp_path):
    _fake_run(tmp_path / "runs", "ppo", 0, 100.0)
    result = run_module("dsp_tf.report", f"--sweep_dir={tmp_path / 'runs'}", f"--output_dir={tmp_path / 'out'}",
                        f"--ladder_dir={tmp_path / 'nope'}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"dsp_tf.report: error: --ladder_dir '{tmp_path / 'nope'}' does not exist")
    assert not (tmp_path / "out").exists()


def _fake_export(path, flash_m4, flash_m0, with_targets=True):
    import json

    variant = lambda flash, instr: {"flash_bytes": flash, "ram_bytes": 136, "instructions_per_call": instr}  # noqa: E731
    targets = {"cortex-m0plus": {"variants": {"int8_q": variant(flash_m0, 20000.4), "int16_q": variant(flash_m0 + 190, 20500),
                                              "int8": variant(5000, 27000), "float32": variant(7000, 79000)},
                                 "recommendation": "cortex-m0plus: ship int8_q"},
               "cortex-m4f": {"variants": {"int8_q": variant(flash_m4, 8000), "int8": variant(1400, 9000),
                                           "float32": variant(2900, 2200)},
                              "recommendation": "cortex-m4f: ship int8_q where memory is tight"}}
    c_policy = {"written": True, "int16_input": {"observations": 2000, "same_int8_input_as_float_wrapper_rate": 0.9965,
                                                 "max_step_difference": 1,
                                                 "same_saturation_count_as_float_wrapper_rate": 1.0,
                                                 "as_numpy_reference": True, "output_is_int8_q_of_its_input": True}}
    if with_targets:
        c_policy["targets"] = {"compiler": "arm-none-eabi-gcc 12.2.1", "targets": targets}
    report = {"root_dir": "docs/runs/x/dsp_s0", "env": "CartPole-v1", "method": "dsp", "seed": 0,
              "models": {"compact": {"hidden_units": [12, 5], "weights": 118}}, "c_policy": c_policy}
    path.write_text(json.dumps(report))


def test_the_plain_c_section_shows_both_tanh_kernels_and_the_call_site_figure():
    from study.report_export import export_table

    def q(flash, call_site, instructions):
        return {"flash_bytes": flash, "call_site_flash_bytes": call_site, "ram_bytes": 100,
                "instructions_per_call": instructions}

    row = {"variants": {"int8_q": q(1000, 1030, 4000)}, "recommendation": "cortex-m0plus: ship int8_q",
           "kernels": {"table": {"int8_q": q(1000, 1030, 4000)}, "computed": {"int8_q": q(900, 930, 24000)}},
           "kernel_recommendation": "cortex-m0plus: table (int8_q 1030 B with its call site)"}
    report = {"root_dir": "docs/runs/x", "env": "CartPole-v1", "method": "dsp", "seed": 0,
              "models": {"compact": {"hidden_units": [12, 5], "weights": 118}},
              "c_policy": {"targets": {"compiler": "gcc", "targets": {"cortex-m0plus": row}}}}
    text = export_table("x.json", report)
    assert "| cortex-m0plus | 1,000 / 1,030 B, 100 B, 4,000 | 900 / 930 B, 100 B, 24,000 | table (int8_q 1030 B" in text
    assert "cortex-m0plus 1,030 B (missed)" in text  # the budget is judged with the call site


def test_the_report_tables_the_plain_c_policy_per_target_from_export_reports(tmp_path):
    """The section is the reports' numbers, each against the 1 kB budget; a report without a table and an
    unreadable one are named; a directory without any table is refused before anything is written."""
    _fake_run(tmp_path / "runs", "ppo", 0, 100.0)
    exports = tmp_path / "export"
    exports.mkdir()
    _fake_export(exports / "cartpole_dsp_s0.json", flash_m4=1020, flash_m0=1148)
    _fake_export(exports / "old.json", 1, 1, with_targets=False)
    (exports / "broken.json").write_text("{")
    out = tmp_path / "out"
    make_report(str(tmp_path / "runs"), str(out), results_markdown=str(out / "RESULTS.md"), export_dir=str(exports))
    text = (out / "RESULTS.md").read_text()
    section = text[text.index("## Plain-C policy per target"):]
    assert "| cortex-m0plus | 1,148 B, 136 B, 20,000 | 1,338 B, 136 B, 20,500 | 5,000 B, 136 B, 27,000 |" in section
    assert "| cortex-m4f | 1,020 B, 136 B, 8,000 | — |" in section
    assert "cortex-m0plus 1,148 B (missed), cortex-m4f 1,020 B (met)" in section
    assert "actor 12-5, 118 weights" in section and "on 99.65% (at most 1 step apart)" in section
    assert "`old.json`: no per-target table" in section and "`broken.json`: unreadable" in section
    empty = tmp_path / "empty"
    empty.mkdir()
    _fake_export(empty / "old.json", 1, 1, with_targets=False)
    result = run_module("dsp_tf.report", f"--sweep_dir={tmp_path / 'runs'}", f"--output_dir={tmp_path / 'out2'}",
                        f"--export_dir={empty}")
    assert result.returncode == 2 and not (tmp_path / "out2").exists()
    assert result.stderr.strip().splitlines()[-1] == (
        f"dsp_tf.report: error: no export report with a per-target table (c_policy.targets) in --export_dir '{empty}'")


def test_the_report_scores_tails_recipes_and_how_far_selection_flattered(tmp_path):
    """Issue 43: the worst-decile share, failure rate and gradient steps per arm against NumPy; P(a > b)
    only between arms of one recipe; the best-of-N and confirmed scores over the test return."""
    _fake_run(tmp_path / "runs", "ppo", 0, 100.0)
    shrink = tmp_path / "shrink"
    _fake_student(shrink, "lunarlander", "dsp", 0, 240.0, 250.0, 270.0, 300.0)
    _fake_student(shrink, "lunarlander", "dsp", 1, 200.0, 280.0, 260.0, 290.0)
    distill = [(0, 245.0, 250.0, 100.0, 120.0, 0.02, 260.0), (1, 270.0, 280.0, 150.0, 140.0, 0.0, 300.0)]
    for seed, ret, teacher, tail, teacher_tail, failures, confirmed in distill:
        candidates = [{"step": 9, "validation_return": 320.0, "confirmation_return": 200.0},
                      {"step": 5, "validation_return": 310.0, "confirmation_return": confirmed}]
        _fake_student(shrink, "lunarlander", "dsp_distill", seed, ret, teacher, 310.0, 300.0, return_cvar10=tail,
                      teacher_return_cvar10=teacher_tail, failure_rate=failures, gradient_steps=40000,
                      confirmation={"episodes": 20, "top": 2, "chosen_rank": 2, "candidates": candidates})
        _fake_student(shrink, "lunarlander", "small_distill", seed, ret - 10, teacher, 300.0, 300.0,
                      return_cvar10=tail, teacher_return_cvar10=teacher_tail, failure_rate=0.0, gradient_steps=40000)
    out = tmp_path / "out"
    make_report(str(tmp_path / "runs"), str(out), results_markdown=str(out / "RESULTS.md"), shrink_dir=str(shrink))
    with open(out / "shrink.csv") as f:
        rows = {r["arm"]: r for r in csv.DictReader(f)}
    tails = np.array([d[3] / d[4] for d in distill])
    assert float(rows["dsp_distill"]["cvar10_share_of_teacher"]) == pytest.approx(tails.mean(), rel=1e-5)
    assert float(rows["dsp_distill"]["failure_rate"]) == pytest.approx(0.01)
    assert rows["dsp_distill"]["gradient_steps"] == "40000" and rows["dsp"]["gradient_steps"] == ""
    assert rows["dsp"]["cvar10_share_of_teacher"] == "nan"  # recorded since issue 43 only
    text = (out / "RESULTS.md").read_text()
    section = text[text.index("## Shrinking trained policies"):]
    assert f"| {100 * tails.mean():.1f}% | 1.0% |" in section  # dsp_distill's worst decile and failure rate
    assert "P(dsp_distill > small_distill) = " in section
    assert "P(dsp > small_distill)" not in section and "P(dsp > dsp_distill)" not in section
    returns = np.array([d[1] for d in distill])
    confirmed = np.mean(np.array([d[6] for d in distill]) / returns - 1)
    assert f"| LunarLander-v3 | `distill` | 4 | {100 * np.mean(np.r_[310 / returns, 300 / (returns - 10)] - 1):+.1f}% | " \
           f"{100 * confirmed:+.1f}% |" in section
    ppo_raw = np.mean([270 / 240 - 1, 260 / 200 - 1])
    assert f"| LunarLander-v3 | `ppo_kl` | 2 | {100 * ppo_raw:+.1f}% | — |" in section


def test_fifty_episode_scores_of_student_and_teacher_replace_the_runs_own_test(tmp_path):
    """Issue 43's amendment: where dsp_tf.evaluate scored a student and the very teacher it learnt from (same
    summary.json hash) on more episodes with the same seeds, the report uses those, and says how many."""
    import hashlib
    import json

    from agents.tails import cvar10, failure_rate

    _fake_run(tmp_path / "runs", "ppo", 0, 100.0)
    teacher = tmp_path / "teachers" / "ppo_s0"
    teacher.mkdir(parents=True)
    (teacher / "summary.json").write_text('{"return_mean": 250.0}')
    (teacher / "config.json").write_text('{"env": "LunarLander-v3", "method": "ppo", "seed": 0}')
    digest = hashlib.sha256((teacher / "summary.json").read_bytes()).hexdigest()
    shrink = tmp_path / "shrink"
    rng = np.random.default_rng(0)
    seeds = list(range(50))
    student_returns, teacher_returns = list(rng.normal(240, 30, 50)), list(rng.normal(250, 10, 50))
    for seed, sha in ((0, digest), (1, "another teacher")):
        run = _fake_student(shrink, "lunarlander", "dsp_distill", seed, 200.0, 250.0, eval_returns=[200.0] * 10,
                            teacher_source={"path": os.path.relpath(teacher, shrink / "lunarlander" / "x"),
                                            "sha256": sha})
        (run / "evaluation.json").write_text(json.dumps({"returns": student_returns, "seeds": seeds}))
    (teacher / "evaluation.json").write_text(json.dumps({"returns": teacher_returns, "seeds": seeds}))
    from study.report_shrink import load_students

    students, _ = load_students(str(shrink))
    first, second = sorted(students["LunarLander-v3"]["dsp_distill"], key=lambda s: s["seed"])
    assert first["return_mean"] == pytest.approx(np.mean(student_returns)) and first["test_episodes"] == 50
    assert first["teacher_return"] == pytest.approx(np.mean(teacher_returns))
    assert first["return_cvar10"] == pytest.approx(cvar10(student_returns))
    assert first["failure_rate"] == failure_rate(student_returns, teacher_returns)
    assert second["return_mean"] == 200.0 and second["test_episodes"] == 10  # not its teacher: its own test
    out = tmp_path / "out"
    make_report(str(tmp_path / "runs"), str(out), results_markdown=str(out / "RESULTS.md"), shrink_dir=str(shrink))
    assert "| 10/50 |" in (out / "RESULTS.md").read_text()
