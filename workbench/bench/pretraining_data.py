"""Benchmark: `pretraining-data` beside the original `create_pretraining_data.py`, same corpus and settings.

Why this shape: the dev machines are shared, so a ratio is only meaningful when both sides run under the
same load. Each round runs every configuration once, one process after the other (the original, then the
workbench with 1 shard / 1 worker, 2 shards / 1 worker, 2 shards / 2 workers); rounds repeat, and the
report gives each round's ratios and their range. Each run is a fresh process, measured whole (interpreter
start and imports included, as a user pays them): wall time, CPU time of the process and all its worker
processes (`os.wait4`), the largest process's peak RSS (the same call; this process stays small, as Linux
counts a child's memory at fork), and the load average when it started.

After every round the outputs are checked: the one-shard output must be the original's instance for
instance (parsed features; the original serializes map entries in any order), and the two-shard output
must be byte-identical with one and with two workers.

The original script is not part of the workbench: pass `--original` a checkout of
https://github.com/google-research/bert (its `create_pretraining_data.py` and `tokenization.py` are run
unchanged; they are TensorFlow 1 code, so the launcher gives them `tensorflow.compat.v1` as `tensorflow`).
Without `--original` only the workbench rows run.

    python -m workbench.bench.pretraining_data --original ~/bert --corpus-mb 3 --rounds 3 \\
        --output results/bench-pretraining-data.jsonl

`--scale` measures memory against corpus size instead (issue #18: peak memory should follow the shard
size, not the corpus): for each size it makes the corpus (the sample corpus repeated), runs the workbench
with `--shard-size-mb` once per `--workers` count, and reports the same process measurements plus the
shard count, instances (`stats.json`), output size and the load average at start and end; each output is
checked to be the same bytes for every worker count, then deleted (a 1 GB corpus gives 5 GB of shards at
dupe factor 1), and the corpus after its runs:

    python -m workbench.bench.pretraining_data --scale 10,100,1000 --shard-size-mb 10 --workers 1,2 \\
        --dupe-factor 1 --work-dir /tmp --output results/bench-pretraining-scale.jsonl
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from workbench import resources

# The folder holding the `workbench` package (a checkout or site-packages): the child processes import it from there.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Runs the original script as its own `__main__`, with TensorFlow's v1 API under the name it imports.
_ORIGINAL_LAUNCHER = (
    "import runpy, sys; import tensorflow.compat.v1 as tf; sys.modules['tensorflow'] = tf; "
    "sys.path.insert(0, sys.argv[1]); sys.argv = sys.argv[1:]; "
    "sys.argv[0] = sys.argv[0] + '/create_pretraining_data.py'; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def make_corpus(path, megabytes, source=None):
    """`source` (default: the sample corpus) repeated (whole copies, a blank line between them so no
    document spans two) until the file holds at least `megabytes` MB; returns its size in bytes."""
    with open(source or resources.sample_corpus(), encoding="utf-8") as f:
        text = f.read().rstrip("\n") + "\n\n"
    copies = max(1, -(-int(megabytes * 1e6) // len(text.encode("utf-8"))))
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for _ in range(copies):  # copy by copy: a child forked while this process is large counts its size
            f.write(text)
    return os.path.getsize(path)


def measure(command, env=None, cwd=None):
    """Run `command` to the end; its wall time, CPU time (with every process it waited for) and the peak
    RSS of its largest process. Output goes to a log that is shown only when the command fails."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            log.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{log.read().decode()[-3000:]}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "load_average": round(load, 2),
    }


def original_command(original_dir, corpus, output_file, vocab, args):
    return [
        sys.executable,
        "-c",
        _ORIGINAL_LAUNCHER,
        os.path.abspath(original_dir),
        f"--input_file={corpus}",
        f"--output_file={output_file}",
        f"--vocab_file={vocab}",
        f"--max_seq_length={args.max_seq_length}",
        f"--max_predictions_per_seq={args.max_predictions_per_seq}",
        f"--dupe_factor={args.dupe_factor}",
        f"--random_seed={args.random_seed}",
        "--do_lower_case=True",
    ]


def workbench_command(corpus, output_dir, vocab, args, shards, workers, shard_size_mb=None):
    """The `pretraining-data` command line; `shard_size_mb` (instead of `shards`) lets the command pick
    the shard count from the corpus size, as a user of a large corpus would."""
    return [
        sys.executable,
        "-m",
        "workbench",
        "pretraining-data",
        "--input",
        corpus,
        "--output",
        output_dir,
        "--vocab",
        vocab,
        "--max-seq-length",
        str(args.max_seq_length),
        "--max-predictions-per-seq",
        str(args.max_predictions_per_seq),
        "--dupe-factor",
        str(args.dupe_factor),
        "--random-seed",
        str(args.random_seed),
        *(["--shard-size-mb", str(shard_size_mb)] if shard_size_mb else ["--shards", str(shards)]),
        "--workers",
        str(workers),
    ]


def same_instances(pattern_a, pattern_b):
    """(identical, instances): whether the TFRecord files matching two patterns hold the same instances
    in the same order, compared as parsed features (streamed: a 3 MB corpus gives 200k instances)."""
    import itertools

    import tensorflow as tf

    def features(record):
        example = tf.train.Example.FromString(record.numpy())
        return {k: list(v.int64_list.value) or list(v.float_list.value) for k, v in example.features.feature.items()}

    a, b = (tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(p))) for p in (pattern_a, pattern_b))
    count = 0
    for x, y in itertools.zip_longest(a, b):
        if x is None or y is None or features(x) != features(y):
            return False, count
        count += 1
    return True, count


def _child_env():
    """The environment of the measured processes: they import `workbench` from where this one did."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _append_rows(path, rows):
    """Append `rows` to the JSON-lines file `path` (made with its directory if needed)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)


def run(args, log=print):
    """Run the rounds; return the list of result rows (also appended to `args.output` as JSON lines)."""
    work = tempfile.mkdtemp(prefix="bench-pretraining-data-", dir=args.work_dir)
    env = _child_env()
    try:
        corpus = args.corpus or os.path.join(work, "corpus.txt")
        if not args.corpus:
            make_corpus(corpus, args.corpus_mb)
        megabytes = os.path.getsize(corpus) / 1e6
        vocab = os.path.abspath(args.vocab or resources.sample_vocab())
        configurations = [
            ("workbench, 1 shard, 1 worker", 1, 1),
            ("workbench, 2 shards, 1 worker", 2, 1),
            ("workbench, 2 shards, 2 workers", 2, 2),
        ]
        rows = []
        for round_number in range(1, args.rounds + 1):
            outputs = {}
            if args.original:
                os.makedirs(os.path.join(work, "original"), exist_ok=True)
                output = os.path.join(work, "original", "out.tfrecord")
                command = original_command(args.original, corpus, output, vocab, args)
                rows.append(dict(measure(command, env=env), run="original create_pretraining_data.py"))
                outputs["original"] = output
            for name, shards, workers in configurations:
                output = os.path.join(work, f"wb-{shards}-{workers}")
                shutil.rmtree(output, ignore_errors=True)
                rows.append(
                    dict(measure(workbench_command(corpus, output, vocab, args, shards, workers), env=env), run=name)
                )
                outputs[shards, workers] = output
            round_rows = rows[-(len(configurations) + bool(args.original)) :]
            checks = {"workers_byte_identical": output_digest(outputs[2, 1]) == output_digest(outputs[2, 2])}
            if args.original:
                # In a child process: TensorFlow imported here would make every later child's peak RSS
                # at least this process's (Linux counts the memory a child had at fork before exec).
                code = "import json, sys; from workbench.bench.pretraining_data import same_instances as s; "
                code += "print(json.dumps(s(sys.argv[1], sys.argv[2])))"
                pair = [outputs["original"], os.path.join(outputs[1, 1], "*.tfrecord")]
                done = subprocess.run([sys.executable, "-c", code, *pair], env=env, capture_output=True, text=True)
                if done.returncode != 0:
                    raise RuntimeError(f"comparing the outputs failed:\n{done.stderr[-3000:]}")
                identical, count = json.loads(done.stdout.splitlines()[-1])
                checks.update(one_shard_is_the_original=identical, instances=count)
            for row in round_rows:
                row.update(round=round_number, corpus_mb=round(megabytes, 2), dupe_factor=args.dupe_factor, **checks)
                log(json.dumps(row))
            if not all(v for k, v in checks.items() if k != "instances"):
                raise AssertionError(f"round {round_number}: outputs differ: {checks}")
        if args.output:
            _append_rows(args.output, rows)
        log(report(rows))
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def output_digest(directory):
    """(shard files, SHA-256 over the shard files in name order): lets runs with different worker counts be
    checked for identical output without keeping two copies of a 5 GB output (streamed in 1 MB chunks)."""
    import hashlib

    names = sorted(n for n in os.listdir(directory) if n.endswith(".tfrecord"))
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0")
        with open(os.path.join(directory, name), "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return len(names), digest.hexdigest()


def run_scale(args, log=print):
    """Memory and time against corpus size at a fixed shard size: for each size in `args.scale` (MB), the
    sample corpus repeated to that size, then one workbench run per worker count in `args.workers`
    (`--shard-size-mb`, so the command picks the shard count). Per run: wall s, CPU s (all processes), the
    largest process's peak RSS, shard files, instances and output bytes (stats.json, the files), load
    average at start and end. Each output is checked to be the same bytes whatever the worker count
    (digest) and deleted before the next run; the corpus is deleted after its size. Returns the rows."""
    work = tempfile.mkdtemp(prefix="bench-pretraining-scale-", dir=args.work_dir)
    env = _child_env()
    vocab = os.path.abspath(args.vocab or resources.sample_vocab())
    rows = []
    try:
        for megabytes in args.scale:
            corpus = os.path.join(work, "corpus.txt")
            size = make_corpus(corpus, megabytes)
            digests = {}
            for workers in args.workers:
                output = os.path.join(work, "out")
                command = workbench_command(corpus, output, vocab, args, None, workers, args.shard_size_mb)
                row = measure(command, env=env)
                shards, digests[workers] = output_digest(output)
                with open(os.path.join(output, "stats.json"), encoding="utf-8") as f:
                    stats = json.load(f)
                row = dict(
                    corpus_mb=round(size / 1e6, 2),
                    shard_size_mb=args.shard_size_mb,
                    dupe_factor=args.dupe_factor,
                    workers=workers,
                    shards=shards,
                    stats_shards=stats["shards"],
                    instances=stats["instances"],
                    output_mb=round(sum(os.path.getsize(os.path.join(output, n)) for n in os.listdir(output)) / 1e6, 1),
                    **row,
                    load_average_end=round(os.getloadavg()[0], 2),
                    same_output_as_first_workers=digests[workers] == digests[args.workers[0]],
                )
                shutil.rmtree(output)
                rows.append(row)
                log(json.dumps(row))
                if args.output:  # row by row: a long run keeps what it did
                    _append_rows(args.output, [row])
                if not row["same_output_as_first_workers"]:
                    raise AssertionError(f"{megabytes} MB: the output with {workers} workers differs")
            os.remove(corpus)
        log(scale_report(rows))
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def scale_report(rows):
    """A Markdown table of `run_scale` rows."""
    lines = [
        "| corpus | dupe factor | shards | instances | workers | wall s | CPU s | peak RSS (largest process) "
        "| load average (start-end) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['corpus_mb']:g} MB | {r['dupe_factor']} | {r['shards']} | {r['instances']:,} | {r['workers']} | "
            f"{r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_rss_mb']:,} MB | "
            f"{r['load_average']:.1f}-{r['load_average_end']:.1f} |"
        )
    return "\n".join(lines)


def ratios(rows):
    """Per round: original / workbench (CPU and wall, 1 shard 1 worker) and the worker speed-up
    (wall of 2 shards on 1 worker / on 2 workers); each a list over the rounds."""
    by_round = {}
    for row in rows:
        by_round.setdefault(row["round"], {})[row["run"]] = row
    out = {"cpu_ratio": [], "wall_ratio": [], "two_worker_speedup": []}
    for runs in by_round.values():
        one = runs["workbench, 1 shard, 1 worker"]
        if "original create_pretraining_data.py" in runs:
            original = runs["original create_pretraining_data.py"]
            out["cpu_ratio"].append(round(original["cpu_s"] / one["cpu_s"], 1))
            out["wall_ratio"].append(round(original["wall_s"] / one["wall_s"], 1))
        two = runs["workbench, 2 shards, 1 worker"]["wall_s"] / runs["workbench, 2 shards, 2 workers"]["wall_s"]
        out["two_worker_speedup"].append(round(two, 2))
    return out


def report(rows):
    """A Markdown table of the rows and the ratios per round."""
    lines = ["| round | run | wall s | CPU s | peak RSS (largest process) | load average at start |"]
    lines.append("| ---: | --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        lines.append(
            f"| {row['round']} | {row['run']} | {row['wall_s']:.1f} | {row['cpu_s']:.1f} | "
            f"{row['peak_rss_mb']:,} MB | {row['load_average']:.1f} |"
        )
    lines.append("")
    for name, values in ratios(rows).items():
        if values:
            lines.append(f"{name}: {values} (range {min(values)}-{max(values)})")
    return "\n".join(lines)


def main(argv=None, log=print):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--original", help="a checkout of google-research/bert (omit: workbench rows only)")
    parser.add_argument("--corpus", help="a corpus file (default: the sample corpus repeated to --corpus-mb)")
    parser.add_argument("--corpus-mb", type=float, default=3.0)
    parser.add_argument("--vocab", default=None, help="default: the sample vocabulary")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--max-predictions-per-seq", type=int, default=20)
    parser.add_argument("--dupe-factor", type=int, default=10)
    parser.add_argument("--random-seed", type=int, default=12345)
    parser.add_argument("--work-dir", default=None, help="where the corpus and outputs go (removed at the end)")
    parser.add_argument("--output", help="append the rows to this JSON-lines file")
    parser.add_argument(
        "--scale",
        type=_numbers(float),
        help="instead of the rounds: corpus sizes in MB, e.g. 10,100,1000, each run with --shard-size-mb "
        "and each of --workers (memory against corpus size at a fixed shard size)",
    )
    parser.add_argument("--shard-size-mb", type=float, default=10.0, help="with --scale: input text per shard")
    parser.add_argument("--workers", type=_numbers(int), default=[1, 2], help="with --scale: worker counts, e.g. 1,2")
    args = parser.parse_args(argv)
    if args.original and not os.path.isfile(os.path.join(args.original, "create_pretraining_data.py")):
        parser.error(
            f"--original {args.original}: no create_pretraining_data.py there (a google-research/bert checkout)"
        )
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    if args.scale:
        if args.original or args.corpus:
            parser.error("--scale makes its own corpora and runs the workbench only: drop --original/--corpus")
        if min(args.scale) <= 0 or args.shard_size_mb <= 0 or min(args.workers) < 1:
            parser.error("--scale sizes and --shard-size-mb must be positive, --workers >= 1")
        return run_scale(args, log=log)
    return run(args, log=log)


def _numbers(kind):
    """An argparse type: a comma-separated list of `kind`."""

    def parse(text):
        try:
            return [kind(x) for x in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None

    return parse


if __name__ == "__main__":
    main()
