import os
import sys

# Before TensorFlow loads: quiet logs; two logical CPUs are set up per test where needed.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import workbench  # noqa: E402,F401  (sets TF_ENABLE_ONEDNN_OPTS before TensorFlow loads)

TOY_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "dog",
    "a",
    "hello",
    "world",
    "un",
    "##aff",
    "##able",
    "cafe",
    "naive",
    "resume",
    "!",
    ",",
    ".",
    "?",
    "'",
    "-",
    "(",
    ")",
    "$",
    "^",
    "`",
    "中",
    "国",
    "人",
    "x",
    "##x",
    "##s",
    "run",
    "##ning",
    "i",
    "##stanbul",
    "σ",
    "ς",
    "οδος",
    "Hello",
    "World",
    "The",
    "Cafe",
    "Café",
    "é",
    "##é",
    "e",
    "##e",
    "é",
    "ß",
    "ss",
    "strasse",
    "straße",
    "12",
    "##3",
]


@pytest.fixture(scope="session")
def toy_vocab(tmp_path_factory):
    vocab = list(dict.fromkeys(TOY_VOCAB))
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def random_inputs(rng, batch=2, seq=12, vocab_size=60, pad_last=4):
    """Encoder inputs with padding in the second example and two segments."""
    token_ids = rng.integers(5, vocab_size, size=(batch, seq)).astype("int32")
    segment_ids = np.zeros((batch, seq), "int32")
    segment_ids[:, seq // 2 :] = 1
    padding_mask = np.ones((batch, seq), "int32")
    padding_mask[1, seq - pad_last :] = 0
    token_ids[padding_mask == 0] = 0
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}


@pytest.fixture(autouse=True)
def float32_policy_after_each_test():
    """Tests that set a mixed-precision policy must not change later tests' numerics."""
    yield
    import keras

    keras.mixed_precision.set_global_policy("float32")
