import multiprocessing

import pandas as pd
import pytest

from workbench.runs.tables import FINETUNE_COLUMNS, append_rows, completed_runs, paper_model_name, summarize


def _append_many(args):
    path, worker = args
    for i in range(25):
        append_rows(
            path,
            [
                {
                    "run_id": f"w{worker}-{i}",
                    "status": "ok",
                    "task": "mrpc",
                    "split": "dev",
                    "metric": m,
                    "value": 0.5,
                    "error": "x" * 500,
                }
                for m in ("f1", "accuracy")
            ],
        )


def test_concurrent_appends_lose_nothing(tmp_path):
    path = str(tmp_path / "finetune.csv")
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_append_many, [(path, w) for w in range(4)])
    table = pd.read_csv(path)
    assert len(table) == 4 * 25 * 2 and list(table.columns) == FINETUNE_COLUMNS
    assert table["run_id"].nunique() == 100 and (table["error"].str.len() == 500).all()
    assert len(completed_runs(path)) == 100


def test_bad_rows_and_headers_are_refused(tmp_path):
    path = str(tmp_path / "t.csv")
    with pytest.raises(ValueError, match="unknown result columns.*acc"):
        append_rows(path, [{"run_id": "a", "acc": 1}])
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="existing header"):
        append_rows(path, [{"run_id": "a"}])
    assert (tmp_path / "t.csv").read_text() == "a,b\n1,2\n"


def test_summary_follows_the_paper_protocol(tmp_path):
    rows = []
    # two grid points x two seeds; lr 3e-5 is better on dev f1 on average
    for lr, seed, f1, acc in (
        (2e-5, 1, 0.80, 0.70),
        (2e-5, 2, 0.84, 0.72),
        (3e-5, 1, 0.88, 0.80),
        (3e-5, 2, 0.86, 0.82),
    ):
        for metric, value in (("f1", f1), ("accuracy", acc)):
            rows.append(
                {
                    "run_id": f"r{lr}{seed}",
                    "status": "ok",
                    "task": "mrpc",
                    "split": "dev",
                    "metric": metric,
                    "value": value,
                    "model": "bert_base_en_uncased",
                    "learning_rate": lr,
                    "batch_size": 32,
                    "epochs": 3,
                    "max_seq_length": 128,
                    "seed": seed,
                }
            )
    rows.append({"run_id": "bad", "status": "error", "task": "mrpc", "model": "bert_base_en_uncased", "error": "boom"})
    path = str(tmp_path / "finetune.csv")
    append_rows(path, rows)
    paper = tmp_path / "paper.csv"
    paper.write_text(
        "source,model,task,split,metric,value,note\nreadme,bert-base,mrpc,dev,accuracy,84.6,\npaper-table1,bert-base,mrpc,test,f1,88.9,\n"
    )
    summary = summarize(path, str(paper)).set_index("metric")
    assert summary.loc["f1", "grid_point"].startswith("3e-05")
    assert summary.loc["f1", "mean"] == pytest.approx(87.0) and summary.loc["f1", "std"] == pytest.approx(
        1.414, abs=1e-3
    )
    assert summary.loc["accuracy", "mean"] == pytest.approx(81.0)
    assert summary.loc["accuracy", "paper_value"] == 84.6 and summary.loc["accuracy", "difference"] == pytest.approx(
        -3.6
    )
    assert summary.loc["f1", "paper_split"] == "test"  # only a test number is published for f1
    assert (
        paper_model_name("models/bert_large_uncased") == "bert-large" and paper_model_name("L-2_H-128") == "bert-tiny"
    )


def _rows(run, n=2, size=200):
    return [
        {
            "run_id": run,
            "status": "ok",
            "task": "mrpc",
            "split": "dev",
            "metric": f"m{i}",
            "value": i,
            "error": "e" * size,
        }
        for i in range(n)
    ]


def test_a_bad_paper_table_is_named(tmp_path):
    table = tmp_path / "finetune.csv"
    append_rows(str(table), [{"run_id": "r", "status": "ok", "task": "mrpc", "split": "dev", "metric": "f1"}])
    paper = tmp_path / "paper.csv"
    for content, message in [
        (b"", "paper.csv: the paper's results table is empty"),
        (b"source,model,task,split,metric\n", r"lacks column\(s\) \['value'\]"),
        (b"source,model,task,split,metric,value\np,bert-base,mrpc,dev,f1,high\n", "paper.csv, line 2: value 'high'"),
        (b"source,model,task,split,metric,value\np,bert-base,caf\xe9,dev,f1,1\n", "paper.csv: not a readable CSV"),
    ]:
        paper.write_bytes(content)
        with pytest.raises(ValueError, match=message):
            summarize(str(table), str(paper))


def test_a_hand_edited_table_missing_a_column_gets_a_clear_error(tmp_path):
    path = tmp_path / "finetune.csv"
    append_rows(str(path), _rows("a"))
    frame = pd.read_csv(path).drop(columns=["status"])
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"finetune.csv: results table lacks column\(s\) \['status'\]"):
        completed_runs(str(path))
    with pytest.raises(ValueError, match=r"finetune.csv: results table lacks column\(s\) \['status'\]"):
        summarize(str(path), str(tmp_path / "paper.csv"))
    path.write_bytes(b'run_id,status\n"a,ok\n')  # an unterminated quote
    with pytest.raises(ValueError, match="finetune.csv: not a readable results table"):
        completed_runs(str(path))


def _append_under_limit(path, limit, rows, queue):
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    try:
        append_rows(path, rows)
        queue.put("appended")
    except OSError as e:
        queue.put(f"OSError: {e}")


def test_a_failed_append_leaves_no_torn_row(tmp_path):
    """A file-size limit hit in the middle of a run's rows (as a full disk
    would): a clear error and the table exactly as before."""
    path = str(tmp_path / "finetune.csv")
    append_rows(path, _rows("first"))
    before = open(path, "rb").read()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_append_under_limit, args=(path, len(before) + 300, _rows("second", 4), queue))
    child.start()
    child.join(60)
    message = queue.get(timeout=5)
    assert message.startswith("OSError") and "finetune.csv: could not append 4 result row(s)" in message
    assert "File too large" in message and "the table is unchanged" in message
    assert open(path, "rb").read() == before


def test_rows_of_a_rerun_are_recorded_once_and_a_torn_row_is_cut(tmp_path, capsys):
    path = str(tmp_path / "finetune.csv")
    append_rows(path, _rows("a"))
    append_rows(path, _rows("a") + _rows("b"))  # "a" resumed after a kill: its rows are there already
    assert list(pd.read_csv(path)["run_id"]) == ["a", "a", "b", "b"]
    assert "2 row(s) of this run were already recorded" in capsys.readouterr().out
    append_rows(path, [{"run_id": "c", "status": "error", "error": "x"}] * 2)  # attempts: always kept
    assert list(pd.read_csv(path)["run_id"]) == ["a", "a", "b", "b", "c", "c"]
    with open(path, "ab") as f:
        f.write(b"d,2026-01-01,ok,mrpc,de")  # cut by a power loss
    append_rows(path, _rows("e"))
    table = pd.read_csv(path)
    assert list(table["run_id"]) == ["a", "a", "b", "b", "c", "c", "e", "e"] and list(table.columns) == FINETUNE_COLUMNS
    assert "removed an incomplete last row" in capsys.readouterr().out


def test_a_complete_last_row_without_a_newline_is_kept(tmp_path, capsys):
    """An editor or a script may leave out the final newline: that row is whole."""
    path = tmp_path / "finetune.csv"
    row = ["hand", "2026-01-01", "ok"] + [""] * (len(FINETUNE_COLUMNS) - 3)
    path.write_text(",".join(FINETUNE_COLUMNS) + "\n" + ",".join(row))
    append_rows(str(path), _rows("e"))
    assert list(pd.read_csv(path)["run_id"]) == ["hand", "e", "e"]
    out = capsys.readouterr().out
    assert "finetune.csv, line 2: kept a last row that had no newline" in out and "removed" not in out
    # A header alone without its newline: the rows go below it.
    path.write_text(",".join(FINETUNE_COLUMNS))
    append_rows(str(path), _rows("f"))
    assert list(pd.read_csv(path)["run_id"]) == ["f", "f"]


def test_a_run_checks_its_results_table_before_it_starts(tmp_path):
    from tiny_runs import finetune_params

    from workbench.runs.tables import check_writable_table
    from workbench.training.finetune import finetune

    (tmp_path / "c.txt").write_text("not a folder")
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="Parameter 'results_csv': cannot create the folder of .*c.txt/t.csv"):
        finetune(**finetune_params(task="rte", output_dir=str(out), results_csv=str(tmp_path / "c.txt" / "t.csv")))
    assert not out.exists()  # refused before the run claimed its folder
    other = tmp_path / "other.csv"
    other.write_text("name,score\nx,1\n")
    with pytest.raises(ValueError, match="other.csv has other columns \\(name, score, ...\\)"):
        check_writable_table(str(other))
    old = tmp_path / "old.csv"
    old.write_text(",".join(FINETUNE_COLUMNS[:-1]) + "\n")  # before the last column was added: fine
    check_writable_table(str(old))


def test_a_table_from_before_the_note_column_gains_it(tmp_path):
    path = tmp_path / "finetune.csv"
    old_columns = FINETUNE_COLUMNS[:-1]
    path.write_text(",".join(old_columns) + "\n" + ",".join(["r1", "t", "ok"] + [""] * (len(old_columns) - 3)) + "\n")
    from workbench.runs.tables import read_table

    assert read_table(str(path))["note"].isna().all()  # read as it is
    append_rows(str(path), [{"run_id": "r2", "status": "ok", "note": "pearson undefined: constant predictions"}])
    table = read_table(str(path))
    assert list(table.columns) == FINETUNE_COLUMNS and list(table["run_id"]) == ["r1", "r2"]
    assert table["note"].iloc[1] == "pearson undefined: constant predictions"
