"""The notebooks' setup cell and parameter helper (workbench/notebook.py)."""

import json
import os
import subprocess
import sys

import pytest

import workbench.notebook as wbn
from workbench.training.params import ExplorerParams, ParameterError, PretrainParams

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def code_cells(name):
    nb = json.load(open(os.path.join(ROOT, "notebooks", name)))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def test_parameters_are_the_plain_lowercase_globals():
    namespace = {
        "task": "mrpc",
        "epochs": 1.0,
        "task_options": {"a": 1},
        "os": os,  # a module
        "code_cells": code_cells,  # a function
        "_scratch": 3,
        "WORKBENCH_SOURCE": "",
        "In": [""],
        "result": object(),
    }
    assert wbn.parameters(namespace) == {"task": "mrpc", "epochs": 1.0, "task_options": {"a": 1}}
    # A field of the run is read whatever it holds, so a wrong kind of value is an error, not skipped.
    with pytest.raises(ParameterError, match="'model' must be str, got <object"):
        wbn.finetune_params({"task": "mrpc", "model": object()})


def test_finetune_params_from_a_notebook_namespace():
    squad = wbn.NOTEBOOK_TASKS["finetune_squad"]
    # papermill's -p version 1.1 arrives as a float; -p download false as a string.
    params, download = wbn.finetune_params({"version": 1.1, "doc_stride": 64, "download": "false"}, tasks=squad)
    assert (params.task, params.task_options, download) == ("squad1", {"doc_stride": 64}, False)
    assert wbn.finetune_params({"version": 2.0}, tasks=squad)[0].task == "squad2"
    with pytest.raises(ParameterError, match="'version' must be str or None, got 2 \\(int\\); choices: '1.1', '2.0'"):
        wbn.finetune_params({"version": 2}, tasks=squad)
    with pytest.raises(ParameterError, match="'task' \\('squad1'\\) and 'version' \\('2.0'\\) disagree"):
        wbn.finetune_params({"version": "2.0", "task": "squad1"}, tasks=squad)

    glue = wbn.NOTEBOOK_TASKS["finetune_glue"]
    params, download = wbn.finetune_params(
        {"task": "xnli", "xnli_train_language": "zh", "checkpoint_every": 5, "jit_compile": "false"}, tasks=glue
    )
    assert params.task_options == {"train_language": "zh"} and params.checkpoint_every == 5 and download is True
    assert params.jit_compile is False
    # Another task's prefixed option is checked, and not used.
    assert wbn.finetune_params({"task": "mrpc", "xnli_train_language": "zh"}, tasks=glue)[0].task_options is None
    with pytest.raises(ParameterError, match="'train_language' \\(an XNLI option\\): 'xx'"):
        wbn.finetune_params({"task": "mrpc", "xnli_train_language": "xx"}, tasks=glue)
    with pytest.raises(ParameterError, match="Unknown parameter\\(s\\) \\['batchsize'\\].*batch_size"):
        wbn.finetune_params({"task": "mrpc", "batchsize": 8}, tasks=glue)
    with pytest.raises(ParameterError, match="Unknown parameter\\(s\\) \\['doc_stride'\\]"):  # not an mrpc option
        wbn.finetune_params({"task": "mrpc", "doc_stride": 8}, tasks=glue)
    with pytest.raises(ParameterError, match="this notebook runs conll2003, not 'mrpc'"):
        wbn.finetune_params({"task": "mrpc"}, tasks=wbn.NOTEBOOK_TASKS["finetune_ner"])
    assert wbn.finetune_params({}, tasks=wbn.NOTEBOOK_TASKS["finetune_swag"])[0].task == "swag"


def test_every_parameter_cell_is_read_whole(tmp_path):
    """Each notebook's own parameters cell passes its helper, and every field of
    the run's dataclass can be set (so no papermill value is dropped)."""
    import dataclasses

    from workbench.training.params import FinetuneParams

    for name in ("finetune_glue", "finetune_squad", "finetune_swag", "finetune_ner"):
        namespace = {}
        exec(code_cells(f"{name}.ipynb")[1], namespace)
        params, _ = wbn.finetune_params(namespace, tasks=wbn.NOTEBOOK_TASKS[name])
        assert params.model == namespace["model"]
        fields = {f.name for f in dataclasses.fields(FinetuneParams)}
        assert fields - {"task", "task_options"} <= set(namespace), name  # every field in the cell
        every = {**namespace, "checkpoint_every": 7, "feature_cache": None, "jit_compile": True, "save_model": False}
        params, _ = wbn.finetune_params(every, tasks=wbn.NOTEBOOK_TASKS[name])
        assert (params.checkpoint_every, params.feature_cache, params.jit_compile, params.save_model) == (
            7,
            None,
            True,
            False,
        )
    namespace = {}
    exec(code_cells("pretrain.ipynb")[1], namespace)
    params = wbn.notebook_params(PretrainParams, namespace)
    assert params.corpus == namespace["corpus"]
    assert {f.name for f in dataclasses.fields(PretrainParams)} == set(wbn.parameters(namespace))
    namespace = {}
    exec(code_cells("attention_explorer.ipynb")[1], namespace)
    assert wbn.notebook_params(ExplorerParams, namespace).layer == namespace["layer"]
    with pytest.raises(ParameterError, match="'head' must be >= 0, got -1"):
        wbn.notebook_params(ExplorerParams, {**namespace, "head": -1})


def test_setup_runs_from_the_checkout_root_and_says_what_auto_precision_picks(tmp_path, monkeypatch, capsys):
    from workbench.training.distribution import auto_precision

    checkout = tmp_path / "checkout"
    (checkout / "notebooks").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text('[project]\nname = "bert-workbench"\n')
    monkeypatch.chdir(checkout / "notebooks")
    wbn.setup()
    assert os.getcwd() == str(checkout)
    assert f"precision='auto' picks {auto_precision('cpu')}" in capsys.readouterr().out
    other = tmp_path / "other" / "notebooks"
    other.mkdir(parents=True)
    (other.parent / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    monkeypatch.chdir(other)
    wbn.setup()
    assert os.getcwd() == str(other)


def test_setup_cell_installs_the_checkout_or_the_named_source(tmp_path, monkeypatch):
    """The first cell, run where the workbench is not installed: it pip-installs
    the checkout it sits in, else WORKBENCH_SOURCE, else says what to set."""
    import importlib.metadata

    setup_cell = code_cells("finetune_ner.ipynb")[0]
    assert all(cells[0] == setup_cell for cells in map(code_cells, ("results.ipynb", "pretrain.ipynb")))

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    commands = []
    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    monkeypatch.setattr(subprocess, "run", lambda command, check: commands.append(command))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(wbn, "precision_note", lambda: "")

    checkout = tmp_path / "checkout"
    (checkout / "notebooks").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text('[project]\nname = "bert-workbench"\n')
    monkeypatch.chdir(checkout / "notebooks")
    exec(setup_cell, {})
    assert commands[-1][-3:] == ["-q", "-e", str(checkout)] and sys.path[0] == str(checkout)

    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError, match="set WORKBENCH_SOURCE"):
        exec(setup_cell, {})
    wheel = str(tmp_path / "bert_workbench-0.1.0-py3-none-any.whl")
    exec(setup_cell.replace('WORKBENCH_SOURCE = ""', f"WORKBENCH_SOURCE = {wheel!r}"), {})
    assert commands[-1][-2:] == ["-q", wheel] and len(commands) == 2

    # On a TPU VM: the workbench without its dependencies, then workbench.install's TPU steps
    # (tensorflow-tpu + libtpu, no plain TensorFlow beside it).
    import glob

    monkeypatch.setattr(glob, "glob", lambda pattern: ["/dev/accel0"] if pattern == "/dev/accel*" else [])
    exec(setup_cell.replace('WORKBENCH_SOURCE = ""', f"WORKBENCH_SOURCE = {wheel!r}"), {})
    assert commands[-2][-3:] == ["-q", "--no-deps", wheel]
    assert commands[-1][1:] == ["-m", "workbench.install", "--tpu", "--deps-only"]


def test_suite_parameters_are_checked_before_the_first_run():
    from workbench.runs.suite import parse_grid, plan

    for run in plan("embedded") + plan("squad", grid=parse_grid(["learning_rate=2e-5,3e-5"])):
        assert wbn.check_notebook_parameters(run.notebook, run.parameters).task == run.task
    bad = plan("squad", extra={"max_train_examples": 0})[0]
    with pytest.raises(ParameterError, match="finetune_squad.ipynb: Parameter 'max_train_examples' must be >= 1"):
        wbn.check_notebook_parameters(bad.notebook, bad.parameters)


def test_a_bad_papermill_parameter_stops_the_notebook_with_one_line(tmp_path):
    """Through papermill's own command line, so the values arrive typed as it
    types them: version 1.1 is a float (read as "1.1"), false a string."""
    out = tmp_path / "squad.ipynb"
    command = [sys.executable, "-m", "papermill", os.path.join(ROOT, "notebooks", "finetune_squad.ipynb"), str(out)]
    command += ["-p", "version", "1.1", "-p", "download", "false", "-p", "max_train_examples", "0", "--cwd", ROOT]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode != 0
    assert "ParameterError: Parameter 'max_train_examples' must be >= 1, got 0" in finished.stderr
    cells = json.loads(out.read_text())["cells"]
    error = next(o for c in cells if c["cell_type"] == "code" for o in c["outputs"] if o["output_type"] == "error")
    assert error["ename"] == "ParameterError" and not any("File " in line for line in error["traceback"])
