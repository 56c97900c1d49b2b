"""Fault injection: kill -9 at many points, a file-size limit at every writer,
eight processes appending to one table. Figures are in docs/faults.md.

Kill points are chosen by patching, in a child process, the calls every
workbench writer ends with: `os.replace` or `tf.io.gfile.rename` (the rename that publishes a file or
directory under its final name) and `workbench.files.append_atomically` (the one
write of a results append). The child kills itself with SIGKILL just before or
just after the n-th such call on a matching path; the test then checks that
every file under its final name is complete, reruns the same command, and after
the last kill compares the outcome with an uninterrupted run.
"""

import json
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
from tiny_runs import PRETRAIN, ROOT, SAMPLES, VOCAB, finetune_params

ENV = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")

CHILD = r"""
import json, os, re, signal, sys

fault = json.loads(os.environ.get("WB_FAULT") or "null")
if fault:
    pattern, seen = re.compile(fault["pattern"]), [0]

    def maybe_die(when):
        if seen[0] == fault["nth"] and fault["when"] == when:
            print("KILLED at", fault, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(real, path_of):
        def patched(*args, **kwargs):
            hit = pattern.search(os.fspath(path_of(args)).replace(os.sep, "/"))
            if hit:
                seen[0] += 1
                maybe_die("before")
            result = real(*args, **kwargs)
            if hit:
                maybe_die("after")
            return result
        return patched

    if fault["op"] == "replace":
        os.replace = wrap(os.replace, lambda args: args[1])
        # Pretraining shards are published through TensorFlow's filesystem layer (gs:// too).
        import workbench  # noqa: F401  (its environment first, as in every other run)
        import tensorflow as tf

        tf.io.gfile.rename = wrap(tf.io.gfile.rename, lambda args: args[1])
    else:
        import workbench.files
        workbench.files.append_atomically = wrap(workbench.files.append_atomically, lambda args: args[0])

import workbench  # noqa
for step in json.loads(sys.argv[1]):
    kind, args = step["kind"], step["args"]
    if kind == "pretrain":
        from workbench.training.pretrain import pretrain
        pretrain(**args)
    elif kind == "finetune":
        from workbench.training.finetune import finetune
        finetune(**args)
    elif kind == "convert":
        from workbench.checkpoints.export import convert
        convert(**args)
print("DONE", flush=True)
"""


def run_child(steps, fault=None, timeout=600):
    env = dict(ENV, WB_FAULT=json.dumps(fault) if fault else "")
    return subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(steps)], env=env, capture_output=True, text=True, timeout=timeout
    )


def hidden(path):
    """Temporary names (`.tmp-*` files and directories, `*.tmp` shards) and
    TensorBoard event streams are not published results."""
    parts = path.replace(os.sep, "/").split("/")
    return any(p.startswith(".tmp") or p.endswith(".tmp") or ".tmp-" in p for p in parts) or "tensorboard" in parts


def check_complete(root):
    """Every file and directory under its final name is whole: JSON parses,
    CSVs end with a newline and every row has the header's width, archives and
    HDF5 files open, TFRecords read to the end, published directories hold
    their files. Returns how many were checked."""
    import csv

    import h5py
    import tensorflow as tf

    checked = 0
    for directory, dirs, files in os.walk(root):
        if hidden(directory):
            continue
        name = os.path.basename(directory)
        required = {
            "model": ["config.json", "model.weights.h5", "assets"],
            "google": ["bert_config.json", "vocab.txt", "bert_model.ckpt.index"],
            "savedmodel": ["saved_model.pb", "variables"],
        }.get(name, ["model.weights.h5", "state.json"] if re.fullmatch(r"step-\d+", name) else [])
        missing = [f for f in required if f not in files + dirs]
        assert not missing, f"{directory} is visible without {missing}"
        for f in files:
            path = os.path.join(directory, f)
            if hidden(path):
                continue
            checked += 1
            if f.endswith(".json"):
                with open(path, encoding="utf-8") as handle:
                    json.load(handle)
            elif f.endswith((".csv", ".tsv")):
                text = open(path, encoding="utf-8").read()
                assert text.endswith("\n"), f"{path} ends mid-line"
                if f.endswith(".csv"):
                    rows = list(csv.reader(text.splitlines()))
                    assert all(len(r) == len(rows[0]) for r in rows), f"{path} has a torn row"
            elif f.endswith((".keras", ".npz")):
                with zipfile.ZipFile(path) as archive:
                    assert archive.testzip() is None, path
            elif f.endswith(".h5"):
                with h5py.File(path, "r"):
                    pass
            elif f.endswith(".tfrecord"):
                sum(1 for _ in tf.data.TFRecordDataset(path))
            elif f == "latest":
                assert os.path.isdir(os.path.join(directory, open(path).read().strip())), f"{path} names nothing"
    return checked


def kill_chain(steps, faults, root):
    """Run `steps` once per fault (each killed at its point), then to the end.
    Returns [(fault, files checked after the kill)]."""
    report = []
    for fault in faults:
        proc = run_child(steps, fault)
        assert proc.returncode == -9, (
            f"{fault} did not fire (rc {proc.returncode}):\n{proc.stdout[-1500:]}{proc.stderr[-3000:]}"
        )
        report.append((fault, check_complete(root)))
    proc = run_child(steps)
    assert proc.returncode == 0, proc.stderr[-4000:]
    check_complete(root)
    return report


def replace(pattern, nth=1, when="before"):
    return {"op": "replace", "pattern": pattern, "nth": nth, "when": when}


def append(pattern, when):
    return {"op": "append", "pattern": pattern, "nth": 1, "when": when}


FINETUNE = finetune_params(task="mrpc", checkpoint_every=2, jit_compile=False)


def test_kill_9_during_fine_tuning_and_export_then_rerun(tmp_path):
    """Five kills over a fine-tuning run (a checkpoint, the predictions, the
    model export, the results append before and after its write) and one in
    the SavedModel conversion: every rerun resumes, no partial file is ever
    visible, and the end is the uninterrupted run's metrics, recorded once."""
    from workbench.training.finetune import finetune

    straight = finetune(output_dir=str(tmp_path / "a"), results_csv=str(tmp_path / "a.csv"), **FINETUNE)
    out, csv_path = tmp_path / "b", tmp_path / "b.csv"
    steps = [{"kind": "finetune", "args": dict(FINETUNE, output_dir=str(out), results_csv=str(csv_path))}]
    report = kill_chain(
        steps,
        [
            replace(r"/checkpoints/step-\d+$", nth=2),
            replace(r"/predictions/[^/]+\.tsv$"),
            replace(r"/b/model$"),
            append(r"b\.csv$", "before"),
            append(r"b\.csv$", "after"),
        ],
        str(tmp_path),
    )
    with open(out / "metrics.json", encoding="utf-8") as f:
        resumed = json.load(f)
    assert resumed["dev"] == pytest.approx(straight.metrics["dev"], abs=1e-6)
    table = pd.read_csv(csv_path)
    assert len(table) == len(straight.rows) and table["run_id"].nunique() == 1  # recorded once
    assert not os.path.exists(out / "checkpoints")
    # Export: killed before the conversion publishes its directory, then done again.
    savedmodel = str(tmp_path / "x" / "savedmodel")
    convert = [{"kind": "convert", "args": {"src": str(out), "dst": savedmodel, "to": "savedmodel"}}]
    report += kill_chain(convert, [replace(r"/x/savedmodel$")], str(tmp_path / "x"))
    import tensorflow as tf

    assert "serve" in tf.saved_model.load(savedmodel).signatures
    assert len(report) == 6 and all(n > 0 for _, n in report[:5])


@pytest.fixture(scope="module")
def pretraining_chain(tmp_path_factory):
    """Five kills over pretraining: while its data is written (a shard, the
    statistics), at a checkpoint, at the Google-layout export and after the
    results append; then the rerun to the end, beside an uninterrupted run."""
    from workbench.training.pretrain import pretrain

    tmp_path = tmp_path_factory.mktemp("pretraining-faults")
    straight = pretrain(output_dir=str(tmp_path / "a"), results_csv=str(tmp_path / "a.csv"), **PRETRAIN)
    out, csv_path = tmp_path / "b", tmp_path / "b.csv"
    steps = [{"kind": "pretrain", "args": dict(PRETRAIN, output_dir=str(out), results_csv=str(csv_path))}]
    report = kill_chain(
        steps,
        [
            replace(r"/data/phase1/part-[^/]+\.tfrecord$"),
            replace(r"/data/phase1/stats\.json$"),
            replace(r"/checkpoints/phase1/step-\d+$", nth=2),
            replace(r"/b/google$"),
            append(r"b\.csv$", "after"),
        ],
        str(tmp_path),
    )
    with open(out / "metrics.json", encoding="utf-8") as f:
        resumed = json.load(f)
    return straight, resumed, pd.read_csv(tmp_path / "a.csv"), pd.read_csv(csv_path), report


def test_kill_9_during_pretraining_data_pretraining_and_its_export_then_rerun(pretraining_chain):
    """Every rerun resumes; the end has the uninterrupted run's final losses, recorded once."""
    straight, resumed, straight_table, table, report = pretraining_chain
    assert len(report) == 5 and all(n > 0 for _, n in report[1:])
    for phase in (1, 2):
        assert resumed[str(phase)]["final"] == pytest.approx(straight.metrics[phase]["final"], abs=1e-5)
    final = table[table["step"] > 0]
    assert len(final) == len(straight_table[straight_table["step"] > 0])
    assert not final.duplicated(["run_id", "phase", "metric"]).any()


def test_pretraining_resumed_after_a_kill_keeps_the_initial_losses(pretraining_chain):
    straight, resumed, straight_table, table, _ = pretraining_chain
    assert resumed["1"]["initial"] == pytest.approx(straight.metrics[1]["initial"], abs=1e-5)
    assert len(table) == len(straight_table)


# ---- a file-size limit (as a full disk) at each writer --------------------------------------------
LIMITED = r"""
import json, os, resource, sys
import numpy as np

def limited(limit, action):
    # Soft limit only: it is raised again afterwards (an unprivileged process may).
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        return action(), None
    except Exception as e:
        return None, f"{type(e).__name__}: {e}"
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

root, outcome = sys.argv[1], {}
import keras
from workbench.checkpoints.load import load_pretrained, save_pretrained
from workbench.tasks.registry import get_task
from workbench.training.feature_cache import cached_training_features
from workbench.training.loop import StepCheckpoint

pretrained = load_pretrained("tiny", vocab=sys.argv[2])
model = get_task("rte").build_model(pretrained.encoder)
model.compile(optimizer="adam", loss="mse")
model({k: np.zeros((1, 8), "int32") for k in ("token_ids", "segment_ids", "padding_mask")})
model.optimizer.build(model.trainable_variables)

checkpoint = StepCheckpoint(os.path.join(root, "checkpoints"), every=2)
checkpoint.save(model, 2)
outcome["checkpoint"] = limited(20_000, lambda: checkpoint.save(model, 4))

export = lambda: save_pretrained(pretrained.encoder, pretrained.tokenizer, os.path.join(root, "model"))
export()
outcome["export"] = limited(20_000, export)

task = get_task("rte")
examples = task.load(sys.argv[3], "train")
build = lambda: task.featurize(examples, pretrained.tokenizer, 32, training=True)
cache = os.path.join(root, "cache")
features, error = limited(
    2_000, lambda: cached_training_features(cache, task, examples, pretrained.tokenizer, 32, build)
)
outcome["feature_cache"] = (len(features) if features is not None else None, error)
json.dump(outcome, open(os.path.join(root, "outcome.json"), "w"))
"""


@pytest.fixture(scope="module")
def limited_writers(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("fsize")
    proc = subprocess.run(
        [sys.executable, "-c", LIMITED, str(tmp_path), VOCAB, SAMPLES],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tmp_path, json.loads((tmp_path / "outcome.json").read_text()), proc.stdout


def test_a_file_size_limit_at_each_writer_keeps_the_last_good_state(limited_writers):
    tmp_path, outcome, stdout = limited_writers
    # Feature cache: training goes on without it; nothing half-written is left.
    count, error = outcome["feature_cache"]
    assert count == 48 and error is None and "training without the cache" in stdout
    assert os.listdir(tmp_path / "cache") == []
    # Export: a clear error; the earlier model directory is whole and loads.
    _, error = outcome["export"]
    assert error.startswith("OSError") and "could not write the model" in error and "unchanged" in error
    from workbench.checkpoints.load import load_pretrained

    assert load_pretrained(str(tmp_path / "model")).encoder.num_layers == 2
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]
    # Checkpoint: the failed save leaves the previous checkpoint as the latest one.
    _, error = outcome["checkpoint"]
    # h5py's message: it names the checkpoint file being written and the cause.
    assert str(tmp_path / "checkpoints") in error and "File too large" in error, error
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step-2"
    assert sorted(p for p in os.listdir(tmp_path / "checkpoints") if not p.startswith(".tmp")) == ["latest", "step-2"]
    check_complete(str(tmp_path))


DOWNLOAD_LIMITED = r"""
import resource, sys
from workbench.tasks.download import DownloadError, Source, download_task
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), resource.RLIM_INFINITY))
try:
    download_task("squad1", sys.argv[2], {"squad1": [Source(sys.argv[1], {"": "dev-v1.1.json"})]}, force=True)
except DownloadError as e:
    print("ERROR", e)
"""

APPEND_LIMITED = r"""
import resource, sys
from workbench.runs.tables import append_rows
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
try:
    append_rows(sys.argv[1], [{"run_id": "late", "status": "ok", "error": "x" * 400} for _ in range(3)])
except OSError as e:
    print("ERROR", e)
"""


def test_a_file_size_limit_while_downloading_or_appending(tmp_path):
    import functools
    import http.server
    import threading

    www = tmp_path / "www"
    www.mkdir()
    (www / "dev.json").write_text('{"data": []}' + " " * 50_000)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/dev.json"
    data = tmp_path / "data"
    (data / "squad1").mkdir(parents=True)
    (data / "squad1" / "dev-v1.1.json").write_text('{"data": ["the good old copy"]}')
    try:
        proc = subprocess.run(
            [sys.executable, "-c", DOWNLOAD_LIMITED, url, str(data), "20000"], env=ENV, capture_output=True, text=True
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert "ERROR could not write" in proc.stdout and "File too large" in proc.stdout, proc.stdout + proc.stderr
    assert (data / "squad1" / "dev-v1.1.json").read_text() == '{"data": ["the good old copy"]}'
    assert sorted(os.listdir(data)) == ["squad1"]  # no staging directory left

    table = tmp_path / "finetune.csv"
    from workbench.runs.tables import append_rows

    append_rows(str(table), [{"run_id": "early", "status": "ok"}])
    before = table.read_bytes()
    proc = subprocess.run(
        [sys.executable, "-c", APPEND_LIMITED, str(table), str(len(before) + 700)],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert "ERROR" in proc.stdout and "the table is unchanged" in proc.stdout, proc.stdout + proc.stderr
    assert table.read_bytes() == before


APPENDER = r"""
import sys
from workbench.runs.tables import append_rows
worker, path = sys.argv[1], sys.argv[2]
for i in range(25):
    rows = [{"run_id": f"w{worker}-{i}", "status": "ok", "task": "mrpc", "split": "dev", "metric": m,
             "value": i, "error": f"{worker}" * 1500} for m in ("f1", "accuracy", "mcc")]
    append_rows(path, rows)
"""


def test_eight_processes_append_to_one_table(tmp_path):
    path = str(tmp_path / "finetune.csv")
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(w), path], env=ENV, stderr=subprocess.PIPE)
        for w in range(8)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    check_complete(str(tmp_path))
    table = pd.read_csv(path, dtype={"error": str})
    assert len(table) == 8 * 25 * 3  # no row lost
    assert table["run_id"].nunique() == 8 * 25
    # No row torn or interleaved: each row's filler is 1500 copies of its own worker's digit.
    assert all(e == r[1] * 1500 for e, r in zip(table["error"], table["run_id"]))
    assert np.array_equal(table.groupby("run_id").size().unique(), [3])
