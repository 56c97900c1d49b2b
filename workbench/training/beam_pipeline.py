"""Pretraining data as an Apache Beam pipeline: the local runner's algorithm on many machines.

The pipeline is the local runner's steps with Beam moving the documents: read
every input file (in parallel, each file by one worker), key each document by
its shard (`pretraining_data.shard_of`: file index and document number), group
by shard, sort a shard's documents back into reading order, and run
`ShardWriter` on them. The shard files and `stats.json` are byte for byte the
local runner's for the same seed and shard count (`tests/test_pretraining_data.py`
checks it with the DirectRunner in multi-process mode), whatever runner
(Dataflow, Flink, Spark) and however many workers.

Paths may be on any filesystem Beam reads (`gs://` with the `gcp` extra of
apache-beam) and TensorFlow writes. A worker holds one shard's documents and
instances: pick `shards` (or `shard_size_mb`) so that one fits a worker's memory
(about 0.4 GB per 10 MB of text at dupe factor 10, docs/pretraining-data.md).

Example:
```python
run_pipeline("gs://bucket/wiki/*.txt", "gs://bucket/phase1", "vocab.txt", options, shards=1000,
             pipeline_args=["--runner=DataflowRunner", "--project=my-project", "--region=us-central1",
                            "--temp_location=gs://bucket/tmp"])
```
"""

import io
import json
import os

from workbench.training.pretraining_data import (
    PretrainingDataOptions,
    ShardWriter,
    check_no_other_shards,
    documents_from_lines,
    load_vocab_tokens,
    log_stats,
    shard_of,
    shard_path,
    shards_for_size,
    summarize,
    write_stats,
)


def _beam():
    try:
        import apache_beam
    except ImportError as error:
        raise ImportError(
            "--runner beam needs Apache Beam: pip install 'bert-workbench[beam]' (or pip install apache-beam)"
        ) from error
    return apache_beam


def match_inputs(inputs):
    """[(path, size in bytes)] for files or globs on any filesystem Beam reads,
    sorted by path as the local runner sorts them."""
    from apache_beam.io.filesystems import FileSystems

    patterns = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    found = {}
    for pattern, result in zip(patterns, FileSystems.match([os.fspath(p) for p in patterns])):
        if not result.metadata_list:
            raise FileNotFoundError(f"corpus file not found: {pattern}")
        found.update((m.path, m.size_in_bytes) for m in result.metadata_list)
    return sorted(found.items())


def keyed_documents(indexed_path, shards):
    """(shard, (file index, document number, sentences)) for every document of
    one input file, read as the local runner reads it (UTF-8, lines end at "\\n")."""
    from apache_beam.io.filesystems import FileSystems

    file_index, path = indexed_path
    with FileSystems.open(path) as raw:
        for number, document in enumerate(documents_from_lines(io.TextIOWrapper(raw, encoding="utf-8", newline="\n"))):
            yield shard_of(file_index, number, shards), (file_index, number, document)


def write_shard(keyed, vocab, options, shards, output_dir):
    """One shard's TFRecord file from its grouped documents; its statistics."""
    shard, documents = keyed
    ordered = (document for _, _, document in sorted(documents, key=lambda d: (d[0], d[1])))
    stats = ShardWriter(vocab, options, shard).write(ordered, shard_path(output_dir, shard, shards))
    return dict(stats, shard=shard)


def finish(results, output_dir, options, shards):
    """Empty files for shards that got no document (as the local runner writes
    them), then `stats.json`."""
    import tensorflow as tf

    written = {r.pop("shard") for r in results}
    for shard in set(range(shards)) - written:
        with tf.io.TFRecordWriter(shard_path(output_dir, shard, shards)):
            pass
    documents = sum(r["documents"] for r in results)
    if documents < 2:
        raise ValueError(
            f"the corpus has {documents} document(s): next-sentence prediction needs a blank line between documents"
        )
    write_stats(output_dir, summarize(results, shards, options))


def run_pipeline(inputs, output_dir, vocab, options=None, shards=4, pipeline_args=(), shard_size_mb=None, log=print):
    """Write the shards and `stats.json` of `create_pretraining_data` with a Beam
    pipeline; `pipeline_args` are Beam's own options (runner, project, workers).

    Returns the statistics dict (read back from `stats.json`).
    """
    beam = _beam()
    import tensorflow as tf
    from apache_beam.options.pipeline_options import PipelineOptions

    options = options or PretrainingDataOptions()
    options.validate()
    tokens = load_vocab_tokens(vocab)
    files = match_inputs(inputs)
    if shard_size_mb is not None:
        sizes = dict(files)
        shards = shards_for_size(list(sizes), shard_size_mb, size=sizes.__getitem__)
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    check_no_other_shards(output_dir, shards)
    tf.io.gfile.makedirs(output_dir)
    with beam.Pipeline(options=PipelineOptions(list(pipeline_args))) as pipeline:
        _ = (
            pipeline
            | "Input files" >> beam.Create(list(enumerate(path for path, _ in files)))
            | "Spread the files" >> beam.Reshuffle()
            | "Documents by shard" >> beam.FlatMap(keyed_documents, shards)
            | "Group shards" >> beam.GroupByKey()
            | "Write shards" >> beam.Map(write_shard, tokens, options, shards, output_dir)
            | "Collect statistics" >> beam.combiners.ToList()
            | "Write stats.json" >> beam.Map(finish, output_dir, options, shards)
        )
    with tf.io.gfile.GFile(os.path.join(output_dir, "stats.json")) as f:
        stats = json.load(f)
    log_stats(stats, log)
    return stats
