"""`python -m workbench.bench.device_report`: the GPU speed report run as one budgeted command (docs/jax.md).

The real run (a subprocess under KERAS_BACKEND=jax with TensorFlow blocked, a tiny model) is the slow
test; the search arithmetic, the budget's hard stop and the merge run without Keras.
"""

import csv
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from workbench.bench.device_report import main, memory_guided_search, run_report
from workbench.bench.speed import MAX_BATCH_COLUMNS, SPEED_COLUMNS, record, search_max_batch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 2**30


class FakeDevice:
    """Device memory as the allocator counts it: weights and optimizer state stay allocated, a step
    needs `step_fixed` more (gradients, new state) plus `per_sequence` per sequence (or more beyond
    `knee`, where XLA might pick other algorithms), and a step that would exceed the limit fails."""

    def __init__(self, limit=100 * GIB, resident=4 * GIB, step_fixed=3 * GIB, per_sequence=0.14 * GIB, knee=None):
        self.limit, self.resident, self.step_fixed, self.per_sequence, self.knee = (
            limit,
            resident,
            step_fixed,
            per_sequence,
            knee,
        )
        self.peak, self.tried = resident, []

    def need(self, batch):
        extra = max(0, batch - self.knee) * self.per_sequence * 0.5 if self.knee else 0
        return self.resident + self.step_fixed + batch * self.per_sequence + extra

    def fits(self, batch):
        self.tried.append(batch)
        if self.need(batch) > self.limit:
            return False
        self.peak = max(self.peak, self.need(batch))
        return True

    def stats(self):
        return {"bytes_limit": self.limit, "bytes_in_use": self.resident, "peak_bytes_in_use": self.peak}

    def largest(self):
        return max(b for b in range(1, 8193) if self.need(b) <= self.limit)


def within_headroom(device, found):
    """`found` is the largest multiple of 8 whose step fits in the 95% of memory the search plans with."""
    return device.need(found) <= 0.95 * device.limit < device.need(found + 8) and found % 8 == 0


def test_memory_guided_search_finds_the_largest_batch_in_three_tries():
    device = FakeDevice()
    found = memory_guided_search(device.fits, 32, 4096, device.stats)
    assert within_headroom(device, found) and device.tried == [32, 64, found]
    assert found >= device.largest() * 15 / 16
    # Where twice the first probe might not fit, the second probe stays below what surely fits.
    device = FakeDevice(limit=20 * GIB, per_sequence=0.2 * GIB)
    found = memory_guided_search(device.fits, 32, 4096, device.stats)
    assert within_headroom(device, found) and device.tried == [32, 48, found]
    # Memory that grows faster at large batches: the estimate fails, and 7/8 steps find one that fits.
    device = FakeDevice(knee=300)
    found = memory_guided_search(device.fits, 32, 4096, device.stats)
    assert device.need(found) <= device.limit and found > device.largest() * 3 / 4
    assert len(device.tried) <= 6 and device.tried[:2] == [32, 64] and not device.fits(device.tried[2])
    # The limit caps it; without memory statistics (a CPU) the doubling search runs; nothing fits: 0.
    device = FakeDevice()
    assert memory_guided_search(device.fits, 32, 100, device.stats) == 96
    cpu = FakeDevice()
    assert memory_guided_search(cpu.fits, 8, 4096, lambda: None) == search_max_batch(FakeDevice().fits, 8, 4096)
    small = FakeDevice(limit=GIB)
    assert memory_guided_search(small.fits, 8, 4096, small.stats) == 0


SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
# A group process that measured its first mode, then crashed.
CRASHER = """
import json, sys
rows_file, model, seq = sys.argv[1], sys.argv[2], int(sys.argv[3])
row = {"model": model, "seq": seq, "mode": "train", "batch": 8, "precision": "mixed_bfloat16", "status": "ok",
       "device": "Fake GPU x1", "sequences_per_second": 10.0, "vs_keras_hub": 1.5}
open(rows_file, "a").write(json.dumps({"kind": "speed", "seconds": 2.0, "row": row}) + "\\n")
sys.exit(3)
"""


def test_the_budget_stops_a_group_and_marks_what_did_not_run(tmp_path):
    out = tmp_path / "speed.csv"
    began = time.monotonic()
    results = run_report(
        ["tiny"], [32, 64], ["train", "predict"], 3.0, str(out), str(tmp_path / "mb.csv"), min_case_s=0,
        command=lambda model, seq, left, expect, rows_file, options: SLEEPER,
    )  # fmt: skip
    assert time.monotonic() - began < 3.0 + 2.0  # stopped at the deadline, not after the process's 120 s
    table = pd.read_csv(out)
    assert list(table.columns) == SPEED_COLUMNS and len(table) == len(results) == 4
    assert (table["status"] == "skipped").all() and table[["sequences_per_second", "mfu", "tflops"]].isna().all().all()
    assert table["note"].iloc[0] == "the 3 s budget ran out during this case"  # killed at the deadline
    assert table["note"].iloc[2].startswith("0 s of the 3 s budget left")  # never started

    out = tmp_path / "crash.csv"
    results = run_report(
        ["tiny"], [32], ["train", "predict"], 60.0, str(out), str(tmp_path / "mb.csv"), min_case_s=0,
        command=lambda model, seq, left, expect, rows_file, options: [
            sys.executable, "-c", CRASHER, rows_file, model, str(seq)
        ],
    )  # fmt: skip
    assert [(row["mode"], row["status"], seconds) for row, seconds in results] == [
        ("train", "ok", 2.0),
        ("predict", "failed", 0.0),
    ]
    assert results[1][0]["note"] == "its process ended (exit code 3) before this case"
    assert results[1][0]["device"] == "Fake GPU x1" and results[1][0]["batch"] == ""


def test_arguments_are_checked_before_anything_runs(monkeypatch, capsys):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    with pytest.raises(SystemExit):
        main(["--models", "tiny"])
    assert "KERAS_BACKEND=jax" in capsys.readouterr().err
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    for argv, says in (
        (["--models", "huge"], "Unknown BERT size 'huge'"),
        (["--seqs", "0"], "--seqs must be positive"),
        (["--steps", "3", "--warmup", "3"], "--steps (3) must exceed --warmup (3)"),
        (["--batch", "large:128"], "expected MODEL:SEQ=BATCH"),
        (["--batch", "mini:128=8"], "--batch mini:128=8: not a group"),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        assert says in capsys.readouterr().err


def test_merge_appends_device_rows_to_the_local_tables(tmp_path):
    device = tmp_path / "device"
    device.mkdir()
    row = {"model": "large", "mode": "train", "seq": 128, "batch": 256, "status": "ok", "mfu": 0.5, "backend": "jax"}
    skipped = dict(row, mode="predict", status="skipped", note="10 s of the 480 s budget left", mfu="")
    record(row, str(device / "speed.csv"))
    record(skipped, str(device / "speed.csv"))
    record({"model": "large", "seq": 128, "max_batch": 256, "backend": "jax"}, str(device / "max_batch.csv"))
    local = tmp_path / "speed.csv"
    record(dict(row, model="base"), str(local))
    main(["--merge", str(device / "speed.csv"), str(device / "max_batch.csv"), "--output", str(local),
          "--max-batch-output", str(tmp_path / "max_batch.csv")])  # fmt: skip
    table = pd.read_csv(local)
    assert table["model"].tolist() == ["base", "large", "large"] and table["status"].tolist() == ["ok", "ok", "skipped"]
    assert pd.read_csv(tmp_path / "max_batch.csv")["max_batch"].tolist() == [256]
    # A report written before the last columns were added (here `matmul_mfu`) merges with them empty.
    older = SPEED_COLUMNS[:-1]
    with open(tmp_path / "older.csv", "w", newline="") as f:
        values = {"model": "large", "mode": "train", "status": "ok"}
        csv.writer(f).writerows([older, [values.get(column, "") for column in older]])
    main(["--merge", str(tmp_path / "older.csv"), "--output", str(local)])
    assert len(pd.read_csv(local)) == 4 and pd.isna(pd.read_csv(local)["matmul_mfu"].iloc[-1])
    with open(tmp_path / "other.csv", "w", newline="") as f:
        csv.writer(f).writerows([["model", "value"], ["large", 1]])
    with pytest.raises(SystemExit, match="other.csv: header"):
        main(["--merge", str(tmp_path / "other.csv"), "--output", str(local)])


# Makes `tensorflow` and `tensorflow_text` unimportable, as on the device machine.
BLOCKER = """
import sys
for name in ("tensorflow", "tensorflow_text"):
    sys.modules[name] = None
"""

NO_TENSORFLOW_LOADED = r"""
import runpy, sys
sys.argv = ["device_report", *sys.argv[1:]]
try:
    runpy.run_module("workbench.bench.device_report", run_name="__main__")
except SystemExit as e:
    assert not e.code, e.code
import workbench.bench.speed as speed
assert speed.measure_peak("bfloat16", True, size=256, repeats=2, products=3) > 0  # the accelerators' timing, on CPU

# Out of memory inside Keras' JAX train step, above batch 3: the search goes on with a new model (the failed
# `fit` left the old one without its weights).
class JaxRuntimeError(RuntimeError):
    pass

tried = []
data, workbench_model = speed._data, speed._workbench_model

def batches_of(config, seq, batch, *args):
    tried.append(batch)
    return data(config, seq, batch, *args)

def device_with_memory_for_3(config, mode, xla):
    model = workbench_model(config, mode, xla)
    model.make_train_function()
    step = model.train_function

    def train_function(state, iterator):
        if tried[-1] > 3:
            raise JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate (injected)")
        return step(state, iterator)

    model.train_function = train_function
    return model

speed._data, speed._workbench_model = batches_of, device_with_memory_for_3
assert speed.max_batch_size("tiny", seq=16, start=2, limit=8)["max_batch"] == 3
assert tried == [2, 4, 3], tried
loaded = sorted(m for m, module in sys.modules.items() if module is not None and m.split(".")[0] in
                ("tensorflow", "tensorflow_text"))
assert not loaded, loaded
"""


def test_the_report_runs_under_jax_without_tensorflow(tmp_path):
    """The whole command on a tiny model, as on the device machine; then the max-batch search through an
    out-of-memory error inside Keras' JAX step, injected."""
    (tmp_path / "blocker").mkdir()
    (tmp_path / "blocker" / "sitecustomize.py").write_text(BLOCKER)
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        PYTHONPATH=os.pathsep.join([str(tmp_path / "blocker"), ROOT]),
        JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax-cache"),  # empty, as on a fresh device machine
    )
    budget = 150
    # BERT-Large after BERT-Tiny: expected to take ~700x the tiny cases (its non-embedding parameters), so
    # it is skipped whatever the machine's speed.
    argv = ["--models", "tiny", "large", "--seqs", "32", "--budget-s", str(budget), "--min-case-s", "1",
            "--start", "8", "--limit", "8", "--steps", "4", "--warmup", "1", "--min-seconds", "0",
            "--output", "speed.csv", "--max-batch-output", "max_batch.csv", "--markdown", "speed.md"]  # fmt: skip
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW_LOADED, *argv],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=budget + 60,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert time.monotonic() - began < budget + 20  # the parent's and the last check's start-up on top
    table = pd.read_csv(tmp_path / "speed.csv")
    assert list(table.columns) == SPEED_COLUMNS
    assert table[["model", "mode", "status"]].values.tolist() == [
        ["tiny", "train", "ok"],
        ["tiny", "predict", "ok"],
        ["large", "train", "skipped"],
        ["large", "predict", "skipped"],
    ]
    ok, skipped = table.iloc[:2], table.iloc[2:]
    assert (ok["backend"] == "jax").all() and (ok["precision"] == "mixed_bfloat16").all() and ok["xla"].all()
    assert ((ok["mfu"] > 0) & (ok["mfu"] <= 1)).all() and (ok["vs_keras_hub"] > 0).all()
    assert (ok["peak_tflops"] > 0).all() and (ok["batch"] == 8).all()
    assert ok["note"].str.startswith("batch = largest train batch found").all()
    assert skipped[["sequences_per_second", "mfu", "vs_keras_hub", "peak_tflops"]].isna().all().all()
    assert skipped["note"].str.contains("budget left, a case is expected to need").all()
    max_batch = pd.read_csv(tmp_path / "max_batch.csv")
    assert list(max_batch.columns) == MAX_BATCH_COLUMNS and max_batch[["model", "max_batch"]].values.tolist() == [
        ["tiny", 8]
    ]
    markdown = (tmp_path / "speed.md").read_text()
    assert markdown in proc.stdout and markdown.count("\n| tiny | 32 |") == 2 and "| skipped: " in markdown
