"""The notebooks through papermill, and the suite runner around them."""

import json
import os
import shutil

import pandas as pd
import pytest

from workbench import resources
from workbench.runs.suite import parse_grid, plan, run_suite

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = resources.samples()


def test_notebooks_are_committed_without_outputs_and_have_parameters():
    setups = set()
    for name in sorted(os.listdir(os.path.join(ROOT, "notebooks"))):
        if not name.endswith(".ipynb"):
            continue
        nb = json.load(open(os.path.join(ROOT, "notebooks", name)))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert not any(c.get("outputs") or c.get("execution_count") for c in code), name
        tagged = [i for i, c in enumerate(code) if "parameters" in c["metadata"].get("tags", [])]
        assert tagged == [1], name  # setup, then the parameters, then the call that reads them
        setup = "".join(code[0]["source"])
        assert "WORKBENCH_SOURCE" in setup and "wbn.setup()" in setup, name
        assert "https://" not in setup, name  # no address of our own to install from: the user names theirs
        setups.add(setup)
        reads = "".join(code[2]["source"])
        assert "wbn.finetune_params(globals()" in reads or "wbn.notebook_params(" in reads, name
    assert len(setups) == 1  # the same setup cell everywhere


def test_plan_grid_seeds_and_run_ids():
    grid = parse_grid(["learning_rate=2e-5,3e-5", "batch_size=16,32"])
    runs = plan("squad", model="base", seeds=(1, 2), grid=grid)
    assert len(runs) == 2 * 2 * 4
    assert len({r.run_id for r in runs}) == len(runs)
    assert {r.parameters["version"] for r in runs} == {"1.1", "2.0"}
    assert plan("squad", model="base", seeds=(1, 2), grid=grid)[0].run_id == runs[0].run_id  # stable ids
    assert len(plan("embedded")) == 15
    with pytest.raises(ValueError, match="--grid 'lr=1'"):
        parse_grid(["lr=1"])
    with pytest.raises(ValueError, match="Unknown suite"):
        plan("superglue")


def test_embedded_plan_reads_the_shipped_samples_and_writes_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (run,) = plan("embedded", tasks=["rte"])
    assert (run.parameters["data_dir"], run.parameters["vocab"]) == (resources.samples(), resources.sample_vocab())
    assert run.parameters["results_csv"] == str(tmp_path / "results" / "embedded" / "finetune.csv")
    assert run.parameters["output_dir"] == str(tmp_path / "results" / "embedded" / "runs" / run.run_id)
    # Relative paths a user gives mean relative to the working directory, not to the workbench's files.
    (run,) = plan("glue", tasks=["rte"], data_dir="mydata", results_dir="out")
    assert (run.parameters["data_dir"], run.parameters["results_csv"]) == (
        str(tmp_path / "mydata"),
        str(tmp_path / "out" / "finetune.csv"),
    )


def test_suite_runs_notebooks_records_failures_and_skips_done(tmp_path):
    data = tmp_path / "samples"
    shutil.copytree(SAMPLES, data)
    (data / "wnli" / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\tonly one field\n")  # breaks wnli
    results = tmp_path / "results"
    messages = []
    # Both runs of the suite: these tasks on this data, one epoch, 8 examples per evaluation split.
    suite = dict(
        data_dir=str(data),
        results_dir=str(results),
        tasks=["rte", "squad2", "swag", "conll2003", "wnli"],
        extra={"epochs": 1.0, "max_eval_examples": 8},
        log=messages.append,
    )
    summary = run_suite("embedded", jobs=2, **suite)
    (failed,) = summary.attrs["failed_runs"]  # `run-suite` exits non-zero
    assert "-wnli-" in failed
    table = pd.read_csv(results / "finetune.csv")
    ok = table[table["status"] == "ok"]
    assert set(ok["task"]) == {"rte", "squad2", "swag", "conll2003"}
    error = table[table["status"] == "error"]
    assert list(error["task"]) == ["wnli"] and "line 2" in error["error"].iloc[0]
    assert os.path.exists(error["notebook"].iloc[0])  # the failed notebook is kept
    for notebook in ok["notebook"].unique():
        assert os.path.exists(notebook)
    assert {"exact_match", "f1", "best_f1", "HasAns_f1", "NoAns_f1"} <= set(ok[ok["task"] == "squad2"]["metric"])
    summary = pd.read_csv(results / "summary.csv")
    assert set(summary["task"]) == {"rte", "squad2", "swag", "conll2003"}
    # Each notebook wrote its run's analysis page; the report links them all.
    report = results / "report.html"
    assert any(m == f"report: {report}" for m in messages)
    page = report.read_text(encoding="utf-8")
    for run_dir in ok["output_dir"].unique():
        analysis_page = os.path.join(run_dir, "analysis.html")
        assert os.path.exists(analysis_page)
        link = os.path.relpath(analysis_page, results)
        assert f"href='{link}'" in page or f'href="{link}"' in page
    # --skip-done: only the failed run is tried again.
    messages.clear()
    run_suite("embedded", jobs=1, skip_done=True, report=False, **suite)
    assert any("skipping 4 finished run(s)" in m for m in messages)
    table = pd.read_csv(results / "finetune.csv")
    assert (table["status"] == "error").sum() == 2 and table[table["status"] == "ok"]["run_id"].nunique() == 4

    # The results notebook turns the table into the summary beside the paper.
    import papermill

    out = tmp_path / "results.ipynb"
    papermill.execute_notebook(
        os.path.join(ROOT, "notebooks", "results.ipynb"),
        str(out),
        cwd=ROOT,
        progress_bar=False,
        parameters={"results_csv": str(results / "finetune.csv"), "summary_csv": str(tmp_path / "s.csv")},
    )
    assert set(pd.read_csv(tmp_path / "s.csv")["task"]) == {"rte", "squad2", "swag", "conll2003"}


def test_glue_notebook_runs_xnli_with_its_options(tmp_path):
    import papermill

    out = tmp_path / "xnli.ipynb"
    papermill.execute_notebook(
        os.path.join(ROOT, "notebooks", "finetune_glue.ipynb"),
        str(out),
        cwd=ROOT,
        progress_bar=False,
        parameters={
            "task": "xnli",
            "xnli_train_language": "zh",
            "model": "tiny",
            "vocab": os.path.join(SAMPLES, "vocab.txt"),
            "data_dir": SAMPLES,
            "download": False,
            "epochs": 1.0,
            "batch_size": 8,
            "max_seq_length": 32,
            "output_dir": str(tmp_path / "run"),
            "results_csv": str(tmp_path / "t.csv"),
        },
    )
    table = pd.read_csv(tmp_path / "t.csv")
    assert {"accuracy", "accuracy_zh", "accuracy_sw"} <= set(table["metric"])
