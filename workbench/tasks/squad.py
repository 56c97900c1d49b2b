"""SQuAD v1.1 and v2.0: loading, the official sliding window, n-best decoding.

Featurization follows the original `run_squad.py`: the question (at most
`max_query_length` tokens) and a window of the context share `max_seq_length`
tokens; windows start every `doc_stride` tokens; a token seen by several windows
is only used as an answer start in the window where it has the most context.
Where the original maps answers through whitespace words and a heuristic
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

from workbench.files import write_text_atomic
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


@dataclasses.dataclass
class SpanPrediction:
    text: str  # the prediction ("" = no answer)
    best_text: str  # the best non-null span, whatever the threshold says
    score_diff: float  # null score minus best span score (v2.0 null odds)
    nbest: list  # [(text, probability)], best first


class SquadTask(Task):
    """SQuAD v1.1 (`squad1`) or v2.0 (`squad2`).

    Args:
        version: "1.1" or "2.0".
        doc_stride: tokens between window starts (128 in the original).
        max_query_length: question tokens kept (64).
        n_best_size: candidate starts and ends considered per window (20).
        max_answer_length: longest answer in tokens (30).
        null_score_diff_threshold: v2.0 predicts no answer when the null score
            exceeds the best span's score by more than this (0.0).
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
        self.mismatched_answers = {}

    def files(self, split):
        return f"{split}-v{self.version}.json"

    # ---- loading ----
    def load(self, data_dir, split):
        """Examples of the split. Answers whose text does not match the context
        at `answer_start` are counted in `mismatched_answers[split]` (qids) and
        left out of training."""
        path = self.path(data_dir, split)
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise ValueError(f"{path}: expected a SQuAD file with a top-level 'data' list")
        examples, mismatched = [], []
        for a, article in enumerate(data["data"]):
            for p, paragraph in enumerate(article.get("paragraphs", [])):
                where = f"{path}: data[{a}].paragraphs[{p}]"
                if "context" not in paragraph or "qas" not in paragraph:
                    raise ValueError(f"{where} lacks 'context' or 'qas'")
                context = paragraph["context"]
                for qa in paragraph["qas"]:
                    if "id" not in qa or "question" not in qa:
                        raise ValueError(f"{where}: a question lacks 'id' or 'question'")
                    impossible = bool(qa.get("is_impossible", False))
                    if impossible and self.version == "1.1":
                        raise ValueError(f"{where}: question {qa['id']} is_impossible, which SQuAD v1.1 does not allow")
                    answers = [] if impossible else qa.get("answers", [])
                    if not impossible and not answers and split == "train":
                        raise ValueError(f"{where}: question {qa['id']} has no answers and is not marked is_impossible")
                    start = None
                    if answers:
                        start = answers[0].get("answer_start")
                        text = answers[0].get("text", "")
                        if not isinstance(start, int) or " ".join(
                            context[start : start + len(text)].split()
                        ) != " ".join(text.split()):
                            mismatched.append(qa["id"])
                            start = None
                    examples.append(
                        SquadExample(
                            qid=qa["id"],
                            question=qa["question"],
                            context=context,
                            answers=[ans.get("text", "") for ans in answers],
                            answer_start=start,
                            is_impossible=impossible,
                            title=article.get("title", ""),
                        )
                    )
        self.mismatched_answers[split] = mismatched
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
        )

    def _featurize(self, examples, tokenizer, max_seq_length, training=False):
        cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
        context_cache = {}
        rows = collections.defaultdict(list)
        for index, ex in enumerate(examples):
            if training and not ex.is_impossible and ex.answer_start is None:
                continue  # answer text did not match the context: not a training target
            q_ids = tokenizer.encode_with_offsets(ex.question)[0][: self.max_query_length]
            if ex.context not in context_cache:
                context_cache[ex.context] = tokenizer.encode_with_offsets(ex.context)
            d_ids, d_starts, d_ends = context_cache[ex.context]
            answer_tokens = None
            if training and not ex.is_impossible:
                char_start, char_end = ex.answer_start, ex.answer_start + len(ex.answers[0])
                inside = [i for i in range(len(d_ids)) if d_ends[i] > char_start and d_starts[i] < char_end]
                if inside:
                    answer_tokens = (inside[0], inside[-1])
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
        return Features(inputs, labels, meta)

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
            candidates.sort(key=lambda c: -c[0])
            nbest, seen = [], set()
            for score, text in candidates:
                if text not in seen:
                    seen.add(text)
                    nbest.append((score, text))
                if len(nbest) == self.n_best_size:
                    break
            if self.version == "2.0" and null_score < math.inf:
                nbest.append((null_score, ""))
                nbest.sort(key=lambda c: -c[0])
            if not nbest:
                nbest = [(0.0, "")]
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
        odds = {ex.qid: p.score_diff for ex, p in zip(examples, predictions)}
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
            odds = {
                ex.qid: (p.score_diff if math.isfinite(p.score_diff) else 1e9) for ex, p in zip(examples, predictions)
            }
            paths.append(os.path.join(output_dir, "null_odds.json"))
            write_text_atomic(paths[-1], json.dumps(odds, indent=1) + "\n")
        return paths


_FORK_STATE = None


def _featurize_chunk(bounds):
    task, examples, tokenizer, max_seq_length, training = _FORK_STATE
    return task._featurize(examples[bounds[0] : bounds[1]], tokenizer, max_seq_length, training)


def make_task(name, **options):
    return SquadTask(version="1.1" if name == "squad1" else "2.0", **options)
