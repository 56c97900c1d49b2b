"""Per-head attention statistics (Clark et al., 2019, "What does BERT look at?")
and word-level attention.

All functions take one input's attention maps: an array (layers, heads, T, T)
whose row i is the distribution of token i's attention over the tokens.
"""

import numpy as np

STATISTICS = ("entropy", "to_cls", "to_sep", "to_self", "to_previous", "to_next")


def head_statistics(maps, tokens):
    """{statistic: array (layers, heads)}, averaged over the attending tokens.

    entropy: mean entropy (nats) of a token's attention distribution;
    to_cls / to_sep: mean share of attention given to [CLS] / any [SEP];
    to_self / to_previous / to_next: mean share given to the token itself, the
    one before it, the one after it (tokens without a neighbour are left out).
    """
    maps = np.asarray(maps, np.float64)
    t = maps.shape[-1]
    if len(tokens) != t:
        raise ValueError(f"{len(tokens)} tokens for attention maps over {t} positions")
    p = np.clip(maps, 1e-12, 1.0)
    stats = {"entropy": -(maps * np.log(p)).sum(-1).mean(-1)}
    cls = [i for i, tok in enumerate(tokens) if tok == "[CLS]"]
    sep = [i for i, tok in enumerate(tokens) if tok == "[SEP]"]
    stats["to_cls"] = maps[..., cls].sum(-1).mean(-1) if cls else np.zeros(maps.shape[:2])
    stats["to_sep"] = maps[..., sep].sum(-1).mean(-1) if sep else np.zeros(maps.shape[:2])
    idx = np.arange(t)
    stats["to_self"] = maps[..., idx, idx].mean(-1)
    stats["to_previous"] = maps[..., idx[1:], idx[:-1]].mean(-1) if t > 1 else np.zeros(maps.shape[:2])
    stats["to_next"] = maps[..., idx[:-1], idx[1:]].mean(-1) if t > 1 else np.zeros(maps.shape[:2])
    return stats


def statistics_table(maps, tokens):
    """The statistics as a long DataFrame: layer, head, statistic, value (layers and heads from 1)."""
    import pandas as pd

    rows = []
    for name, values in head_statistics(maps, tokens).items():
        for layer in range(values.shape[0]):
            for head in range(values.shape[1]):
                rows.append(
                    {"layer": layer + 1, "head": head + 1, "statistic": name, "value": float(values[layer, head])}
                )
    return pd.DataFrame(rows)


def word_groups(tokens):
    """Token positions of each word: a `##` piece joins the word before it."""
    groups = []
    for i, token in enumerate(tokens):
        if token.startswith("##") and groups:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def merge_words(maps, tokens):
    """Word-level attention: attention *received* by a word is the sum over its
    pieces, attention *given* by a word is the mean over its pieces (so rows
    still sum to 1). Returns (maps (..., W, W), words)."""
    maps = np.asarray(maps)
    groups = word_groups(tokens)
    received = np.stack([maps[..., g].sum(-1) for g in groups], axis=-1)  # (..., T, W)
    given = np.stack([received[..., g, :].mean(-2) for g in groups], axis=-2)  # (..., W, W)
    words = ["".join(tokens[i][2:] if tokens[i].startswith("##") else tokens[i] for i in g) for g in groups]
    return given, words
