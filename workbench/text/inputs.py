"""Model inputs from tokenized text: [CLS] A [SEP] B [SEP], segments, padding.

Tokenization runs batched through the tokenizer's TensorFlow path; packing
(truncation and padding) is NumPy. Features are fixed-length int32 arrays, so
every batch has a static shape (what XLA and TPUs want).
"""

import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass
class Features:
    """Featurized examples.

    Args:
        inputs: model inputs, {name: int32 array (N, ...)}.
        labels: an array (N, ...) or {name: array}, None for unlabelled splits.
        meta: what decoding predictions needs (e.g. SQuAD token offsets).
        counts: what featurization left out or noticed, {name: number} (SQuAD:
            "featurized" examples and "not_found" training answers skipped as
            the original skips them); empty when nothing is counted.
    """

    inputs: dict
    labels: object = None
    meta: dict = dataclasses.field(default_factory=dict)
    counts: dict = dataclasses.field(default_factory=dict)

    def __len__(self):
        return len(next(iter(self.inputs.values())))

    def dataset(self, batch_size, shuffle=False, seed=0, with_labels=True, drop_remainder=False):
        """A tf.data pipeline of (inputs, labels) batches, prefetched."""
        data = (self.inputs, self.labels) if with_labels and self.labels is not None else self.inputs
        ds = tf.data.Dataset.from_tensor_slices(data)
        if shuffle:
            ds = ds.shuffle(len(self), seed=seed, reshuffle_each_iteration=True)
        from workbench.training.loop import without_autotune

        return without_autotune(ds.batch(batch_size, drop_remainder=drop_remainder))


def tokenize_batch(tokenizer, texts, batch_size=4096):
    """Token ids for many texts via the tokenizer's TensorFlow path."""
    out = []
    for start in range(0, len(texts), batch_size):
        chunk = tf.constant([t if t is not None else "" for t in texts[start : start + batch_size]])
        out.extend(tokenizer(chunk).to_list())
    return out


def truncate_pair(a, b, max_tokens):
    """The original's truncation: drop the last token of the longer segment
    (of the second when they tie) until both fit."""
    a, b = list(a), list(b)
    while len(a) + len(b) > max_tokens:
        if len(a) > len(b):
            a.pop()
        else:
            b.pop()
    return a, b


def pack(ids_a, ids_b, max_seq_length, cls_id, sep_id):
    """One example's (token_ids, segment_ids, padding_mask) lists, padded.

    A second segment with no tokens (None, "", only whitespace) is left out with
    its [SEP], as the original `run_classifier.py` and `extract_features.py` do:
    `[CLS] A [SEP]`, not `[CLS] A [SEP] [SEP]`."""
    if not ids_b:
        ids_a = ids_a[: max_seq_length - 2]
        tokens = [cls_id] + ids_a + [sep_id]
        segments = [0] * len(tokens)
    else:
        ids_a, ids_b = truncate_pair(ids_a, ids_b, max_seq_length - 3)
        tokens = [cls_id] + ids_a + [sep_id] + ids_b + [sep_id]
        segments = [0] * (len(ids_a) + 2) + [1] * (len(ids_b) + 1)
    pad = max_seq_length - len(tokens)
    return tokens + [0] * pad, segments + [0] * pad, [1] * len(tokens) + [0] * pad


def encode_pairs(tokenizer, texts_a, texts_b, max_seq_length):
    """Inputs for sentences (texts_b None) or sentence pairs, shape (N, max_seq_length).
    A row of `texts_b` that is None or has no tokens gives a single sentence."""
    if max_seq_length < 3:
        raise ValueError(f"max_seq_length must be at least 3, got {max_seq_length}")
    ids_a = tokenize_batch(tokenizer, texts_a)
    ids_b = tokenize_batch(tokenizer, texts_b) if texts_b is not None else [None] * len(ids_a)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    packed = [pack(a, b, max_seq_length, cls_id, sep_id) for a, b in zip(ids_a, ids_b)]
    if not packed:
        empty = np.zeros((0, max_seq_length), np.int32)
        return {"token_ids": empty, "segment_ids": empty.copy(), "padding_mask": empty.copy()}
    tokens, segments, mask = (np.asarray(x, np.int32) for x in zip(*packed))
    return {"token_ids": tokens, "segment_ids": segments, "padding_mask": mask}
