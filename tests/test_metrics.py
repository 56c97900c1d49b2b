"""Each metric on hand-made cases whose values are worked out here, and against
independent renderings of the official evaluations (SQuAD v1.1 and v2.0
scripts, conlleval, scipy) on randomised cases and the known edge cases."""

import collections
import math
import random
import re
import string
import warnings

import numpy as np
import pytest
import scipy.stats

from workbench.tasks import metrics as M


def test_classification_metrics_by_hand():
    labels = [1, 1, 1, 0, 0, 0, 1, 0]
    preds = [1, 1, 0, 0, 0, 1, 1, 0]
    # TP=3 FN=1 FP=1 TN=3
    assert M.accuracy(labels, preds) == 6 / 8
    assert M.f1(labels, preds) == pytest.approx(2 * 0.75 * 0.75 / 1.5)
    assert M.matthews_corr(labels, preds) == pytest.approx((3 * 3 - 1 * 1) / math.sqrt(4 * 4 * 4 * 4))
    assert M.f1([0, 0], [0, 0]) == 0.0  # no positive class: defined as 0


def test_correlations_by_hand():
    gold = [1.0, 2.0, 3.0, 4.0]
    assert M.pearson(gold, [2.0, 4.0, 6.0, 8.0]) == pytest.approx(1.0)
    assert M.spearman(gold, [1.0, 10.0, 100.0, 1000.0]) == pytest.approx(1.0)
    assert M.pearson(gold, [1.0, 10.0, 100.0, 1000.0]) < 0.9
    assert M.spearman(gold, [4.0, 3.0, 2.0, 1.0]) == pytest.approx(-1.0)


@pytest.mark.parametrize("constant", [2.5, 0.1, 0.0, -3.7, 1e-300])
def test_a_constant_prediction_is_nan_whatever_the_constant(constant):
    # np.std([0.1] * 7) is 1.4e-17, np.std([2.5] * 7) is 0.0: the same
    # degenerate model must not score 0.0 for one and NaN for the other.
    gold = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 5.0]
    for fn in (M.pearson, M.spearman):
        with pytest.warns(M.UndefinedCorrelationWarning, match="constant predictions"):
            assert math.isnan(fn(gold, [constant] * 7))
    assert M.correlation_note(gold, [constant] * 7) == "constant predictions"
    assert M.correlation_note([constant] * 7, gold) == "constant labels"
    assert M.correlation_note(gold, gold) is None


def test_correlations_equal_scipy_on_random_cases():
    rng = np.random.default_rng(0)
    for case in range(300):
        n = int(rng.integers(2, 12))
        gold = rng.choice([0.0, 0.1, 1.0, 2.5, 3.3, 5.0], n) if case % 3 else rng.normal(size=n)
        pred = rng.choice([0.1, 2.5, 4.0], n) if case % 4 == 0 else gold + rng.normal(size=n)
        if case % 10 == 0:
            pred = np.full(n, [0.1, 2.5][case % 20 // 10])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for ours, theirs in ((M.pearson, scipy.stats.pearsonr), (M.spearman, scipy.stats.spearmanr)):
                expected = float(theirs(gold, pred)[0])
                got = ours(list(gold), list(pred))
                assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-12), (
                    gold,
                    pred,
                )


def test_squad_normalization_and_scores():
    assert M.normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert M.normalize_answer("a cat and an owl") == "cat and owl"
    assert M.squad_exact("the Nile", "Nile.") == 1.0
    # gold "blue whale" vs "the big blue whale": overlap 2, p=2/3, r=1
    assert M.squad_f1("blue whale", "the big blue whale") == pytest.approx(2 * (2 / 3) / (2 / 3 + 1))
    gold = {"q1": ["Paris", "in Paris"], "q2": ["1990"], "q3": ["red car"]}
    preds = {"q1": "in paris", "q2": "1991", "q3": "car"}
    result = M.squad_v1_evaluate(gold, preds)
    assert result["exact_match"] == pytest.approx(1 / 3)
    assert result["f1"] == pytest.approx((1 + 0 + 2 * 1 * 0.5 / 1.5) / 3)
    # a missing prediction counts as 0
    assert M.squad_v1_evaluate(gold, {"q1": "Paris"})["exact_match"] == pytest.approx(1 / 3)


def test_squad_v2_breakdown_and_best_threshold():
    gold = {"a": ["Paris"], "b": [], "c": ["1990"], "d": []}
    preds = {"a": "Paris", "b": "London", "c": "", "d": ""}
    odds = {"a": -5.0, "b": 1.0, "c": 2.0, "d": 3.0}
    r = M.squad_v2_evaluate(gold, preds, odds)
    # --na-prob-thresh 1.0: c and d (odds above 1) count as predicting no answer.
    assert r["exact_match"] == pytest.approx(2 / 4)  # a right, d right (empty vs no answer)
    assert r["HasAns_exact_match"] == pytest.approx(1 / 2) and r["NoAns_exact_match"] == pytest.approx(1 / 2)
    # Thresholds: all null -> b,d right = 2; answer a (odds -5) -> 3; then b wrong -> 2; c empty -> 2; d -> 2.
    assert r["best_exact"] == pytest.approx(3 / 4)
    assert r["best_exact_thresh"] == -5.0


# ---- the official SQuAD evaluations, rendered independently ----------------------------
# Written from the logic of evaluate-v1.1.py and evaluate-v2.0.py (SQuAD explorer),
# on the official input formats (a dataset list of articles, a predictions dict,
# an na-prob dict) and with their 0-100 outputs.
def _official_normalize(s):
    s = s.lower()
    s = "".join(c for c in s if c not in string.punctuation)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _overlap_f1(pred_toks, gold_toks):
    same = sum((collections.Counter(pred_toks) & collections.Counter(gold_toks)).values())
    if not same:
        return 0.0
    p, r = same / len(pred_toks), same / len(gold_toks)
    return 2 * p * r / (p + r)


def _official_v1(dataset, predictions):
    total = em = f1 = 0.0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    continue
                pred = predictions[qa["id"]]
                golds = [a["text"] for a in qa["answers"]]
                em += max(float(_official_normalize(pred) == _official_normalize(g)) for g in golds)
                f1 += max(_overlap_f1(_official_normalize(pred).split(), _official_normalize(g).split()) for g in golds)
    return {"exact_match": 100 * em / total, "f1": 100 * f1 / total}


def _v2_f1(pred_toks, gold_toks):
    if not gold_toks or not pred_toks:
        return int(gold_toks == pred_toks)
    return _overlap_f1(pred_toks, gold_toks)


def _official_v2(dataset, predictions, na_probs=None, na_prob_thresh=1.0):
    qas = [qa for article in dataset for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    has_ans = {qa["id"]: bool(qa["answers"]) for qa in qas}
    exact, f1 = {}, {}
    for qa in qas:
        golds = [a["text"] for a in qa["answers"] if _official_normalize(a["text"])] or [""]
        if qa["id"] not in predictions:
            continue
        pred_toks = _official_normalize(predictions[qa["id"]]).split()
        exact[qa["id"]] = max(int(_official_normalize(g) == _official_normalize(predictions[qa["id"]])) for g in golds)

        f1[qa["id"]] = max(_v2_f1(pred_toks, _official_normalize(g).split()) for g in golds)
    probs = na_probs if na_probs is not None else {k: 0.0 for k in predictions}

    def threshold(scores):
        return {k: (float(not has_ans[k]) if probs[k] > na_prob_thresh else v) for k, v in scores.items()}

    exact_t, f1_t = threshold(exact), threshold(f1)
    out = {"exact": 100 * sum(exact_t.values()) / len(exact_t), "f1": 100 * sum(f1_t.values()) / len(f1_t)}
    for name, want in (("HasAns", True), ("NoAns", False)):
        ids = [k for k, v in has_ans.items() if v == want]
        if ids:
            out[f"{name}_exact"] = 100 * sum(exact_t[k] for k in ids) / len(ids)
            out[f"{name}_f1"] = 100 * sum(f1_t[k] for k in ids) / len(ids)
            out[f"{name}_total"] = len(ids)
    if na_probs is not None:
        for name, scores in (("exact", exact), ("f1", f1)):
            cur = best = sum(1 for v in has_ans.values() if not v)
            best_t = 0.0
            for k in sorted(probs, key=lambda q: probs[q]):
                if k not in scores:
                    continue
                cur += scores[k] if has_ans[k] else (-1 if predictions[k] else 0)
                if cur > best:
                    best, best_t = cur, probs[k]
            out[f"best_{name}"], out[f"best_{name}_thresh"] = 100 * best / len(scores), best_t
    return out


ANSWER_POOL = ["Paris", "the", "The Nile", "a", "", " ", ".", "an apple", "apple", "in Paris", "1990", "Nile.", "the a"]


def _random_squad(rnd, n, version):
    qas, preds, probs = [], {}, {}
    for i in range(n):
        k = rnd.choice([0, 1, 1, 2, 3]) if version == "2.0" else rnd.choice([1, 2, 3])
        qas.append({"id": f"q{i}", "answers": [{"text": rnd.choice(ANSWER_POOL)} for _ in range(k)]})
        if version == "1.1" and rnd.random() < 0.1:
            continue  # a missing prediction (v1.1 counts it as 0)
        preds[f"q{i}"] = rnd.choice(ANSWER_POOL + ["Paris France", "apple pie", "1991"])
        probs[f"q{i}"] = rnd.choice([-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, rnd.uniform(-2, 3)])  # ties on purpose
    dataset = [{"paragraphs": [{"qas": qas}]}]
    gold = {qa["id"]: [a["text"] for a in qa["answers"]] for qa in qas}
    return dataset, gold, preds, probs


def test_squad_v1_equals_the_official_script_on_random_cases():
    rnd = random.Random(1)
    for _ in range(300):
        dataset, gold, preds, _ = _random_squad(rnd, rnd.randint(1, 8), "1.1")
        expected = _official_v1(dataset, preds)
        ours = M.squad_v1_evaluate(gold, preds)
        assert 100 * ours["exact_match"] == pytest.approx(expected["exact_match"])
        assert 100 * ours["f1"] == pytest.approx(expected["f1"])


def test_squad_v2_equals_the_official_script_on_random_cases():
    rnd = random.Random(2)
    for case in range(300):
        dataset, gold, preds, probs = _random_squad(rnd, rnd.randint(1, 8), "2.0")
        thresh = rnd.choice([1.0, 0.0, 2.5])
        with_probs = case % 4 != 0
        expected = _official_v2(dataset, preds, probs if with_probs else None, thresh)
        ours = M.squad_v2_evaluate(gold, preds, probs if with_probs else None, no_answer_threshold=thresh)
        for key, value in expected.items():
            name = {"exact": "exact_match", "HasAns_exact": "HasAns_exact_match", "NoAns_exact": "NoAns_exact_match"}
            mine = ours[name.get(key, key)]
            if key.endswith(("_total", "_thresh")):
                assert mine == value, (key, gold, preds, probs)
            else:
                assert 100 * mine == pytest.approx(value), (key, gold, preds, probs)
        assert len(ours) == len(expected)


def test_squad_official_edge_cases():
    # v1.1 keeps a gold answer that normalises to nothing and has no empty-answer
    # rule: "" vs "the" is an exact match (both normalise to "") with F1 0.
    assert M.squad_v1_evaluate({"q": ["the"]}, {"q": ""}) == {"exact_match": 1.0, "f1": 0.0}
    assert M.squad_v1_evaluate({"q": ["the", "Paris"]}, {"q": "paris"}) == {"exact_match": 1.0, "f1": 1.0}
    with pytest.raises(ValueError, match="'q' has no gold answer"):
        M.squad_v1_evaluate({"q": []}, {"q": ""})
    # v2.0 drops it and scores against "": 1 and 1. The question still has an
    # answer (its list is not empty), so it counts under HasAns.
    r = M.squad_v2_evaluate({"q": ["the"], "n": []}, {"q": "", "n": ""})
    assert r["exact_match"] == r["f1"] == 1.0 and r["HasAns_total"] == 1 and r["NoAns_total"] == 1
    # Null odds above --na-prob-thresh (1.0) mean "no answer", whatever the text.
    r = M.squad_v2_evaluate({"q": ["Paris"], "n": []}, {"q": "Paris", "n": "London"}, {"q": 1.5, "n": 1.5})
    assert r["exact_match"] == 0.5 and r["HasAns_exact_match"] == 0.0 and r["NoAns_exact_match"] == 1.0
    r = M.squad_v2_evaluate(
        {"q": ["Paris"], "n": []}, {"q": "Paris", "n": "London"}, {"q": 1.5, "n": 1.5}, no_answer_threshold=2.0
    )
    assert r["exact_match"] == 0.5 and r["HasAns_exact_match"] == 1.0
    with pytest.raises(ValueError, match="1 question.*no prediction.*'n'"):
        M.squad_v2_evaluate({"q": ["Paris"], "n": []}, {"q": "Paris"})
    # Ties in the null odds are walked in the order of the odds (the official
    # script sorts the na-prob JSON's keys stably): here the first best is kept.
    gold, preds = {"a": ["x"], "b": []}, {"a": "x", "b": "y"}
    assert M.squad_v2_evaluate(gold, preds, {"a": 0.5, "b": 0.5})["best_exact"] == 1.0
    assert M.squad_v2_evaluate(gold, preds, {"b": 0.5, "a": 0.5})["best_exact"] == 0.5


# ---- NER: conlleval, rendered independently -----------------------------------------------
def _conlleval_chunks(tags):
    """(start, end, type) chunks of one sentence as conlleval finds them on IOB2
    tags: a chunk starts at B-, at I- after O, or at I- of another type than the
    previous tag's; it ends before O, B- or a change of type."""
    chunks, start, kind = set(), None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, t = tag.partition("-")
        ends = start is not None and (prefix in ("B", "O") or t != kind)
        if ends:
            chunks.add((start, i, kind))
            start = None
        if prefix == "B" or (prefix == "I" and start is None):
            start, kind = i, t
    return chunks


def _conlleval(gold, pred):
    g = {(s, *c) for s, tags in enumerate(gold) for c in _conlleval_chunks(tags)}
    p = {(s, *c) for s, tags in enumerate(pred) for c in _conlleval_chunks(tags)}
    correct = len(g & p)
    precision = correct / len(p) if p else 0.0
    recall = correct / len(g) if g else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def test_ner_entity_level_f1_conlleval_semantics():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    # entities gold: PER, LOC, ORG; predicted: PER, ORG(wrong span type), ORG -> 2 correct of 3 each
    r = M.ner_scores(gold, pred)
    assert (
        r["precision"] == pytest.approx(2 / 3)
        and r["recall"] == pytest.approx(2 / 3)
        and r["f1"] == pytest.approx(2 / 3)
    )
    # a partially matched entity counts as wrong
    assert M.ner_scores([["B-PER", "I-PER"]], [["B-PER", "O"]])["f1"] == 0.0


def test_ner_equals_conlleval_on_random_tags():
    rnd = random.Random(3)
    tags = ["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"]  # I- after O and type changes included
    for _ in range(300):
        lengths = [rnd.randint(1, 6) for _ in range(rnd.randint(1, 4))]
        gold = [[rnd.choice(tags) for _ in range(n)] for n in lengths]
        pred = [[t if rnd.random() < 0.6 else rnd.choice(tags) for t in sentence] for sentence in gold]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = M.ner_scores(gold, pred)
        expected = _conlleval(gold, pred)
        for key in expected:
            assert ours[key] == pytest.approx(expected[key]), (key, gold, pred)
