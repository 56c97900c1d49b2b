"""WordPiece as the original BERT `FullTokenizer` does it, in plain Python.

No TensorFlow here: worker processes (pretraining data creation) import this
module alone. `workbench.text.tokenizer.BertTokenizer` wraps it for Keras/tf.data.
"""

import os
import unicodedata

from workbench.files import read_text, write_text_atomic

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_CHARS_PER_WORD = 200  # the original's max_input_chars_per_word

# The original BasicTokenizer's CJK ranges (CJK Unified Ideographs and extensions).
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
_CJK_REGEX = "|".join(f"[\\x{{{lo:X}}}-\\x{{{hi:X}}}]" for lo, hi in _CJK_RANGES)


# ---- the original's character classes -------------------------------------------
def _is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch):
    # Control (Cc) and format (Cf) characters only, as the original's
    # `_is_control`: private-use and unassigned code points stay in the word
    # (and usually make it [UNK]); Hugging Face deletes every C* category.
    return ch not in "\t\n\r" and unicodedata.category(ch) in ("Cc", "Cf")


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


_ASCII_PUNCT = frozenset(
    chr(c) for c in range(128) if 33 <= c <= 47 or 58 <= c <= 64 or 91 <= c <= 96 or 123 <= c <= 126
)


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
    tokens = [line.rstrip("\r").strip() for line in read_text(path).split("\n")]
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
        raise ValueError(
            f"{source}: missing special token(s) {missing}; a BERT vocabulary needs {list(SPECIAL_TOKENS)}"
        )


def save_vocab(tokens, path):
    write_text_atomic(path, "".join(t + "\n" for t in tokens))
