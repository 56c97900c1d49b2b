"""Pretraining data at corpus scale: the original algorithm instance for instance,
shard assignment, worker independence, the Beam runner, reading shards back."""

import json
import math
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from workbench.text.wordpiece import basic_tokenize_with_offsets, load_vocab, wordpiece_with_offsets
from workbench.training.pretraining_data import (
    ExampleEncoder,
    PretrainingDataOptions,
    ShardWriter,
    _split_into_shards,
    create_pretraining_data,
    documents_from_lines,
    fast_shuffle,
    file_documents,
    list_shards,
    parse_example,
    shard_of,
    shards_for_size,
    tfrecord_frames,
    write_tfrecords,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "data", "samples", "pretraining", "corpus.txt")
VOCAB = os.path.join(ROOT, "data", "samples", "vocab.txt")
QUIET = dict(log=lambda *_: None)


# ---- the original algorithm, as google-research/bert's create_pretraining_data.py writes it ----------
def reference_instances(path, vocab, options):
    """The original script's instances (one output file), on token strings with
    `random.Random`'s own shuffle/randint/random: the specification the fast
    path must match draw for draw."""
    vocab_set = set(vocab)
    documents = [[]]
    with open(path, encoding="utf-8", newline="\n") as f:  # tf.gfile's lines end at "\n" only
        for line in f:
            line = line.strip()
            if not line:
                documents.append([])
            tokens = [
                t
                for word in basic_tokenize_with_offsets(line, options.do_lower_case)
                for t, _, _ in wordpiece_with_offsets(word, vocab_set)
            ]
            if tokens:
                documents[-1].append(tokens)
    documents = [d for d in documents if d]
    rng = random.Random(options.random_seed)
    rng.shuffle(documents)
    instances = []
    for _ in range(options.dupe_factor):
        for index in range(len(documents)):
            instances.extend(_reference_document(documents, index, options, vocab, rng))
    rng.shuffle(instances)
    return instances


def _reference_document(documents, index, options, vocab_words, rng):
    document, max_tokens = documents[index], options.max_seq_length - 3
    target = max_tokens
    if rng.random() < options.short_seq_prob:
        target = rng.randint(2, max_tokens)
    instances, chunk, length, i = [], [], 0, 0
    while i < len(document):
        chunk.append(document[i])
        length += len(document[i])
        if i == len(document) - 1 or length >= target:
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            tokens_a = [t for s in chunk[:a_end] for t in s]
            tokens_b = []
            if len(chunk) == 1 or rng.random() < 0.5:
                is_random_next = True
                for _ in range(10):
                    other = rng.randint(0, len(documents) - 1)
                    if other != index:
                        break
                random_document = documents[other]
                for j in range(rng.randint(0, len(random_document) - 1), len(random_document)):
                    tokens_b.extend(random_document[j])
                    if len(tokens_b) >= target - len(tokens_a):
                        break
                i -= len(chunk) - a_end
            else:
                is_random_next = False
                tokens_b = [t for s in chunk[a_end:] for t in s]
            while len(tokens_a) + len(tokens_b) > max_tokens:
                longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
                if rng.random() < 0.5:
                    del longer[0]
                else:
                    longer.pop()
            tokens = ["[CLS]", *tokens_a, "[SEP]", *tokens_b, "[SEP]"]
            segments = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
            instances.append((*_reference_mask(tokens, options, vocab_words, rng), segments, is_random_next))
            chunk, length = [], 0
        i += 1
    return instances


def _reference_mask(tokens, options, vocab_words, rng):
    candidates = []
    for i, token in enumerate(tokens):
        if token in ("[CLS]", "[SEP]"):
            continue
        if options.whole_word_mask and candidates and token.startswith("##"):
            candidates[-1].append(i)
        else:
            candidates.append([i])
    rng.shuffle(candidates)
    output = list(tokens)
    num_to_predict = min(options.max_predictions_per_seq, max(1, int(round(len(tokens) * options.masked_lm_prob))))
    masked, covered = [], set()
    for group in candidates:
        if len(masked) >= num_to_predict:
            break
        if len(masked) + len(group) > num_to_predict or covered & set(group):
            continue
        for index in group:
            covered.add(index)
            if rng.random() < 0.8:
                output[index] = "[MASK]"
            elif rng.random() < 0.5:
                output[index] = tokens[index]
            else:
                output[index] = vocab_words[rng.randint(0, len(vocab_words) - 1)]
            masked.append((index, tokens[index]))
    masked.sort()
    return output, [i for i, _ in masked], [t for _, t in masked]


def read_shards(files, seq, preds):
    data = tf.data.TFRecordDataset(files).map(lambda r: parse_example(r, seq, preds))
    return [{k: v.numpy() for k, v in x.items()} for x in data]


@pytest.mark.parametrize("whole_word_mask", [False, True])
def test_one_shard_is_the_original_script_instance_for_instance(tmp_path, whole_word_mask):
    vocab = load_vocab(VOCAB)
    if whole_word_mask:  # a small vocabulary, so that many words are split into ## pieces
        from workbench.text.tokenizer import build_vocab

        with open(CORPUS, encoding="utf-8") as f:
            vocab = build_vocab([line for line in f if line.strip()], vocab_size=120)
    options = PretrainingDataOptions(
        max_seq_length=48, max_predictions_per_seq=7, dupe_factor=2, whole_word_mask=whole_word_mask, random_seed=3
    )
    create_pretraining_data(CORPUS, str(tmp_path), vocab, options, shards=1, workers=1, **QUIET)
    got = read_shards(list_shards(str(tmp_path)), 48, 7)
    expected = reference_instances(CORPUS, vocab, options)
    index = {t: i for i, t in enumerate(vocab)}
    assert len(got) == len(expected) > 500
    pieces = 0
    for x, (tokens, positions, labels, segments, is_random_next) in zip(got, expected):
        n = len(tokens)
        assert x["input_ids"][:n].tolist() == [index[t] for t in tokens] and not x["input_ids"][n:].any()
        assert x["segment_ids"][:n].tolist() == segments and x["input_mask"].sum() == n
        k = len(positions)
        assert x["masked_lm_positions"][:k].tolist() == positions and not x["masked_lm_positions"][k:].any()
        assert x["masked_lm_ids"][:k].tolist() == [index[t] for t in labels]
        assert x["masked_lm_weights"].tolist() == [1.0] * k + [0.0] * (7 - k)
        assert x["next_sentence_labels"][0] == int(is_random_next)
        pieces += sum(t.startswith("##") for t in labels)
    if whole_word_mask:
        assert pieces > 100  # the whole-word path was exercised


def test_fast_shuffle_draws_as_random_shuffle():
    for n in (0, 1, 2, 3, 7, 64, 65, 125, 1000):
        library, fast = random.Random(n), random.Random(n)
        a, b = list(range(n)), list(range(n))
        library.shuffle(a)
        fast_shuffle(b, fast.getrandbits)
        assert a == b and library.getstate() == fast.getstate()


@pytest.mark.parametrize("seq", [40, 300])  # positions of one varint byte, and of two
def test_example_encoder_is_deterministic_protobuf_serialization(seq):
    rng = random.Random(seq)
    preds = 6
    encoder = ExampleEncoder(seq, preds, 30522)

    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    for _ in range(300):
        n = rng.randint(5, seq)
        ids = [rng.randrange(30522) for _ in range(n)]
        a, k = rng.randint(2, n - 1), rng.randint(1, min(preds, n - 1))
        positions = sorted(rng.sample(range(1, n), k))
        labels = [rng.randrange(30522) for _ in positions]
        nsp = rng.random() < 0.5
        example = tf.train.Example(
            features=tf.train.Features(
                feature={
                    "input_ids": ints(ids + [0] * (seq - n)),
                    "input_mask": ints([1] * n + [0] * (seq - n)),
                    "segment_ids": ints([0] * a + [1] * (n - a) + [0] * (seq - n)),
                    "masked_lm_positions": ints(positions + [0] * (preds - k)),
                    "masked_lm_ids": ints(labels + [0] * (preds - k)),
                    "masked_lm_weights": tf.train.Feature(
                        float_list=tf.train.FloatList(value=[1.0] * k + [0.0] * (preds - k))
                    ),
                    "next_sentence_labels": ints([int(nsp)]),
                }
            )
        )
        assert encoder.encode(ids, a, positions, labels, nsp) == example.SerializeToString(deterministic=True)


def test_tfrecord_files_are_byte_for_byte_tensorflows(tmp_path):
    rng = random.Random(1)
    # Empty, short and long records; lengths around the 1 MB chunk boundary of the writer.
    records = [b"", b"\x00", b"x" * 127, *(rng.randbytes(rng.randrange(1, 4000)) for _ in range(500))]
    records += [rng.randbytes((1 << 20) - 16), rng.randbytes(3 << 20)]
    with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrecord")) as writer:
        for record in records:
            writer.write(record)
    write_tfrecords(str(tmp_path / "ours.tfrecord"), records)
    expected = (tmp_path / "tf.tfrecord").read_bytes()
    assert (tmp_path / "ours.tfrecord").read_bytes() == expected
    assert b"".join(tfrecord_frames(records, chunk_bytes=1)) == expected
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / "ours.tfrecord"))] == records
    assert sorted(os.listdir(tmp_path)) == ["ours.tfrecord", "tf.tfrecord"]  # no temporary file left

    def failing():
        yield from records[:100]
        # While writing, the temporary name is no *.tfrecord: readers glob for those (TensorFlow's glob
        # matches dot files too), so a crash here leaves nothing that reads as a shard.
        assert sorted(os.listdir(tmp_path)) == ["ours.tfrecord", "ours.tfrecord.tmp", "tf.tfrecord"]
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_tfrecords(str(tmp_path / "ours.tfrecord"), failing())
    assert (tmp_path / "ours.tfrecord").read_bytes() == expected  # the complete file stays, nothing half-written
    assert sorted(os.listdir(tmp_path)) == ["ours.tfrecord", "tf.tfrecord"]
    # A URL goes through TensorFlow's file systems (ram:// here, gs:// on Cloud TPU): the same bytes.
    write_tfrecords("ram://shards/ours.tfrecord", records)
    with tf.io.gfile.GFile("ram://shards/ours.tfrecord", "rb") as f:
        assert f.read() == expected
    assert tf.io.gfile.listdir("ram://shards") == ["ours.tfrecord"]


def test_the_local_runner_does_not_import_tensorflow(tmp_path):
    code = (
        "import sys; from workbench.training.pretraining_data import create_pretraining_data as c; "
        "c(sys.argv[1], sys.argv[2], sys.argv[3], shards=2, workers=2, log=lambda *_: None); "
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code, CORPUS, str(tmp_path), VOCAB], capture_output=True, env=env)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert len(list_shards(str(tmp_path))) == 2 and (tmp_path / "stats.json").exists()


def test_the_local_runner_writes_a_url_output(three_files, tmp_path, monkeypatch):
    """A URL output (gs:// on a Cloud TPU VM) gets the local run's bytes through tf.io.gfile; the split
    files go into a local temporary directory, removed at the end."""
    import tempfile

    from workbench.training import pretraining_data

    local_tmp = tmp_path / "local-tmp"
    local_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(local_tmp))
    split_dirs = []

    def split(paths, shards, directory, **kwargs):
        split_dirs.append(directory)
        return _split_into_shards(paths, shards, directory, **kwargs)

    monkeypatch.setattr(pretraining_data, "_split_into_shards", split)
    options = PretrainingDataOptions(max_seq_length=32, max_predictions_per_seq=5, dupe_factor=2)
    inputs = str(three_files / "wiki-*.txt")
    local = create_pretraining_data(inputs, str(tmp_path / "local"), VOCAB, options, shards=3, workers=1, **QUIET)
    names = sorted(os.listdir(tmp_path / "local"))
    assert len(names) == 4 and split_dirs[0].startswith(str(tmp_path / "local"))
    # ram:// lives in one process: one worker (this process writes its shards itself). file:// is
    # TensorFlow's local file system under a URL: two workers, each writing its shards through TensorFlow.
    for url, workers in (("ram://pretraining/phase1", 1), ("file://" + str(tmp_path / "url"), 2)):
        stats = create_pretraining_data(inputs, url, VOCAB, options, shards=3, workers=workers, **QUIET)
        assert stats == local
        assert split_dirs[-1].startswith(str(local_tmp)) and os.listdir(local_tmp) == []  # removed at the end
        assert sorted(tf.io.gfile.listdir(url)) == names
        for name in names:
            with tf.io.gfile.GFile(f"{url}/{name}", "rb") as f:
                assert f.read() == (tmp_path / "local" / name).read_bytes(), (url, name)
    assert sorted(os.listdir(tmp_path / "url")) == names
    with pytest.raises(ValueError, match="output nosuch://bucket/x: TensorFlow cannot write there"):
        create_pretraining_data(inputs, "nosuch://bucket/x", VOCAB, options, shards=3, **QUIET)


@pytest.fixture(scope="module")
def three_files(tmp_path_factory):
    """The sample corpus cut into three files at document breaks."""
    directory = tmp_path_factory.mktemp("corpus")
    with open(CORPUS, encoding="utf-8") as f:
        documents = list(documents_from_lines(f))
    cuts = (0, len(documents) // 5, len(documents) // 2, len(documents))
    for number in range(3):
        part = documents[cuts[number] : cuts[number + 1]]
        (directory / f"wiki-{number}.txt").write_text("\n\n".join("\n".join(d) for d in part) + "\n")
    return directory


def test_shards_hold_their_documents_whatever_the_workers(three_files, tmp_path):
    options = PretrainingDataOptions(max_seq_length=32, max_predictions_per_seq=5, dupe_factor=1)
    inputs = str(three_files / "wiki-*.txt")
    one = create_pretraining_data(inputs, str(tmp_path / "one"), VOCAB, options, shards=4, workers=1, **QUIET)
    two = create_pretraining_data(inputs, str(tmp_path / "two"), VOCAB, options, shards=4, workers=2, **QUIET)
    assert one == two
    files = list_shards(str(tmp_path / "one"))
    assert [os.path.basename(f) for f in files] == [f"part-0000{s}-of-00004.tfrecord" for s in range(4)]
    vocab = load_vocab(VOCAB)
    for shard, path in enumerate(files):
        assert open(path, "rb").read() == open(tmp_path / "two" / os.path.basename(path), "rb").read()
        # Shard s is the original algorithm, seed + s, on documents (f + n) % 4 == s in reading order.
        mine = []
        for f, name in enumerate(sorted(os.listdir(three_files))):
            with open(three_files / name, encoding="utf-8") as text:
                mine += [d for n, d in enumerate(documents_from_lines(text)) if shard_of(f, n, 4) == shard]
        records, stats = ShardWriter(vocab, options, shard).records(mine)
        assert [r.numpy() for r in tf.data.TFRecordDataset(path)] == records and stats["documents"] == len(mine)
    assert one["documents"] == sum(1 for _ in documents_from_lines(open(CORPUS, encoding="utf-8")))


def test_split_pass_streams_through_a_small_buffer(three_files, tmp_path):
    paths = sorted(str(p) for p in three_files.iterdir())
    count, files = _split_into_shards(paths, 3, str(tmp_path), buffer_bytes=500)
    for shard, name in enumerate(files):
        with open(name, encoding="utf-8") as f:
            got = list(documents_from_lines(f))
        expected = []
        for file_index, path in enumerate(paths):
            with open(path, encoding="utf-8") as f:
                expected += [d for n, d in enumerate(documents_from_lines(f)) if shard_of(file_index, n, 3) == shard]
        assert got == expected
    assert count == sum(1 for p in paths for _ in documents_from_lines(open(p, encoding="utf-8")))


def test_shard_count_from_size_and_bad_arguments(tmp_path):
    assert shards_for_size([CORPUS], 0.05) == math.ceil(os.path.getsize(CORPUS) / (0.05 * 2**20)) == 2
    assert shards_for_size([CORPUS], 100) == 1
    with pytest.raises(ValueError, match="shard_size_mb must be positive"):
        shards_for_size([CORPUS], 0)
    with pytest.raises(ValueError, match="shards must be >= 1"):
        create_pretraining_data(CORPUS, str(tmp_path / "o"), VOCAB, shards=0, **QUIET)
    with pytest.raises(FileNotFoundError, match="no pretraining shards match .*nothing"):
        list_shards(str(tmp_path / "nothing" / "*.tfrecord"))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\u00e9 ol\u00e9.\n\nthe end.\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin.txt, line 1: not UTF-8 text"):
        create_pretraining_data(str(latin), str(tmp_path / "o"), VOCAB, **QUIET)
    # Lines end at "\n" only (as tf.gfile reads them): "\r\r" is no document break.
    returns = tmp_path / "returns.txt"
    returns.write_bytes(b"the cat sleeps.\r\rthe dog runs.\r\n\r\nthe fox waits.\r\n")
    assert [len(d) for d in file_documents(str(returns))] == [1, 1]
    # More shards than documents: the extra shards are empty files, the rest as usual.
    two = tmp_path / "two.txt"
    two.write_text("the cat sleeps.\nthe dog runs.\n\nthe fox waits.\nthe owl sings.\n")
    messages = []
    options = PretrainingDataOptions(max_seq_length=16, max_predictions_per_seq=2, dupe_factor=1)
    stats = create_pretraining_data(str(two), str(tmp_path / "s"), VOCAB, options, shards=3, log=messages.append)
    assert "1 shard(s) stay empty" in messages[0] and stats["documents"] == 2
    assert os.path.getsize(tmp_path / "s" / "part-00002-of-00003.tfrecord") == 0
    assert not [f for f in os.listdir(tmp_path / "s") if f.startswith(".tmp")]
    # The same output again: its own shards are rewritten. Another shard count: refused before
    # any work, since pretraining would read both runs' shards.
    create_pretraining_data(str(two), str(tmp_path / "s"), VOCAB, options, shards=3, log=messages.append)
    before = sorted(os.listdir(tmp_path / "s"))
    with pytest.raises(ValueError, match=r"already holds 3 shard\(s\) of another run \(part-00000-of-00003"):
        create_pretraining_data(str(two), str(tmp_path / "s"), VOCAB, options, shards=2, log=messages.append)
    assert sorted(os.listdir(tmp_path / "s")) == before


def test_cli_rejects_beam_options_for_the_local_runner(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "pretraining-data", "--input", CORPUS, "--output", str(tmp_path)]
        + ["--vocab", VOCAB, "--", "--runner=DataflowRunner"],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=ROOT),
    )
    assert done.returncode != 0 and "Beam pipeline options: add --runner beam" in done.stderr


def test_beam_runner_writes_the_local_runners_shards(three_files, tmp_path):
    pytest.importorskip("apache_beam", reason="apache-beam is not installed (pip install '.[beam]')")
    from workbench.training.beam_pipeline import run_pipeline
    from workbench.training.pretrain import phase_stream

    options = PretrainingDataOptions(max_seq_length=32, max_predictions_per_seq=5, dupe_factor=2, random_seed=11)
    inputs = str(three_files / "wiki-*.txt")
    local = create_pretraining_data(inputs, str(tmp_path / "local"), VOCAB, options, shards=3, workers=1, **QUIET)
    beam = run_pipeline(
        inputs,
        str(tmp_path / "beam"),
        VOCAB,
        options,
        shards=3,
        pipeline_args=["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"],
        **QUIET,
    )
    assert beam == local
    for name in ("part-00000-of-00003.tfrecord", "part-00001-of-00003.tfrecord", "part-00002-of-00003.tfrecord"):
        assert (tmp_path / "beam" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert json.loads((tmp_path / "beam" / "stats.json").read_text()) == local
    # Training reads either runner's shards by directory or glob, streaming.
    batches = [
        list(phase_stream(list_shards(location), local["instances"], 32, 5, 16, 4, seed=5))
        for location in (str(tmp_path / "local"), str(tmp_path / "beam" / "part-*.tfrecord"))
    ]
    for (x1, y1, _), (x2, y2, _) in zip(*batches):
        assert all(np.array_equal(x1[k], x2[k]) for k in x1) and np.array_equal(y1["mlm_logits"], y2["mlm_logits"])
    assert len(batches[0]) == 4 and batches[0][0][0]["token_ids"].shape == (16, 32)


def test_benchmark_times_the_runs_and_checks_their_outputs(tmp_path):
    from workbench.bench import pretraining_data as bench

    corpus = tmp_path / "corpus.txt"
    size = bench.make_corpus(str(corpus), 0.15)
    with open(CORPUS, encoding="utf-8") as f:
        copy = f.read().rstrip("\n") + "\n\n"
    assert corpus.read_text(encoding="utf-8") == copy * 2 and size >= 150_000  # whole copies, at least 0.15 MB
    lines = []
    argv = ["--corpus", str(corpus), "--rounds", "1", "--dupe-factor", "1", "--max-seq-length", "32"]
    argv += ["--max-predictions-per-seq", "5", "--work-dir", str(tmp_path), "--output", str(tmp_path / "rows.jsonl")]
    rows = bench.main(argv, log=lines.append)
    assert [r["run"] for r in rows] == [
        "workbench, 1 shard, 1 worker",
        "workbench, 2 shards, 1 worker",
        "workbench, 2 shards, 2 workers",
    ]
    assert all(r["workers_byte_identical"] and r["cpu_s"] > 0 and r["wall_s"] > 0 for r in rows)
    assert [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()] == rows
    assert "| 1 | workbench, 2 shards, 2 workers |" in lines[-1] and "two_worker_speedup" in lines[-1]
    assert sorted(os.listdir(tmp_path)) == ["corpus.txt", "rows.jsonl"]  # its work directory is removed
    with pytest.raises(SystemExit):
        bench.main(["--original", str(tmp_path)])


def test_benchmark_scale_mode_runs_each_size_at_a_fixed_shard_size(tmp_path):
    from workbench.bench import pretraining_data as bench

    lines = []
    argv = ["--scale", "0.15,0.3", "--shard-size-mb", "0.05", "--workers", "1,2", "--dupe-factor", "1"]
    argv += ["--max-seq-length", "32", "--max-predictions-per-seq", "5", "--work-dir", str(tmp_path)]
    rows = bench.main([*argv, "--output", str(tmp_path / "rows.jsonl")], log=lines.append)
    with open(CORPUS, encoding="utf-8") as f:
        copy = len((f.read().rstrip("\n") + "\n\n").encode("utf-8"))
    expected = []
    for megabytes in (0.15, 0.3):
        size = math.ceil(megabytes * 1e6 / copy) * copy  # whole copies of the sample corpus
        expected += [(round(size / 1e6, 2), math.ceil(size / (0.05 * 2**20)), w) for w in (1, 2)]
    assert [(r["corpus_mb"], r["shards"], r["workers"]) for r in rows] == expected
    assert expected[2][1] > expected[0][1] > 1  # the shard count follows the corpus size
    for r in rows:
        assert r["stats_shards"] == r["shards"] and r["same_output_as_first_workers"]
        assert r["wall_s"] > 0 and r["cpu_s"] > 0 and r["peak_rss_mb"] > 0 and r["output_mb"] > 0
        assert r["dupe_factor"] == 1 and r["shard_size_mb"] == 0.05 and "load_average_end" in r
    assert rows[0]["instances"] == rows[1]["instances"] < rows[2]["instances"] == rows[3]["instances"]
    assert [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()] == rows
    assert lines[-1].count("\n") == 5 and "| peak RSS (largest process) |" in lines[-1]
    assert os.listdir(tmp_path) == ["rows.jsonl"]  # corpora and outputs removed
    with pytest.raises(SystemExit):
        bench.main(["--scale", "1", "--corpus", CORPUS])


def test_benchmark_compares_instances_not_bytes(tmp_path):
    from workbench.bench.pretraining_data import same_instances

    options = PretrainingDataOptions(max_seq_length=32, max_predictions_per_seq=5, dupe_factor=1)
    for name, seed, shards in (("a", 1, 1), ("b", 1, 1), ("c", 2, 1), ("d", 1, 2)):
        options.random_seed = seed
        create_pretraining_data(CORPUS, str(tmp_path / name), VOCAB, options, shards=shards, workers=1, **QUIET)
    same, count = same_instances(str(tmp_path / "a" / "*.tfrecord"), str(tmp_path / "b" / "*.tfrecord"))
    assert same and count > 100
    assert not same_instances(str(tmp_path / "a" / "*.tfrecord"), str(tmp_path / "c" / "*.tfrecord"))[0]
    assert not same_instances(str(tmp_path / "d" / "*.tfrecord"), str(tmp_path / "d" / "part-00000*"))[0]
