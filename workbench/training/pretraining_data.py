"""Pretraining data: the official `create_pretraining_data` algorithm, shard by shard.

Input: text files, one sentence per line, a blank line between documents.
For each of `dupe_factor` passes over the (shuffled) documents, sentences are
packed into chunks up to a target length (shorter with `short_seq_prob`); a
chunk is split at a random sentence into A and B, and with probability 1/2 B is
replaced by text from a random other document (the sentences not used are put
back). The pair is truncated from a random end of the longer segment, then
`masked_lm_prob` of the tokens ([CLS]/[SEP] never) are chosen for prediction
(whole words with `whole_word_mask`): 80% become [MASK], 10% a random token, 10%
stay. Output is TFRecord shards with the official features, and a statistics
report.

Why shards, and what decides the output:

* Document `n` of input file `f` (files in sorted order, documents counted from 0
  in each file) belongs to shard `(f + n) % shards`, a rule that needs neither the
  whole corpus in one process nor the number of documents in earlier files, so a
  Beam pipeline can read files in parallel and give the same assignment.
* Each shard is the original algorithm run on its own documents in reading order
  with `random.Random(random_seed + shard)`: the output depends on the seed and
  the shard count, never on how many workers or machines run. With one shard it
  is instance for instance the original script's output.
* A worker holds one shard at a time (its documents as token ids and its
  instances as serialized examples until the final shuffle), so peak memory
  follows the shard size, not the corpus size: `shard_size_mb` picks the shard
  count from the input size.

The random draws are those of the original (`random.Random`'s `random`,
`randint` and `shuffle`), made through `getrandbits` without the per-draw method
calls, on token ids instead of strings; examples are encoded straight to the
protobuf wire format. Both gave most of the speed (profiled: the shuffles of
candidate positions and building `tf.train.Example`s were most of the time,
tokenization about a tenth); `tests/test_pretraining_data.py` checks both
against the library versions. TFRecord files are framed here too
(`tfrecord_frames`, checked byte for byte against TensorFlow's writer), so the
local runner never imports TensorFlow, whose import alone cost as much CPU time
as the algorithm on a 3 MB corpus. Measurements: docs/pretraining-data.md;
benchmark: `python -m workbench.bench.pretraining_data`.
"""

import array
import collections
import dataclasses
import glob
import json
import math
import os
import random
import struct
from itertools import chain

from workbench.files import first_undecodable_line, is_url, write_text_atomic
from workbench.text.wordpiece import basic_tokenize_with_offsets, check_vocab, wordpiece_with_offsets

FEATURES = (
    "input_ids",
    "input_mask",
    "segment_ids",
    "masked_lm_positions",
    "masked_lm_ids",
    "masked_lm_weights",
    "next_sentence_labels",
)


@dataclasses.dataclass
class PretrainingDataOptions:
    """The official options, same names and defaults."""

    max_seq_length: int = 128  # tokens per instance
    max_predictions_per_seq: int = 20  # masked positions stored per instance
    masked_lm_prob: float = 0.15  # share of tokens to predict
    dupe_factor: int = 10  # passes over the corpus, each with different masks
    short_seq_prob: float = 0.1  # share of instances with a shorter random target length
    random_seed: int = 12345
    do_lower_case: bool = True
    whole_word_mask: bool = False  # mask all WordPieces of a word together

    def validate(self):
        if self.max_seq_length < 5:
            raise ValueError(f"max_seq_length must be at least 5 ([CLS] A [SEP] B [SEP]), got {self.max_seq_length}")
        if not 0 < self.masked_lm_prob < 1:
            raise ValueError(f"masked_lm_prob must be in (0, 1), got {self.masked_lm_prob}")
        if not 1 <= self.max_predictions_per_seq <= self.max_seq_length - 3:
            raise ValueError(
                f"max_predictions_per_seq={self.max_predictions_per_seq} must be between 1 and "
                f"max_seq_length - 3 = {self.max_seq_length - 3} (the maskable tokens)"
            )
        if self.dupe_factor < 1:
            raise ValueError(f"dupe_factor must be >= 1, got {self.dupe_factor}")


# ---- reading and assigning documents ---------------------------------------------------------
def list_inputs(inputs):
    """Input files from paths or globs, sorted (the file index is part of the
    shard assignment); an error names a pattern that matches nothing."""
    patterns = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    paths = set()
    for pattern in map(os.fspath, patterns):
        matches = glob.glob(pattern)
        if not matches:
            raise FileNotFoundError(f"corpus file not found: {pattern}")
        paths.update(p for p in matches if os.path.isfile(p))
    return sorted(paths)


def documents_from_lines(lines):
    """Documents (lists of stripped sentence strings) from an iterable of lines,
    as the original reads them: blank lines end a document, runs of blank lines
    make no empty documents."""
    current = []
    for line in lines:
        line = line.strip()
        if line:
            current.append(line)
        elif current:
            yield current
            current = []
    if current:
        yield current


def file_documents(path):
    """The documents of one local text file. Lines end at "\\n" only, as the
    original's `tf.gfile` reads them (a stray "\\r" stays inside its line and is
    whitespace to the tokenizer); a file that is not UTF-8 is named in the error."""
    with open(path, encoding="utf-8", newline="\n") as f:
        try:
            yield from documents_from_lines(f)
        except UnicodeDecodeError as error:
            raise ValueError(f"{path}, line {first_undecodable_line(path)}: not UTF-8 text ({error})") from None


def shard_of(file_index, document_number, shards):
    """The shard of document `document_number` (from 0) of input file
    `file_index` (in sorted order); the one place this is decided."""
    return (file_index + document_number) % shards


def read_documents(inputs):
    """All documents of a (small) corpus in memory, e.g. to learn a vocabulary;
    an error for an empty corpus or one without document breaks."""
    paths = list_inputs(inputs)
    documents = []
    for path in paths:
        documents.extend(file_documents(path))
    _check_document_count(len(documents), paths)
    return documents


def _check_document_count(count, paths):
    if count == 0:
        raise ValueError(f"the corpus {paths} is empty: expected one sentence per line, a blank line between documents")
    if count < 2:
        raise ValueError(
            f"the corpus {paths} has a single document: next-sentence prediction needs a blank line "
            "between documents (random B segments come from another document)"
        )


# ---- the original's random draws, without per-draw method calls -----------------------------
_BIT_LENGTH = [m.bit_length() for m in range(1 << 16)]


def fast_shuffle(items, getrandbits):
    """`random.Random.shuffle(items)` with the same draws and result, given the
    generator's `getrandbits`: the library version spends most of its time in
    the `_randbelow` call per element (measured 2.3x slower on 125 items)."""
    bit_length = _BIT_LENGTH if len(items) <= len(_BIT_LENGTH) else [m.bit_length() for m in range(len(items) + 1)]
    for i in range(len(items) - 1, 0, -1):
        # _randbelow(i + 1): k random bits, again while the draw is > i.
        j = getrandbits(bit_length[i + 1])
        if j > i:
            k = bit_length[i + 1]
            j = getrandbits(k)
            while j > i:
                j = getrandbits(k)
        items[i], items[j] = items[j], items[i]


def _randbelow(n, getrandbits):
    # random.Random._randbelow_with_getrandbits: rejection sampling on k bits.
    k = n.bit_length()
    r = getrandbits(k)
    while r >= n:
        r = getrandbits(k)
    return r


# ---- tf.train.Example on the wire --------------------------------------------------------------
def _varint(value):
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class ExampleEncoder:
    """Serialize pretraining instances as `tf.train.Example` protobufs, bytes
    for bytes what `Example.SerializeToString(deterministic=True)` gives (map
    keys sorted), without building message objects: building and serializing
    one `tf.train.Example` measured 215 us per instance on the busy dev box (50 us
    reusing one message), more than the rest of the algorithm.

    Args:
        max_seq_length: padded length of `input_ids`, `input_mask`, `segment_ids`.
        max_predictions: padded length of the three `masked_lm_*` features.
        vocab_size: largest token id + 1 (varints are precomputed up to it).

    Example:
    ```python
    encoder = ExampleEncoder(128, 20, 30522)
    record = encoder.encode([2, 7, 3, 9, 3], 3, [1], [7], 1)  # ids, A length + 2, positions, labels, random next
    ```
    """

    def __init__(self, max_seq_length, max_predictions, vocab_size):
        self.seq, self.preds = max_seq_length, max_predictions
        self.varints = [_varint(i) for i in range(max(vocab_size, max_seq_length, 1 << 14))]
        self._headers = {}
        # Features whose payload has one length: one header each, and their
        # payloads by count (a table lookup per instance instead of building them).
        self.mask_header = self.header(b"input_mask", False, max_seq_length)
        self.segment_header = self.header(b"segment_ids", False, max_seq_length)
        self.weights_header = self.header(b"masked_lm_weights", True, 4 * max_predictions)
        self.next_header = self.header(b"next_sentence_labels", False, 1)
        self.masks = [b"\x01" * n + b"\x00" * (max_seq_length - n) for n in range(max_seq_length + 1)]
        self.weights = [
            b"\x00\x00\x80\x3f" * k + b"\x00\x00\x00\x00" * (max_predictions - k) for k in range(max_predictions + 1)
        ]
        # Varint payloads vary in length (ids >= 128 take 2-3 bytes): headers by payload length.
        width = len(self.varints[-1])  # bytes of the largest id or position
        self.ids_headers = [self.header(b"input_ids", False, n) for n in range(width * max_seq_length + 1)]
        self.labels_headers = [self.header(b"masked_lm_ids", False, n) for n in range(width * max_predictions + 1)]
        self.positions_headers = [
            self.header(b"masked_lm_positions", False, n) for n in range(width * max_predictions + 1)
        ]
        self.one_byte_positions = max_seq_length <= 128  # every position is its own varint byte

    def _length(self, n):
        return self.varints[n] if n < len(self.varints) else _varint(n)

    def header(self, key, float_values, payload_length):
        """The bytes before a feature's packed values: the Features.feature map
        entry {key, Feature{int64_list|float_list{value}}} holding them."""
        cached = self._headers.get((key, payload_length))
        if cached is None:
            values = 1 + len(self._length(payload_length)) + payload_length
            feature = 1 + len(self._length(values)) + values
            entry = 1 + len(self._length(len(key))) + len(key) + 1 + len(self._length(feature)) + feature
            cached = b"".join(
                [
                    b"\x0a" + self._length(entry),
                    b"\x0a" + self._length(len(key)) + key,
                    b"\x12" + self._length(feature),
                    (b"\x12" if float_values else b"\x1a") + self._length(values),
                    b"\x0a" + self._length(payload_length),
                ]
            )
            self._headers[key, payload_length] = cached
        return cached

    def encode(self, ids, a_length, positions, labels, is_random_next):
        """One instance: `ids` the token ids with [CLS]/[SEP], `a_length` the
        segment-0 length ([CLS] A [SEP]), `positions`/`labels` the masked
        positions (ascending) and original ids."""
        varint, n, k = self.varints.__getitem__, len(ids), len(positions)
        pad, free = self.seq - n, self.preds - k
        input_ids = b"".join(map(varint, ids)) + b"\x00" * pad
        label_ids = b"".join(map(varint, labels)) + b"\x00" * free
        position_ids = (bytes(positions) if self.one_byte_positions else b"".join(map(varint, positions))) + (
            b"\x00" * free
        )
        features = b"".join(
            [  # map keys in sorted order, as deterministic serialization writes them
                self.ids_headers[len(input_ids)],
                input_ids,
                self.mask_header,
                self.masks[n],
                self.labels_headers[len(label_ids)],
                label_ids,
                self.positions_headers[len(position_ids)],
                position_ids,
                self.weights_header,
                self.weights[k],
                self.next_header,
                b"\x01" if is_random_next else b"\x00",
                self.segment_header,
                b"\x00" * a_length + b"\x01" * (n - a_length) + b"\x00" * pad,
            ]
        )
        return b"\x0a" + self._length(len(features)) + features


# ---- TFRecord files ------------------------------------------------------------------------------
_CRC_MASK_DELTA = 0xA282EAD8


def tfrecord_frames(records, chunk_bytes=1 << 20):
    """`records` (bytes) in TFRecord framing, joined into chunks of about
    `chunk_bytes`: per record its length (uint64, little-endian), the masked
    CRC-32C of those 8 bytes, the record, the masked CRC-32C of the record, as
    TensorFlow's `TFRecordWriter` writes them (uncompressed). Written here so
    that the local runner needs no TensorFlow: importing it costs 5-6 CPU s per
    process, as much as the algorithm on a 3 MB corpus. The CRC is
    google-crc32c's C implementation (0.2 us per 750-byte record)."""
    from google_crc32c import value as crc32c

    pack_length, pack_crc, delta = struct.Struct("<Q").pack, struct.Struct("<I").pack, _CRC_MASK_DELTA
    chunk, size = [], 0
    for record in records:
        length = pack_length(len(record))
        crc_length, crc_record = crc32c(length), crc32c(record)
        chunk += (
            length,
            pack_crc((((crc_length >> 15) | (crc_length << 17)) + delta) & 0xFFFFFFFF),
            record,
            pack_crc((((crc_record >> 15) | (crc_record << 17)) + delta) & 0xFFFFFFFF),
        )
        size += len(record) + 16
        if size >= chunk_bytes:
            yield b"".join(chunk)
            chunk, size = [], 0
    if chunk:
        yield b"".join(chunk)


def write_tfrecords(path, records):
    """A TFRecord file of `records` at `path`, under a temporary name until
    complete. Local paths are written without TensorFlow; URLs through
    `tf.io.gfile` (the same bytes)."""
    # The temporary name must not end in .tfrecord: readers glob `*.tfrecord`,
    # and TensorFlow's glob matches dot files (workbench.files.atomic_path's
    # ".tmp-...-<name>" would be read as a shard after a crash).
    path = os.fspath(path)
    tmp = path + ".tmp"
    if not is_url(path):
        try:
            with open(tmp, "wb") as f:
                f.writelines(tfrecord_frames(records))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return
    import tensorflow as tf

    with tf.io.gfile.GFile(tmp, "wb") as f:
        for chunk in tfrecord_frames(records):
            f.write(chunk)
    tf.io.gfile.rename(tmp, path, overwrite=True)


# ---- tokenizing ------------------------------------------------------------------------------------
class _LineTokenizer:
    """The original FullTokenizer's ids for a line. Printable ASCII lines (most
    of an English corpus) are tokenized per whitespace-separated chunk with a
    cache, which is exact: for such text the original's cleaning changes
    nothing and every later step works within a chunk. Other lines take the
    full path."""

    CACHE_SIZE = 1_000_000  # chunks remembered (bounded memory on any corpus)

    def __init__(self, vocab_index, lowercase):
        self.vocab_index, self.lowercase, self.cache = vocab_index, lowercase, {}

    def _ids(self, text):
        vocab = self.vocab_index
        return [
            vocab[token]
            for word in basic_tokenize_with_offsets(text, self.lowercase)
            for token, _, _ in wordpiece_with_offsets(word, vocab)
        ]

    def __call__(self, line):
        if not (line.isascii() and line.isprintable()):
            return self._ids(line)
        cache, out = self.cache, []
        for chunk in line.split(" "):
            if not chunk:
                continue
            ids = cache.get(chunk)
            if ids is None:
                ids = self._ids(chunk)
                if len(cache) < self.CACHE_SIZE:
                    cache[chunk] = ids
            out.extend(ids)
        return out


# ---- one shard -------------------------------------------------------------------------------------
class ShardWriter:
    """The original algorithm on one shard's documents: tokenize, shuffle the
    documents, `dupe_factor` passes of instance creation, shuffle the
    instances, write one TFRecord file. Same in the local and Beam runners.

    Args:
        vocab: the vocabulary tokens (ids are list positions).
        options: `PretrainingDataOptions`.
        shard: the shard number (the random seed is `options.random_seed + shard`).

    Example:
    ```python
    writer = ShardWriter(load_vocab("vocab.txt"), PretrainingDataOptions(), shard=0)
    stats = writer.write(file_documents("corpus.txt"), "part-00000-of-00001.tfrecord")
    ```
    """

    def __init__(self, vocab, options, shard):
        self.options, self.shard = options, shard
        self.vocab_index = {t: i for i, t in enumerate(vocab)}
        self.vocab_size = len(vocab)
        self.cls, self.sep, self.mask = (self.vocab_index[t] for t in ("[CLS]", "[SEP]", "[MASK]"))
        self.is_piece = [t.startswith("##") for t in vocab]
        self.encoder = ExampleEncoder(options.max_seq_length, options.max_predictions_per_seq, len(vocab))

    def records(self, documents):
        """(serialized examples in output order, statistics) for an iterable of
        documents (lists of sentence strings) in reading order."""
        tokenize = _LineTokenizer(self.vocab_index, self.options.do_lower_case)
        stats = collections.Counter()
        tokenized = []
        for document in documents:
            stats["documents"] += 1
            stats["documents_with_one_sentence"] += len(document) < 2
            sentences = [array.array("i", ids) for ids in map(tokenize, document) if ids]
            if sentences:
                tokenized.append(sentences)
        rng = random.Random(self.options.random_seed + self.shard)
        fast_shuffle(tokenized, rng.getrandbits)
        records = []
        for _ in range(self.options.dupe_factor):
            for index in range(len(tokenized)):
                self._document_instances(tokenized, index, rng, records, stats)
        fast_shuffle(records, rng.getrandbits)
        return records, stats

    def write(self, documents, path):
        """Write the shard's TFRecord file at `path` (a local path, or a URL such
        as gs://... that TensorFlow writes; complete or absent) and return its
        statistics."""
        records, stats = self.records(documents)
        write_tfrecords(path, records)
        return dict(stats)

    def _document_instances(self, documents, index, rng, records, stats):
        # The original create_instances_from_document, draw for draw.
        options, random_, getrandbits = self.options, rng.random, rng.getrandbits
        document = documents[index]
        max_tokens = options.max_seq_length - 3
        target = max_tokens
        if random_() < options.short_seq_prob:
            target = 2 + _randbelow(max_tokens - 1, getrandbits)  # randint(2, max_tokens)
        chunk, length, i = [], 0, 0
        while i < len(document):
            chunk.append(document[i])
            length += len(document[i])
            if i == len(document) - 1 or length >= target:
                a_end = 1 + _randbelow(len(chunk) - 1, getrandbits) if len(chunk) >= 2 else 1
                tokens_a = list(chain(*chunk[:a_end]))
                is_random_next = len(chunk) == 1 or random_() < 0.5
                if is_random_next:
                    other = index
                    for _ in range(10):
                        other = _randbelow(len(documents), getrandbits)
                        if other != index:
                            break
                    random_document = documents[other]
                    tokens_b = []
                    for sentence in random_document[_randbelow(len(random_document), getrandbits) :]:
                        tokens_b.extend(sentence)
                        if len(tokens_b) >= target - len(tokens_a):
                            break
                    i -= len(chunk) - a_end  # put the unused sentences back
                else:
                    tokens_b = list(chain(*chunk[a_end:]))
                while len(tokens_a) + len(tokens_b) > max_tokens:
                    longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
                    if random_() < 0.5:
                        del longer[0]
                    else:
                        longer.pop()
                ids = [self.cls, *tokens_a, self.sep, *tokens_b, self.sep]
                self._mask_and_encode(ids, len(tokens_a) + 2, is_random_next, rng, records, stats)
                chunk, length = [], 0
            i += 1

    def _mask_and_encode(self, ids, a_length, is_random_next, rng, records, stats):
        # The original create_masked_lm_predictions on ids: [CLS] at 0, [SEP] at
        # a_length - 1 and at the end (tokenized text never contains them: "["
        # is punctuation).
        options, random_, getrandbits = self.options, rng.random, rng.getrandbits
        n = len(ids)
        num_to_predict = min(options.max_predictions_per_seq, max(1, int(round(n * options.masked_lm_prob))))
        if options.whole_word_mask:
            is_piece, candidates = self.is_piece, []
            for i in range(1, n - 1):
                if i == a_length - 1:
                    continue
                if candidates and is_piece[ids[i]]:
                    candidates[-1].append(i)
                else:
                    candidates.append([i])
            fast_shuffle(candidates, getrandbits)
            chosen = []
            for group in candidates:
                if len(chosen) >= num_to_predict:
                    break
                if len(chosen) + len(group) <= num_to_predict:  # else a word that would overshoot: try a shorter one
                    chosen.extend(group)
        else:
            # One candidate per position: the first `num_to_predict` after the shuffle.
            candidates = [*range(1, a_length - 1), *range(a_length, n - 1)]
            fast_shuffle(candidates, getrandbits)
            chosen = candidates[:num_to_predict]
        output, replaced, mask = list(ids), 0, self.mask
        for position in chosen:  # draws in the original's order: position by position
            if random_() < 0.8:
                output[position] = mask
                replaced += 1
            elif random_() >= 0.5:
                output[position] = _randbelow(self.vocab_size, getrandbits)
                replaced += output[position] == mask
        masked = sorted(chosen)
        records.append(self.encoder.encode(output, a_length, masked, [ids[p] for p in masked], is_random_next))
        stats["instances"] += 1
        stats["tokens"] += n
        stats["maskable_tokens"] += n - 3
        stats["masked"] += len(masked)
        stats["random_next"] += is_random_next
        stats["replaced_by_mask"] += replaced


def _write_shards(jobs):
    """Shards in this process, one after the other: `jobs` are (sources, vocab,
    options, shard, path) with `sources` the text files holding the shard's
    documents."""
    results = []
    for sources, vocab, options, shard, path in jobs:

        def documents(sources=sources):
            for source in sources:
                yield from file_documents(source)

        results.append(ShardWriter(vocab, options, shard).write(documents(), path))
    return results


def _run_in_subprocesses(jobs, workers, work_dir):
    """Shards in `workers` processes, each taking every `workers`-th shard: this
    one and `workers - 1` fresh Python processes (writing local files they import
    no TensorFlow, so one starts in about 0.1 CPU s; not fork: the caller may have
    TensorFlow threads running; not multiprocessing's spawn: it re-imports the
    caller's main script). Jobs and results travel as files in the local
    `work_dir`."""
    import concurrent.futures
    import pickle
    import subprocess
    import sys
    import tempfile

    def run(batch):
        with tempfile.TemporaryDirectory(dir=work_dir, prefix=".tmp-job-") as tmp:
            job_path, result_path = os.path.join(tmp, "jobs.pkl"), os.path.join(tmp, "results.json")
            with open(job_path, "wb") as f:
                pickle.dump(batch, f)
            code = (
                "import json, pickle, sys; from workbench.training.pretraining_data import _write_shards; "
                "json.dump(_write_shards(pickle.load(open(sys.argv[1], 'rb'))), open(sys.argv[2], 'w'))"
            )
            done = subprocess.run([sys.executable, "-c", code, job_path, result_path], capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"shards {[job[3] for job in batch]} failed:\n{done.stderr[-3000:]}")
            with open(result_path, encoding="utf-8") as f:
                return json.load(f)

    batches = [jobs[w::workers] for w in range(workers)]
    with concurrent.futures.ThreadPoolExecutor(workers - 1) as pool:
        others = [pool.submit(run, batch) for batch in batches[1:]]
        results = _write_shards(batches[0])
        return results + [r for future in others for r in future.result()]


def shard_path(output_dir, shard, shards):
    return os.path.join(output_dir, f"part-{shard:05d}-of-{shards:05d}.tfrecord")


def check_no_other_shards(output_dir, shards):
    """Refuse an output directory that already holds `*.tfrecord` files other
    than this run's shard names: `pretrain` reads every shard of a directory,
    so another run's shards (another shard count, sequence length or corpus)
    would be mixed into this one's. This run's own names are overwritten."""
    output_dir = os.fspath(output_dir)
    if is_url(output_dir):  # TensorFlow only for URLs: the local runner does not import it
        import tensorflow as tf

        isdir, matching = tf.io.gfile.isdir, tf.io.gfile.glob
    else:
        isdir, matching = os.path.isdir, glob.glob
    if not isdir(output_dir):
        return
    own = {os.path.basename(shard_path(output_dir, s, shards)) for s in range(shards)}
    found = sorted(os.path.basename(f) for f in matching(output_dir.rstrip("/") + "/*.tfrecord"))
    other = [name for name in found if name not in own]
    if other:
        shown = ", ".join(other[:3]) + (f" and {len(other) - 3} more" if len(other) > 3 else "")
        raise ValueError(
            f"output {output_dir} already holds {len(other)} shard(s) of another run ({shown}); pretraining "
            f"reads every *.tfrecord there: remove them or choose another output directory"
        )


def shards_for_size(paths, shard_size_mb, size=os.path.getsize):
    """The shard count that gives shards of about `shard_size_mb` of input text."""
    if shard_size_mb <= 0:
        raise ValueError(f"shard_size_mb must be positive, got {shard_size_mb}")
    return max(1, math.ceil(sum(size(p) for p in paths) / (shard_size_mb * 2**20)))


def _split_into_shards(paths, shards, directory, buffer_bytes=32 * 2**20):
    """Stream the corpus once into one text file per shard (same format), with
    at most about `buffer_bytes` of text in memory; return (documents, files).
    The buffers are lists of document strings (1 byte per ASCII character): an
    `io.StringIO` emptied by truncation holds 4 bytes per character (measured
    211 MB peak RSS for the split of a 100 MB corpus against 116 MB without a
    split)."""
    files = [os.path.join(directory, f"shard-{s:05d}.txt") for s in range(shards)]
    buffers, buffered, count = [[] for _ in range(shards)], 0, 0

    def flush():
        for s, buffer in enumerate(buffers):
            if buffer:
                with open(files[s], "a", encoding="utf-8", newline="\n") as f:
                    f.writelines(buffer)
                buffer.clear()

    for file_index, path in enumerate(paths):
        for number, document in enumerate(file_documents(path)):
            text = "\n".join(document) + "\n\n"
            buffers[shard_of(file_index, number, shards)].append(text)
            buffered += len(text)
            count += 1
            if buffered > buffer_bytes:
                flush()
                buffered = 0
    flush()
    for name in files:
        open(name, "a").close()  # a shard without documents still gets its (empty) output
    return count, files


def _count_documents(paths):
    return sum(1 for path in paths for _ in file_documents(path))


def summarize(results, shards, options):
    """stats.json's content from the per-shard statistics (both runners)."""
    total = collections.Counter()
    for r in results:
        total.update(r)
    if total["instances"] == 0:
        raise ValueError("no instances created: are the sentences all empty after tokenization?")
    return {
        "documents": total["documents"],
        "documents_with_one_sentence": total["documents_with_one_sentence"],
        "instances": total["instances"],
        "mean_tokens": total["tokens"] / total["instances"],
        "masked_fraction": total["masked"] / total["maskable_tokens"],
        "mask_token_fraction": total["replaced_by_mask"] / max(1, total["masked"]),
        "next_sentence_random_fraction": total["random_next"] / total["instances"],
        "shards": shards,
        "options": dataclasses.asdict(options),
    }


def write_stats(output_dir, stats):
    """`stats.json` (local, or a URL TensorFlow writes; complete or absent)."""
    path, text = os.path.join(output_dir, "stats.json"), json.dumps(stats, indent=1) + "\n"
    if not is_url(path):
        write_text_atomic(path, text)
        return
    import tensorflow as tf

    with tf.io.gfile.GFile(path + ".tmp", "w") as f:
        f.write(text)
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def log_stats(stats, log=print):
    short = stats["documents_with_one_sentence"]
    if short:
        log(f"note: {short} document(s) have a single sentence; their instances always take B from another document")
    log(
        f"{stats['instances']} instances, {stats['mean_tokens']:.1f} tokens on average, "
        f"{100 * stats['masked_fraction']:.1f}% masked, {100 * stats['next_sentence_random_fraction']:.1f}% random next"
    )


def load_vocab_tokens(vocab):
    from workbench.text.wordpiece import load_vocab

    tokens = load_vocab(vocab) if isinstance(vocab, (str, os.PathLike)) else list(vocab)
    check_vocab(tokens)
    return tokens


def create_pretraining_data(
    inputs, output_dir, vocab, options=None, shards=4, workers=None, log=print, shard_size_mb=None
):
    """Write `shards` TFRecord files and `stats.json` into `output_dir`.

    `output_dir` is a local directory or a URL that TensorFlow writes (gs:// on a Cloud TPU VM, or
    any `tf.io.gfile` scheme). With a URL the shards and `stats.json` are written through
    `tf.io.gfile`, the same bytes as a local run (each worker process then imports TensorFlow), and
    the split pass's per-shard text files go into a local temporary directory instead
    (`tempfile`, so `TMPDIR` decides where; removed at the end): the split needs the corpus size in
    free local disk either way, under `output_dir` for a local run.

    Args:
        inputs: local text file(s) or glob(s) in the official input format.
        output_dir: local directory or URL for the shards and `stats.json`.
        vocab: path of vocab.txt, or a list of tokens.
        options: `PretrainingDataOptions`.
        shards: output files (and independent random streams).
        workers: processes (default: all cores, at most `shards`).
        log: called with progress notes and the summary line.
        shard_size_mb: instead of `shards`, about this much input text per shard
            (peak memory follows the shard size; ~0.1 GB per worker plus ~0.05 GB
            per MB of shard text at dupe factor 10, see docs/pretraining-data.md).

    Returns:
        The statistics dict (also written as `stats.json`).

    Example:
    ```python
    create_pretraining_data("corpus/*.txt", "gs://bucket/phase1", "vocab.txt", shard_size_mb=10)
    ```
    """
    import shutil
    import tempfile

    options = options or PretrainingDataOptions()
    options.validate()
    output_dir = os.fspath(output_dir)
    tokens = load_vocab_tokens(vocab)
    paths = list_inputs(inputs)
    if shard_size_mb is not None:
        shards = shards_for_size(paths, shard_size_mb)
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    check_no_other_shards(output_dir, shards)
    if is_url(output_dir):
        import tensorflow as tf

        try:
            tf.io.gfile.makedirs(output_dir)
        except tf.errors.UnimplementedError as error:  # before any work: say which parameter
            raise ValueError(f"output {output_dir}: TensorFlow cannot write there ({error.message})") from None
        work_dir = tempfile.mkdtemp(prefix="workbench-pretraining-data-")
    else:
        os.makedirs(output_dir, exist_ok=True)
        work_dir = tempfile.mkdtemp(dir=output_dir, prefix=".tmp-split-")
    try:
        if shards == 1:
            count, sources = _count_documents(paths), [paths]
        else:
            count, files = _split_into_shards(paths, shards, work_dir)
            sources = [[f] for f in files]
        _check_document_count(count, paths)
        if count < shards:
            log(f"note: {shards} shards for {count} documents: {shards - count} shard(s) stay empty")
        jobs = [(sources[s], tokens, options, s, shard_path(output_dir, s, shards)) for s in range(shards)]
        workers = max(1, min(workers or os.cpu_count() or 1, shards))
        results = _write_shards(jobs) if workers == 1 else _run_in_subprocesses(jobs, workers, work_dir)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    stats = summarize(results, shards, options)
    write_stats(output_dir, stats)
    log_stats(stats, log)
    return stats


# ---- reading the shards back ------------------------------------------------------------------
def list_shards(location):
    """The TFRecord shards at `location`: a directory (its `*.tfrecord`) or a
    glob, on any filesystem TensorFlow reads (local, `gs://` on Cloud TPU),
    sorted; an error when there are none."""
    import tensorflow as tf

    location = os.fspath(location)
    pattern = location.rstrip("/") + "/*.tfrecord" if tf.io.gfile.isdir(location) else location
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no pretraining shards match {pattern}")
    return files


def parse_example(record, max_seq_length, max_predictions):
    """A TFRecord example back to tensors (for training and tests)."""
    import tensorflow as tf

    spec = {
        "input_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "input_mask": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "masked_lm_positions": tf.io.FixedLenFeature([max_predictions], tf.int64),
        "masked_lm_ids": tf.io.FixedLenFeature([max_predictions], tf.int64),
        "masked_lm_weights": tf.io.FixedLenFeature([max_predictions], tf.float32),
        "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
    }
    parsed = tf.io.parse_single_example(record, spec)
    return {k: (tf.cast(v, tf.int32) if v.dtype == tf.int64 else v) for k, v in parsed.items()}
