"""Featurized training data kept on disk between runs.

A seed sweep or learning-rate grid featurizes the same training set again for
every run (SQuAD v1.1: 44 s with 2 processes). `cached_training_features` stores
the model inputs and labels once, as a `.npz` named by a hash of everything
that determines them (task and options, the examples themselves, the
vocabulary, casing, sequence length and this module's format version), and
loads it on the next run. A changed data file, vocabulary or length gives a new
key, never a stale hit. Files are written to a temporary name and renamed.

Example:
```python
features = cached_training_features("results/feature_cache", task, examples, tokenizer, 128,
                                    lambda: task.featurize(examples, tokenizer, 128, training=True))
```
"""

import contextlib
import hashlib
import json
import os
import zipfile

import numpy as np

# Bump when featurization changes in a way the key cannot see (code, not inputs).
# 2: SQuAD training spans widened to whole words as the original does; featurization counts kept.
FORMAT_VERSION = 2


def cache_key(task, examples, tokenizer, max_seq_length, options=None):
    digest = hashlib.sha256()
    header = {
        "version": FORMAT_VERSION,
        "task": task.name,
        "options": options or {},
        "max_seq_length": max_seq_length,
        "lowercase": bool(tokenizer.do_lower_case),
        "examples": len(examples),
    }
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    digest.update("\n".join(tokenizer.get_vocabulary()).encode())
    for example in examples:
        digest.update(repr(example).encode())
    return f"{task.name}-{max_seq_length}-{digest.hexdigest()[:20]}"


def _save(path, features):
    """Write the cache file under a temporary name, then rename it; on a write
    error (disk full, a file-size limit) remove the temporary file and return
    the error, so the run trains without the cache instead of stopping."""
    arrays = {f"inputs/{k}": v for k, v in features.inputs.items()}
    if isinstance(features.labels, dict):
        arrays.update({f"labels/{k}": v for k, v in features.labels.items()})
    elif features.labels is not None:
        arrays["labels"] = np.asarray(features.labels)
    arrays.update({f"counts/{k}": np.asarray(v) for k, v in features.counts.items()})
    temporary = f"{path}.tmp-{os.getpid()}.npz"
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        np.savez(temporary, **arrays)
        os.replace(temporary, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        return e
    return None


def _load(path):
    from workbench.text.inputs import Features

    with np.load(path, allow_pickle=False) as data:
        inputs = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("inputs/")}
        labels = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("labels/")}
        labels = labels or (data["labels"] if "labels" in data.files else None)
        counts = {k.split("/", 1)[1]: data[k].item() for k in data.files if k.startswith("counts/")}
    return Features(inputs, labels, counts=counts)


def cached_training_features(directory, task, examples, tokenizer, max_seq_length, build, options=None):
    """Features for training (inputs and labels; no decoding metadata): loaded
    from `directory` when present, else `build()` and stored. `directory=None`
    just builds."""
    if directory is None:
        return build()
    path = os.path.join(directory, cache_key(task, examples, tokenizer, max_seq_length, options) + ".npz")
    if os.path.exists(path):
        try:
            return _load(path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            print(f"feature cache {path} unreadable ({e}); featurizing again")
    features = build()
    error = _save(path, features)
    if error is not None:
        print(f"feature cache: could not write {path} ({error}); training without the cache")
    return features
