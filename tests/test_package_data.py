"""Package data: the paper's results, the samples, the sample corpus and the notebooks ship in the wheel, and
`workbench.resources` finds them in a checkout and in an install, so a pip-installed workbench runs the
notebooks and the suite from any directory."""

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pandas as pd
import pytest

from workbench import resources
from workbench.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What a wheel of code, samples and notebooks weighs (0.27 MB compressed, 0.9 MB unpacked on 2026-11-30): far
# below this unless model weights, downloaded benchmarks or run outputs got in.
MAX_WHEEL_BYTES = 3_000_000
MAX_FILE_BYTES = 300_000
WEIGHT_SUFFIXES = (".keras", ".h5", ".safetensors", ".weights.json", ".tfrecord", ".index", ".npz", ".bin", ".pb")


def test_pyproject_ships_every_code_package_and_maps_the_data_folders():
    tool = tomllib.loads(open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8").read())["tool"]["setuptools"]
    in_tree = {
        os.path.relpath(folder, ROOT).replace(os.sep, ".")
        for folder, _, files in os.walk(os.path.join(ROOT, "workbench"))
        if "__init__.py" in files
    }
    assert set(tool["packages"]) == in_tree | {"workbench._data", "workbench._notebooks"}
    assert tool["package-dir"] == {"workbench._data": "data", "workbench._notebooks": "notebooks"}
    assert resources.SHIPPED == {"data": "_data", "notebooks": "_notebooks"}


def test_resources_are_the_checkouts_files_here():
    assert resources.paper_results() == os.path.join(ROOT, "data", "paper_results.csv")
    assert resources.samples() == os.path.join(ROOT, "data", "samples")
    assert resources.sample_vocab() == os.path.join(ROOT, "data", "samples", "vocab.txt")
    assert os.path.isfile(resources.sample_corpus())
    assert resources.notebook_names() == sorted(
        n for n in os.listdir(os.path.join(ROOT, "notebooks")) if n[-6:] == ".ipynb"
    )
    assert (
        resources.notebook("results")
        == resources.notebook("results.ipynb")
        == os.path.join(ROOT, "notebooks", "results.ipynb")
    )
    with pytest.raises(FileNotFoundError, match="No notebook 'result.ipynb' ships.*results.ipynb"):
        resources.notebook("result")
    with pytest.raises(FileNotFoundError, match="mrcp: not among the files shipped"):
        resources.samples("mrcp")


def test_an_installed_layout_is_found_first_and_a_missing_one_is_named(tmp_path, monkeypatch):
    package = tmp_path / "site" / "workbench"
    (package / "_data" / "samples").mkdir(parents=True)
    (package / "_data" / "paper_results.csv").write_text("source,model,task,split,metric,value,note\n")
    (tmp_path / "site" / "data").mkdir()  # a stray top-level data/ beside an install is not ours
    monkeypatch.setattr(resources, "_package_dir", lambda: package)
    assert resources.paper_results() == str(package / "_data" / "paper_results.csv")
    with pytest.raises(FileNotFoundError, match="notebooks files are missing.*_notebooks.*Reinstall"):
        resources.notebook_names()


def test_notebooks_command_lists_and_copies_without_overwriting(tmp_path, capsys):
    assert main(["notebooks"]) == 0
    assert capsys.readouterr().out.split() == [resources.notebook(n) for n in resources.notebook_names()]
    target = tmp_path / "mine"
    assert main(["notebooks", "--copy-to", str(target)]) == 0
    assert sorted(os.listdir(target)) == resources.notebook_names()
    assert (target / "pretrain.ipynb").read_bytes() == open(resources.notebook("pretrain"), "rb").read()
    (target / "results.ipynb").write_text("my edits")
    (target / "pretrain.ipynb").unlink()
    capsys.readouterr()
    assert main(["notebooks", "--copy-to", str(target)]) == 2  # refused, and nothing written
    assert "results.ipynb: already there" in capsys.readouterr().err and not (target / "pretrain.ipynb").exists()
    assert main(["notebooks", "--copy-to", str(target), "--overwrite"]) == 0
    assert (target / "results.ipynb").read_bytes() == open(resources.notebook("results"), "rb").read()


def test_the_notebooks_default_to_the_shipped_files():
    """The parameters cells of pretrain.ipynb and results.ipynb name the shipped corpus and paper table (not a
    path relative to wherever the notebook runs)."""
    for name, variable, expected in (
        ("pretrain.ipynb", "corpus", resources.sample_corpus()),
        ("results.ipynb", "paper_csv", resources.paper_results()),
    ):
        cells = json.load(open(resources.notebook(name), encoding="utf-8"))["cells"]
        parameters = next(c for c in cells if "parameters" in c["metadata"].get("tags", []))
        namespace = {}
        exec("".join(parameters["source"]), namespace)
        assert namespace[variable] == expected, name


def test_a_missing_paper_table_is_an_error_naming_it(tmp_path):
    from workbench.runs.tables import append_rows, summarize

    table = tmp_path / "finetune.csv"
    append_rows(str(table), [{"run_id": "a", "status": "ok", "task": "rte", "split": "dev", "metric": "accuracy"}])
    with pytest.raises(FileNotFoundError, match="nowhere.csv: the paper's results table does not exist"):
        summarize(str(table), str(tmp_path / "nowhere.csv"))


def _build_wheel(tmp_path):
    """The wheel of exactly what a release holds (pyproject, README, the package, data/, notebooks/), built
    offline with this environment's setuptools."""
    source = tmp_path / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source / name)
    for name in ("workbench", "notebooks", os.path.join("data", "samples")):  # not benchmarks downloaded to data/
        shutil.copytree(os.path.join(ROOT, name), source / name, ignore=ignore)
    shutil.copy(os.path.join(ROOT, "data", "paper_results.csv"), source / "data")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*command, "-q", "-w", str(tmp_path / "dist"), str(source)], check=True, timeout=300)
    (wheel,) = (tmp_path / "dist").iterdir()
    return wheel


def test_the_wheel_runs_the_suite_and_the_paper_table_from_any_directory(tmp_path):
    # Offline, so with this environment's setuptools (Python 3.11 venvs have it; 3.12 venvs do not).
    pytest.importorskip("setuptools", reason="building the wheel offline needs setuptools in this environment")
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        entries = {i.filename: i.file_size for i in archive.infolist()}
    assert os.path.getsize(wheel) < MAX_WHEEL_BYTES and sum(entries.values()) < MAX_WHEEL_BYTES
    big = {name: size for name, size in entries.items() if size > MAX_FILE_BYTES or name.endswith(WEIGHT_SUFFIXES)}
    assert not big, f"weights or large files in the wheel: {big}"
    shipped = {
        os.path.relpath(os.path.join(folder, f), ROOT)
        for top in ("data/samples", "notebooks")
        for folder, _, files in os.walk(os.path.join(ROOT, top))
        for f in files
        if f != "generate.py" and "__pycache__" not in folder and ".ipynb_checkpoints" not in folder
    } | {"data/paper_results.csv"}
    packaged = {"workbench/_data/" + p[len("data/") :] if p.startswith("data/") else "workbench/_" + p for p in shipped}
    assert packaged <= set(entries), sorted(packaged - set(entries))
    assert {f"workbench/{os.path.relpath(p, os.path.join(ROOT, 'workbench'))}" for p in _python_files()} <= set(entries)

    site, cwd = tmp_path / "site", tmp_path / "elsewhere"
    cwd.mkdir()
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site), str(wheel)]
    subprocess.run(pip, check=True, timeout=300)
    env = dict(os.environ, PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="2")

    probe = (
        "import json, workbench; from workbench import resources; "
        "print(json.dumps([workbench.__file__, resources.paper_results(), resources.sample_corpus(), "
        "resources.notebook('finetune_glue')]))"
    )
    found = json.loads(subprocess.check_output([sys.executable, "-c", probe], cwd=cwd, env=env, text=True))
    assert all(path.startswith(str(site / "workbench")) for path in found), found

    # The main job, one task: notebook, samples, vocabulary and paper table all from the install.
    command = [sys.executable, "-m", "workbench", "run-suite", "--suite", "embedded", "--tasks", "rte"]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = cwd / "results" / "embedded"
    table = pd.read_csv(results / "finetune.csv")
    assert set(table["status"]) == {"ok"} and set(table["task"]) == {"rte"}
    assert table["notebook"].iloc[0].startswith(str(results))
    # The report ran the installed results notebook with its default paper table: the README's bert-tiny RTE.
    executed = json.loads((results / "results.ipynb").read_text(encoding="utf-8"))
    assert executed["metadata"]["papermill"]["input_path"] == str(site / "workbench" / "_notebooks" / "results.ipynb")
    assert "paper_csv" not in executed["metadata"]["papermill"]["parameters"]
    summary = pd.read_csv(results / "summary.csv")
    accuracy = summary[(summary["task"] == "rte") & (summary["metric"] == "accuracy")]
    assert list(accuracy["paper_value"]) == [57.2] and list(accuracy["paper_model"]) == ["bert-tiny"]
    assert (results / "report.html").is_file()
    assert sorted(os.listdir(cwd)) == ["results"]  # nothing written anywhere but the working directory's results


def _python_files():
    for folder, _, files in os.walk(os.path.join(ROOT, "workbench")):
        if "__pycache__" not in folder:
            yield from (os.path.join(folder, f) for f in files if f.endswith(".py"))
