"""WordPiece tokenization exactly as the original BERT `FullTokenizer`, with offsets.

Two paths give the same token ids:

* `BertTokenizer.tokenize_with_offsets(text)`: Python, one text at a time, every
  token with its character span in the original text (SQuAD and NER need them).
* `BertTokenizer.tokenize(strings)` / `__call__`: TensorFlow ops (tensorflow-text's
  fast WordPiece through keras-hub), batched, usable inside `tf.data`.

keras-hub's `BertTokenizer` normalises text differently from the original
(NFKC case folding instead of `str.lower()`, accents stripped before lowercasing,
only ASCII whitespace, control characters treated as separators instead of being
deleted, words over 100 *bytes* mapped to [UNK] instead of over 200 characters).
This subclass applies the original normalisation first, so both paths match the
original ids; `tests/test_tokenizer.py` measures keras-hub's difference and ours.
"""

import collections
import os

import keras
import keras_hub
import tensorflow as tf
import tensorflow_text as tf_text
from keras_hub.src.tokenizers.word_piece_tokenizer import pretokenize

from workbench.models.encoder import BertEncoder
from workbench.text.wordpiece import (  # noqa: F401  (re-exported: the tokenizer's public helpers)
    _CJK_REGEX,
    MAX_CHARS_PER_WORD,
    SPECIAL_TOKENS,
    basic_tokenize_with_offsets,
    check_vocab,
    load_vocab,
    save_vocab,
    wordpiece_with_offsets,
)


def build_vocab(texts, vocab_size, lowercase=True, reserved_tokens=SPECIAL_TOKENS, max_unique_chars=1000):
    """Learn a WordPiece vocabulary from an iterable of strings (tensorflow-text's
    BERT vocabulary learner on words pre-tokenized exactly as the tokenizer will).

    The result starts with `reserved_tokens`, then contains every single character
    seen (with and without `##`) so no word is [UNK] for lack of a character.
    """
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

    counts = collections.Counter()
    for text in texts:
        for word in basic_tokenize_with_offsets(text, lowercase=lowercase):
            counts["".join(c for c, _ in word)] += 1
    if not counts:
        raise ValueError("build_vocab: the corpus contains no words")
    vocab = learner.learn(
        counts.items(),
        vocab_size=vocab_size,
        reserved_tokens=list(reserved_tokens),
        upper_thresh=10_000_000,
        lower_thresh=1,
        num_iterations=4,
        max_input_tokens=5_000_000,
        max_token_length=50,
        max_unique_chars=max_unique_chars,
        slack_ratio=0.05,
        include_joiner_token=True,
        joiner="##",
    )
    return list(dict.fromkeys(vocab))


# ---- the tokenizer ------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="workbench")
class BertTokenizer(keras_hub.models.BertTokenizer):
    """The original BERT `FullTokenizer` as a keras-hub tokenizer layer.

    Args:
        vocabulary: a list of tokens or the path of a `vocab.txt`.
        lowercase: the original's `do_lower_case` (lowercase and strip accents).

    Example:
    ```python
    tokenizer = BertTokenizer("vocab.txt", lowercase=True)
    tokenizer(["Hello, world!"])               # ragged ids, in TensorFlow
    tokenizer.tokenize_with_offsets("Héllo!")  # [("hello", 0, 5), ("!", 5, 6)]
    ```
    """

    # keras-hub pairs tokenizers with backbones when loading a preset directory.
    backbone_cls = BertEncoder

    def __init__(self, vocabulary=None, lowercase=True, **kwargs):
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = load_vocab(vocabulary)
        elif vocabulary is not None:
            vocabulary = list(vocabulary)
            check_vocab(vocabulary)
        # keras-hub's own normalisation stays off: we normalise as the original.
        kwargs.pop("strip_accents", None)
        super().__init__(vocabulary=vocabulary, lowercase=False, **kwargs)
        self.do_lower_case = lowercase

    # keras-hub calls this again when a saved tokenizer loads its assets.
    def set_vocabulary(self, vocabulary):
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = load_vocab(vocabulary)
        super().set_vocabulary(vocabulary)
        if self.vocabulary is not None:
            self._vocab_index = {t: i for i, t in enumerate(self.vocabulary)}

    def _set_vocabulary_tf(self):
        # Allow 200 characters of up to 4 UTF-8 bytes each; the 200-character
        # rule itself is applied in `_tokenize_tf`.
        self._fast_word_piece = tf_text.FastWordpieceTokenizer(
            vocab=self.vocabulary,
            token_out_type=self.compute_dtype,
            suffix_indicator=self.suffix_indicator,
            unknown_token=self.oov_token,
            no_pretokenization=True,
            support_detokenization=True,
            max_bytes_per_word=4 * MAX_CHARS_PER_WORD,
        )

    # ---- TensorFlow path ----
    def normalize(self, inputs):
        """The original's text cleaning and (when uncased) lowercasing and accent
        stripping, as TensorFlow string ops."""
        text = tf.convert_to_tensor(inputs)
        text = tf.strings.regex_replace(text, r"[\t\n\r\p{Zs}\x{2028}\x{2029}]", " ")
        text = tf.strings.regex_replace(text, r"[\p{C}\x{FFFD}]", "")
        text = tf.strings.regex_replace(text, _CJK_REGEX, r" \0 ")
        if self.do_lower_case:
            text = tf.strings.lower(text, encoding="utf-8")
            text = tf_text.normalize_utf8(text, "NFD")
            text = tf.strings.regex_replace(text, r"\p{Mn}", "")
        return text

    def _tokenize_tf(self, inputs):
        self._maybe_initialized_tf()
        inputs = tf.convert_to_tensor(inputs)
        unbatched = inputs.shape.rank == 0
        if unbatched:
            inputs = tf.expand_dims(inputs, 0)
        words = pretokenize(self.normalize(inputs), lowercase=False, strip_accents=False, split=True, split_on_cjk=True)
        too_long = tf.strings.length(words, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
        words = tf.ragged.map_flat_values(lambda w, t: tf.where(t, self.oov_token, w), words, too_long)
        tokens = self._fast_word_piece.tokenize(words).merge_dims(-2, -1)
        if self.sequence_length:
            tokens = tokens.to_tensor(shape=[None, self.sequence_length])
        if unbatched:
            tokens = tf.squeeze(tokens, 0)
        return tokens

    def tokenize(self, inputs):
        self._check_vocabulary()
        return self._tokenize_tf(inputs)

    # ---- Python path with offsets ----
    def tokenize_with_offsets(self, text):
        """[(token, start, end)] with `text[start:end]` the characters each token
        came from (for an accented letter, the accented original)."""
        self._check_vocabulary()
        out = []
        for word in basic_tokenize_with_offsets(text, lowercase=self.do_lower_case):
            out.extend(wordpiece_with_offsets(word, self._vocab_index, self.oov_token))
        return out

    def encode_with_offsets(self, text):
        """`(ids, starts, ends)` lists for one text."""
        pieces = self.tokenize_with_offsets(text)
        ids = [self._vocab_index[t] for t, _, _ in pieces]
        return ids, [s for _, s, _ in pieces], [e for _, _, e in pieces]

    def get_config(self):
        config = super().get_config()
        config.update(lowercase=self.do_lower_case)
        return config
