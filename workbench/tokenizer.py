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
import unicodedata

import keras
import keras_hub
import tensorflow as tf
import tensorflow_text as tf_text
from keras_hub.src.tokenizers.word_piece_tokenizer import pretokenize

from workbench.backbone import BertEncoder
from workbench.files import write_text_atomic

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_CHARS_PER_WORD = 200  # the original's max_input_chars_per_word

# The original BasicTokenizer's CJK ranges (CJK Unified Ideographs and extensions).
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)
_CJK_REGEX = "|".join(f"[\\x{{{lo:X}}}-\\x{{{hi:X}}}]" for lo, hi in _CJK_RANGES)


# ---- the original's character classes -------------------------------------------
def _is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch):
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True  # all non-alphanumeric ASCII, e.g. "^", "$", "`"
    return unicodedata.category(ch).startswith("P")


def _is_cjk(ch):
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _strip_accents(text):
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def _transform(chars, fn):
    """Apply a string transform to [(char, offset)] keeping offsets.

    The whole word is transformed at once (lowercasing is context sensitive, e.g.
    the Greek final sigma); when it has as many characters as the per-character
    results, each output character keeps the offset of the input it came from.
    """
    whole = fn("".join(c for c, _ in chars))
    pieces = [(out, off) for c, off in chars for out in fn(c)]
    if len(whole) == len(pieces):
        return [(c, off) for c, (_, off) in zip(whole, pieces)]
    return pieces


_ASCII_PUNCT = frozenset(chr(c) for c in range(128) if 33 <= c <= 47 or 58 <= c <= 64 or 91 <= c <= 96 or 123 <= c <= 126)


def _clean_char(ch):
    """The original's cleaning of one character: None (dropped), " " or itself."""
    if ch < "\x80":  # ASCII fast path
        if ch in " \t\n\r":
            return " "
        return None if ch < " " or ch == "\x7f" else ch
    if ch == "\ufffd" or _is_control(ch):
        return None
    return " " if _is_whitespace(ch) else ch


def basic_tokenize_with_offsets(text, lowercase=True):
    """The original BasicTokenizer: a list of words, each [(char, offset)]."""
    # Clean (drop NUL, U+FFFD and control characters; whitespace becomes " "),
    # put spaces around CJK ideographs, and split on whitespace as Python's
    # str.split() does (the original's whitespace_tokenize; it also splits at
    # U+2028/U+2029).
    words, current = [], []
    for i, ch in enumerate(text):
        ch = _clean_char(ch)
        if ch is None:
            continue
        if ch.isspace() or (ch >= "\u3400" and _is_cjk(ch)):
            if current:
                words.append(current)
                current = []
            if not ch.isspace():
                words.append([(ch, i)])
        else:
            current.append((ch, i))
    if current:
        words.append(current)
    output = []
    for word in words:
        if lowercase:
            if all(c < "\x80" for c, _ in word):
                word = [(c.lower(), i) for c, i in word]
            else:
                word = _transform(word, str.lower)
                word = _transform(word, _strip_accents)
        # Punctuation: every punctuation character is a word of its own.
        piece = []
        for ch, i in word:
            if ch in _ASCII_PUNCT or (ch >= "\x80" and _is_punctuation(ch)):
                if piece:
                    output.append(piece)
                    piece = []
                output.append([(ch, i)])
            else:
                piece.append((ch, i))
        if piece:
            output.append(piece)
    return output


def wordpiece_with_offsets(word, vocab, unk_token="[UNK]"):
    """Greedy longest-match-first WordPiece of one word given as [(char, offset)].

    Returns [(token, start, end)]; a word that cannot be covered, or that is
    longer than 200 characters, is a single [UNK] spanning the word.
    """
    span_start, span_end = word[0][1], word[-1][1] + 1
    if len(word) > MAX_CHARS_PER_WORD:
        return [(unk_token, span_start, span_end)]
    text = "".join(c for c, _ in word)
    tokens, start = [], 0
    while start < len(text):
        end = len(text)
        found = None
        while start < end:
            candidate = text[start:end] if start == 0 else "##" + text[start:end]
            if candidate in vocab:
                found = candidate
                break
            end -= 1
        if found is None:
            return [(unk_token, span_start, span_end)]
        tokens.append((found, word[start][1], word[end - 1][1] + 1))
        start = end
    return tokens


# ---- vocabulary ---------------------------------------------------------------------
def load_vocab(path):
    """Read a `vocab.txt` (one token per line) into a list; clear errors for a
    missing file, duplicate tokens or missing special tokens."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Vocabulary file not found: {path}")
    with open(path, encoding="utf-8") as f:
        tokens = [line.rstrip("\n").rstrip("\r").strip() for line in f]
    while tokens and tokens[-1] == "":
        tokens.pop()  # a trailing newline is not a token
    check_vocab(tokens, source=path)
    return tokens


def check_vocab(tokens, source="vocabulary"):
    first_line = {}
    duplicates = []
    for line_number, token in enumerate(tokens, start=1):
        if token in first_line:
            duplicates.append(f"{token!r} on lines {first_line[token]} and {line_number}")
        else:
            first_line[token] = line_number
    if duplicates:
        shown = "; ".join(duplicates[:5]) + (" ..." if len(duplicates) > 5 else "")
        raise ValueError(f"{source}: {len(duplicates)} duplicate token(s): {shown}")
    missing = [t for t in SPECIAL_TOKENS if t not in first_line]
    if missing:
        raise ValueError(f"{source}: missing special token(s) {missing}; a BERT vocabulary needs {list(SPECIAL_TOKENS)}")


def save_vocab(tokens, path):
    write_text_atomic(path, "".join(t + "\n" for t in tokens))


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
