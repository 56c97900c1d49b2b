"""Each metric on hand-made cases whose values are worked out here."""

import math

import pytest

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
    assert M.pearson(gold, [3.0, 3.0, 3.0, 3.0]) == 0.0


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
    assert r["exact_match"] == pytest.approx(2 / 4)  # a right, d right (empty vs no answer)
    assert r["HasAns_exact_match"] == pytest.approx(1 / 2) and r["NoAns_exact_match"] == pytest.approx(1 / 2)
    # Thresholds: all null -> b,d right = 2; answer a (odds -5) -> 3; then b wrong -> 2; c empty -> 2; d -> 2.
    assert r["best_exact"] == pytest.approx(3 / 4)
    assert r["best_exact_thresh"] == -5.0


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
