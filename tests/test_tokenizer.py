import random
import re
import unicodedata

import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from original_tokenizer import clean, full_tokenize

from workbench.text.tokenizer import BertTokenizer, build_vocab, load_vocab, save_vocab

HAND_MADE = [
    "",
    "   ",
    "\t\n",
    "Hello, World!",
    "The cat sat on the mat.",
    "unaffable",
    "Café naïve résumé",
    "中国人",
    "hello中国world",
    "ΟΔΟΣ σς",
    "İstanbul",
    "straße STRASSE",
    "ﬁ ＡＢＣ",
    "a\u200bcat",
    "cat\u00a0dog",
    "cat\u2028dog",
    "cat\u3000dog",
    "c\x00a\ufffdt",
    "cat\x0bdog",
    "a\ue000b the",  # private use (Co): kept, the word is [UNK]
    "the\u0378x",  # unassigned (Cn): kept
    "a\u00adb \ufeffc",  # format (Cf): deleted
    "x" * 150,
    "x" * 200,
    "x" * 201,
    "$^`(cat)-'dog'?",
    "12345",
    "e\u0301",
    "\u00e9\u0301",
    "don't",
    "🙂 cat",
    "ｈｅｌｌｏ",
    "Hello\r\nWorld",
]


def random_texts(n, seed=0):
    rnd = random.Random(seed)
    pool = list("abcxyz ,.!?'-()$^`") + [
        "é",
        "ß",
        "İ",
        "Σ",
        "中",
        "国",
        "\u00a0",
        "\u200b",
        "\u2028",
        "\t",
        "\x07",
        "\ue000",
        "\u0378",
        "ﬁ",
        "Ａ",
        "\u0301",
        "🙂",
        "\ufffd",
        "cat",
        "Hello",
        "the",
        "un",
        "able",
    ]
    return ["".join(rnd.choice(pool) for _ in range(rnd.randint(0, 30))) for _ in range(n)]


CORPUS = HAND_MADE + random_texts(400)


@pytest.mark.parametrize("lowercase", [True, False])
def test_both_paths_give_the_original_ids(toy_vocab, lowercase):
    tokenizer = BertTokenizer(str(toy_vocab), lowercase=lowercase)
    vocab = {t: i for i, t in enumerate(tokenizer.get_vocabulary())}
    expected = [[vocab[t] for t in full_tokenize(text, vocab, lower=lowercase)] for text in CORPUS]
    python_ids = [tokenizer.encode_with_offsets(text)[0] for text in CORPUS]
    tf_ids = tokenizer(tf.constant(CORPUS)).to_list()
    assert python_ids == expected
    assert tf_ids == expected


def test_only_control_and_format_characters_are_deleted():
    """The original's `_is_control` is categories Cc and Cf: a private-use or
    unassigned code point stays in its word, which then has no WordPiece and
    is [UNK] (Hugging Face deletes every C* category and would give a ##b)."""
    tokenizer = BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##b", "the", "ab", "c"])
    for text, expected in [
        ("a\ue000b the", ["[UNK]", "the"]),  # Co
        ("the\u0378x", ["[UNK]"]),  # Cn
        ("a\u00adb \ufeffc\x07", ["ab", "c"]),  # Cf, Cf, Cc
    ]:
        assert [t for t, _, _ in tokenizer.tokenize_with_offsets(text)] == expected, text
        ids = tokenizer(tf.constant([text])).to_list()[0]
        assert [tokenizer.id_to_token(i) for i in ids] == expected, text


def test_both_paths_delete_the_same_characters_over_all_of_unicode():
    """The TensorFlow path's class of deleted characters comes from the same
    `unicodedata` as the Python path (RE2's own tables are a newer Unicode)."""
    import unicodedata

    from workbench.text.wordpiece import _clean_char, _is_cjk

    chars = [  # every C* code point but surrogates (not UTF-8) and the CJK blocks' unassigned ones (spaced)
        chr(c)
        for c in range(0x110000)
        if unicodedata.category(chr(c))[0] == "C" and not 0xD800 <= c <= 0xDFFF and not _is_cjk(chr(c))
    ]
    chars += ["a", "\ufffd", "\u200b", "\U00013439"]
    expected = "".join(c for c in map(_clean_char, chars) if c is not None)
    tokenizer = BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    assert tokenizer.normalize(tf.constant("".join(chars))).numpy().decode("utf-8") == expected


def test_keras_hub_differs_from_the_original_and_we_do_not(toy_vocab):
    """keras-hub's BertTokenizer normalises differently; measure where."""
    vocab_list = load_vocab(toy_vocab)
    vocab = {t: i for i, t in enumerate(vocab_list)}
    theirs = keras_hub.models.BertTokenizer(vocabulary=vocab_list, lowercase=True)(tf.constant(HAND_MADE))
    theirs = [list(map(int, ids)) for ids in (theirs.to_list() if hasattr(theirs, "to_list") else theirs)]
    ours = BertTokenizer(vocab_list, lowercase=True)(tf.constant(HAND_MADE)).to_list()
    expected = [[vocab[t] for t in full_tokenize(text, vocab)] for text in HAND_MADE]
    differs = {text for text, a, b in zip(HAND_MADE, theirs, expected) if a != b}
    # Case folding (ß -> ss, fullwidth), zero-width and other format characters
    # split instead of deleted, non-ASCII spaces not splitting, long words.
    for text in ("straße STRASSE", "a\u200bcat", "cat\u00a0dog", "x" * 150):
        assert text in differs
    assert ours == expected


def test_offsets_point_at_the_original_characters(toy_vocab):
    tokenizer = BertTokenizer(str(toy_vocab), lowercase=True)
    text = "Hello, Café\u00a0naïve  中国 unaffable (cat)!"
    pieces = tokenizer.tokenize_with_offsets(text)
    assert [t for t, _, _ in pieces] == [
        "hello",
        ",",
        "cafe",
        "naive",
        "中",
        "国",
        "un",
        "##aff",
        "##able",
        "(",
        "cat",
        ")",
        "!",
    ]
    spans = [text[s:e] for _, s, e in pieces]
    assert spans == ["Hello", ",", "Café", "naïve", "中", "国", "un", "aff", "able", "(", "cat", ")", "!"]
    # Every non-[UNK] token is its span, normalised as the tokenizer does.
    for text in CORPUS:
        last_end = 0
        for token, start, end in tokenizer.tokenize_with_offsets(text):
            assert 0 <= start < end <= len(text) and start >= last_end - 1
            last_end = end
            if token != "[UNK]":
                span = "".join(
                    c
                    for c in unicodedata.normalize("NFD", clean(text[start:end]).lower())
                    if unicodedata.category(c) != "Mn"
                )
                # (a final sigma lowercases to ς only in context)
                assert token.removeprefix("##").replace("ς", "σ") in span.replace("ς", "σ")


def test_cased_keeps_case_and_accents(toy_vocab):
    tokenizer = BertTokenizer(str(toy_vocab), lowercase=False)
    assert [t for t, _, _ in tokenizer.tokenize_with_offsets("Hello Café")] == ["Hello", "Café"]
    assert [t for t, _, _ in tokenizer.tokenize_with_offsets("hello")] == ["hello"]


def test_long_words_and_edge_strings(toy_vocab):
    tokenizer = BertTokenizer(str(toy_vocab), lowercase=True)
    assert [t for t, _, _ in tokenizer.tokenize_with_offsets("x" * 200)] == ["x"] + ["##x"] * 199
    assert tokenizer.tokenize_with_offsets("x" * 201) == [("[UNK]", 0, 201)]
    assert tokenizer.tokenize_with_offsets("") == [] and tokenizer.tokenize_with_offsets(" \t\u3000 ") == []
    assert tokenizer(tf.constant(["", "   "])).to_list() == [[], []]


def test_tokenizer_inside_tf_data(toy_vocab):
    tokenizer = BertTokenizer(str(toy_vocab), lowercase=True)
    ds = tf.data.Dataset.from_tensor_slices(["The cat sat.", "Hello world!"]).batch(2).map(tokenizer)
    ids = next(iter(ds)).to_list()
    assert ids == tokenizer(tf.constant(["The cat sat.", "Hello world!"])).to_list()


def test_tokenizer_serializes(toy_vocab, tmp_path):
    import keras

    from workbench.models.encoder import BertEncoder

    tokenizer = BertTokenizer(str(toy_vocab), lowercase=True)
    BertEncoder(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=1,
        num_heads=1,
        hidden_dim=8,
        intermediate_dim=8,
        max_sequence_length=8,
    ).save_to_preset(str(tmp_path))
    tokenizer.save_to_preset(str(tmp_path))
    loaded = keras_hub.models.BertTokenizer.from_preset(str(tmp_path))
    assert isinstance(loaded, BertTokenizer) and loaded.do_lower_case
    assert loaded(tf.constant(["straße"])).to_list() == tokenizer(tf.constant(["straße"])).to_list()
    clone = keras.layers.deserialize(keras.layers.serialize(tokenizer))
    assert clone.do_lower_case


def test_vocab_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_vocab(tmp_path / "nope.txt")
    dup = tmp_path / "dup.txt"
    dup.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ncat\ndog\ncat\n")
    with pytest.raises(ValueError, match=r"dup.txt.*'cat' on lines 6 and 8"):
        load_vocab(dup)
    missing = tmp_path / "missing.txt"
    missing.write_text("[PAD]\n[UNK]\n[SEP]\ncat\n")
    with pytest.raises(ValueError, match=r"missing.txt.*\['\[CLS\]', '\[MASK\]'\]"):
        load_vocab(missing)


def test_build_vocab_from_corpus(tmp_path):
    corpus = [
        "The quick brown fox jumps over the lazy dog.",
        "Foxes are quick; dogs are lazy!",
        "Café au lait, s'il vous plaît.",
    ] * 20
    vocab = build_vocab(corpus, vocab_size=120, lowercase=True)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(vocab) == len(set(vocab)) and len(vocab) <= 160
    save_vocab(vocab, tmp_path / "vocab.txt")
    tokenizer = BertTokenizer(str(tmp_path / "vocab.txt"), lowercase=True)
    unk = tokenizer.token_to_id("[UNK]")
    ids = np.concatenate(tokenizer(tf.constant(corpus)).to_list())
    assert unk not in ids
    assert "the" in vocab and "quick" in vocab


# ---- keras-hub's BertTokenizer contract ------------------------------------------------
KH_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "quick", "brown", "fox", ".", "THE", "<x>"]


def _ids(tokenizer, texts):
    out = tokenizer(tf.constant(texts))
    return out.to_list() if hasattr(out, "to_list") else [list(map(int, row)) for row in out]


def test_defaults_and_arguments_match_keras_hub():
    texts = ["the quick brown fox.", "THE QUICK Fox", "the[SEP]fox", ""]
    for options in ({}, {"lowercase": True}, {"lowercase": False}, {"special_tokens_in_strings": True}):
        theirs = keras_hub.tokenizers.BertTokenizer(vocabulary=KH_VOCAB, **options)
        ours = BertTokenizer(KH_VOCAB, **options)
        assert _ids(ours, texts) == _ids(theirs, texts), options
        assert ours.lowercase == ours.do_lower_case == bool(options.get("lowercase", False))
    # Cased by default, as keras-hub's: a drop-in swap does not lowercase.
    assert _ids(BertTokenizer(KH_VOCAB), ["THE the"]) == [[10, 5]]
    fixed = BertTokenizer(KH_VOCAB, sequence_length=4)
    assert fixed(tf.constant("the fox")).numpy().tolist() == [5, 8, 0, 0]
    assert BertTokenizer(KH_VOCAB, dtype="string")(tf.constant(["the fox"])).to_list() == [[b"the", b"fox"]]


def test_special_tokens_in_strings_give_their_ids_in_both_paths():
    text = "[CLS] THE [MASK] FOX [SEP] [PAD]"
    tokenizer = BertTokenizer(KH_VOCAB, lowercase=True, special_tokens_in_strings=True)
    assert _ids(tokenizer, [text]) == [[2, 5, 4, 8, 3, 0]]
    assert tokenizer.tokenize_with_offsets(text) == [
        ("[CLS]", 0, 5),
        ("the", 6, 9),
        ("[MASK]", 10, 16),
        ("fox", 17, 20),
        ("[SEP]", 21, 26),
        ("[PAD]", 27, 32),
    ]
    # Off (the default): the characters are tokenized, as the original does.
    plain = BertTokenizer(KH_VOCAB, lowercase=True)
    assert _ids(plain, [text])[0][:3] == [1, 1, 1]  # "[", "cls", "]" are not in this vocabulary
    # Extra special tokens, glued to words, next to accents and CJK: both paths agree
    # and the text between special tokens is tokenized as the original does.
    tokenizer = BertTokenizer(toy := load_vocab_list() + ["<x>"], lowercase=True, special_tokens=["<x>"],
                              special_tokens_in_strings=True)  # fmt: skip
    vocab = {t: i for i, t in enumerate(toy)}
    texts, expected = [], []
    for text in CORPUS[:60] + ["Café[SEP]naïve", "<x>中国<x>", "[SEP][SEP]", "a[MASK]b [CLS]"]:
        text = text[: len(text) // 2] + "[SEP]" + text[len(text) // 2 :] + "<x>"
        ids = []
        for piece in re.split(r"(\[SEP\]|\[CLS\]|\[MASK\]|\[PAD\]|<x>)", text):
            is_special = piece in ("[SEP]", "[CLS]", "[MASK]", "[PAD]", "<x>")
            ids += [vocab[piece]] if is_special else [vocab[t] for t in full_tokenize(piece, vocab)]
        assert tokenizer.encode_with_offsets(text)[0] == ids, text
        texts.append(text)
        expected.append(ids)
    assert _ids(tokenizer, texts) == expected


def load_vocab_list():
    from conftest import TOY_VOCAB

    return list(dict.fromkeys(TOY_VOCAB))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"split": False}, "split=True is the only value"),
        ({"split_on_cjk": False}, "split_on_cjk=True is the only value"),
        ({"suffix_indicator": "@@"}, "suffix_indicator='##' is the only value"),
        ({"lowercase": False, "strip_accents": True}, "strips accents exactly when it lowercases"),
        ({"lowercase": True, "strip_accents": False}, "strips accents exactly when it lowercases"),
    ],
)
def test_arguments_the_original_cannot_honour_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        BertTokenizer(KH_VOCAB, **options)
    BertTokenizer(KH_VOCAB, lowercase=True, strip_accents=True, split=True, suffix_indicator="##")
    with pytest.raises(ValueError, match=r"missing special token\(s\) \['\[CLS\]'"):
        BertTokenizer(["[PAD]", "[UNK]", "a"])


def test_config_round_trip_and_older_configs():
    import keras

    tokenizer = BertTokenizer(KH_VOCAB, lowercase=True, special_tokens_in_strings=True)
    config = tokenizer.get_config()
    assert config["lowercase"] is True and config["strip_accents"] is True and config["special_tokens_in_strings"]
    clone = BertTokenizer.from_config(config)
    clone.set_vocabulary(KH_VOCAB)
    assert _ids(clone, ["[CLS] THE Fox"]) == [[2, 5, 8]]
    # Saved before strip_accents followed lowercase: {"lowercase": True, "strip_accents": False}.
    old = keras.layers.deserialize(keras.layers.serialize(BertTokenizer(KH_VOCAB, lowercase=True)))
    config = dict(old.get_config(), strip_accents=False)
    legacy = BertTokenizer.from_config(config)
    legacy.set_vocabulary(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cafe"])
    assert legacy.do_lower_case and _ids(legacy, ["CAFÉ"]) == [[5]]


def test_only_public_keras_hub_api():
    import inspect

    import workbench.text.tokenizer as module

    assert "keras_hub.src" not in inspect.getsource(module)
