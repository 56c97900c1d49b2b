import json
import math
import os

import numpy as np
import pytest

from workbench.tasks.glue import NLI_LABELS, read_tsv
from workbench.tasks.ner import LABELS, iob1_to_iob2
from workbench.tasks.registry import TASK_NAMES, get_task
from workbench.tasks.squad import SpanPrediction, SquadTask
from workbench.text.tokenizer import BertTokenizer

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "data", "samples")


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer(os.path.join(SAMPLES, "vocab.txt"), lowercase=True)


def test_registry_lists_all_fifteen_and_rejects_unknown():
    assert len(TASK_NAMES) == 15
    assert set(TASK_NAMES) == {
        "cola",
        "sst2",
        "mrpc",
        "stsb",
        "qqp",
        "mnli",
        "qnli",
        "rte",
        "wnli",
        "ax",
        "xnli",
        "squad1",
        "squad2",
        "swag",
        "conll2003",
    }
    with pytest.raises(ValueError, match="Unknown task 'glue2'.*cola.*conll2003"):
        get_task("glue2")


@pytest.mark.parametrize("name", TASK_NAMES)
def test_every_sample_loads_featurizes_and_scores_perfect_predictions(name, tokenizer, tmp_path):
    task = get_task(name)
    for split in task.splits:
        examples = task.load(SAMPLES, split)
        assert examples, (name, split)
        features = task.featurize(examples, tokenizer, 64 if task.head != "span" else 128, training=split == "train")
        assert len(features) >= len(examples) if task.head == "span" else len(features) == len(examples)
        mask = features.inputs["padding_mask"]
        assert features.inputs["token_ids"][mask == 0].sum() == 0
        if task.has_labels(split) and split != "train":
            perfect = _gold_predictions(task, examples)
            scores = task.score(examples, perfect, split)
            assert scores[task.metrics[0]] == pytest.approx(1.0), (name, split, scores)
        paths = task.write_predictions(
            examples,
            _gold_predictions(task, examples) if task.has_labels(split) else _any_predictions(task, examples),
            str(tmp_path),
            split,
        )
        assert all(os.path.exists(p) for p in paths)


def _gold_predictions(task, examples):
    if task.head == "span":
        return [SpanPrediction(e.answers[0] if e.answers else "", "", -1.0 if e.answers else 1.0, []) for e in examples]
    if task.head == "token":
        return [list(e.tags) for e in examples]
    return [e.label for e in examples]


def _any_predictions(task, examples):
    if task.head == "regression":
        return [2.5] * len(examples)
    if task.head == "multiple_choice":
        return [0] * len(examples)
    return [task.labels[0]] * len(examples)


def test_pair_packing_and_longest_first_truncation(tokenizer):
    task = get_task("mrpc")
    ex = task.load(SAMPLES, "dev")[:1]
    ex[0].text_a = "the cat sleeps " * 20
    ex[0].text_b = "the dog runs"
    f = task.featurize(ex, tokenizer, 16)
    ids = f.inputs["token_ids"][0].tolist()
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    b = tokenizer.encode_with_offsets("the dog runs")[0]
    # B (3 tokens) is kept whole; A is cut to 16 - 3 - 3 = 10 tokens.
    assert ids[0] == cls and ids[11] == sep and ids[12:15] == b and ids[15] == sep
    assert f.inputs["segment_ids"][0].tolist() == [0] * 12 + [1] * 4


def test_glue_quirks(tmp_path):
    # CoLA train has no header; MNLI dev takes the last column; QQP skips broken rows.
    cola = get_task("cola")
    first = read_tsv(os.path.join(SAMPLES, "cola", "train.tsv"))[0]
    assert cola.load(SAMPLES, "train")[0].text_a == first[3]
    mnli = get_task("mnli")
    ex = mnli.load(SAMPLES, "dev_mismatched")[0]
    assert ex.label in ("contradiction", "entailment", "neutral") and ex.text_b
    qqp = get_task("qqp")
    qqp.load(SAMPLES, "train")
    assert qqp.skipped_rows["train"] == 1
    stsb = get_task("stsb")
    assert isinstance(stsb.load(SAMPLES, "dev")[0].label, float)
    # No quote processing: a lone quote stays in the text.
    d = tmp_path / "sst2"
    d.mkdir()
    (d / "dev.tsv").write_text('sentence\tlabel\n"it is "great\t1\n')
    assert get_task("sst2").load(str(tmp_path), "dev")[0].text_a == '"it is "great'


def test_xnli_filters_languages_and_scores_each():
    task = get_task("xnli", languages=("de", "zh"))
    dev = task.load(SAMPLES, "dev")
    assert {e.language for e in dev} == {"de", "zh"}
    # Every language's dev set holds all three labels: a constant prediction cannot score 0 or 1.
    assert {(e.language, e.label) for e in dev} == {(lang, label) for lang in ("de", "zh") for label in NLI_LABELS}
    wrong = {label: NLI_LABELS[(i + 1) % 3] for i, label in enumerate(NLI_LABELS)}
    preds = [e.label if e.language == "de" else wrong[e.label] for e in dev]
    scores = task.score(dev, preds, "dev")
    assert scores["accuracy_de"] == 1.0 and scores["accuracy_zh"] == 0.0 and scores["accuracy"] == 0.5
    neutral = task.score(dev, ["neutral"] * len(dev), "dev")
    assert neutral["accuracy_de"] == neutral["accuracy_zh"] == pytest.approx(1 / 3)
    assert len({e.language for e in get_task("xnli").load(SAMPLES, "test")}) == 15
    train = get_task("xnli", train_language="zh").load(SAMPLES, "train")
    assert {e.label for e in train} == {"contradiction", "entailment", "neutral"}  # "contradictory" mapped
    with pytest.raises(ValueError, match="unknown language"):
        get_task("xnli", languages=("xx",))


def test_glue_submission_files(tmp_path):
    task = get_task("mnli")
    examples = task.load(SAMPLES, "test_matched")
    (path,) = task.write_predictions(examples, ["entailment"] * len(examples), str(tmp_path), "test_matched")
    assert os.path.basename(path) == "MNLI-m.tsv"
    lines = open(path).read().splitlines()
    assert lines[0] == "index\tprediction" and lines[1] == f"{examples[0].guid}\tentailment"


def test_squad_sliding_window_and_max_context(tokenizer):
    task = SquadTask("1.1", doc_stride=8, max_query_length=6)
    examples = task.load(SAMPLES, "train")[:4]
    features = task.featurize(examples, tokenizer, 24, training=True)
    assert len(features) > len(examples)  # long contexts need several windows
    for f in range(len(features)):
        ex = examples[features.meta["example_index"][f]]
        start, end = features.labels["start_logits"][f], features.labels["end_logits"][f]
        if start:
            text = ex.context[features.meta["char_starts"][f][start] : features.meta["char_ends"][f][end]]
            assert text == ex.answers[0]
    # Every context token is the max-context token of exactly one window.
    for index in range(len(examples)):
        rows = np.nonzero(features.meta["example_index"] == index)[0]
        starts = np.concatenate([features.meta["char_starts"][r][features.meta["max_context"][r]] for r in rows])
        assert len(starts) == len(set(starts.tolist()))
    assert task._windows(10, 4) == [(0, 4), (4, 4), (8, 2)]
    assert SquadTask("1.1", doc_stride=2)._windows(5, 4) == [(0, 4), (2, 3)]


def test_squad_decoding_maps_back_to_the_original_text(tokenizer):
    task = SquadTask("2.0")
    examples = task.load(SAMPLES, "dev")
    features = task.featurize(examples, tokenizer, 128)
    n, length = features.inputs["token_ids"].shape
    start_logits, end_logits = np.zeros((n, length)), np.zeros((n, length))
    for f in range(n):
        ex = examples[features.meta["example_index"][f]]
        if ex.answers:  # put the maximum on the gold span
            cs = features.meta["char_starts"][f]
            begin = ex.context.index(ex.answers[0])
            s = int(np.nonzero(cs == begin)[0][0])
            e = int(np.nonzero(features.meta["char_ends"][f] == begin + len(ex.answers[0]))[0][0])
            start_logits[f, s], end_logits[f, e] = 10.0, 10.0
        else:
            start_logits[f, 0], end_logits[f, 0] = 10.0, 10.0
    predictions = task.decode(examples, features, {"start_logits": start_logits, "end_logits": end_logits})
    for ex, p in zip(examples, predictions):
        assert p.text == (ex.answers[0] if ex.answers else "")
    scores = task.score(examples, predictions, "dev")
    assert scores["exact_match"] == 1.0 and scores["best_f1"] == 1.0
    task.null_score_diff_threshold = 1e9  # never predict null
    assert all(
        p.text for p in task.decode(examples, features, {"start_logits": start_logits, "end_logits": end_logits})
    )


def test_squad_nbest_list_is_the_originals(tokenizer):
    """run_squad.py's `write_predictions`: the null answer competes for the
    n_best_size places and is appended last when it did not make them; an empty
    list gets the nonce "empty" (v1.1 with no span). v2.0 with no span predicts
    "" (the original fails: it has no best non-null entry)."""
    task = SquadTask("2.0", n_best_size=2)
    examples = task.load(SAMPLES, "dev")[:1]
    features = task.featurize(examples, tokenizer, 128)
    assert len(features.inputs["token_ids"]) == 1
    starts = features.meta["char_starts"][0]
    context = [int(i) for i in np.nonzero((starts >= 0) & features.meta["max_context"][0])[0]]
    a, b = context[0], context[1]
    start_logits, end_logits = np.full((1, 128), -10.0), np.full((1, 128), -10.0)
    start_logits[0, a], start_logits[0, b] = 5.0, 4.0
    end_logits[0, b] = 5.0
    start_logits[0, 0] = end_logits[0, 0] = -8.0  # null score -16: not in the top two
    logits = {"start_logits": start_logits, "end_logits": end_logits}
    (p,) = task.decode(examples, features, logits)
    ends = features.meta["char_ends"][0]
    ctx = examples[0].context
    assert [t for t, _ in p.nbest] == [ctx[starts[a] : ends[b]], ctx[starts[b] : ends[b]], ""]
    task.n_best_size = 3
    start_logits[0, 0] = end_logits[0, 0] = 4.6  # null score 9.2: second place, before the span at 9
    (p,) = task.decode(examples, features, logits)
    assert [t for t, _ in p.nbest] == [ctx[starts[a] : ends[b]], "", ctx[starts[b] : ends[b]]]
    # No span: every top start is [CLS] or the question.
    task.n_best_size = 1
    start_logits[0, 0], end_logits[0, 0] = -5.0, -5.0
    start_logits[0, a] = start_logits[0, b] = -10.0
    (p,) = task.decode(examples, features, logits)
    assert p.nbest == [("", 1.0)] and p.text == "" and p.score_diff == math.inf
    v1 = SquadTask("1.1", n_best_size=1)
    assert v1.decode(examples, features, logits)[0].nbest == [("empty", 1.0)]


def test_squad_bad_answers_are_counted_and_left_out_as_the_original_does(tmp_path, tokenizer):
    d = tmp_path / "squad1"
    d.mkdir()
    qas = [
        {"id": "ok", "question": "Where?", "answers": [{"text": "Paris", "answer_start": 15}]},
        # Off by 3 characters, but inside the words "Alice lives": kept, as run_squad.py keeps it.
        {"id": "off", "question": "Who?", "answers": [{"text": "Alice", "answer_start": 3}]},
        # Not in the words at its offset: run_squad.py cannot find it and skips it.
        {"id": "lost", "question": "Where?", "answers": [{"text": "Paris", "answer_start": 0}]},
        {"id": "nostart", "question": "Where?", "answers": [{"text": "Paris"}]},
    ]
    data = {"data": [{"title": "t", "paragraphs": [{"context": "Alice lives in Paris.", "qas": qas}]}]}
    (d / "train-v1.1.json").write_text(json.dumps(data))
    task = get_task("squad1")
    examples = task.load(str(tmp_path), "train")
    assert task.mismatched_answers["train"] == ["off", "lost", "nostart"]
    assert task.unfound_answers["train"] == ["lost", "nostart"]
    assert task.answer_counts["train"] == {"answers": 4, "mismatched": 3, "not_found": 2}
    features = task.featurize(examples, tokenizer, 32, training=True)
    assert set(features.meta["example_index"].tolist()) == {0, 1}
    assert features.counts == {"featurized": 2, "not_found": 2}
    row = features.meta["example_index"].tolist().index(1)
    start, end = features.labels["start_logits"][row], features.labels["end_logits"][row]
    char_start, char_end = features.meta["char_starts"][row][start], features.meta["char_ends"][row][end]
    assert examples[1].context[char_start:char_end] == "Alice"
    # A v1.1 dev question without answers: the official evaluation cannot score it; said at load.
    qas[0]["answers"] = []
    (d / "dev-v1.1.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"dev-v1.1.json: data\[0\].paragraphs\[0\]: question ok has no answers"):
        task.load(str(tmp_path), "dev")


def test_iob1_to_iob2_and_ner_word_labels(tokenizer):
    assert iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]) == [
        "B-PER",
        "I-PER",
        "O",
        "B-LOC",
        "B-LOC",
        "B-ORG",
    ]
    task = get_task("conll2003")
    sentences = task.load(SAMPLES, "train")
    adjacent = sentences[3]
    assert adjacent.words[:2] == ["Alice", "Bruno"] and adjacent.tags[:2] == ["B-PER", "B-PER"]
    features = task.featurize(sentences[:5], tokenizer, 32)
    labelled = features.labels[features.labels >= 0]
    assert len(labelled) == sum(len(s.words) for s in sentences[:5])  # one label per word
    logits = np.zeros(features.labels.shape + (len(LABELS),))
    for i, s in enumerate(sentences[:5]):
        for pos in np.nonzero(features.meta["word_start"][i] >= 0)[0]:
            logits[i, pos, LABELS.index(s.tags[features.meta["word_start"][i][pos]])] = 1.0
    assert task.decode(sentences[:5], features, logits) == [s.tags for s in sentences[:5]]


def test_bad_input_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"rte.*dev.tsv.*python -m workbench download rte"):
        get_task("rte").load(str(tmp_path), "dev")

    def refused(task, file, content, message):
        """`file` (under the data root) holds `content`; loading the task's dev split says `message`."""
        path = tmp_path / file
        path.parent.mkdir(exist_ok=True)
        path.write_text(content)
        with pytest.raises(ValueError, match=message):
            get_task(task).load(str(tmp_path), "dev")

    header = "index\tsentence1\tsentence2\tlabel\n"
    refused(
        "rte", "rte/dev.tsv", header + "0\ta\tb\tentailment\n1\tonly two\n", r"dev.tsv, line 3: expected at least 4"
    )
    refused("rte", "rte/dev.tsv", header + "0\ta\tb\tmaybe\n", r"line 2: label 'maybe'")
    refused(
        "conll2003",
        "conll2003/eng.testa",
        "EU NNP I-NP I-ORG\nrejects VBZ I-VP\n",
        r"eng.testa, line 2: expected 4 columns",
    )
    with pytest.raises(ValueError, match="no split 'validation'"):
        get_task("swag").path(str(tmp_path), "validation")


def test_parallel_squad_featurization_is_identical(tokenizer):
    from workbench.bench.featurize import synthetic_squad

    examples = synthetic_squad(tokenizer.get_vocabulary(), questions=60, paragraphs=13, words_per_paragraph=40)
    task = SquadTask("1.1", doc_stride=16)
    serial = task.featurize(examples, tokenizer, 48, training=True, workers=1)
    parallel = task.featurize(examples, tokenizer, 48, training=True, workers=2)
    for group in ("inputs", "labels", "meta"):
        for key, value in getattr(serial, group).items():
            np.testing.assert_array_equal(value, getattr(parallel, group)[key])


def test_qqp_skipped_rows_are_counted_and_printed(tmp_path, capsys):
    d = tmp_path / "qqp"
    d.mkdir()
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    (d / "train.tsv").write_text(header + "1\t1\t2\tWhy?\tHow?\t0\n2\t3\t4\tbroken\n3\t5\t6\tA?\tB?\t1\n4\t7\n")
    task = get_task("qqp")
    assert [e.guid for e in task.load(str(tmp_path), "train")] == ["1", "3"]
    assert task.skipped_rows == {"train": 2}  # what a run records
    assert "train.tsv: skipped 2 row(s) with fewer than 6 fields (line 3, 5)" in capsys.readouterr().out


def test_undefined_correlations_get_a_note_for_the_results_table():
    task = get_task("stsb")
    examples = task.load(SAMPLES, "dev")
    for constant in (2.5, 0.1):  # NaN and the same note whatever the constant
        scores = task.score(examples, [constant] * len(examples), "dev")
        assert np.isnan(scores["pearson"]) and np.isnan(scores["spearman"])
        notes = task.score_notes(examples, [constant] * len(examples), "dev")
        assert notes == {m: f"{m} undefined: constant predictions" for m in task.metrics}
    assert task.score_notes(examples, [e.label for e in examples], "dev") == {}
    assert get_task("mrpc").score_notes([], [], "dev") == {}
