"""The packaging promises: pins agree everywhere, CI runs the README's command,
the Jupyter kernel points at this environment, oneDNN is switched on."""

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + project["optional-dependencies"]["test"]


def lock_versions(name="requirements.lock"):
    lock = {}
    for line in (ROOT / ".ci" / name).read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            lock[canonicalize_name(name)] = version
    return lock


def test_dependencies_are_compatible_ranges_not_pins():
    # A library states what it supports; only the lock file pins (pyproject.toml says why).
    for text in pyproject_requirements():
        requirement = Requirement(text)
        assert requirement.specifier, f"{text}: no version range"
        assert not any(s.operator in ("==", "===") for s in requirement.specifier), f"{text}: pinned exactly"
    names = {Requirement(r).name for r in pyproject_requirements()}
    assert {"tensorflow", "keras", "keras-hub", "tensorflow-text", "papermill", "scikit-learn"} <= names
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(python).contains("3.11") and SpecifierSet(python).contains("3.12")


def test_environment_yml_lists_the_same_requirements():
    import yaml

    dependencies = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    assert any(isinstance(d, str) and re.fullmatch(r"python=3\.1[12]", d) for d in dependencies)
    pip = next(d["pip"] for d in dependencies if isinstance(d, dict))
    assert sorted(r for r in pip if not r.startswith("-")) == sorted(pyproject_requirements())


def test_lock_file_satisfies_every_range():
    lock = lock_versions()
    for text in pyproject_requirements():
        requirement = Requirement(text)
        version = lock.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is missing from .ci/requirements.lock"
        assert requirement.specifier.contains(version), f"lock has {requirement.name}=={version}, outside {text}"


def test_beam_lock_satisfies_every_range_and_moves_only_what_beam_needs():
    """`.ci/requirements-beam.lock` (make test-beam) holds the project with its test and beam extras; beside the
    main lock it adds Beam's own dependencies and moves exactly the versions pyproject.toml's comment names."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    main, beam = lock_versions(), lock_versions("requirements-beam.lock")
    for text in pyproject_requirements() + project["optional-dependencies"]["beam"]:
        requirement = Requirement(text)
        version = beam.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is missing from .ci/requirements-beam.lock"
        assert requirement.specifier.contains(version), f"beam lock has {requirement.name}=={version}, outside {text}"
    assert set(main) <= set(beam), sorted(set(main) - set(beam))
    moved = {name: (main[name], beam[name]) for name in main if beam[name] != main[name]}
    assert set(moved) == {"protobuf", "pillow", "python-dateutil"}, moved
    comment = re.sub(r"\n#\s*", " ", (ROOT / "pyproject.toml").read_text())
    for name, (old, new) in moved.items():
        assert f"{name} {old} -> {new}" in comment, f"pyproject.toml's beam comment does not say {name} {old} -> {new}"
    makefile = (ROOT / "Makefile").read_text()
    assert "-c .ci/requirements-beam.lock -e '.[test,beam]'" in makefile
    assert re.search(r"^\s*make test-beam\s*$", (ROOT / ".ci" / "run").read_text(), re.M)


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
        "docs",
    }
    assert ".ci/run" in tracked
    subpackages = {path.split("/")[1] for path in tracked if path.startswith("workbench/") and path.count("/") == 2}
    assert subpackages == {"models", "text", "tasks", "training", "checkpoints", "explore", "runs", "bench"}
