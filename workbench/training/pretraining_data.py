"""Pretraining data: the official `create_pretraining_data` algorithm.

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

Documents are split into `shards`, each created with its own seed
(`random_seed + shard`) in a separate process, so the output depends on the
seed and the shard count, not on how many workers run.
"""

import collections
import dataclasses
import glob
import json
import os
import random

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


Instance = collections.namedtuple("Instance", "tokens segment_ids masked_positions masked_labels is_random_next")


# ---- reading -----------------------------------------------------------------------------
def read_documents(inputs):
    """Documents (lists of sentence strings) from files or globs; an error for
    an empty corpus or one without document breaks."""
    paths = sorted(
        {p for pattern in ([inputs] if isinstance(inputs, str) else inputs) for p in (glob.glob(pattern) or [pattern])}
    )
    documents = []
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"corpus file not found: {path}")
        current = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    current.append(line)
                elif current:
                    documents.append(current)
                    current = []
        if current:
            documents.append(current)
    if not documents:
        raise ValueError(f"the corpus {paths} is empty: expected one sentence per line, a blank line between documents")
    if len(documents) < 2:
        raise ValueError(
            f"the corpus {paths} has a single document: next-sentence prediction needs a blank line "
            "between documents (random B segments come from another document)"
        )
    return documents


# ---- the algorithm -------------------------------------------------------------------------
def _truncate_pair(tokens_a, tokens_b, max_tokens, rng):
    # Remove from the longer segment, at the front or the back at random,
    # so the model does not only ever see truncated ends.
    while len(tokens_a) + len(tokens_b) > max_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def _mask(tokens, options, vocab_words, rng):
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
    masked = []
    for group in candidates:
        if len(masked) >= num_to_predict:
            break
        if len(masked) + len(group) > num_to_predict:
            continue  # a whole word that would overshoot: try a shorter one
        for index in group:
            if rng.random() < 0.8:
                replacement = "[MASK]"
            elif rng.random() < 0.5:
                replacement = tokens[index]
            else:
                replacement = vocab_words[rng.randint(0, len(vocab_words) - 1)]
            output[index] = replacement
            masked.append((index, tokens[index]))
    masked.sort()
    return output, [i for i, _ in masked], [t for _, t in masked]


def _instances_from_document(documents, index, options, vocab_words, rng):
    document = documents[index]
    max_tokens = options.max_seq_length - 3
    target = max_tokens if rng.random() >= options.short_seq_prob else rng.randint(2, max_tokens)
    instances, chunk, length, i = [], [], 0, 0
    while i < len(document):
        chunk.append(document[i])
        length += len(document[i])
        if i == len(document) - 1 or length >= target:
            if chunk:
                a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
                tokens_a = [t for sentence in chunk[:a_end] for t in sentence]
                tokens_b = []
                is_random_next = len(chunk) == 1 or rng.random() < 0.5
                if is_random_next:
                    other = index
                    for _ in range(10):
                        other = rng.randint(0, len(documents) - 1)
                        if other != index:
                            break
                    random_document = documents[other]
                    for sentence in random_document[rng.randint(0, len(random_document) - 1) :]:
                        tokens_b.extend(sentence)
                        if len(tokens_b) >= target - len(tokens_a):
                            break
                    i -= len(chunk) - a_end  # put the unused sentences back
                else:
                    tokens_b = [t for sentence in chunk[a_end:] for t in sentence]
                _truncate_pair(tokens_a, tokens_b, max_tokens, rng)
                if tokens_a and tokens_b:
                    tokens = ["[CLS]"] + tokens_a + ["[SEP]"] + tokens_b + ["[SEP]"]
                    segments = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
                    tokens, positions, labels = _mask(tokens, options, vocab_words, rng)
                    instances.append(Instance(tokens, segments, positions, labels, is_random_next))
            chunk, length = [], 0
        i += 1
    return instances


def create_instances(documents, vocab, options, seed):
    """Instances from tokenized documents ([[tokens per sentence]])."""
    rng = random.Random(seed)
    documents = [d for d in documents if d]
    rng.shuffle(documents)
    vocab_words = list(vocab)
    instances = []
    for _ in range(options.dupe_factor):
        for index in range(len(documents)):
            instances.extend(_instances_from_document(documents, index, options, vocab_words, rng))
    rng.shuffle(instances)
    return instances


def tokenize_documents(documents, vocab_index, lowercase):
    out = []
    for document in documents:
        sentences = []
        for line in document:
            tokens = [
                t
                for word in basic_tokenize_with_offsets(line, lowercase)
                for t, _, _ in wordpiece_with_offsets(word, vocab_index)
            ]
            if tokens:
                sentences.append(tokens)
        out.append(sentences)
    return out


# ---- writing ---------------------------------------------------------------------------------
def _features(instance, vocab_index, options):
    n, p = options.max_seq_length, options.max_predictions_per_seq
    ids = [vocab_index[t] for t in instance.tokens]
    pad = n - len(ids)
    return {
        "input_ids": ids + [0] * pad,
        "input_mask": [1] * len(ids) + [0] * pad,
        "segment_ids": instance.segment_ids + [0] * pad,
        "masked_lm_positions": instance.masked_positions + [0] * (p - len(instance.masked_positions)),
        "masked_lm_ids": [vocab_index[t] for t in instance.masked_labels] + [0] * (p - len(instance.masked_labels)),
        "masked_lm_weights": [1.0] * len(instance.masked_labels) + [0.0] * (p - len(instance.masked_labels)),
        "next_sentence_labels": [1 if instance.is_random_next else 0],
    }


def _write_shard(args):
    """One shard, in its own process: tokenize, create, write; return statistics."""
    import tensorflow as tf

    documents, vocab, options, shard, path = args
    vocab_index = {t: i for i, t in enumerate(vocab)}
    instances = create_instances(
        tokenize_documents(documents, vocab_index, options.do_lower_case), vocab, options, options.random_seed + shard
    )
    stats = collections.Counter(documents=len(documents))
    with tf.io.TFRecordWriter(path + ".tmp") as writer:
        for instance in instances:
            features = _features(instance, vocab_index, options)
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        name: (
                            tf.train.Feature(float_list=tf.train.FloatList(value=values))
                            if name == "masked_lm_weights"
                            else tf.train.Feature(int64_list=tf.train.Int64List(value=values))
                        )
                        for name, values in features.items()
                    }
                )
            )
            writer.write(example.SerializeToString(deterministic=True))
            stats["instances"] += 1
            stats["tokens"] += len(instance.tokens)
            stats["maskable_tokens"] += len(instance.tokens) - 3
            stats["masked"] += len(instance.masked_positions)
            stats["random_next"] += int(instance.is_random_next)
            stats["replaced_by_mask"] += sum(1 for i in instance.masked_positions if instance.tokens[i] == "[MASK]")
    os.replace(path + ".tmp", path)
    return dict(stats)


def _write_shards(jobs):
    return [_write_shard(job) for job in jobs]


def _run_in_subprocesses(jobs, workers, output_dir):
    """Shards in `workers` fresh Python processes, each taking every
    `workers`-th shard (not fork: the parent may run TensorFlow threads; not
    multiprocessing's spawn: it re-imports the caller's main script). Jobs and
    results travel as files."""
    import concurrent.futures
    import pickle
    import subprocess
    import sys
    import tempfile

    def run(batch):
        with tempfile.TemporaryDirectory(dir=output_dir, prefix=".tmp-job-") as tmp:
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

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return [r for results in pool.map(run, [jobs[w::workers] for w in range(workers)]) for r in results]


def create_pretraining_data(inputs, output_dir, vocab, options=None, shards=4, workers=None, log=print):
    """Write `shards` TFRecord files and `stats.json` into `output_dir`.

    Args:
        inputs: text file(s) or glob(s) in the official input format.
        vocab: path of vocab.txt, or a list of tokens.
        options: `PretrainingDataOptions`.
        shards: output files (and independent random streams).
        workers: processes (default: all cores, at most `shards`).
    Returns the statistics dict.
    """
    from workbench.text.wordpiece import load_vocab

    options = options or PretrainingDataOptions()
    options.validate()
    tokens = load_vocab(vocab) if isinstance(vocab, (str, os.PathLike)) else list(vocab)
    check_vocab(tokens)
    documents = read_documents(inputs)
    short = sum(1 for d in documents if len(d) < 2)
    shards = max(1, min(shards, len(documents)))
    os.makedirs(output_dir, exist_ok=True)
    jobs = [
        (documents[s::shards], tokens, options, s, os.path.join(output_dir, f"part-{s:05d}-of-{shards:05d}.tfrecord"))
        for s in range(shards)
    ]
    workers = max(1, min(workers or os.cpu_count() or 1, shards))
    results = [_write_shard(job) for job in jobs] if workers == 1 else _run_in_subprocesses(jobs, workers, output_dir)
    total = collections.Counter()
    for r in results:
        total.update(r)
    if total["instances"] == 0:
        raise ValueError(f"no instances created from {inputs}: are the sentences all empty after tokenization?")
    stats = {
        "documents": len(documents),
        "documents_with_one_sentence": short,
        "instances": total["instances"],
        "mean_tokens": total["tokens"] / total["instances"],
        "masked_fraction": total["masked"] / total["maskable_tokens"],
        "mask_token_fraction": total["replaced_by_mask"] / max(1, total["masked"]),
        "next_sentence_random_fraction": total["random_next"] / total["instances"],
        "shards": shards,
        "options": dataclasses.asdict(options),
    }
    from workbench.files import write_text_atomic

    write_text_atomic(os.path.join(output_dir, "stats.json"), json.dumps(stats, indent=1) + "\n")
    if short:
        log(f"note: {short} document(s) have a single sentence; their instances always take B from another document")
    log(
        f"{stats['instances']} instances, {stats['mean_tokens']:.1f} tokens on average, "
        f"{100 * stats['masked_fraction']:.1f}% masked, {100 * stats['next_sentence_random_fraction']:.1f}% random next"
    )
    return stats


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
