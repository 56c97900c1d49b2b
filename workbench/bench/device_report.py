"""`python -m workbench.bench.device_report`: the GPU speed report of issue #15 item 5, as one command.

A lent GPU machine runs one prepared command of at most 10 minutes, with JAX but without TensorFlow
(docs/jax.md, "Measuring on a lent GPU"). This command runs the whole matrix there under
`KERAS_BACKEND=jax`: each model size and sequence length, training and prediction, in bfloat16, at the
largest training batch that fits, with MFU against a bfloat16 matmul peak measured in the same process
and the plain keras-hub baseline (`BertBackbone` + `Dense`) in the same backend and precision beside
it. Every number comes from `workbench.bench.speed` (`max_batch_size`, `measure`), so the device
report and `python -m workbench speed` measure the same thing.

It keeps to a wall-clock budget (`--budget-s`), because a device call that outruns its limit returns
nothing, and a GPU for a later try may not be lent:

* Groups run in order: each sequence length in turn, each model at it (defaults: BERT-Large then
  BERT-Base at 128, then the same at 512), training before prediction.
* Before each case the time left is checked against the longest case so far, scaled by the model's
  non-embedding parameter count (a larger model is expected to take longer), and against
  `--min-case-s`; a case that cannot fit is recorded as `status=skipped` with the reason, never as a
  number.
* Each (model, sequence length) group runs in its own process, which is stopped at the deadline (its
  unfinished cases are recorded as skipped). A process per group also gives the max-batch search a
  clean device: JAX counts peak memory from the start of a process, and ending the process returns all
  of its device memory before the next group. This parent process never touches the device.

Rows go to `--output` (the `speed.csv` columns, with `status` and `note`) as each case ends, the
largest batches to `--max-batch-output`, and a markdown table is printed at the end (and written to
`--markdown`). `--merge FILE ...` appends the rows of such files, brought back from the device
machine, to the local tables.

Nothing on this path imports `tensorflow` or `tensorflow_text` (tests/test_device_report.py runs it
with both imports blocked); `.ci/device-wheels` downloads the wheels the device machine lacks.
"""

import argparse
import csv
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time

MODES = ("train", "predict", "pretrain")
# Device memory the batch estimate may plan to use: the rest is slack for what the estimate cannot see
# (a few more temporaries at a larger batch, the cuBLAS workspace).
HEADROOM = 0.95
# Out of memory while measuring at the batch the search found: retry at 7/8 of it, this many times.
OUT_OF_MEMORY_RETRIES = 2


# ---- the max-batch search ------------------------------------------------------------------------


def _device_memory_stats():
    """Device 0's allocator statistics under JAX (`bytes_limit`, `peak_bytes_in_use`, ...), or None
    where the platform keeps none (XLA's CPU client)."""
    import jax

    return jax.local_devices()[0].memory_stats()


def _round_batch(batch):
    """Down to a multiple of 8 (the matrix units' tile) once it is that large."""
    return batch - batch % 8 if batch >= 16 else batch


def memory_guided_search(fits, start, limit, memory_stats=_device_memory_stats):
    """The largest batch in [1, limit] for which `fits(batch)` is True, in few tries, for a device that
    counts its peak memory. Each try compiles a new XLA program (tens of seconds for BERT-Large on a
    GPU), so doubling and bisecting (`search_max_batch`, ~10 tries) would spend most of a 10-minute
    device call on the search.

    Two probes, at `start` and at a second batch (2 x `start`, or less where the first probe's memory
    says 2 x `start` would not fit), give the device memory per sequence (the difference of their
    peaks) and the part that does not grow with the batch; the batch that fills `HEADROOM` of the
    device's memory is then tried, and lowered by 1/8 until it fits. So: 3 tries where the estimate
    holds. Without memory statistics (a CPU), `search_max_batch` does the search.

    `fits` must run the step at that batch in this process: the peaks are the process's."""
    from workbench.bench.speed import search_max_batch

    stats = memory_stats()
    if not stats or not {"bytes_in_use", "peak_bytes_in_use", "bytes_limit"} <= set(stats):
        return search_max_batch(fits, start, limit)
    small = min(start, limit)
    if not fits(small):
        return search_max_batch(fits, 1, small - 1) if small > 1 else 0
    stats = memory_stats()
    first, resident, capacity = stats["peak_bytes_in_use"], stats["bytes_in_use"], HEADROOM * stats["bytes_limit"]
    # An upper bound of the memory per sequence (the whole peak above what stays allocated), hence a
    # batch that surely fits: the second probe stays below it.
    surely = int((capacity - resident) / max(1.0, (first - resident) / small))
    large = _round_batch(min(2 * small, limit, surely))
    if large <= small:
        return search_max_batch(fits, small, min(limit, 2 * small - 1))
    if not fits(large):
        return search_max_batch(fits, small, large - 1)
    second = memory_stats()["peak_bytes_in_use"]
    per_sequence = (second - first) / (large - small)
    if per_sequence <= 0:  # the peaks did not grow with the batch: nothing to extrapolate from
        return search_max_batch(fits, large, limit)
    batch = _round_batch(min(limit, int((capacity - (second - large * per_sequence)) / per_sequence)))
    while batch > large:
        if fits(batch):
            return batch
        batch = _round_batch(batch * 7 // 8)
    return large


# ---- one (model, sequence length) group, in its own process -----------------------------------------


def _search_mode(modes):
    """The mode whose step needs the most memory: its largest batch fits the others too."""
    return next(mode for mode in ("pretrain", "train", "predict") if mode in modes)


def _lower(batch):
    return _round_batch(max(1, batch * 7 // 8))


def measure_group(
    model,
    seq,
    modes,
    seconds_left,
    rows_file,
    output,
    max_batch_output,
    precision="mixed_bfloat16",
    batch=None,
    start=32,
    limit=4096,
    steps=15,
    warmup=3,
    min_seconds=3.0,
    min_case_s=45.0,
    expect_s=0.0,
):
    """Search the largest batch (unless `batch` is given), then measure each mode at it. Every case
    ends as one row (ok, skipped or failed) in `output` and as one JSON line in `rows_file`, which the
    parent reads; the first case starts at once (the parent checked the time), each later one only if
    the time left covers `expect_s`, the longest case of this group so far and `min_case_s`."""
    import gc

    import keras

    from workbench.bench.speed import _device_name, _machine, _out_of_memory, max_batch_size, measure, record

    began = time.monotonic()
    deadline = began + seconds_left
    if keras.backend.backend() != "jax":
        raise SystemExit(f"the device report runs under KERAS_BACKEND=jax, not {keras.backend.backend()!r}")

    def emit(row, seconds, kind="speed"):
        record(row, max_batch_output if kind == "max_batch" else output)
        with open(rows_file, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, "seconds": round(seconds, 1), "row": row}) + "\n")

    def not_measured(mode, status, note, used_batch=None):
        return _empty_row(model, seq, mode, precision, status, note, used_batch, _device_name(), _machine())

    def say(text):
        print(f"[device_report {time.monotonic() - began:5.0f} s in group] {model} seq {seq}: {text}", flush=True)

    longest = expect_s
    searched_note = "batch given (--batch)"
    case_began = time.monotonic()
    if batch is None:
        try:
            found = max_batch_size(
                model, seq, mode=_search_mode(modes), precision=precision, start=start, limit=limit,
                search=memory_guided_search,
            )  # fmt: skip
        except Exception as e:  # noqa: BLE001 - recorded in each case's row, then the next group runs
            for mode in modes:
                emit(not_measured(mode, "failed", f"max-batch search failed: {_describe(e)}"), 0.0)
            say(f"max-batch search failed: {_describe(e)}")
            return
        emit(found, time.monotonic() - case_began, kind="max_batch")
        batch = found["max_batch"]
        searched_note = f"batch = largest {found['mode']} batch found ({time.monotonic() - case_began:.0f} s search)"
        say(f"largest {found['mode']} batch {batch} ({time.monotonic() - case_began:.0f} s)")
        gc.collect()
        keras.backend.clear_session()
        if batch == 0:
            for mode in modes:
                emit(not_measured(mode, "failed", "not even batch 1 fits in device memory"), 0.0)
            return
    for index, mode in enumerate(modes):
        if index:
            case_began = time.monotonic()
            need = max(min_case_s, longest)
            left = deadline - case_began
            if left < need:
                note = f"{left:.0f} s of the budget left, this case is expected to need {need:.0f} s"
                emit(not_measured(mode, "skipped", note, batch), 0.0)
                say(note)
                continue
        notes = [searched_note]
        for attempt in range(OUT_OF_MEMORY_RETRIES + 1):
            try:
                row = measure(
                    model, seq=seq, batch=batch, mode=mode, precision=precision, steps=steps, warmup=warmup,
                    min_seconds=min_seconds,
                )  # fmt: skip
                break
            except Exception as e:  # noqa: BLE001 - out of memory: a smaller batch; else a failed row
                row = not_measured(mode, "failed", _describe(e), batch)
                if not (_out_of_memory(e) and batch > 1 and attempt < OUT_OF_MEMORY_RETRIES):
                    break
                notes.append(f"out of memory at batch {batch}")
                batch = _lower(batch)  # the keras-hub baseline's step may need a little more than the search's
                gc.collect()
                keras.backend.clear_session()
        if row["status"] == "ok":
            row["note"] = "; ".join(notes)
        seconds = time.monotonic() - case_began
        longest = max(longest, seconds)
        emit(row, seconds)
        say(
            f"{mode} batch {batch}: {row['sequences_per_second']} seq/s, MFU {row['mfu']}, "
            f"vs keras-hub {row['vs_keras_hub']} ({seconds:.0f} s)"
            if row["status"] == "ok"
            else f"{mode}: {row['note']}"
        )
        gc.collect()
        keras.backend.clear_session()


def _describe(error):
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}"


def _empty_row(model, seq, mode, precision, status, note, batch=None, device="", machine=""):
    """A speed row that says why a case has no numbers: its measured columns stay empty."""
    from workbench.runs.record import utc_now

    return {
        "finished_at": utc_now(),
        "machine": machine,
        "device": device,
        "implementation": "workbench",
        "model": model,
        "mode": mode,
        "seq": seq,
        "batch": "" if batch is None else batch,
        "precision": precision,
        "backend": "jax",
        "status": status,
        "note": note,
    }


# ---- the parent: the budget, the groups, the table ----------------------------------------------------


def _parameters(model):
    from workbench.models.config import BertConfig

    return BertConfig.from_size(model).num_parameters(non_embedding=True)


def _group_command(model, seq, seconds_left, expect_s, rows_file, options):
    return [
        sys.executable, "-m", "workbench.bench.device_report", "--group", model, str(seq),
        "--seconds-left", f"{seconds_left:.1f}", "--expect-s", f"{expect_s:.1f}", "--rows-file", rows_file,
        *options,
    ]  # fmt: skip


def _child_environment():
    """The group processes' environment: JAX may take 90% of the GPU's memory (its default, 75%, would
    cap the largest batch), and a compilation cache lets `measure` reuse the program the max-batch
    search compiled at the same batch. Values already set are kept."""
    env = dict(os.environ)
    env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.9")
    env.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "workbench-jax-cache"))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_report(
    models,
    seqs,
    modes,
    budget_s,
    output,
    max_batch_output,
    options=(),
    min_case_s=45.0,
    precision="mixed_bfloat16",
    batches=None,
    command=_group_command,
):
    """Run every (model, seq) group within `budget_s` seconds; returns this run's rows, each with its
    case's duration in seconds (0 for a case not measured), in order. `options` go to each group's
    process; `batches` maps (model, seq) to a batch that replaces the search; `command` builds a
    group's command line."""
    began = time.monotonic()
    deadline = began + budget_s
    results = []  # (row, seconds)
    batches = batches or {}

    def say(text):
        print(f"[device_report {time.monotonic() - began:5.0f} s] {text}", flush=True)

    with tempfile.TemporaryDirectory(prefix="device-report-") as scratch:
        for seq in seqs:
            for model in models:
                left = max(0.0, deadline - time.monotonic())
                expect = _longest_case(results, model)
                if left < max(min_case_s, expect, 1.0):
                    note = (
                        f"{left:.0f} s of the {budget_s:.0f} s budget left, "
                        f"a case is expected to need {max(min_case_s, expect):.0f} s"
                    )
                    results += _unmeasured(results, model, seq, modes, precision, "skipped", note, output)
                    say(f"{model} seq {seq}: {note}")
                    continue
                say(f"{model} seq {seq}: {left:.0f} s left")
                rows_file = os.path.join(scratch, f"{model}-{seq}.jsonl")
                argv = command(model, seq, left, expect, rows_file, list(options))
                if (model, seq) in batches:
                    argv += ["--batch", f"{model}:{seq}={batches[model, seq]}"]
                try:
                    code = subprocess.run(argv, env=_child_environment(), timeout=deadline - time.monotonic())
                    status, why = "failed", f"its process ended (exit code {code.returncode}) before this case"
                except subprocess.TimeoutExpired:  # run() has killed the process
                    status, why = "skipped", f"the {budget_s:.0f} s budget ran out during this case"
                done = []
                if os.path.exists(rows_file):
                    with open(rows_file, encoding="utf-8") as f:
                        done = [json.loads(line) for line in f if line.endswith("\n")]
                results += [(item["row"], item["seconds"]) for item in done if item["kind"] == "speed"]
                reported = {item["row"]["mode"] for item in done if item["kind"] == "speed"}
                found = [item["row"]["max_batch"] for item in done if item["kind"] == "max_batch"]
                batch = batches.get((model, seq), found[0] if found else None)
                missing = [mode for mode in modes if mode not in reported]
                results += _unmeasured(results, model, seq, missing, precision, status, why, output, batch)
    return results


def _longest_case(results, model):
    """The longest case so far, scaled to `model` by non-embedding parameters (0 before the first)."""
    return max(
        (seconds * _parameters(model) / _parameters(row["model"]) for row, seconds in results if seconds),
        default=0.0,
    )


def _unmeasured(results, model, seq, modes, precision, status, note, output, batch=None):
    """Rows for cases that have no numbers, recorded in `output`; device and machine as in this run."""
    from workbench.bench.speed import _machine, record

    device = next((row["device"] for row, _ in results if row.get("device")), "")
    rows = [_empty_row(model, seq, mode, precision, status, note, batch, device, _machine()) for mode in modes]
    for row in rows:
        record(row, output)
    return [(row, 0.0) for row in rows]


def markdown_table(results, budget_s, seconds):
    """The rows of this run as a markdown table, with the software and how much of the budget ran."""
    versions = ", ".join(f"{name} {_version(name)}" for name in ("jax", "jaxlib", "keras", "keras-hub"))
    ok = [row for row, _ in results if row["status"] == "ok"]
    where = f"{ok[0]['device']} ({ok[0]['machine']})" if ok else "no case measured"
    lines = [
        f"Device report: {where}; {versions}; {seconds:.0f} s of the {budget_s:.0f} s budget.",
        "",
        "| model | seq | mode | batch | precision | seq/s | TFLOP/s | peak TFLOP/s | MFU "
        "| keras-hub seq/s | vs keras-hub | case s | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row, case_seconds in results:
        ratio = row.get("vs_keras_hub", "")
        baseline = round(row["sequences_per_second"] / ratio, 2) if row["status"] == "ok" and ratio else ""
        status = row["status"] if row["status"] == "ok" else f"{row['status']}: {row['note']}"
        cells = [
            row["model"], row["seq"], row["mode"], row.get("batch", ""), row["precision"],
            row.get("sequences_per_second", ""), row.get("tflops", ""), row.get("peak_tflops", ""),
            row.get("mfu", ""), baseline, f"{ratio}x" if ratio else "", f"{case_seconds:.0f}" if case_seconds else "",
            status.replace("|", "/"),
        ]  # fmt: skip
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def merge(paths, output, max_batch_output):
    """Append the rows of device-report tables (brought back from the device machine) to the local
    tables, through the same locked append as every result."""
    from workbench.bench.speed import MAX_BATCH_COLUMNS, SPEED_COLUMNS
    from workbench.runs.tables import append_rows

    for path in paths:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = reader.fieldnames or []
        target, columns = (max_batch_output, MAX_BATCH_COLUMNS) if "max_batch" in header else (output, SPEED_COLUMNS)
        # A report written before columns were added at the end has a prefix of them (filled empty).
        if not header or header != columns[: len(header)]:
            raise SystemExit(f"{path}: header {header} is not the columns of {target} ({columns})")
        append_rows(target, rows, columns=columns)
        print(f"{path}: {len(rows)} row(s) appended to {target}")


# ---- the command line ---------------------------------------------------------------------------------


def _batch_override(text):
    try:
        key, batch = text.split("=")
        model, seq = key.split(":")
        return (model, int(seq)), int(batch)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batch {text!r}: expected MODEL:SEQ=BATCH, e.g. large:128=512") from None


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m workbench.bench.device_report",
        description="The GPU speed matrix of issue #15 item 5 under KERAS_BACKEND=jax, within a wall-clock budget.",
    )
    p.add_argument("--models", nargs="+", default=["large", "base"], help="size names, in the order run")
    p.add_argument("--seqs", nargs="+", type=int, default=[128, 512], help="sequence lengths, in the order run")
    p.add_argument("--modes", nargs="+", choices=MODES, default=["train", "predict"])
    p.add_argument("--precision", default="mixed_bfloat16", choices=["float32", "mixed_float16", "mixed_bfloat16"])
    p.add_argument("--budget-s", type=float, default=480.0, help="wall-clock seconds for the whole report")
    p.add_argument("--min-case-s", type=float, default=45.0, help="do not start a case with less time left than this")
    p.add_argument(
        "--batch",
        type=_batch_override,
        action="append",
        default=[],
        metavar="MODEL:SEQ=N",
        help="measure this group at batch N instead of searching the largest (repeatable)",
    )
    p.add_argument("--start", type=int, default=32, help="the max-batch search's first batch")
    p.add_argument("--limit", type=int, default=4096, help="the largest batch the search tries")
    p.add_argument("--steps", type=int, default=15, help="steps per timing (speed.measure)")
    p.add_argument("--warmup", type=int, default=3, help="steps not timed (compilation)")
    p.add_argument("--min-seconds", type=float, default=3.0, help="time at least this many seconds of warm steps")
    p.add_argument("--output", default="results/speed.csv")
    p.add_argument("--max-batch-output", default="results/max_batch.csv")
    p.add_argument("--markdown", help="also write the markdown table to this file")
    p.add_argument("--merge", nargs="+", metavar="CSV", help="append these device-report tables to the local ones")
    # One group, in its own process (the parent's command line for it).
    p.add_argument("--group", nargs=2, metavar=("MODEL", "SEQ"), help=argparse.SUPPRESS)
    p.add_argument("--seconds-left", type=float, help=argparse.SUPPRESS)
    p.add_argument("--expect-s", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--rows-file", help=argparse.SUPPRESS)
    return p


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    batches = dict(args.batch)
    if args.group:  # one group, started by the parent below, which checked the arguments
        model, seq = args.group[0], int(args.group[1])
        measure_group(
            model, seq, args.modes, args.seconds_left, args.rows_file, args.output, args.max_batch_output,
            precision=args.precision, batch=batches.get((model, seq)), start=args.start, limit=args.limit,
            steps=args.steps, warmup=args.warmup, min_seconds=args.min_seconds, min_case_s=args.min_case_s,
            expect_s=args.expect_s,
        )  # fmt: skip
        return 0
    if args.merge:
        merge(args.merge, args.output, args.max_batch_output)
        return 0
    if os.environ.get("KERAS_BACKEND") != "jax":
        p.error("run it with KERAS_BACKEND=jax (the device machine has JAX, not TensorFlow; docs/jax.md)")
    from workbench.models.config import parse_size

    for model in args.models:
        try:
            parse_size(model)
        except ValueError as e:
            p.error(f"--models: {e}")
    for name in ("seqs", "start", "limit", "steps", "budget_s"):
        values = getattr(args, name)
        if any(v <= 0 for v in (values if isinstance(values, list) else [values])):
            p.error(f"--{name.replace('_', '-')} must be positive, got {values}")
    if args.warmup < 0 or args.steps <= args.warmup:
        p.error(f"--steps ({args.steps}) must exceed --warmup ({args.warmup}) >= 0")
    for (model, seq), batch in batches.items():
        if model not in args.models or seq not in args.seqs or batch <= 0:
            p.error(f"--batch {model}:{seq}={batch}: not a group of --models/--seqs, or not a positive batch")
    common = [
        "--modes", *args.modes, "--precision", args.precision, "--start", str(args.start), "--limit",
        str(args.limit), "--steps", str(args.steps), "--warmup", str(args.warmup), "--min-seconds",
        str(args.min_seconds), "--min-case-s", str(args.min_case_s), "--output", args.output,
        "--max-batch-output", args.max_batch_output,
    ]  # fmt: skip
    began = time.monotonic()
    results = run_report(
        args.models, args.seqs, args.modes, args.budget_s, args.output, args.max_batch_output, options=common,
        min_case_s=args.min_case_s, precision=args.precision, batches=batches,
    )  # fmt: skip
    table = markdown_table(results, args.budget_s, time.monotonic() - began)
    print(table, flush=True)
    if args.markdown:
        from workbench.files import write_text_atomic

        write_text_atomic(args.markdown, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
