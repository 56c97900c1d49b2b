"""The metrics of the paper, computed as the official evaluations compute them.

GLUE metrics come from scikit-learn and scipy; NER from seqeval (conlleval
semantics); SQuAD follows the official v1.1 and v2.0 evaluation scripts:
answer normalisation (lowercase, no punctuation, no English articles, single
spaces), the max over gold answers, HasAns/NoAns breakdown and the best
no-answer threshold on dev. All values are returned as fractions in [0, 1]
(SQuAD too); tables multiply by 100 where the paper does.
"""

import collections
import math
import re
import string
import warnings

import numpy as np
import scipy.stats
import sklearn.metrics


# ---- classification and regression ----------------------------------------------
def accuracy(labels, predictions):
    return float(sklearn.metrics.accuracy_score(labels, predictions))


def f1(labels, predictions):
    """Binary F1 of the positive class (label 1), as GLUE scores MRPC and QQP."""
    return float(sklearn.metrics.f1_score(labels, predictions, pos_label=1, average="binary", zero_division=0.0))


def matthews_corr(labels, predictions):
    """Matthews correlation (CoLA; multi-class R3 for the GLUE diagnostic)."""
    return float(sklearn.metrics.matthews_corrcoef(labels, predictions))


def pearson(labels, predictions):
    """Pearson's r (STS-B), as scipy computes it; NaN when either side is constant (see `correlation_note`)."""
    return _correlation(scipy.stats.pearsonr, labels, predictions)


def spearman(labels, predictions):
    """Spearman's rho (STS-B), as scipy computes it; NaN when either side is constant."""
    return _correlation(scipy.stats.spearmanr, labels, predictions)


def correlation_note(labels, predictions):
    """Why a correlation of these values is undefined ("constant predictions",
    "constant labels", "fewer than 2 values"), or None when it is defined.

    A correlation divides by both standard deviations. scipy returns NaN when
    all values are equal, whatever the value; testing the float standard
    deviation instead (0.0 for [2.5] * 7, 1.4e-17 for [0.1] * 7) would score
    the same degenerate model differently depending on its constant.
    """
    labels, predictions = np.asarray(labels, float), np.asarray(predictions, float)
    if len(labels) < 2:
        return "fewer than 2 values"
    if (predictions == predictions[0]).all():
        return "constant predictions"
    if (labels == labels[0]).all():
        return "constant labels"
    return None


def _correlation(fn, labels, predictions):
    note = correlation_note(labels, predictions)
    if note:
        warnings.warn(f"{fn.__name__} is undefined for {note}; reported as NaN", UndefinedCorrelationWarning, 2)
        return math.nan
    return float(fn(np.asarray(labels, float), np.asarray(predictions, float))[0])


class UndefinedCorrelationWarning(UserWarning):
    """A Pearson or Spearman correlation of constant values, reported as NaN."""


CLASSIFICATION_METRICS = {
    "accuracy": accuracy,
    "f1": f1,
    "mcc": matthews_corr,
    "pearson": pearson,
    "spearman": spearman,
}


# ---- SQuAD -----------------------------------------------------------------------------
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text):
    """The official normalisation: lowercase, drop punctuation, drop the articles
    a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _answer_tokens(text):
    return normalize_answer(text).split()


def squad_exact(gold, prediction):
    """1.0 when both normalise to the same string (both v1.1 and v2.0)."""
    return float(normalize_answer(gold) == normalize_answer(prediction))


def squad_f1(gold, prediction, version="2.0"):
    """Token F1 of the normalised answers.

    The two official scripts differ only when a side normalises to nothing
    (e.g. "the", ""): v2.0 scores 1 when both are empty and 0 otherwise;
    v1.1 has no such rule, so no shared token always scores 0.
    """
    gold_tokens, pred_tokens = _answer_tokens(gold), _answer_tokens(prediction)
    if version == "2.0" and (not gold_tokens or not pred_tokens):
        return float(gold_tokens == pred_tokens)
    overlap = sum((collections.Counter(gold_tokens) & collections.Counter(pred_tokens)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(gold_answers, predictions, version="2.0"):
    """Per-question exact match and F1, max over gold answers, for the questions
    that have a prediction.

    v1.1 takes every gold answer as it is (a question without any cannot be
    scored: the official script fails on it). v2.0 first drops gold answers
    that normalise to nothing and, when none is left, scores against "".

    Args:
        gold_answers: {qid: [answer texts]}; an empty list means no answer (v2.0).
        predictions: {qid: predicted text}; "" predicts no answer.
        version: "1.1" or "2.0", the official script to follow.
    Returns:
        ({qid: exact}, {qid: f1}).
    """
    exact, f1_scores = {}, {}
    for qid, golds in gold_answers.items():
        if qid not in predictions:
            continue
        if version == "1.1":
            if not golds:
                raise ValueError(f"SQuAD v1.1: question {qid!r} has no gold answer (official script: an error)")
        else:
            golds = [g for g in golds if normalize_answer(g)] or [""]
        exact[qid] = max(squad_exact(g, predictions[qid]) for g in golds)
        f1_scores[qid] = max(squad_f1(g, predictions[qid], version) for g in golds)
    return exact, f1_scores


def squad_v1_evaluate(gold_answers, predictions):
    """The official v1.1 evaluation: {"exact_match", "f1"} averaged over *all*
    gold questions (a missing prediction scores 0)."""
    exact, f1_scores = squad_scores(gold_answers, predictions, version="1.1")
    n = len(gold_answers)
    return {"exact_match": sum(exact.values()) / n, "f1": sum(f1_scores.values()) / n}


def _best_threshold(scores, no_answer_probs, has_answer, predictions):
    """The official `find_best_thresh`: questions whose no-answer score is above
    the threshold predict no answer. Walks the questions by increasing score (ties
    in the order of `no_answer_probs`, as the official script reads its JSON),
    from "all no-answer" to "all answered", keeping the first best."""
    current = sum(1 for qid in has_answer if not has_answer[qid])
    best, best_threshold = current, 0.0
    for qid in sorted(no_answer_probs, key=lambda q: no_answer_probs[q]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            current += scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, best_threshold = current, no_answer_probs[qid]
    return best / len(scores), best_threshold


def squad_v2_evaluate(gold_answers, predictions, no_answer_probs=None, no_answer_threshold=1.0):
    """The official v2.0 evaluation (`evaluate-v2.0.py`).

    A question has an answer when its gold list is not empty (even if every
    answer normalises to nothing). Questions without a prediction are left out
    of every average, as the official script leaves them out; it then fails on
    the HasAns/NoAns breakdown, so a missing prediction is an error here.

    Args:
        gold_answers: {qid: [answer texts]}, [] for an unanswerable question.
        predictions: {qid: text}, "" predicting no answer.
        no_answer_probs: {qid: score}, higher = more likely no answer (the
            official `--na-prob-file`; the workbench writes null odds there).
            Its order breaks ties when searching the best threshold.
        no_answer_threshold: the official `--na-prob-thresh` (1.0): a question
            whose score is above it counts as predicting no answer.
    Returns:
        exact_match, f1, their HasAns_/NoAns_ breakdown with HasAns_total and
        NoAns_total (when present) and, given `no_answer_probs`, best_exact,
        best_exact_thresh, best_f1, best_f1_thresh.
    """
    missing = [qid for qid in gold_answers if qid not in predictions]
    if missing:
        raise ValueError(f"SQuAD v2.0: {len(missing)} question(s) have no prediction, e.g. {missing[:3]}")
    probs = no_answer_probs if no_answer_probs is not None else dict.fromkeys(predictions, 0.0)
    unscored = [qid for qid in gold_answers if qid not in probs]
    if unscored:
        raise ValueError(f"SQuAD v2.0: {len(unscored)} question(s) have no no-answer score, e.g. {unscored[:3]}")
    exact, f1_scores = squad_scores(gold_answers, predictions, version="2.0")
    has_answer = {qid: bool(golds) for qid, golds in gold_answers.items()}
    # --na-prob-thresh: a no-answer score above the threshold predicts no answer.
    exact_t, f1_t = dict(exact), dict(f1_scores)
    for qid in exact:
        if probs[qid] > no_answer_threshold:
            exact_t[qid] = f1_t[qid] = float(not has_answer[qid])
    result = {"exact_match": float(np.mean(list(exact_t.values()))), "f1": float(np.mean(list(f1_t.values())))}
    for name, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [q for q in gold_answers if has_answer[q] == wanted]
        if qids:
            result[f"{name}_exact_match"] = float(np.mean([exact_t[q] for q in qids]))
            result[f"{name}_f1"] = float(np.mean([f1_t[q] for q in qids]))
            result[f"{name}_total"] = len(qids)
    if no_answer_probs is not None:
        result["best_exact"], result["best_exact_thresh"] = _best_threshold(exact, probs, has_answer, predictions)
        result["best_f1"], result["best_f1_thresh"] = _best_threshold(f1_scores, probs, has_answer, predictions)
    return result


# ---- NER ----------------------------------------------------------------------------------
def ner_scores(gold_tags, predicted_tags):
    """Entity-level micro precision, recall and F1 with conlleval semantics
    (seqeval's default mode), on IOB2 tag sequences."""
    import seqeval.metrics

    return {
        "precision": float(seqeval.metrics.precision_score(gold_tags, predicted_tags)),
        "recall": float(seqeval.metrics.recall_score(gold_tags, predicted_tags)),
        "f1": float(seqeval.metrics.f1_score(gold_tags, predicted_tags)),
    }
