"""Result tables: CSV files that many runs append to, and the summary beside the paper.

Appends take an exclusive lock (`fcntl.flock`) on a lock file next to the table
and write all of a run's rows in one `write` call, so runs finishing at the same
time never interleave, tear or lose rows.
"""

import contextlib
import csv
import fcntl
import io
import os

FINETUNE_COLUMNS = [
    "run_id",
    "finished_at",
    "status",
    "task",
    "split",
    "metric",
    "value",
    "model",
    "init",
    "max_seq_length",
    "batch_size",
    "learning_rate",
    "epochs",
    "warmup_proportion",
    "gradient_accumulation",
    "seed",
    "strategy",
    "replicas",
    "precision",
    "train_examples",
    "train_steps",
    "train_seconds",
    "examples_per_second",
    "notebook",
    "output_dir",
    "error",
    "note",  # why a value is what it is, e.g. "pearson undefined: constant predictions"
]


# A result is recorded once: a run killed after its append and rerun (it resumes
# from its last checkpoint and gets the same numbers) does not add its "ok" rows
# twice. Error rows are a history of attempts and are always appended.
ROW_KEY = ("run_id", "status", "phase", "step", "split", "metric")


def _add_new_columns(path, columns):
    """A table written before columns were added at the end (e.g. `note`) gets them,
    empty, in one atomic rewrite, so older results tables keep working."""
    from workbench.files import write_text_atomic

    with open(path, encoding="utf-8", newline="") as f:
        table = list(csv.reader(f))
    header = table[0] if table else []
    if not header or len(header) >= len(columns) or header != list(columns[: len(header)]):
        return
    extra = [""] * (len(columns) - len(header))
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([list(columns)] + [row + extra for row in table[1:]])
    write_text_atomic(path, buffer.getvalue())
    print(f"{path}: added the new column(s) {list(columns[len(header) :])}")


def check_writable_table(path, columns=FINETUNE_COLUMNS, parameter="results_csv"):
    """Check, before a run starts, that its results table can be appended to:
    its folder can be created and written, and an existing table is writable
    and has these columns (or a start of them, which `append_rows` extends).
    A run otherwise found out only after training, when it appends."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise ValueError(f"Parameter {parameter!r}: cannot create the folder of {path} ({e.strerror})") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"Parameter {parameter!r}: the folder of {path} is not writable")
    if not os.path.exists(path):
        return
    if os.path.isdir(path) or not os.access(path, os.R_OK | os.W_OK):
        raise ValueError(f"Parameter {parameter!r}: {path} is not a writable file")
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        header = next(csv.reader(f), [])
    if header and (len(header) > len(columns) or header != list(columns[: len(header)])):
        raise ValueError(
            f"Parameter {parameter!r}: {path} has other columns ({', '.join(header[:4])}, ...) than a "
            f"results table of this kind ({', '.join(columns[:4])}, ...): choose another file"
        )


def _cut_torn_row(path):
    """Make the table end with a newline before appending. A last line without
    one that has the header's number of fields (or is the header) is kept and
    the newline added: editors and scripts often leave out the final newline;
    the message names the line, since a row cut inside its last field looks the
    same. Anything shorter was cut mid-row by a crash outside this module
    (power loss): that partial row is dropped, and the message says so."""
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 1))
        if size == 0 or f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        keep = data.rfind(b"\n") + 1

        def fields(line):
            return next(csv.reader([line.decode("utf-8", "replace")]), [])

        header = fields(data.split(b"\n", 1)[0])
        if keep == 0 or len(fields(data[keep:])) == len(header):
            f.seek(0, os.SEEK_END)
            f.write(b"\n")
            if keep:
                line = data.count(b"\n") + 1
                print(f"{path}, line {line}: kept a last row that had no newline; check its last field")
            return
        f.truncate(keep)
    print(f"{path}: removed an incomplete last row ({size - keep} bytes, no newline) before appending")


def _cell(value):
    """A value as `csv.DictWriter` writes it (None as empty)."""
    return "" if value is None else str(value)


@contextlib.contextmanager
def locked(path):
    """Hold an exclusive lock for `path` (on `path + ".lock"`)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def append_rows(path, rows, columns=FINETUNE_COLUMNS):
    """Append dict rows to a CSV table, writing the header if the file is new.

    Unknown keys are an error (a typo would otherwise vanish silently); missing
    keys are left empty. All rows go out in one write under the lock; if that
    write fails part-way (disk full, a file-size limit) the table is cut back to
    its previous length, so a failed append leaves no torn row.
    """
    from workbench.files import append_atomically

    for row in rows:
        unknown = set(row) - set(columns)
        if unknown:
            raise ValueError(f"{path}: unknown result columns {sorted(unknown)}")
    with locked(path):
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        if not new:
            _cut_torn_row(path)
            _add_new_columns(path, columns)
            with open(path, encoding="utf-8", newline="") as f:
                reader = csv.reader(f)
                header = next(reader, [])
                if header != list(columns):
                    raise ValueError(f"{path}: existing header {header} differs from the expected columns {columns}")
                key = [columns.index(k) for k in ROW_KEY if k in columns] if "run_id" in columns else []
                recorded = {tuple(r[i] for i in key) for r in reader if len(r) == len(columns)} if key else set()
            if recorded:
                keep = [
                    r
                    for r in rows
                    if r.get("status", "ok") != "ok" or tuple(_cell(r.get(columns[i])) for i in key) not in recorded
                ]
                if len(keep) < len(rows):
                    print(
                        f"{path}: {len(rows) - len(keep)} row(s) of this run were already recorded; not appended again"
                    )
                rows = keep
                if not rows:
                    return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerows(rows)
        try:
            append_atomically(path, buffer.getvalue().encode("utf-8"))
        except OSError as e:
            raise OSError(
                e.errno, f"{path}: could not append {len(rows)} result row(s) ({e.strerror}); the table is unchanged"
            ) from e


def read_table(path, columns=FINETUNE_COLUMNS):
    """A results CSV as a pandas DataFrame (empty with the columns if missing).

    A table that is not CSV or lacks one of `columns` (e.g. edited by hand) is
    an error naming the file and what is wrong, not a `KeyError` later.
    """
    import pandas as pd

    if not os.path.exists(path):
        return pd.DataFrame(columns=columns)
    with locked(path):
        try:
            table = pd.read_csv(path, dtype={"run_id": str, "error": str, "notebook": str, "note": str})
        except pd.errors.EmptyDataError:
            return pd.DataFrame(columns=columns)
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not a readable results table ({e})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing and list(table.columns) == list(columns[: len(table.columns)]):
        for column in missing:  # written before these columns were added at the end
            table[column] = pd.NA
        missing = []
    if missing:
        raise ValueError(
            f"{path}: results table lacks column(s) {missing}; its header is {list(table.columns)}. "
            "Restore the header (expected columns: " + ", ".join(columns) + ")"
        )
    return table


def completed_runs(path):
    """run_ids with a successful result in the table."""
    table = read_table(path)
    if table.empty:
        return set()
    return set(table.loc[table["status"] == "ok", "run_id"].astype(str))


# ---- the summary beside the paper -------------------------------------------------------
PAPER_TASK = {
    ("mnli", "dev_matched"): "mnli-m",
    ("mnli", "dev_mismatched"): "mnli-mm",
    ("mnli", "test_matched"): "mnli-m",
    ("mnli", "test_mismatched"): "mnli-mm",
}
PAPER_TASK_BY_NAME = {"squad1": "squad-v1.1", "squad2": "squad-v2.0", "conll2003": "conll2003-ner"}
_SIZES = (
    ("large", "bert-large"),
    ("L-24_H-1024", "bert-large"),
    ("base", "bert-base"),
    ("L-12_H-768", "bert-base"),
    ("medium", "bert-medium"),
    ("L-8_H-512", "bert-medium"),
    ("small", "bert-small"),
    ("L-4_H-512", "bert-small"),
    ("mini", "bert-mini"),
    ("L-4_H-256", "bert-mini"),
    ("tiny", "bert-tiny"),
    ("L-2_H-128", "bert-tiny"),
)
SUMMARY_COLUMNS = [
    "task",
    "split",
    "metric",
    "model",
    "paper_model",
    "grid_point",
    "seeds",
    "mean",
    "std",
    "best_seed_value",
    "paper_value",
    "paper_split",
    "paper_source",
    "difference",
]
GRID_KEYS = ["learning_rate", "batch_size", "epochs", "max_seq_length"]


def paper_model_name(model):
    """The paper's name for a model's size ("bert-base", ...), "" if none applies."""
    name = os.path.basename(os.path.normpath(str(model))).lower()
    for key, paper in _SIZES:
        if key.lower() in name:
            return paper
    return ""


def paper_task_name(task, split):
    return PAPER_TASK.get((task, split)) or PAPER_TASK_BY_NAME.get(task, task)


PAPER_COLUMNS = ("model", "task", "split", "metric", "value")


def _read_paper_table(path):
    """The paper's numbers (`source,model,task,split,metric,value,note`), with an
    error naming the file for anything `summarize` cannot use."""
    import pandas as pd

    try:
        paper = pd.read_csv(path, dtype={"value": str})
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the paper's results table is empty (paper_csv)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable CSV table (paper_csv): {e}") from None
    missing = [c for c in PAPER_COLUMNS if c not in paper.columns]
    if missing:
        raise ValueError(f"{path}: the paper's results table lacks column(s) {missing} (paper_csv)")
    values = pd.to_numeric(paper["value"], errors="coerce")
    bad = paper.index[values.isna() & paper["value"].notna()]
    if len(bad):
        raise ValueError(f"{path}, line {bad[0] + 2}: value {paper['value'][bad[0]]!r} is not a number (paper_csv)")
    return paper.assign(value=values)


def summarize(finetune_csv, paper_csv=None):
    """Per task, split, metric and model: the paper's protocol (the grid point
    with the best mean dev value of the task's headline metric), the mean and
    standard deviation over seeds at that point, the paper's number for the same
    model size (the same split when published, else the closest one) and the
    difference, all in percent. `paper_csv` defaults to the paper's numbers
    shipped with the workbench; a missing file is an error, not empty columns."""
    import pandas as pd

    from workbench import resources
    from workbench.tasks.registry import get_task

    table = read_table(finetune_csv)
    table = table[(table["status"] == "ok") & table["split"].notna() & (table["split"].astype(str) != "")]
    paper_csv = paper_csv or resources.paper_results()
    if not os.path.isfile(paper_csv):
        raise FileNotFoundError(f"{paper_csv}: the paper's results table does not exist (paper_csv)")
    paper = _read_paper_table(paper_csv)
    rows = []
    if table.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    table = table.assign(
        value=pd.to_numeric(table["value"], errors="coerce") * 100.0,
        grid_point=table[GRID_KEYS].astype(str).agg(" ".join, axis=1),
    )
    for (task, model), group in table.groupby(["task", "model"]):
        headline = get_task(task).metrics[0]
        selection = group[(group["metric"] == headline) & group["split"].astype(str).str.startswith("dev")]
        if selection.empty:
            selection = group[group["metric"] == headline]
        if selection.empty:
            continue
        best_point = selection.groupby("grid_point")["value"].mean().idxmax()
        chosen = group[group["grid_point"] == best_point]
        for (split, metric), cell in chosen.groupby(["split", "metric"]):
            values = cell.groupby("seed")["value"].mean()
            paper_model = paper_model_name(model)
            match = paper[
                (paper["model"] == paper_model)
                & (paper["task"] == paper_task_name(task, split))
                & (paper["metric"] == metric)
            ]
            same_split = match[match["split"] == ("test" if str(split).startswith("test") else "dev")]
            match = same_split if not same_split.empty else match
            paper_value = float(match["value"].iloc[0]) if not match.empty else float("nan")
            rows.append(
                {
                    "task": task,
                    "split": split,
                    "metric": metric,
                    "model": model,
                    "paper_model": paper_model,
                    "grid_point": best_point,
                    "seeds": len(values),
                    "mean": values.mean(),
                    "std": values.std(ddof=1) if len(values) > 1 else 0.0,
                    "best_seed_value": values.max(),
                    "paper_value": paper_value,
                    "paper_split": match["split"].iloc[0] if not match.empty else "",
                    "paper_source": match["source"].iloc[0] if not match.empty else "",
                    "difference": values.mean() - paper_value,
                }
            )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS).round(3)


def write_summary(finetune_csv, paper_csv, summary_csv):
    from workbench.files import atomic_path

    summary = summarize(finetune_csv, paper_csv)
    with atomic_path(summary_csv) as tmp:
        summary.to_csv(tmp, index=False)
    return summary
