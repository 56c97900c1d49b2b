"""SQuAD v1.1 and v2.0: loading, the official sliding window, n-best decoding.

Featurization follows the original `run_squad.py`: the question (at most
`max_query_length` tokens) and a window of the context share `max_seq_length`
tokens; windows start every `doc_stride` tokens; a token seen by several windows
is only used as an answer start in the window where it has the most context.
Training labels too: the annotated characters are widened to whole
whitespace-separated words (the original's `char_to_word_offset`), an answer
the original cannot find in those words is skipped (and counted), and the label
is narrowed to the answer's own word pieces inside them (`_improve_answer_span`),
except that of several equal candidates we take the annotated one, where the
original takes the first (docs/differences.md).
Where the original maps predictions through whitespace words and a heuristic
(`get_final_text`), we keep every token's character offsets and slice the
original context, so predictions are exact substrings of it.
"""

import collections
import dataclasses
import json
import math
import os

import keras
import numpy as np

from workbench.files import read_json, write_text_atomic
from workbench.models.heads import BertSpanExtractor
from workbench.tasks import metrics as M
from workbench.tasks.registry import Hyperparameters, Task
from workbench.text.inputs import Features


@dataclasses.dataclass
class SquadExample:
    qid: str
    question: str
    context: str
    answers: list  # gold answer texts ([] = no answer, v2.0)
    answer_start: int = None  # character offset of the first answer (training target)
    is_impossible: bool = False
    title: str = ""
    answer_found: bool = None  # the original finds the first answer in whole words (None: not checked)


# The original run_squad.py splits contexts into words at these characters only
# (not at U+00A0, U+2009, U+3000 ..., which str.split() and the tokenizer split at).
_ORIGINAL_WHITESPACE = frozenset(" \t\r\n\u202f")


def whitespace_words(context):
    """(words, char_to_word): the original's whitespace words of a context and,
    for every character, the index of its word (for whitespace, of the word
    before it; -1 before the first word)."""
    words, char_to_word, after_space = [], [], True
    for ch in context:
        if ch in _ORIGINAL_WHITESPACE:
            after_space = True
        else:
            if after_space:
                words.append(ch)
            else:
                words[-1] += ch
            after_space = False
        char_to_word.append(len(words) - 1)
    return words, char_to_word


def answer_words(words, char_to_word, answer_start, answer_text):
    """(first, last) word of an answer as the original finds it, or None where
    the original logs "Could not find answer" and skips the example: the words
    under the answer's first and last character, joined by single spaces, must
    contain the answer with its whitespace (any Unicode whitespace) made single
    spaces. So an answer ending inside a word takes the whole word, and one
    starting at a space takes the word before it."""
    if not isinstance(answer_start, int) or answer_start < 0 or not answer_text:
        return None
    answer_end = answer_start + len(answer_text)
    if answer_end > len(char_to_word):
        return None
    first, last = char_to_word[answer_start], char_to_word[answer_end - 1]
    if first < 0:  # the answer starts in whitespace before the first word
        return None
    if " ".join(words[first : last + 1]).find(" ".join(answer_text.split())) == -1:
        return None
    return first, last


@dataclasses.dataclass
class SpanPrediction:
    text: str  # the prediction ("" = no answer)
    best_text: str  # the best non-null span, whatever the threshold says
    score_diff: float  # null score minus best span score (v2.0 null odds)
    nbest: list  # [(text, probability)] in the original's order: best first, an appended null answer last


def _shown(value):
    """A JSON value as an error message shows it: scalars as JSON (shortened),
    objects and lists by their kind."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


_ANSWERS = '\'answers\' must be a list of objects with "text" and "answer_start"'


def _check_question(qa, where):
    """A ValueError naming `where` (file and JSON location) unless `qa` has the
    structure of a SQuAD question. Only the structure: an `answer_start` that is
    missing, not an integer or out of the context is counted at load, not an error."""
    if not isinstance(qa, dict):
        raise ValueError(f"{where} must be an object with 'id' and 'question', got {_shown(qa)}")
    if "id" not in qa or "question" not in qa:
        raise ValueError(f"{where} lacks 'id' or 'question'")
    qid = qa["id"]
    if not isinstance(qid, (str, int)) or isinstance(qid, bool):
        raise ValueError(f"{where}: 'id' must be a string, got {_shown(qid)}")
    if not isinstance(qa["question"], str):
        raise ValueError(f"{where}: 'question' must be a string, got {_shown(qa['question'])}")
    impossible = qa.get("is_impossible", False)
    if not isinstance(impossible, bool):
        raise ValueError(f"{where}: 'is_impossible' must be true or false, got {_shown(impossible)}")
    answers = qa.get("answers", [])
    if not isinstance(answers, list):
        raise ValueError(f"{where}: {_ANSWERS}, got {_shown(answers)}")
    for i, answer in enumerate(answers):
        if not isinstance(answer, dict):
            raise ValueError(f"{where}: {_ANSWERS}, got {_shown(answer)} at answers[{i}]")
        if not isinstance(answer.get("text"), str):
            shown = "no 'text'" if "text" not in answer else _shown(answer["text"])
            raise ValueError(f"{where}.answers[{i}]: 'text' must be a string, got {shown}")


class SquadTask(Task):
    """SQuAD v1.1 (`squad1`) or v2.0 (`squad2`).

    Args:
        version: "1.1" or "2.0".
        doc_stride: tokens between window starts (128 in the original).
        max_query_length: question tokens kept (64).
        n_best_size: candidate starts and ends considered per window (20).
        max_answer_length: longest answer in tokens (30).
        null_score_diff_threshold: v2.0 predicts no answer when the null score
            exceeds the best span's score by more than this (0.0). Scores follow
            the official script given our null_odds.json, which also counts a
            difference above 1.0 (its --na-prob-thresh) as no answer.
    """

    head = "span"
    eval_splits = ("dev",)
    test_splits = ()

    def __init__(
        self,
        version="1.1",
        doc_stride=128,
        max_query_length=64,
        n_best_size=20,
        max_answer_length=30,
        null_score_diff_threshold=0.0,
    ):
        if version not in ("1.1", "2.0"):
            raise ValueError(f"SQuAD version must be '1.1' or '2.0', got {version!r}")
        self.version = version
        self.name = "squad1" if version == "1.1" else "squad2"
        self.metrics = ("f1", "exact_match") if version == "1.1" else ("f1", "exact_match", "best_f1", "best_exact")
        self.hparams = (
            Hyperparameters(batch_size=12, learning_rate=3e-5, epochs=2.0, max_seq_length=384)
            if version == "1.1"
            else Hyperparameters(batch_size=24, learning_rate=3e-5, epochs=2.0, max_seq_length=384)
        )
        self.paper_name = {"dev": "squad-v1.1" if version == "1.1" else "squad-v2.0"}
        self.doc_stride = doc_stride
        self.max_query_length = max_query_length
        self.n_best_size = n_best_size
        self.max_answer_length = max_answer_length
        self.null_score_diff_threshold = null_score_diff_threshold
        self.mismatched_answers = {}  # split -> qids whose answer text is not the context at answer_start
        self.unfound_answers = {}  # split -> qids the original cannot find in whole words (not trained on)
        self.answer_counts = {}  # split -> {"answers", "mismatched", "not_found"}

    def files(self, split):
        return f"{split}-v{self.version}.json"

    # ---- loading ----
    def load(self, data_dir, split):
        """Examples of the split.

        Two counts per split, the question ids in `mismatched_answers[split]`
        (the first answer's text is not the context at its `answer_start`) and
        `unfound_answers[split]` (the original `run_squad.py` cannot find the
        answer in whole words and skips it in training; so do we), summed up in
        `answer_counts[split]` and printed when not zero.
        """
        path = self.path(data_dir, split)
        data = read_json(path)  # an error names the file, line and column (or byte, when not UTF-8)
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise ValueError(f"{path}: expected a SQuAD file with a top-level 'data' list")
        examples, mismatched, unfound = [], [], []
        for a, article in enumerate(data["data"]):
            if not isinstance(article, dict):
                raise ValueError(f"{path}: data[{a}] must be an object with a 'paragraphs' list, got {_shown(article)}")
            paragraphs = article.get("paragraphs", [])
            if not isinstance(paragraphs, list):
                raise ValueError(f"{path}: data[{a}]: 'paragraphs' must be a list, got {_shown(paragraphs)}")
            for p, paragraph in enumerate(paragraphs):
                where = f"{path}: data[{a}].paragraphs[{p}]"
                if not isinstance(paragraph, dict):
                    raise ValueError(f"{where} must be an object with 'context' and 'qas', got {_shown(paragraph)}")
                if "context" not in paragraph or "qas" not in paragraph:
                    raise ValueError(f"{where} lacks 'context' or 'qas'")
                context, qas = paragraph["context"], paragraph["qas"]
                if not isinstance(context, str):
                    raise ValueError(f"{where}: 'context' must be a string, got {_shown(context)}")
                if not isinstance(qas, list):
                    raise ValueError(f"{where}: 'qas' must be a list, got {_shown(qas)}")
                words, char_to_word = whitespace_words(context)
                for q, qa in enumerate(qas):
                    _check_question(qa, f"{where}.qas[{q}]")
                    impossible = qa.get("is_impossible", False)
                    if impossible and self.version == "1.1":
                        raise ValueError(f"{where}: question {qa['id']} is_impossible, which SQuAD v1.1 does not allow")
                    answers = [] if impossible else qa.get("answers", [])
                    if not impossible and not answers and (split == "train" or self.version == "1.1"):
                        # (v1.1: the official evaluation cannot score such a question either)
                        raise ValueError(f"{where}: question {qa['id']} has no answers and is not marked is_impossible")
                    start, found = None, None
                    if answers:
                        start = answers[0].get("answer_start")
                        text = answers[0]["text"]
                        if not isinstance(start, int) or isinstance(start, bool):
                            start = None  # counted as not found (docs/differences.md), not an error
                        if start is None or " ".join(context[start : start + len(text)].split()) != " ".join(
                            text.split()
                        ):
                            mismatched.append(qa["id"])
                        found = start is not None and answer_words(words, char_to_word, start, text) is not None
                        if not found:
                            unfound.append(qa["id"])
                    examples.append(
                        SquadExample(
                            qid=qa["id"],
                            question=qa["question"],
                            context=context,
                            answers=[ans["text"] for ans in answers],
                            answer_start=start,
                            is_impossible=impossible,
                            title=article.get("title", ""),
                            answer_found=found,
                        )
                    )
        self.mismatched_answers[split] = mismatched
        self.unfound_answers[split] = unfound
        self.answer_counts[split] = {
            "answers": sum(1 for e in examples if e.answers),
            "mismatched": len(mismatched),
            "not_found": len(unfound),
        }
        if mismatched or unfound:
            print(
                f"{self.name} {split}: {len(mismatched)} answer(s) differ from the context at answer_start, "
                f"{len(unfound)} answer(s) the original run_squad.py cannot find"
                + (" (left out of training)" if split == "train" else "")
            )
        return examples

    # ---- featurization: the sliding window ----
    def featurize(self, examples, tokenizer, max_seq_length, training=False, workers=None):
        """Windows of every example. `workers` processes share the work (default:
        all cores for more than 2,000 examples); the result is identical."""
        workers = workers or ((os.cpu_count() or 1) if len(examples) > 2000 else 1)
        if workers > 1 and len(examples) > workers:
            return self._featurize_parallel(examples, tokenizer, max_seq_length, training, workers)
        return self._featurize(examples, tokenizer, max_seq_length, training)

    def _featurize_parallel(self, examples, tokenizer, max_seq_length, training, workers):
        import multiprocessing

        global _FORK_STATE
        # Contiguous chunks keep questions on the same context together (SQuAD
        # files are ordered by paragraph), so each worker's context cache works.
        bounds = np.linspace(0, len(examples), workers + 1).astype(int)
        _FORK_STATE = (self, examples, tokenizer, max_seq_length, training)
        try:
            # fork: children run pure-Python tokenization only (no TensorFlow ops).
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                parts = pool.map(_featurize_chunk, list(zip(bounds[:-1], bounds[1:])))
        finally:
            _FORK_STATE = None
        for (start, _), part in zip(zip(bounds[:-1], bounds[1:]), parts):
            part.meta["example_index"] = part.meta["example_index"] + start
        return Features(
            {k: np.concatenate([p.inputs[k] for p in parts]) for k in parts[0].inputs},
            {k: np.concatenate([p.labels[k] for p in parts]) for k in parts[0].labels},
            {k: np.concatenate([p.meta[k] for p in parts]) for k in parts[0].meta},
            counts={k: sum(p.counts[k] for p in parts) for k in parts[0].counts},
        )

    def _featurize(self, examples, tokenizer, max_seq_length, training=False):
        cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
        context_cache = {}
        rows = collections.defaultdict(list)
        counts = {"featurized": 0, "not_found": 0}
        for index, ex in enumerate(examples):
            if ex.context not in context_cache:
                d_ids, d_starts, d_ends = tokenizer.encode_with_offsets(ex.context)
                words, char_to_word = whitespace_words(ex.context)
                token_words = [char_to_word[start] for start in d_starts]
                context_cache[ex.context] = (d_ids, d_starts, d_ends, words, char_to_word, token_words)
            d_ids, d_starts, d_ends, words, char_to_word, token_words = context_cache[ex.context]
            answer_tokens = None
            if training and not ex.is_impossible:
                span = ex.answers and answer_words(words, char_to_word, ex.answer_start, ex.answers[0])
                if not span:
                    counts["not_found"] += 1
                    continue  # the original logs "Could not find answer" and skips it
                answer_tokens = self._answer_tokens(tokenizer, ex, span, d_ids, d_starts, d_ends, token_words)
            counts["featurized"] += 1
            q_ids = tokenizer.encode_with_offsets(ex.question)[0][: self.max_query_length]
            room = max_seq_length - len(q_ids) - 3
            if room <= 0:
                raise ValueError(
                    f"max_seq_length={max_seq_length} leaves no room for the context "
                    f"after a {len(q_ids)}-token question"
                )
            windows = self._windows(len(d_ids), room)
            offset = len(q_ids) + 2  # [CLS] question [SEP]
            for w_start, w_len in windows:
                tokens = [cls_id] + q_ids + [sep_id] + d_ids[w_start : w_start + w_len] + [sep_id]
                pad = max_seq_length - len(tokens)
                starts = np.full(max_seq_length, -1, np.int32)
                ends = np.full(max_seq_length, -1, np.int32)
                max_context = np.zeros(max_seq_length, bool)
                for j in range(w_len):
                    starts[offset + j] = d_starts[w_start + j]
                    ends[offset + j] = d_ends[w_start + j]
                    max_context[offset + j] = self._is_max_context(windows, (w_start, w_len), w_start + j)
                start_label = end_label = 0  # [CLS]: no answer in this window
                if answer_tokens and w_start <= answer_tokens[0] and answer_tokens[1] < w_start + w_len:
                    start_label, end_label = answer_tokens[0] - w_start + offset, answer_tokens[1] - w_start + offset
                rows["token_ids"].append(tokens + [0] * pad)
                rows["segment_ids"].append([0] * offset + [1] * (w_len + 1) + [0] * pad)
                rows["padding_mask"].append([1] * len(tokens) + [0] * pad)
                rows["start"].append(start_label)
                rows["end"].append(end_label)
                rows["example_index"].append(index)
                rows["char_starts"].append(starts)
                rows["char_ends"].append(ends)
                rows["max_context"].append(max_context)
        n = len(rows["token_ids"])
        shape = (n, max_seq_length)

        def array(key, dtype):
            return np.asarray(rows[key], dtype).reshape(shape) if n else np.zeros(shape, dtype)

        inputs = {k: array(k, np.int32) for k in ("token_ids", "segment_ids", "padding_mask")}
        labels = {"start_logits": np.asarray(rows["start"], np.int32), "end_logits": np.asarray(rows["end"], np.int32)}
        meta = {
            "example_index": np.asarray(rows["example_index"], np.int32),
            "char_starts": array("char_starts", np.int32),
            "char_ends": array("char_ends", np.int32),
            "max_context": array("max_context", bool),
        }
        return Features(inputs, labels, meta, counts=counts)

    @staticmethod
    def _answer_tokens(tokenizer, ex, span, d_ids, d_starts, d_ends, token_words):
        """(first, last) context token of a training answer, as the original
        labels it: every word piece of the answer's whole words, narrowed to a
        run of pieces equal to the answer's own pieces when there is one.

        Of several such runs the original takes the first (for " . " annotated
        after "end." it labels the "." of "end."); we take the one overlapping
        the annotated characters most (ties: the first), the annotated answer.
        """
        first_word, last_word = span
        # Pieces of words first_word..last_word (a word with no pieces, e.g. only
        # control characters, contributes none, as in the original).
        start = next((i for i, w in enumerate(token_words) if w >= first_word), len(token_words))
        end = next((i for i in range(len(token_words) - 1, -1, -1) if token_words[i] <= last_word), -1)
        answer_ids = tokenizer.encode_with_offsets(ex.answers[0])[0]
        n = len(answer_ids)
        candidates = [s for s in range(start, end - n + 2) if n and d_ids[s : s + n] == answer_ids]
        if not candidates:
            return start, end
        char_start, char_end = ex.answer_start, ex.answer_start + len(ex.answers[0])

        def overlap(s):
            return min(char_end, d_ends[s + n - 1]) - max(char_start, d_starts[s])

        best = max(candidates, key=lambda s: (overlap(s), -s))
        return best, best + n - 1

    def _windows(self, num_tokens, room):
        """(start, length) of each window over the context tokens."""
        windows, start = [], 0
        while True:
            length = min(num_tokens - start, room)
            windows.append((start, length))
            if start + length >= num_tokens:
                return windows
            start += min(length, self.doc_stride)

    @staticmethod
    def _is_max_context(windows, window, position):
        """Whether `window` gives the token at `position` its most context:
        min(left, right context) + 0.01 * window length, best over windows."""
        best, best_window = None, None
        for start, length in windows:
            end = start + length - 1
            if not start <= position <= end:
                continue
            score = min(position - start, end - position) + 0.01 * length
            if best is None or score > best:
                best, best_window = score, (start, length)
        return best_window == window

    # ---- model ----
    def build_model(self, encoder):
        return BertSpanExtractor(encoder)

    def loss(self):
        # The original averages the start and end losses (compile weights 0.5).
        return {
            "start_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "end_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        }

    loss_weights = {"start_logits": 0.5, "end_logits": 0.5}

    # ---- decoding ----
    def decode(self, examples, features, outputs):
        start_logits, end_logits = np.asarray(outputs["start_logits"]), np.asarray(outputs["end_logits"])
        by_example = collections.defaultdict(list)
        for f, index in enumerate(features.meta["example_index"]):
            by_example[int(index)].append(f)
        predictions = []
        for index, ex in enumerate(examples):
            candidates, null_score = [], math.inf
            for f in by_example.get(index, []):
                s_logits, e_logits = start_logits[f], end_logits[f]
                null_score = min(null_score, float(s_logits[0] + e_logits[0]))
                starts = features.meta["char_starts"][f]
                ends = features.meta["char_ends"][f]
                max_context = features.meta["max_context"][f]
                top_s = np.argsort(-s_logits)[: self.n_best_size]
                top_e = np.argsort(-e_logits)[: self.n_best_size]
                for s in top_s:
                    if starts[s] < 0 or not max_context[s]:
                        continue
                    for e in top_e:
                        if ends[e] < 0 or e < s or e - s + 1 > self.max_answer_length:
                            continue
                        candidates.append((float(s_logits[s] + e_logits[e]), ex.context[starts[s] : ends[e]]))
            # The original's n-best list (`write_predictions`): the null answer (None
            # here, after the spans) competes for the n_best_size places, a span's text
            # is kept once, the null answer is appended when it did not make the list,
            # and an empty list gets the nonce answer "empty" (scored as a text). A
            # v2.0 question with no span at all predicts "" (the original fails there).
            if self.version == "2.0" and null_score < math.inf:
                candidates.append((null_score, None))
            candidates.sort(key=lambda c: -c[0])  # stable: ties keep that order
            nbest, seen = [], set()
            for score, text in candidates:
                if len(nbest) == self.n_best_size:
                    break
                if text is not None and text in seen:
                    continue
                text = "" if text is None else text
                seen.add(text)
                nbest.append((score, text))
            if self.version == "2.0" and "" not in seen and null_score < math.inf:
                nbest.append((null_score, ""))
            if not nbest:
                nbest = [(0.0, "empty")]
            scores = np.array([s for s, _ in nbest])
            probs = np.exp(scores - scores.max())
            probs /= probs.sum()
            best_span = next(((s, t) for s, t in nbest if t), (0.0, ""))
            if self.version == "2.0":
                diff = null_score - best_span[0] if best_span[1] else math.inf
                text = "" if diff > self.null_score_diff_threshold else best_span[1]
            else:
                diff, text = 0.0, best_span[1]
            predictions.append(
                SpanPrediction(text, best_span[1], float(diff), [(t, float(p)) for (_, t), p in zip(nbest, probs)])
            )
        return predictions

    # ---- evaluation ----
    def score(self, examples, predictions, split):
        gold = {ex.qid: ex.answers for ex in examples}
        texts = {ex.qid: p.text for ex, p in zip(examples, predictions)}
        if self.version == "1.1":
            return M.squad_v1_evaluate(gold, texts)
        # Scored as the official script scores the files we write (null_odds.json
        # as --na-prob-file, its default --na-prob-thresh of 1.0).
        odds = {ex.qid: _null_odds(p) for ex, p in zip(examples, predictions)}
        result = M.squad_v2_evaluate(gold, texts, odds)
        return {k: v for k, v in result.items() if not k.endswith("_total")}

    def write_predictions(self, examples, predictions, output_dir, split):
        paths = []
        texts = {ex.qid: p.text for ex, p in zip(examples, predictions)}
        paths.append(os.path.join(output_dir, "predictions.json"))
        write_text_atomic(paths[-1], json.dumps(texts, indent=1, ensure_ascii=False) + "\n")
        nbest = {ex.qid: [{"text": t, "probability": pr} for t, pr in p.nbest] for ex, p in zip(examples, predictions)}
        paths.append(os.path.join(output_dir, "nbest_predictions.json"))
        write_text_atomic(paths[-1], json.dumps(nbest, indent=1, ensure_ascii=False) + "\n")
        if self.version == "2.0":
            odds = {ex.qid: _null_odds(p) for ex, p in zip(examples, predictions)}
            paths.append(os.path.join(output_dir, "null_odds.json"))
            write_text_atomic(paths[-1], json.dumps(odds, indent=1) + "\n")
        return paths


def _null_odds(prediction):
    """The null odds written to null_odds.json (JSON has no infinity: a question
    without any non-null span gets 1e9)."""
    return prediction.score_diff if math.isfinite(prediction.score_diff) else 1e9


_FORK_STATE = None


def _featurize_chunk(bounds):
    task, examples, tokenizer, max_seq_length, training = _FORK_STATE
    return task._featurize(examples[bounds[0] : bounds[1]], tokenizer, max_seq_length, training)


def make_task(name, **options):
    return SquadTask(version="1.1" if name == "squad1" else "2.0", **options)
