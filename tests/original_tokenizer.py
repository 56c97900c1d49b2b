"""A second, string-based rendering of the original BERT FullTokenizer (no
offsets), written from the published algorithm for the tests to compare with."""

import unicodedata

CJK = [
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
]


def clean(text):
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ord(ch) in (0, 0xFFFD) or (ch not in "\t\n\r" and cat in ("Cc", "Cf")):
            continue
        out.append(" " if ch in " \t\n\r" or cat == "Zs" else ch)
    return "".join(out)


def space_cjk(text):
    return "".join(f" {c} " if any(lo <= ord(c) <= hi for lo, hi in CJK) else c for c in text)


def is_punct(ch):
    cp = ord(ch)
    return (
        33 <= cp <= 47
        or 58 <= cp <= 64
        or 91 <= cp <= 96
        or 123 <= cp <= 126
        or unicodedata.category(ch).startswith("P")
    )


def split_punct(word):
    out, cur = [], ""
    for ch in word:
        if is_punct(ch):
            if cur:
                out.append(cur)
            out.append(ch)
            cur = ""
        else:
            cur += ch
    return out + ([cur] if cur else [])


def basic(text, lower):
    words = []
    for word in space_cjk(clean(text)).split():
        if lower:
            word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
        words.extend(split_punct(word))
    return words


def wordpiece(word, vocab):
    if len(word) > 200:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            sub = ("##" if start else "") + word[start:end]
            if sub in vocab:
                pieces.append(sub)
                start = end
                break
        else:
            return ["[UNK]"]
    return pieces


def full_tokenize(text, vocab, lower=True):
    return [p for w in basic(text, lower) for p in wordpiece(w, vocab)]
