"""The metrics of the paper, computed as the official evaluations compute them.

GLUE metrics come from scikit-learn and scipy; NER from seqeval (conlleval
semantics); SQuAD follows the official v1.1 and v2.0 evaluation scripts:
answer normalisation (lowercase, no punctuation, no English articles, single
spaces), the max over gold answers, HasAns/NoAns breakdown and the best
no-answer threshold on dev. All values are returned as fractions in [0, 1]
(SQuAD too); tables multiply by 100 where the paper does.
"""

import collections
import re
import string

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
    return _correlation(scipy.stats.pearsonr, labels, predictions)


def spearman(labels, predictions):
    return _correlation(scipy.stats.spearmanr, labels, predictions)


def _correlation(fn, labels, predictions):
    labels, predictions = np.asarray(labels, float), np.asarray(predictions, float)
    if np.std(labels) == 0 or np.std(predictions) == 0:
        return 0.0  # undefined for constant input; scored as no correlation
    return float(fn(labels, predictions)[0])


CLASSIFICATION_METRICS = {
    "accuracy": accuracy,
    "f1": f1,
    "mcc": matthews_corr,
    "pearson": pearson,
    "spearman": spearman,
}


# ---- SQuAD -----------------------------------------------------------------------------
def normalize_answer(text):
    """The official normalisation: lowercase, drop punctuation, drop the articles
    a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def squad_exact(gold, prediction):
    return float(normalize_answer(gold) == normalize_answer(prediction))


def squad_f1(gold, prediction):
    gold_tokens, pred_tokens = normalize_answer(gold).split(), normalize_answer(prediction).split()
    if not gold_tokens or not pred_tokens:
        # v2.0: an empty answer scores 1 only against an empty gold answer.
        return float(gold_tokens == pred_tokens)
    common = collections.Counter(gold_tokens) & collections.Counter(pred_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(gold_answers, predictions):
    """Per-question exact match and F1, max over gold answers.

    Args:
        gold_answers: {qid: [answer texts]}; an empty list means no answer (v2.0).
        predictions: {qid: predicted text}; "" predicts no answer.
    Returns:
        ({qid: exact}, {qid: f1}) for the questions that have a prediction.
    """
    exact, f1_scores = {}, {}
    for qid, golds in gold_answers.items():
        if qid not in predictions:
            continue
        golds = [g for g in golds if normalize_answer(g)] or [""]
        exact[qid] = max(squad_exact(g, predictions[qid]) for g in golds)
        f1_scores[qid] = max(squad_f1(g, predictions[qid]) for g in golds)
    return exact, f1_scores


def squad_v1_evaluate(gold_answers, predictions):
    """{"exact_match", "f1"} averaged over *all* gold questions (missing = 0)."""
    exact, f1_scores = squad_scores(gold_answers, predictions)
    n = len(gold_answers)
    return {"exact_match": sum(exact.values()) / n, "f1": sum(f1_scores.values()) / n}


def _best_threshold(scores, no_answer_probs, has_answer, predictions):
    """Best score over thresholds: questions with no-answer score above the
    threshold predict no answer. Walks from "all no-answer" to "all answered"."""
    current = sum(1 for qid in scores if not has_answer[qid])
    best, best_threshold = current, 0.0
    for qid in sorted(scores, key=lambda q: no_answer_probs[q]):
        if has_answer[qid]:
            current += scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, best_threshold = current, no_answer_probs[qid]
    return best / len(scores), best_threshold


def squad_v2_evaluate(gold_answers, predictions, no_answer_probs=None):
    """The official v2.0 evaluation.

    Returns exact_match, f1, their HasAns_/NoAns_ breakdown (when present) and,
    given `no_answer_probs` ({qid: score}, higher = more likely no answer),
    best_exact, best_exact_thresh, best_f1, best_f1_thresh.
    """
    exact, f1_scores = squad_scores(gold_answers, predictions)
    for qid in gold_answers:
        exact.setdefault(qid, 0.0)
        f1_scores.setdefault(qid, 0.0)
    has_answer = {qid: any(normalize_answer(g) for g in golds) for qid, golds in gold_answers.items()}
    result = {"exact_match": float(np.mean(list(exact.values()))), "f1": float(np.mean(list(f1_scores.values())))}
    for name, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [q for q in gold_answers if has_answer[q] == wanted]
        if qids:
            result[f"{name}_exact_match"] = float(np.mean([exact[q] for q in qids]))
            result[f"{name}_f1"] = float(np.mean([f1_scores[q] for q in qids]))
            result[f"{name}_total"] = len(qids)
    if no_answer_probs is not None:
        preds = {q: predictions.get(q, "") for q in gold_answers}
        probs = {q: no_answer_probs.get(q, 0.0) for q in gold_answers}
        result["best_exact"], result["best_exact_thresh"] = _best_threshold(exact, probs, has_answer, preds)
        result["best_f1"], result["best_f1_thresh"] = _best_threshold(f1_scores, probs, has_answer, preds)
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
