"""Hostile and careless inputs (issue 42): nothing written over, no code run from a model file, a
teacher that does not fit refused before anything is made, and every refusal one line with exit 2."""
import json
import os
import re
import shutil

import numpy as np
import pytest

from clitools import REPO, TINY, last_line, run_module
from dsp_tf._keras import keras
from dsp_tf.errors import UsageError
from dsp_tf.safe_load import load_model_safely

RUN = os.path.join(REPO, "tests", "data", "cartpole_dsp_s0")


def snapshot(root):
    """Every file under ``root`` with its bytes and modification time: "nothing changed" is this, equal."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = (f.read(), os.stat(path).st_mtime_ns)
    return out


@pytest.fixture()
def teacher(tmp_path):
    """A finished run of this project, used as a teacher (and as a run a command must not overwrite)."""
    path = tmp_path / "teacher"
    shutil.copytree(RUN, path)
    return path


def refused(result, message):
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert message in last_line(result.stderr), last_line(result.stderr)


# ---- never write over a finished run -------------------------------------------------------------
@pytest.mark.parametrize("command", [
    ("dsp_tf.train", "--flagfile=cartpole.cfg", "--overwrite"),
    ("dsp_tf.shrink", "--keep=0.95"),
    ("dsp_tf.shrink", "--keep=0.95", "--overwrite"),
    ("dsp_tf.shrink", "--final_sparsity=0.5", "--overwrite"),
], ids=["train --overwrite", "shrink --keep", "shrink --keep --overwrite", "shrink one ratio --overwrite"])
def test_the_teachers_own_directory_is_never_the_root(teacher, command):
    before = snapshot(teacher)
    module, *flags = command
    refused(run_module(module, f"--teacher={teacher}", f"--root_dir={teacher}", *flags),
            "is the teacher's own directory")
    assert snapshot(teacher) == before


def test_a_root_holding_the_teacher_file_is_refused(teacher):
    before = snapshot(teacher)
    refused(run_module("dsp_tf.shrink", f"--teacher={teacher / 'actor_dense.h5'}", f"--root_dir={teacher}",
                       "--flagfile=cartpole.cfg", "--overwrite"), "holds the teacher")
    assert snapshot(teacher) == before


def test_a_size_search_refuses_another_commands_finished_run(teacher, tmp_path):
    other = tmp_path / "finished"
    shutil.copytree(RUN, other)
    before = snapshot(other)
    refused(run_module("dsp_tf.shrink", f"--teacher={teacher}", f"--root_dir={other}", "--keep=0.95"),
            "holds a dsp_tf.train run, not this command's")
    assert snapshot(other) == before


def test_train_refuses_a_size_searchs_root(tmp_path):
    root = tmp_path / "search"
    root.mkdir()
    (root / "search.json").write_text("{}")
    (root / "config.json").write_text("{}")
    before = snapshot(root)
    refused(run_module("dsp_tf.train", *TINY, f"--root_dir={root}"), "holds a size search of dsp_tf.shrink")
    assert snapshot(root) == before


# ---- a teacher named first, checked against the environment before anything is made -----------------
@pytest.mark.parametrize("case", ["missing", "json"])
def test_a_teacher_that_is_not_one_is_named_before_any_other_flag(teacher, tmp_path, case):
    path = tmp_path / "nope" if case == "missing" else teacher / "summary.json"
    out = tmp_path / "student"
    result = run_module("dsp_tf.shrink", f"--teacher={path}", f"--root_dir={out}")
    refused(result, "does not exist" if case == "missing" else "is neither a run directory")
    assert f"--teacher '{path}'" in last_line(result.stderr)
    assert not out.exists()


def test_a_file_teacher_with_an_unknown_environment_names_it(teacher, tmp_path):
    out = tmp_path / "student"
    refused(run_module("dsp_tf.shrink", f"--teacher={teacher / 'actor_dense.h5'}", "--env=Nope-v0",
                       f"--root_dir={out}"), "unknown environment 'Nope-v0'")
    assert not out.exists()


def _keras_teacher(folder, outputs, inputs=4):
    folder.mkdir()
    model = keras.Sequential([keras.Input((inputs,)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(outputs)])
    model.save(folder / "actor.h5", save_format="h5")
    shutil.copy(os.path.join(RUN, "actor_meta.json"), folder / "actor_meta.json")
    return folder / "actor.h5"


@pytest.mark.parametrize("module", ["dsp_tf.shrink", "dsp_tf.train"])
@pytest.mark.parametrize("outputs, inputs, message", [
    (3, 4, "does not fit CartPole-v1: it gives 3 outputs, CartPole-v1 has 2 discrete actions"),
    (2, 5, "does not fit CartPole-v1: it takes 5 observation values"),
])
def test_a_teacher_of_the_wrong_sizes_is_refused_before_anything_is_made(tmp_path, module, outputs, inputs,
                                                                         message):
    path = _keras_teacher(tmp_path / "teacher", outputs, inputs)
    out = tmp_path / "student"
    refused(run_module(module, f"--teacher={path}", "--flagfile=cartpole.cfg", f"--root_dir={out}"), message)
    assert not out.exists()


@pytest.mark.parametrize("damage", ["garbage", "no steps", "missing"])
def test_a_teacher_whose_summary_cannot_be_read_is_refused(teacher, tmp_path, damage):
    summary = teacher / "summary.json"
    if damage == "garbage":
        summary.write_text("{not json")
    elif damage == "no steps":
        summary.write_text(json.dumps({**json.loads(summary.read_text()), "env_steps": None}))
    else:
        summary.unlink()
    out = tmp_path / "student"
    refused(run_module("dsp_tf.shrink", f"--teacher={teacher}", f"--root_dir={out}", "--keep=0.95"),
            "has no summary.json: the run is not finished" if damage == "missing" else "summary.json is unreadable")
    assert not out.exists()


# ---- loading a model file runs no code ---------------------------------------------------------------
def _lambda_model(marker):
    """A model whose Lambda layer leaves ``marker`` behind when its code runs (as loading rebuilds it)."""
    inputs = keras.Input((4,))
    x = keras.layers.Dense(2)(inputs)
    x = keras.layers.Lambda(lambda t, p=str(marker): (open(p, "w").close(), t)[1], name="payload")(x)
    return keras.Model(inputs, x)


@pytest.fixture()
def lambda_files(tmp_path):
    marker = tmp_path / "code_ran"
    model = _lambda_model(marker)
    files = {}
    for fmt in ("h5", "keras"):
        folder = tmp_path / f"lambda_{fmt}"
        folder.mkdir()
        files[fmt] = folder / f"actor.{fmt}"
        model.save(files[fmt], **({"save_format": "h5"} if fmt == "h5" else {}))
        shutil.copy(os.path.join(RUN, "actor_meta.json"), folder / "actor_meta.json")
    if marker.exists():
        marker.unlink()  # building the model ran it; from here on, only a load can
    return marker, files


def test_the_marker_shows_code_that_runs(lambda_files):
    """The check below can fail: Keras's own HDF5 loader does run the file's code."""
    marker, files = lambda_files
    keras.models.load_model(files["h5"], compile=False)
    assert marker.exists()


@pytest.mark.parametrize("fmt", ["h5", "keras"])
def test_the_safe_loader_refuses_a_lambda_without_running_it(lambda_files, fmt):
    marker, files = lambda_files
    with pytest.raises(UsageError, match="has a Lambda layer \\('payload'\\), which would run code"):
        load_model_safely(str(files[fmt]))
    assert not marker.exists()


def test_the_safe_loader_refuses_layers_outside_its_list_and_loads_a_policy(tmp_path):
    inputs = keras.Input((4,))
    h = keras.layers.Dense(8)(inputs)
    branched = keras.Model(inputs, keras.layers.Add()([h, keras.layers.Dense(8)(h)]))
    branched.save(tmp_path / "add.h5", save_format="h5")
    with pytest.raises(UsageError, match="has a layer of class 'Add'"):
        load_model_safely(str(tmp_path / "add.h5"))
    policy = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2)])
    policy.save(tmp_path / "policy.h5", save_format="h5")
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(load_model_safely(str(tmp_path / "policy.h5"))(x).numpy(), policy(x).numpy())


@pytest.mark.parametrize("fmt", ["h5", "keras"])
def test_a_lambda_teacher_runs_no_code_in_shrink(lambda_files, tmp_path, fmt):
    marker, files = lambda_files
    out = tmp_path / "student"
    refused(run_module("dsp_tf.shrink", f"--teacher={files[fmt]}", "--flagfile=cartpole.cfg", f"--root_dir={out}"),
            "has a Lambda layer ('payload')")
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize("module, extra", [("dsp_tf.evaluate", ()), ("tflite_export", ("--output_dir={out}",))])
def test_a_lambda_actor_in_a_run_runs_no_code(lambda_files, tmp_path, module, extra):
    marker, files = lambda_files
    run = tmp_path / "run"
    shutil.copytree(RUN, run)
    shutil.copy(files["h5"], run / "actor_compact.h5")
    shutil.copy(files["h5"], run / "actor_dense.h5")
    before = snapshot(run)
    out = tmp_path / "export"
    refused(run_module(module, f"--root_dir={run}", *(e.format(out=out) for e in extra)),
            "has a Lambda layer ('payload')")
    assert not marker.exists() and not out.exists()
    assert snapshot(run) == before


@pytest.mark.parametrize("damage, message", [
    (lambda c: c["config"]["layers"][1].update(registered_name="DynamicPruningSchedule"),
     "registered as 'DynamicPruningSchedule'"),
    (lambda c: c["config"]["layers"][1].update(module="numpy"), "comes from module 'numpy'"),
    (lambda c: c["config"]["layers"][1]["config"].update(activation={"class_name": "LeakyReLU", "config": {}}),
     "not one of Keras's built-in element-wise activations"),
    (lambda c: c["config"]["layers"][1]["config"].update(activation={"class_name": "function", "config": "tanh",
                                                                     "registered_name": "exec"}),
     "registered as 'exec'"),
    (lambda c: c["config"]["layers"][1]["config"]["kernel_initializer"].update(class_name="DistributionLambda"),
     "holds an object of class 'DistributionLambda'"),
])
def test_the_allow_list_holds_for_every_serialised_object(damage, message):
    """Keras finds a class by registered_name and module too, and rebuilds initializers and activations
    from dicts: each of these is refused in one line, before anything is deserialised."""
    from dsp_tf.safe_load import check_model_config, saved_model_config

    config = saved_model_config(os.path.join(RUN, "actor_dense.h5"))
    check_model_config(config, "actor_dense.h5", ("NeuronMask",))
    damage(config)
    with pytest.raises(UsageError, match=re.escape(message)):
        check_model_config(config, "actor_dense.h5", ("NeuronMask",))


@pytest.mark.parametrize("raw", [b"12", b"[" * 100000, b"{not json"])
def test_an_unreadable_model_config_is_one_line(tmp_path, raw):
    import h5py

    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = raw
    with pytest.raises(UsageError, match="bad.h5"):
        load_model_safely(str(path))
