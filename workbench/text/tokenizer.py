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
import functools
import os
import re

import keras
import keras_hub
import tensorflow as tf
import tensorflow_text as tf_text

from workbench.models.encoder import BertEncoder
from workbench.text.wordpiece import (  # noqa: F401  (re-exported: the tokenizer's public helpers)
    _CJK_REGEX,
    MAX_CHARS_PER_WORD,
    SPECIAL_TOKENS,
    _clean_char,
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

    if not isinstance(vocab_size, int) or vocab_size <= len(reserved_tokens):
        raise ValueError(
            f"vocab_size must be an integer above the {len(reserved_tokens)} reserved tokens, got {vocab_size!r}"
        )
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
# Word splitting of normalised text (where every whitespace is already " "):
# at spaces and at every punctuation character, which stays a word of its own.
# Punctuation is the original's: all non-alphanumeric ASCII and Unicode class P.
_PUNCTUATION_RE2 = r"[!-/]|[:-@]|[\[-`]|[{-~]|\p{P}"


@functools.cache
def _deleted_characters_re2():
    """An RE2 class of the characters the original's cleaning deletes (U+FFFD,
    control Cc and format Cf characters other than tab, newline and return),
    decided by the Python path's own rule (`_clean_char`): RE2's `\\p{Cf}`
    follows a newer Unicode than Python 3.11's (U+13439-U+1343F)."""
    ranges, start = [], None
    for code in range(0x110001):
        deleted = code < 0x110000 and _clean_char(chr(code)) is None
        if deleted and start is None:
            start = code
        elif not deleted and start is not None:
            ranges.append(f"\\x{{{start:X}}}-\\x{{{code - 1:X}}}")
            start = None
    return "[" + "".join(ranges) + "]"


# keras-hub arguments with one value only: the original BERT always splits text
# into words, always splits CJK ideographs, and marks word continuations "##".
_FIXED_ARGUMENTS = {"split": True, "split_on_cjk": True, "suffix_indicator": "##"}


@keras.saving.register_keras_serializable(package="workbench")
class BertTokenizer(keras_hub.tokenizers.BertTokenizer):
    """The original BERT `FullTokenizer` as a keras-hub tokenizer layer.

    A drop-in `keras_hub.tokenizers.BertTokenizer`: the same arguments with the
    same defaults, so `lowercase` is False (cased) unless asked, as in keras-hub;
    the original's `do_lower_case` defaults to True, which is why every loader
    here passes the casing of the checkpoint or vocabulary explicitly.

    Args:
        vocabulary: a list of tokens or the path of a `vocab.txt`.
        lowercase: the original's `do_lower_case`: lowercase *and* strip accents.
        strip_accents: None (follow `lowercase`, as the original does) or the
            same value as `lowercase`; the original has no other combination.
        special_tokens_in_strings: find the special tokens ([CLS], [SEP], [PAD],
            [MASK] and `special_tokens`) written in the text, as keras-hub does,
            and give their ids instead of tokenizing their characters.
        **kwargs: the other `keras_hub.tokenizers.BertTokenizer` arguments
            (`sequence_length`, `oov_token`, `special_tokens`, `dtype`, ...);
            `split`, `split_on_cjk` and `suffix_indicator` only with their
            default values, the original's.

    Example:
    ```python
    tokenizer = BertTokenizer("vocab.txt", lowercase=True)
    tokenizer(["Hello, world!"])               # ragged ids, in TensorFlow
    tokenizer.tokenize_with_offsets("Héllo!")  # [("hello", 0, 5), ("!", 5, 6)]
    ```
    """

    # keras-hub pairs tokenizers with backbones when loading a preset directory.
    backbone_cls = BertEncoder

    def __init__(self, vocabulary=None, lowercase=False, strip_accents=None, special_tokens_in_strings=False, **kwargs):
        for name, value in _FIXED_ARGUMENTS.items():
            if name in kwargs and kwargs.pop(name) != value:
                raise ValueError(
                    f"BertTokenizer: {name}={value!r} is the only value the original BERT tokenizer supports; "
                    "use keras_hub.tokenizers.WordPieceTokenizer for other word splitting"
                )
        if strip_accents is not None and bool(strip_accents) != bool(lowercase):
            raise ValueError(
                f"BertTokenizer: lowercase={lowercase} with strip_accents={strip_accents}: the original BERT "
                "tokenizer strips accents exactly when it lowercases (do_lower_case); leave strip_accents=None"
            )
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = load_vocab(vocabulary)
        elif vocabulary is not None:
            vocabulary = list(vocabulary)
            check_vocab(vocabulary)
        self._extra_special_tokens = list(kwargs.get("special_tokens") or [])
        # keras-hub's own normalisation stays off: we normalise as the original.
        super().__init__(
            vocabulary=vocabulary, lowercase=False, special_tokens_in_strings=special_tokens_in_strings, **kwargs
        )
        self.lowercase = self.strip_accents = bool(lowercase)

    @property
    def do_lower_case(self):
        """The original's name for `lowercase` (lowercase and strip accents)."""
        return self.lowercase

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("lowercase") and config.get("strip_accents") is False:
            # Saved before strip_accents followed lowercase in the config (it was
            # always False then, and accents were stripped whenever lowercasing).
            config["strip_accents"] = None
        return super().from_config(config)

    # keras-hub calls this again when a saved tokenizer loads its assets.
    def set_vocabulary(self, vocabulary):
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = load_vocab(vocabulary)
        super().set_vocabulary(vocabulary)
        self._vocab_index = None
        self._wordpiece = None
        if self.vocabulary is not None:
            self._vocab_index = {t: i for i, t in enumerate(self.vocabulary)}
            # Built here, outside any tf.data pipeline (tf-text needs that).
            # Allows 200 characters of up to 4 UTF-8 bytes each; the
            # 200-character rule itself is applied in `tokenize`.
            self._wordpiece = tf_text.FastWordpieceTokenizer(
                vocab=self.vocabulary,
                token_out_type=self.compute_dtype,
                suffix_indicator="##",
                unknown_token=self.oov_token,
                no_pretokenization=True,
                support_detokenization=True,
                max_bytes_per_word=4 * MAX_CHARS_PER_WORD,
            )

    def _require_vocabulary(self):
        if self.vocabulary is None:
            raise ValueError("BertTokenizer has no vocabulary: pass `vocabulary` (a list or a vocab.txt path)")

    def _special_pattern(self):
        """A regex (RE2 and Python) matching the special tokens to find in
        strings, longest first; None when `special_tokens_in_strings` is off."""
        if not self.special_tokens_in_strings:
            return None
        tokens = sorted(set(self.special_tokens) | set(self._extra_special_tokens), key=lambda t: (-len(t), t))
        return "|".join(re.escape(t) for t in tokens)

    # ---- TensorFlow path ----
    def normalize(self, inputs):
        """The original's text cleaning and (when uncased) lowercasing and accent
        stripping, as TensorFlow string ops."""
        text = tf.convert_to_tensor(inputs)
        text = tf.strings.regex_replace(text, r"[\t\n\r\p{Zs}\x{2028}\x{2029}]", " ")
        text = tf.strings.regex_replace(text, _deleted_characters_re2(), "")
        text = tf.strings.regex_replace(text, _CJK_REGEX, r" \0 ")
        if self.do_lower_case:
            text = tf.strings.lower(text, encoding="utf-8")
            text = tf_text.normalize_utf8(text, "NFD")
            text = tf.strings.regex_replace(text, r"\p{Mn}", "")
        return text

    def _words(self, texts):
        """Words of a batch of texts, ragged (batch, words): normalised, split at
        spaces and punctuation; special tokens (when asked) kept whole."""
        pattern = self._special_pattern()
        if pattern is None:
            return tf_text.regex_split(self.normalize(texts), r" |" + _PUNCTUATION_RE2, _PUNCTUATION_RE2)
        # Cut the raw text at special tokens first (as keras-hub does), then
        # normalise and split the other pieces only.
        # (regex_split stops at a NUL character; \x01 is deleted by the cleaning too.)
        pieces = tf_text.regex_split(tf.strings.regex_replace(texts, "\x00", "\x01"), pattern, pattern)
        flat = pieces.flat_values
        special = tf.strings.regex_full_match(flat, pattern)
        plain = tf.where(special, "", self.normalize(flat))
        words = tf_text.regex_split(plain, r" |" + _PUNCTUATION_RE2, _PUNCTUATION_RE2)
        specials = tf.RaggedTensor.from_row_lengths(tf.boolean_mask(flat, special), tf.cast(special, tf.int64))
        words = tf.concat([words, specials], axis=1)  # a piece is either plain words or one special token
        return pieces.with_flat_values(words).merge_dims(1, 2)

    def tokenize(self, inputs):
        self._require_vocabulary()
        inputs = tf.convert_to_tensor(inputs)
        unbatched = inputs.shape.rank == 0
        if unbatched:
            inputs = tf.expand_dims(inputs, 0)
        words = self._words(inputs)
        too_long = tf.strings.length(words, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
        words = tf.ragged.map_flat_values(lambda w, t: tf.where(t, self.oov_token, w), words, too_long)
        tokens = self._wordpiece.tokenize(words).merge_dims(-2, -1)
        if self.sequence_length:
            tokens = tokens.to_tensor(shape=[None, self.sequence_length])
        if unbatched:
            tokens = tf.squeeze(tokens, 0)
        return tokens

    # ---- Python path with offsets ----
    def tokenize_with_offsets(self, text):
        """[(token, start, end)] with `text[start:end]` the characters each token
        came from (for an accented letter, the accented original)."""
        self._require_vocabulary()
        pattern = self._special_pattern()
        pieces = [(text, 0, False)]  # (text, offset, is a special token)
        if pattern is not None:
            pieces, position = [], 0
            for match in re.finditer(pattern, text):
                pieces += [(text[position : match.start()], position, False), (match.group(), match.start(), True)]
                position = match.end()
            pieces.append((text[position:], position, False))
        out = []
        for piece, offset, special in pieces:
            if special:
                out.append((piece, offset, offset + len(piece)))
                continue
            for word in basic_tokenize_with_offsets(piece, lowercase=self.do_lower_case):
                if offset:
                    word = [(c, i + offset) for c, i in word]
                out.extend(wordpiece_with_offsets(word, self._vocab_index, self.oov_token))
        return out

    def encode_with_offsets(self, text):
        """`(ids, starts, ends)` lists for one text."""
        pieces = self.tokenize_with_offsets(text)
        ids = [self._vocab_index[t] for t, _, _ in pieces]
        return ids, [s for _, s, _ in pieces], [e for _, _, e in pieces]

    def get_config(self):
        config = super().get_config()
        config.update(lowercase=self.lowercase, strip_accents=self.strip_accents)
        return config
