"""The floors of the project: dsp_tf (library) ← agents ← dsp_cli (the product's commands) ← study (sweep,
report, archive: the evidence); tflite_export is a library beside the agent floor (conversion and C
emission, no RL), used by dsp_cli.

Every import statement counts, including those inside functions: a lazy import
still makes the library depend on what it imports.
"""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: dsp_tf modules that are only the names users type (`python -m dsp_tf.train`), and the package whose
#: command each launches: the product's in dsp_cli, the study's in study.
LAUNCHERS = {"train": "dsp_cli", "evaluate": "dsp_cli", "shrink": "dsp_cli",
             "sweep": "study", "report": "study", "archive": "study"}
#: The same for tflite_export: `python -m tflite_export` launches dsp_cli.export.
EXPORT_LAUNCHER = "__main__"
#: What each floor must never import.
FORBIDDEN = {
    "dsp_tf": ("agents", "dsp_cli", "study", "tflite_export", "tf_agents", "gymnasium", "gym"),
    "agents": ("dsp_cli", "study", "tflite_export"),
    "tflite_export": ("agents", "dsp_cli", "study", "tf_agents", "gymnasium", "gym"),
    "dsp_cli": ("study",),
}


def imported_modules(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def modules_of(package):
    for dirpath, _, files in os.walk(os.path.join(ROOT, package)):
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(dirpath, name)


def violations(package):
    found = []
    for path in modules_of(package):
        if package == "dsp_tf" and os.path.basename(path)[:-3] in LAUNCHERS:
            continue
        if package == "tflite_export" and os.path.basename(path)[:-3] == EXPORT_LAUNCHER:
            continue
        for module in imported_modules(path):
            if module.split(".")[0] in FORBIDDEN[package]:
                found.append(f"{os.path.relpath(path, ROOT)} imports {module}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_points_down_to_up(package):
    assert violations(package) == []


def test_launchers_only_hand_over_to_their_command():
    for name, package in LAUNCHERS.items():
        modules = set(imported_modules(os.path.join(ROOT, "dsp_tf", f"{name}.py")))
        # the command's body, and at most the library's check of the install's extras
        assert f"{package}.{name}" in modules and modules <= {"dsp_tf", f"{package}.{name}"}, name


def test_the_export_launcher_only_hands_over_to_dsp_cli():
    modules = set(imported_modules(os.path.join(ROOT, "tflite_export", f"{EXPORT_LAUNCHER}.py")))
    assert modules == {"dsp_tf", "dsp_cli.export"}


def test_the_check_sees_a_lazy_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from agents.training import train\n")
    assert "agents.training" in set(imported_modules(str(bad)))
