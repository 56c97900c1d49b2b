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
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    pairs = [line.split(" ||| ", 1) if " ||| " in line else [line, None] for line in lines if line.strip()]
    return [a for a, _ in pairs], [b for _, b in pairs]


def extract_features(
    model, tokenizer, texts_a, texts_b=None, layers=(-1, -2, -3, -4), max_seq_length=128, batch_size=32
):
    """[{"tokens": [...], "layers": {index: array (tokens, hidden)}}] per input.

    Layer indices count like the original: -1 is the last Transformer layer;
    0 is the embedding output. `max_seq_length` is capped at the model's
    position table.
    """
    max_seq_length = min(max_seq_length, find_encoder(model).max_sequence_length)
    pairs = texts_b if texts_b is not None and any(b is not None for b in texts_b) else None
    inputs = encode_pairs(tokenizer, texts_a, [b or "" for b in pairs] if pairs else None, max_seq_length)
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
                    "layers": {index: states[index][row, :length] for index in layers},
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
