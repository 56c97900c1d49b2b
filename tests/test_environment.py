"""The packaging promises: pins agree everywhere, CI runs the README's command,
the Jupyter kernel points at this environment, oneDNN is switched on."""

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + project["optional-dependencies"]["test"]


def test_every_dependency_is_pinned_exactly():
    for requirement in pyproject_pins():
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", requirement), requirement
    names = {r.split("==")[0] for r in pyproject_pins()}
    assert {"tensorflow", "keras", "keras-hub", "keras-nlp", "tensorflow-text", "papermill", "scikit-learn"} <= names


def test_environment_yml_lists_the_same_pins():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*-\s*python=3\.11\s*$", text, re.M)
    conda_pins = [m.group(1) for m in re.finditer(r"^\s*-\s*([A-Za-z0-9_.-]+==\S+)\s*$", text, re.M)]
    assert sorted(conda_pins) == sorted(pyproject_pins())


def test_lock_file_agrees_with_pins():
    lock = {}
    for line in (ROOT / ".ci" / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            lock[name.lower().replace("_", "-")] = version
    for requirement in pyproject_pins():
        name, version = requirement.split("==")
        assert lock.get(name.lower()) == version, requirement


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert len(commands) == 2, commands  # one runs the main job, one the tests
    test_command = next(c for c in commands if "test" in c)
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(rf"^\s*{re.escape(test_command)}\s*$", ci, re.M)


def test_onednn_is_enabled_unless_the_user_chose():
    code = "import workbench, os; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    assert subprocess.check_output([sys.executable, "-c", code], env=env, text=True).strip() == "1"
    env["TF_ENABLE_ONEDNN_OPTS"] = "0"
    assert subprocess.check_output([sys.executable, "-c", code], env=env, text=True).strip() == "0"


def test_jupyter_kernel_runs_this_environment():
    spec_dir = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "workbench"
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        import pytest

        pytest.skip("tests run outside the project's .venv; the Makefile registers the kernel there")
    argv = json.loads((spec_dir / "kernel.json").read_text())["argv"]
    assert Path(argv[0]).resolve() == Path(sys.executable).resolve()


def test_top_level_layout_is_the_designed_one():
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not tracked:
        import pytest

        pytest.skip("not a git checkout")
    top = {path.split("/")[0] for path in tracked if not path.startswith(".")}
    assert top == {
        "notebooks",
        "workbench",
        "data",
        "results",
        "tests",
        "environment.yml",
        "pyproject.toml",
        "README.md",
        "Makefile",
    }
    assert ".ci/run" in tracked
