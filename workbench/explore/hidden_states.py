"""Contextual embeddings of chosen layers: the original `extract_features.py`.

Input is lines of text, a line `A ||| B` being a sentence pair. Output is JSON
lines in the original's format (one object per input line: its tokens, each with
the values of the requested layers) or a NumPy `.npz` with one array per layer.
Hidden states come from the model's own layers (no second copy of the model).
"""

import json

import numpy as np

from workbench.models.attention import find_encoder, layer_outputs
from workbench.text.inputs import encode_pairs


def hidden_states(model, inputs):
    """Every layer's output, [embeddings, layer 1, ..., layer L], each (batch, seq, hidden)."""
    return layer_outputs(model, inputs)[0]


def read_lines(path):
    """(texts_a, texts_b) of an `extract_features.py` input file, one example per
    line, as the original reads it: lines end at "\\n" only, are stripped of
    whitespace, and split at the *last* " ||| " into a pair (texts_b[i] None for
    a single sentence). A blank line stays an example (`[CLS] [SEP]`), so
    example i is always line i + 1. Invalid UTF-8 is an error naming the line
    (the original silently drops the bytes)."""
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the newline ending the last line
    texts_a, texts_b = [], []
    for number, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}, line {number}: not UTF-8 ({e.reason} at byte {e.start})") from None
        a, separator, b = line.rpartition(" ||| ")
        texts_a.append(a if separator else line)
        texts_b.append(b if separator else None)
    return texts_a, texts_b


def extract_features(
    model, tokenizer, texts_a, texts_b=None, layers=(-1, -2, -3, -4), max_seq_length=128, batch_size=32
):
    """[{"tokens": [...], "layers": {index: array (tokens, hidden)}}] per input.

    `texts_b` (optional) holds each input's second sentence, None for a single one.

    Layer indices are the original's (Python indices into the Transformer
    layers' outputs: 0 the first layer, -1 the last), plus one it does not
    have: -(L+1), just below its range, for the embedding output.
    `max_seq_length` is capped at the model's position table.
    """
    encoder = find_encoder(model)
    count = encoder.num_layers
    outside = [i for i in layers if not -count - 1 <= i < count]
    if outside:
        raise ValueError(
            f"layers {outside} do not exist in a {count}-layer model: use {-count} to {count - 1} "
            f"(0 the first layer, -1 the last) or {-count - 1} for the embedding output"
        )
    # hidden_states lists the embedding output first, then each layer's.
    state_of = {i: (i + 1 if i >= 0 else i) for i in layers}
    max_seq_length = min(max_seq_length, encoder.max_sequence_length)
    # Per input: a pair when its second text has tokens, else `[CLS] A [SEP]`.
    inputs = encode_pairs(tokenizer, texts_a, texts_b, max_seq_length)
    vocab = tokenizer.get_vocabulary()
    results = []
    for start in range(0, len(texts_a), batch_size):
        batch = {k: v[start : start + batch_size] for k, v in inputs.items()}
        states = hidden_states(model, batch)
        for row in range(len(batch["token_ids"])):
            length = int(batch["padding_mask"][row].sum())
            results.append(
                {
                    "tokens": [vocab[i] for i in batch["token_ids"][row][:length]],
                    "layers": {index: states[state_of[index]][row, :length] for index in layers},
                }
            )
    return results


def write_jsonl(results, path):
    from workbench.files import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for i, result in enumerate(results):
            features = [
                {
                    "token": token,
                    "layers": [
                        {"index": index, "values": [round(float(v), 6) for v in values[t]]}
                        for index, values in result["layers"].items()
                    ],
                }
                for t, token in enumerate(result["tokens"])
            ]
            f.write(json.dumps({"linex_index": i, "features": features}) + "\n")


def write_npz(results, path):
    from workbench.files import atomic_path

    arrays = {}
    for i, result in enumerate(results):
        arrays[f"tokens_{i}"] = np.asarray(result["tokens"])
        for index, values in result["layers"].items():
            arrays[f"layer{index}_{i}"] = values
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
