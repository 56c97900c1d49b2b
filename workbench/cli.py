"""`python -m workbench <command>`: the workbench from a terminal.

Each command is a function taking the parsed arguments; `build_parser` lists
them. Heavy imports happen inside the commands, so `--help` is instant.
"""

import argparse
import sys

from workbench import resources  # standard library only: the shipped files the defaults name


def cmd_sizes(args):
    """Print the named model sizes with their parameter counts (all, and
    without the embeddings: the count that scales compute)."""
    from workbench.models.config import BERT_SIZES, BertConfig

    print(f"{'name':<12} {'L':>3} {'H':>5} {'A':>3} {'I':>5} {'params (M)':>11} {'non-embedding (M)':>18}")
    for name in BERT_SIZES:
        config = BertConfig.from_size(name, vocab_size=args.vocab_size)
        print(
            f"{name:<12} {config.num_hidden_layers:>3} {config.hidden_size:>5} {config.num_attention_heads:>3} "
            f"{config.intermediate_size:>5} {config.num_parameters() / 1e6:>11.1f} "
            f"{config.num_parameters(non_embedding=True) / 1e6:>18.1f}"
        )


def _boolean(text):
    """An on/off option's value: true/false, yes/no or 1/0 (anything else is an error, not False)."""
    value = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value


def _positive_int(text):
    """A count or size option: an integer >= 1 (argparse names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def cmd_build_vocab(args):
    """Learn a WordPiece vocabulary from text files."""
    from workbench.files import first_undecodable_line
    from workbench.text.tokenizer import build_vocab, save_vocab

    def lines():
        for path in args.input:
            with open(path, encoding="utf-8") as f:
                try:
                    yield from (line for line in f if line.strip())
                except UnicodeDecodeError as e:
                    raise ValueError(f"{path}, line {first_undecodable_line(path)}: not UTF-8 text ({e})") from None

    vocab = build_vocab(lines(), vocab_size=args.size, lowercase=not args.cased)
    save_vocab(vocab, args.output)
    print(f"wrote {len(vocab)} tokens to {args.output}")


def cmd_tokenize(args):
    """Tokenize text as the original BERT would, with character offsets."""
    from workbench.text.tokenizer import BertTokenizer

    tokenizer = BertTokenizer(args.vocab, lowercase=not args.cased)
    text = " ".join(args.text) if args.text else sys.stdin.read()
    for token, start, end in tokenizer.tokenize_with_offsets(text):
        print(f"{tokenizer.token_to_id(token)}\t{token}\t{start}\t{end}\t{text[start:end]}")


def cmd_tasks(args):
    """Print every task with its splits, labels and metrics."""
    from workbench.tasks.registry import TASK_NAMES, get_task

    rows = [get_task(name).describe() for name in TASK_NAMES]
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in rows[0]}
    print("  ".join(k.ljust(widths[k]) for k in widths))
    for r in rows:
        print("  ".join(r[k].ljust(widths[k]) for k in widths))


def cmd_download(args):
    """Download benchmarks from their official addresses into the data directory."""
    from workbench.tasks.download import download

    results = download(args.name, data_dir=args.data_dir, force=args.force)
    failed = {task: err for task, err in results.items() if isinstance(err, Exception)}
    if failed:
        raise RuntimeError(f"not downloaded: {', '.join(failed)} (see above)")


def cmd_bench_featurize(args):
    """Time SQuAD featurization on a synthetic SQuAD-v1.1-sized input."""
    import os

    from workbench.bench import featurize as featurize_benchmark
    from workbench.text.tokenizer import BertTokenizer

    tokenizer = BertTokenizer(args.vocab or resources.sample_vocab(), lowercase=True)
    result = featurize_benchmark.run(tokenizer, questions=args.questions, workers=args.workers)
    print(
        f"{result['questions']} questions -> {result['windows']} windows in {result['seconds']:.1f} s "
        f"({result['questions_per_second']:.0f} questions/s, {args.workers or os.cpu_count()} workers)"
    )


def cmd_notebooks(args):
    """Print the paths of the notebooks shipped with the workbench, or copy them into a folder: a pip install
    keeps them inside the package, where papermill can run them but Jupyter users should not edit them."""
    if args.copy_to is None:
        for name in resources.notebook_names():
            print(resources.notebook(name))
        return
    try:
        written = resources.copy_notebooks(args.copy_to, overwrite=args.overwrite)
    except FileExistsError as e:
        raise RuntimeError(f"{e}; nothing was copied") from None
    for path in written:
        print("wrote", path)


def cmd_run_suite(args):
    """Execute the fine-tuning notebooks of a suite with papermill."""
    from workbench.runs.suite import parse_grid, run_suite

    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise ValueError(f"--seeds: expected comma-separated integers such as 1,2,3, got {args.seeds!r}") from None
    summary = run_suite(
        args.suite,
        model=args.model,
        seeds=seeds,
        grid=parse_grid(args.grid),
        skip_done=args.skip_done,
        data_dir=args.data_dir,
        results_dir=args.results_dir,
        jobs=args.jobs,
        tasks=args.tasks.split(",") if args.tasks else None,
        report=not args.no_report,
    )
    failed = summary.attrs.get("failed_runs", [])
    if failed:  # a batch job (make suite, CI) must not pass with failed runs
        raise RuntimeError(f"{len(failed)} run(s) failed: {', '.join(failed)} (their notebooks are kept; see above)")


def cmd_bench_analysis(args):
    """Time the analysis pages on synthetic dev sets."""
    from workbench.bench import analysis

    analysis.main(["--examples", str(args.examples), "--tasks", args.tasks])


def cmd_convert(args):
    """Convert a checkpoint between layouts."""
    from workbench.checkpoints.export import convert

    print("wrote", convert(args.src, args.dst, args.to, lowercase=args.lowercase))


def cmd_extract_features(args):
    """Contextual embeddings of chosen layers for a file of lines (or `A ||| B` pairs)."""
    from workbench.checkpoints.load import load_pretrained
    from workbench.explore.hidden_states import extract_features, read_lines, write_jsonl, write_npz

    try:
        layers = tuple(int(x) for x in args.layers.split(","))
    except ValueError:
        raise ValueError(f"--layers: expected comma-separated integers such as -1,-2, got {args.layers!r}") from None
    texts_a, texts_b = read_lines(args.input)  # bad input before the model loads
    pretrained = load_pretrained(args.model, vocab=args.vocab, lowercase=args.lowercase)
    results = extract_features(pretrained.encoder, pretrained.tokenizer, texts_a, texts_b, layers, args.max_seq_length)
    (write_npz if args.output.endswith(".npz") else write_jsonl)(results, args.output)
    print(f"wrote features of {len(results)} inputs to {args.output}")


def cmd_pretraining_data(args):
    """Create pretraining TFRecords with the official algorithm (locally or as a Beam pipeline)."""
    import time

    from workbench.training.pretraining_data import PretrainingDataOptions, create_pretraining_data

    options = PretrainingDataOptions(
        max_seq_length=args.max_seq_length,
        max_predictions_per_seq=args.max_predictions_per_seq,
        masked_lm_prob=args.masked_lm_prob,
        dupe_factor=args.dupe_factor,
        short_seq_prob=args.short_seq_prob,
        random_seed=args.random_seed,
        do_lower_case=not args.cased,
        whole_word_mask=args.whole_word_mask,
    )
    if args.runner == "local" and args.beam_args:
        raise SystemExit(f"pretraining-data: {args.beam_args} are Beam pipeline options: add --runner beam")
    started = time.perf_counter()
    if args.runner == "beam":
        from workbench.training.beam_pipeline import run_pipeline

        stats = run_pipeline(
            args.input, args.output, args.vocab, options, args.shards, args.beam_args, shard_size_mb=args.shard_size_mb
        )
        where = "Beam"
    else:
        stats = create_pretraining_data(
            args.input,
            args.output,
            args.vocab,
            options,
            shards=args.shards,
            workers=args.workers,
            shard_size_mb=args.shard_size_mb,
        )
        where = f"{args.workers or 'all'} workers"
    seconds = time.perf_counter() - started
    print(
        f"{stats['instances'] / seconds:.0f} instances/s ({seconds:.1f} s, {stats['shards']} shards, {where}); "
        f"statistics in {args.output}/stats.json"
    )


def cmd_bench_attention(args):
    """Time the explorer's response to a layer/head change (Python side)."""
    import statistics
    import time

    from workbench.explore.explorer import AttentionExplorer
    from workbench.models.config import BertConfig
    from workbench.models.encoder import BertEncoder
    from workbench.text.tokenizer import BertTokenizer

    tokenizer = BertTokenizer(
        args.vocab or resources.sample_vocab(), lowercase=True
    )  # the benchmark text is lowercase vocabulary words
    encoder = BertEncoder.from_config_object(BertConfig.from_size(args.model, vocab_size=tokenizer.vocabulary_size()))
    words = [w for w in tokenizer.get_vocabulary() if w.isalpha()][:400]
    text = " ".join(words[i % len(words)] for i in range(args.tokens))
    started = time.perf_counter()
    explorer = AttentionExplorer(encoder, tokenizer, text, max_seq_length=args.tokens)
    first = time.perf_counter() - started
    times = []
    for i in range(args.repeats):
        started = time.perf_counter()
        explorer.set_layer(i % encoder.num_layers)
        explorer.set_heads([i % encoder.num_heads])
        times.append(time.perf_counter() - started)
    print(
        f"{args.model}, {len(explorer.tokens)} tokens: first input {first:.2f} s (attention + all views); "
        f"layer+head change median {1000 * statistics.median(times):.1f} ms, max {1000 * max(times):.1f} ms"
    )


def _model_step_settings(args):
    """What `_add_model_step_options` reads besides the model, as `measure` and `max_batch_size` take it."""
    return dict(
        mode=args.mode, precision=args.precision, xla="auto" if args.xla is None else args.xla, strategy=args.strategy
    )


def cmd_speed(args):
    """Throughput, FLOP/s and MFU of a training or inference step."""
    from workbench.bench.speed import measure, record

    row = measure(
        args.model,
        seq=args.seq,
        batch=args.batch,
        **_model_step_settings(args),
        steps=args.steps,
        warmup=args.warmup,
        baseline=not args.no_baseline,
        profile_dir=args.profile,
        min_seconds=args.min_seconds,
        ceiling=args.ceiling,
    )
    record(row, args.output)
    rate = row["input_sequences_per_second"]
    print(
        f"{row['model']} {row['mode']} seq {row['seq']} batch {row['batch']} "
        f"({row['backend']}, {row['precision']}, xla={row['xla']}, {row['device']}): "
        f"{row['sequences_per_second']} seq/s, {row['tflops']} TFLOP/s, peak {row['peak_tflops']} TFLOP/s, "
        f"MFU {row['mfu']}"
        + (f" (the layer matmuls alone: {row['matmul_mfu']})" if row["matmul_mfu"] != "" else "")
        + f", vs plain keras-hub (same precision) {row['vs_keras_hub'] or '-'}x; "
        + (
            f"input pipeline {rate} seq/s ({rate / row['sequences_per_second']:.0f}x the step)"
            if rate != ""
            else "synthetic NumPy batches (no TensorFlow: no tf.data pipeline)"
        )
        + f"  -> {args.output}"
    )


def cmd_max_batch(args):
    """The largest batch per sequence length that fits in device memory."""
    from workbench.bench.speed import max_batch_size, record

    for seq in args.seq:
        row = max_batch_size(
            args.model,
            seq=seq,
            **_model_step_settings(args),
            start=args.start,
            limit=args.limit,
        )
        record(row, args.output)
        print(
            f"{row['model']} {row['mode']} seq {seq} ({row['backend']}, {row['precision']}, xla={row['xla']}, "
            f"{row['device']}): "
            f"max batch {row['max_batch']}  -> {args.output}"
        )


def cmd_bench_input(args):
    """Input-pipeline throughput and fit() return delays."""
    from workbench.bench.input import describe_delays, fit_return_delays, input_throughput, synthetic_features

    features = synthetic_features(args.batch * 8, args.seq)
    for mode in ("train", "pretrain"):
        rate = input_throughput(mode, features, args.batch, args.batches)
        print(f"{mode} stream, seq {args.seq} batch {args.batch}: {rate:,.0f} sequences/s")
    if args.runs:
        print("fit() return delay, workbench stream:     " + describe_delays(fit_return_delays(False, args.runs)))
        print("fit() return delay, tf.data autotune on: " + describe_delays(fit_return_delays(True, args.runs)))


SAMPLE_VOCAB_HELP = "vocab.txt (default: the sample vocabulary shipped with the workbench)"


def _add_model_step_options(p):
    """The model and how its step runs, alike for `speed` and `max-batch` (`workbench.bench.speed`), so that
    the largest batch found is the one `speed` would run."""
    p.add_argument("--model", default="base", help="size name: tiny ... base, large")
    p.add_argument("--mode", choices=["train", "predict", "pretrain"], default="train")
    p.add_argument("--precision", default="auto")
    p.add_argument(
        "--xla",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="default: on under JAX; under TensorFlow on for GPUs and TPUs, off on CPUs",
    )
    p.add_argument("--strategy", default="auto")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m workbench",
        description="BERT Workbench: pretrain, fine-tune and look inside BERT.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = commands.add_parser("sizes", help="list the named model sizes and their parameter counts")
    p.add_argument("--vocab-size", type=int, default=30522)
    p.set_defaults(func=cmd_sizes)

    p = commands.add_parser("build-vocab", help="learn a WordPiece vocab.txt from text files")
    p.add_argument("--input", nargs="+", required=True, help="text files, one sentence or paragraph per line")
    p.add_argument("--output", required=True, help="vocab.txt to write")
    p.add_argument("--size", type=_positive_int, default=30522, help="target vocabulary size")
    p.add_argument("--cased", action="store_true", help="keep case and accents (default: lowercase)")
    p.set_defaults(func=cmd_build_vocab)

    p = commands.add_parser("tasks", help="list the benchmarks with their splits, labels and metrics")
    p.set_defaults(func=cmd_tasks)

    p = commands.add_parser(
        "download", help="download a benchmark (a task name, glue or all) from its official address"
    )
    p.add_argument("name", help="task name, 'glue' or 'all'")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--force", action="store_true", help="download again even if the files are present")
    p.set_defaults(func=cmd_download)

    p = commands.add_parser("bench-featurize", help="benchmark SQuAD featurization on a synthetic SQuAD-sized input")
    p.add_argument(
        "--vocab", default=None, help="vocab.txt (default: the sample vocabulary shipped with the workbench)"
    )
    p.add_argument("--questions", type=int, default=87_599)
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.set_defaults(func=cmd_bench_featurize)

    p = commands.add_parser(
        "run-suite", help="fine-tune on a suite of benchmarks with papermill; CSV tables beside the paper"
    )
    p.add_argument("--suite", required=True, choices=["embedded", "glue", "squad", "swag", "ner", "all"])
    p.add_argument("--model", default=None, help="size name, keras-hub preset or model directory (embedded: tiny)")
    p.add_argument("--seeds", default="1", help="comma-separated seeds, e.g. 1,2,3")
    p.add_argument("--grid", nargs="*", default=[], help="NAME=V1,V2 ... e.g. learning_rate=2e-5,3e-5 batch_size=16,32")
    p.add_argument("--skip-done", action="store_true", help="leave out runs that already succeeded")
    p.add_argument("--data-dir", default=None, help="default: data (embedded: the samples shipped with the workbench)")
    p.add_argument(
        "--results-dir", default=None, help="default: results (embedded: results/embedded), in the working directory"
    )
    p.add_argument("--jobs", type=int, default=1, help="notebooks run at once")
    p.add_argument("--tasks", default=None, help="comma-separated subset of the suite's tasks")
    p.add_argument("--no-report", action="store_true", help="do not end with report.html")
    p.set_defaults(func=cmd_run_suite)

    p = commands.add_parser("notebooks", help="list the notebooks shipped with the workbench, or copy them out")
    p.add_argument("--copy-to", metavar="DIR", default=None, help="copy them into DIR (created if missing)")
    p.add_argument("--overwrite", action="store_true", help="replace notebooks already in DIR")
    p.set_defaults(func=cmd_notebooks)

    from workbench.bench.analysis import MAKERS

    p = commands.add_parser("bench-analysis", help="time the per-task analysis pages on synthetic dev sets")
    p.add_argument("--examples", type=int, default=10_000)
    p.add_argument("--tasks", default=",".join(MAKERS), help=f"comma-separated, from {', '.join(MAKERS)}")
    p.set_defaults(func=cmd_bench_analysis)

    p = commands.add_parser(
        "convert",
        help="convert a model: Google release, Hugging Face, keras-hub preset -> keras-preset, google or savedmodel",
    )
    p.add_argument(
        "src", help="model directory, preset name or hf:// handle (savedmodel: a run directory or .keras task model)"
    )
    p.add_argument("dst", help="output directory")
    p.add_argument("--to", required=True, choices=["keras-preset", "google", "savedmodel"])
    p.add_argument("--lowercase", type=_boolean, default=None)
    p.set_defaults(func=cmd_convert)

    p = commands.add_parser("extract-features", help="contextual embeddings of chosen layers (JSON lines or .npz)")
    p.add_argument("--model", required=True)
    p.add_argument("--vocab", default=None, help="vocab.txt when --model is a size name")
    p.add_argument("--lowercase", type=_boolean, default=None)
    p.add_argument("--input", required=True, help="text file: one input per line, 'A ||| B' for pairs")
    p.add_argument("--output", required=True, help="output .jsonl (original format) or .npz")
    p.add_argument(
        "--layers",
        default="-1,-2,-3,-4",
        help="layer indices as the original's: 0 the first layer, -1 the last, -(L+1) the embedding output",
    )
    p.add_argument("--max-seq-length", type=int, default=128)
    p.set_defaults(func=cmd_extract_features)

    p = commands.add_parser(
        "pretraining-data", help="create pretraining TFRecords (official create_pretraining_data algorithm)"
    )
    p.add_argument(
        "--input",
        nargs="+",
        required=True,
        help="text files or globs: a sentence per line, blank line between documents",
    )
    p.add_argument(
        "--output",
        required=True,
        help="output directory for TFRecord shards and stats.json: local, or a URL TensorFlow writes (gs://...); "
        "the local runner then splits the corpus in a local temporary directory (TMPDIR)",
    )
    p.add_argument("--vocab", required=True)
    p.add_argument("--cased", action="store_true", help="do not lowercase (default: do_lower_case)")
    p.add_argument("--max-seq-length", type=int, default=128)
    p.add_argument("--max-predictions-per-seq", type=int, default=20)
    p.add_argument("--masked-lm-prob", type=float, default=0.15)
    p.add_argument("--dupe-factor", type=int, default=10)
    p.add_argument("--short-seq-prob", type=float, default=0.1)
    p.add_argument("--random-seed", type=int, default=12345)
    p.add_argument("--whole-word-mask", action="store_true")
    shards = p.add_mutually_exclusive_group()
    shards.add_argument("--shards", type=int, default=4, help="output files (output depends on seed and shards only)")
    shards.add_argument(
        "--shard-size-mb",
        type=float,
        default=None,
        help="instead of --shards: about this much input text per shard (peak memory follows it)",
    )
    p.add_argument("--workers", type=int, default=None, help="local runner: processes (default: all cores)")
    p.add_argument(
        "--runner",
        choices=("local", "beam"),
        default="local",
        help="local: worker processes on this machine; beam: an Apache Beam pipeline (pip install .[beam]), "
        "its options after --, e.g. -- --runner=DataflowRunner --project=... (same output as local)",
    )
    p.add_argument("beam_args", nargs="*", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_pretraining_data)

    p = commands.add_parser("bench-attention", help="benchmark the attention explorer's update time")
    p.add_argument("--model", default="base", help="size name (random weights)")
    p.add_argument(
        "--vocab", default=None, help="vocab.txt (default: the sample vocabulary shipped with the workbench)"
    )
    p.add_argument("--tokens", type=_positive_int, default=128)
    p.add_argument("--repeats", type=_positive_int, default=20)
    p.set_defaults(func=cmd_bench_attention)

    p = commands.add_parser(
        "speed", help="measure throughput, FLOP/s and MFU against the matmul peak and plain keras-hub"
    )
    _add_model_step_options(p)
    p.add_argument("--seq", type=_positive_int, default=128)
    p.add_argument("--batch", type=_positive_int, default=32)
    p.add_argument("--steps", type=_positive_int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument(
        "--min-seconds",
        type=float,
        default=10.0,
        help="time at least this many seconds of steps after warm-up (more steps for small models)",
    )
    p.add_argument("--no-baseline", action="store_true", help="skip the plain keras-hub comparison")
    p.add_argument(
        "--ceiling",
        action="store_true",
        help="also time the step's layer matmuls alone: the MFU the step could reach at this shape (matmul_mfu)",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="also write a profiler trace (TensorFlow's or JAX's) of two steps to DIR (open with TensorBoard)",
    )
    p.add_argument("--output", default="results/speed.csv")
    p.set_defaults(func=cmd_speed)

    p = commands.add_parser("max-batch", help="largest batch per sequence length that fits in accelerator memory")
    _add_model_step_options(p)
    p.add_argument("--seq", type=_positive_int, nargs="+", default=[128, 512])
    p.add_argument("--start", type=_positive_int, default=8)
    p.add_argument("--limit", type=_positive_int, default=4096, help="largest batch tried (on CPU keep it within RAM)")
    p.add_argument("--output", default="results/max_batch.csv")
    p.set_defaults(func=cmd_max_batch)

    p = commands.add_parser("bench-input", help="input-pipeline throughput and fit() return delays")
    p.add_argument("--seq", type=_positive_int, default=128)
    p.add_argument("--batch", type=_positive_int, default=32)
    p.add_argument("--batches", type=_positive_int, default=300)
    p.add_argument("--runs", type=int, default=6, help="short fit() runs per setting for the return delay (0: skip)")
    p.set_defaults(func=cmd_bench_input)

    p = commands.add_parser("tokenize", help="tokenize text with a vocab.txt, printing ids and offsets")
    p.add_argument("--vocab", required=True)
    p.add_argument("--cased", action="store_true")
    p.add_argument("text", nargs="*", help="text to tokenize (default: standard input)")
    p.set_defaults(func=cmd_tokenize)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        args.func(args)
    except (ValueError, OSError, RuntimeError) as e:  # bad input, unreadable or unwritable paths
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
