"""Per-task analysis, run comparison charts and HParams logging, on tiny real
runs on the embedded samples (made once for the module)."""

import html.parser
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
from tiny_runs import SAMPLES, tiny_run

from workbench.explore import analysis as A

TASKS = ("mnli", "xnli", "ax", "stsb", "squad2", "conll2003", "swag")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{task: (FinetuneResult, RunAnalysis)} plus another STS-B run (another seed
    and learning rate) for the comparisons; all in one results table."""
    directory = tmp_path_factory.mktemp("analysis-runs")
    table = directory / "finetune.csv"
    made = {}
    for task in TASKS:
        # Saved models (for confidences and the explorer) only where a test uses them.
        result = tiny_run(task, directory, table, max_train_examples=16, save_model=task in ("mnli", "swag"))
        made[task] = (result, A.analyze_result(result, SAMPLES))
    tiny_run("stsb", directory, table, seed=2, learning_rate=5e-4, max_train_examples=16, save_model=False)
    return made, directory, table


def metrics(result):
    with open(os.path.join(result.output_dir, "metrics.json")) as f:
        return json.load(f)


def section(analysis, title_part):
    (found,) = [s for s in analysis.sections if title_part in s.title]
    return found


def test_classification_confusion_matrix_per_class_scores_and_confident_mistakes(runs):
    made, *_ = runs
    result, analysis = made["mnli"]
    scores = metrics(result)
    from workbench.tasks.registry import get_task

    task = get_task("mnli")
    for split in ("dev_matched", "dev_mismatched"):
        part = section(analysis, f"{split}: confusion")
        matrix = np.asarray(part.figures[0].data[0].z)
        n = len(task.load(SAMPLES, split))
        assert matrix.sum() == n
        assert np.trace(matrix) / n == pytest.approx(scores[split]["accuracy"])
        (_, per_class), *_ = part.tables
        assert list(per_class["label"]) == list(task.labels) and per_class["support"].sum() == n
        assert list(per_class["support"]) == list(matrix.sum(axis=1))  # gold counts are the rows
    mistakes = analysis.mistakes
    assert not mistakes.empty and (mistakes["gold"] != mistakes["predicted"]).all()
    for _, group in mistakes.groupby("split"):
        assert list(group["confidence"]) == sorted(group["confidence"], reverse=True)
        assert ((group["confidence"] >= 1 / 3) & (group["confidence"] <= 1)).all()  # the argmax of 3 classes
    # The texts are those of the examples named.
    first = mistakes.iloc[0]
    example = task.load(SAMPLES, first["split"])[first["example"]]
    assert (first["text_a"], first["text_b"]) == (example.text_a, example.text_b)
    side = section(analysis, "Matched beside mismatched").figures[0]
    assert [t.name for t in side.data] == ["dev_matched", "dev_mismatched"]
    assert side.data[0].y[0] == pytest.approx(100 * scores["dev_matched"]["accuracy"])


def test_confidences_come_from_the_saved_model_and_reproduce_the_run(runs):
    made, *_ = runs
    result, _ = made["mnli"]
    from workbench.tasks.registry import get_task

    task = get_task("mnli")
    examples = task.load(SAMPLES, "dev_matched")
    probabilities = A.model_probabilities(result.output_dir, task, {"dev_matched": examples}, 32)["dev_matched"]
    assert np.allclose(probabilities.sum(-1), 1)
    written = A.read_predictions(task, result.output_dir, "dev_matched")["prediction"]
    assert [task.labels[i] for i in probabilities.argmax(-1)] == list(written)


def test_xnli_per_language_and_ax_per_category(runs):
    made, *_ = runs
    result, analysis = made["xnli"]
    scores = metrics(result)
    chart = section(analysis, "per language").figures[0]
    dev = next(t for t in chart.data if t.name == "dev")
    assert len(dev.x) > 3
    for language, value in zip(dev.x, dev.y):
        assert value == pytest.approx(100 * scores["dev"][f"accuracy_{language}"])

    # No saved model: mistakes in file order, said so.
    assert analysis.mistakes["confidence"].isna().all()
    assert any("no confidences" in note for s in analysis.sections for note in s.notes)

    result, analysis = made["ax"]
    part = section(analysis, "diagnostic category")
    (_, table), *_ = part.tables
    file = pd.read_csv(os.path.join(SAMPLES, "ax", "diagnostic-full.tsv"), sep="\t", dtype=str, keep_default_na=False)
    negation = file["Lexical Semantics"].str.split(";").apply(lambda cells: "Negation" in cells).sum()
    assert negation > 0
    assert table.set_index("category").loc["Negation", "examples"] == negation
    assert table["R3"].between(-1, 1).all() and table["accuracy"].between(0, 1).all()


def test_stsb_scatter_with_pearson_and_spearman(runs):
    made, *_ = runs
    result, analysis = made["stsb"]
    scatter = section(analysis, "predicted against gold").figures[0]
    from workbench.tasks import metrics as M
    from workbench.tasks.registry import get_task

    task = get_task("stsb")
    gold = [e.label for e in task.load(SAMPLES, "dev")]
    written = A.read_predictions(task, result.output_dir, "dev")["prediction"].astype(float)
    assert list(scatter.data[0].x) == gold and list(scatter.data[0].y) == list(written)
    # From the prediction file (3 decimals), as a leaderboard would score it.
    assert f"Pearson {M.pearson(gold, written):.3f}" in scatter.layout.title.text
    assert f"Spearman {M.spearman(gold, written):.3f}" in scatter.layout.title.text
    errors = (analysis.mistakes["gold"].astype(float) - analysis.mistakes["predicted"].astype(float)).abs()
    assert list(errors) == sorted(errors, reverse=True)


def test_squad_breakdowns_threshold_curve_and_marked_answers(runs):
    made, *_ = runs
    result, analysis = made["squad2"]
    scores = metrics(result)["dev"]
    from workbench.tasks.registry import get_task

    n = len(get_task("squad2").load(SAMPLES, "dev"))
    part = section(analysis, "by question and answer")
    (_, by_word), (_, by_length) = part.tables
    assert by_word["questions"].sum() == n == by_length["questions"].sum()
    overall = (by_word["f1"] * by_word["questions"]).sum() / n
    assert overall == pytest.approx(100 * scores["f1"])  # the breakdown adds up to the official F1
    v2 = section(analysis, "answerable beside unanswerable")
    bars, curve = v2.figures
    assert {t.name for t in bars.data} == {"exact_match", "f1"}
    x, y = np.asarray(curve.data[0].x), np.asarray(curve.data[0].y)
    at_zero = y[np.searchsorted(x, 0.0, side="right") - 1]
    assert at_zero == pytest.approx(100 * scores["f1"])  # the threshold the run used (0.0): the official F1
    # Re-deciding from the best spans can only do as well as the official best on the written predictions.
    assert y.max() >= 100 * scores["best_f1"] - 1e-9
    worst = section(analysis, "worst questions")
    assert worst.blocks and all("<mark class='gold'>" in b for b in worst.blocks)
    assert len(worst.blocks) == len(analysis.mistakes)
    assert A.question_word("In what year was Chen born?") == "what"
    assert A.question_word("Whose rabbit is it?") == "who"
    assert A.answer_length(["the red fox"]) == "3" and A.answer_length([]) == "no answer"


def test_null_threshold_curve_against_a_direct_count():
    rng = np.random.default_rng(0)
    span, null, diff = rng.random(50), (rng.random(50) > 0.5).astype(float), rng.normal(size=50)
    x, y = A.null_threshold_curve(span, null, diff)
    for threshold, value in zip(x, y):
        assert value == pytest.approx(np.where(diff > threshold, null, span).mean())


def test_ner_entity_report_and_marked_sentences(runs):
    made, *_ = runs
    result, analysis = made["conll2003"]
    scores = metrics(result)
    part = section(analysis, "dev: entity types")
    (_, report), *_ = part.tables
    micro = report.set_index("type").loc["micro avg"]
    assert micro["f1-score"] == pytest.approx(scores["dev"]["f1"])
    assert {"PER", "ORG", "LOC", "MISC"} <= set(report["type"])
    marked = [b for b in part.blocks if "entity error" in b]
    assert marked and all("class='ent" in b for b in marked)
    assert set(analysis.mistakes["split"]) <= {"dev", "test"}


def test_swag_mistakes_show_the_endings(runs):
    made, *_ = runs
    _, analysis = made["swag"]
    matrix = np.asarray(section(analysis, "dev: confusion").figures[0].data[0].z)
    assert matrix.shape == (4, 4)
    if not analysis.mistakes.empty:
        assert analysis.mistakes["predicted"].str.match(r"^[0-3]: ").all()
        assert (analysis.mistakes["confidence"] >= 0.25).all()  # the argmax of 4 choices, from the saved model


class _References(html.parser.HTMLParser):
    """Scripts and stylesheets a page loads from elsewhere."""

    def __init__(self):
        super().__init__()
        self.external = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.external.append(attrs["src"])
        if tag == "link" and "stylesheet" in (attrs.get("rel") or "") and attrs.get("href"):
            self.external.append(attrs["href"])


def external_references(path):
    parser = _References()
    with open(path, encoding="utf-8") as f:
        text = f.read()
    parser.feed(text)
    imports = [m for m in ("@import", 'import("http') if m in text]
    return parser.external + imports


def test_pages_are_standalone_and_offline(runs):
    made, *_ = runs
    for task, (result, analysis) in made.items():
        path = analysis.write_html()
        assert path == os.path.join(result.output_dir, "analysis.html")
        assert external_references(path) == [], task
        with open(path, encoding="utf-8") as f:
            page = f.read()
        assert page.count("plotly.js v") == 1, task  # the library once, however many figures
        assert page.count("Plotly.newPlot(") == len(analysis.figures), task


def test_explore_opens_the_explorer_on_a_mistake_with_the_fine_tuned_model(runs):
    made, *_ = runs
    _, analysis = made["mnli"]
    explorer = analysis.explore(0)
    row = analysis.mistakes.iloc[0]
    assert explorer.text_a.value == row["text_a"] and explorer.text_b.value == row["text_b"]
    assert explorer.maps is not None and explorer.num_layers == 2
    with pytest.raises(IndexError, match="lists"):
        analysis.explore(len(analysis.mistakes))


def test_predictions_of_other_data_are_an_error_naming_the_file(runs, tmp_path):
    made, *_ = runs
    result, _ = made["mnli"]
    copy = tmp_path / "run"
    shutil.copytree(result.output_dir, copy)
    path = copy / "predictions" / "mnli_dev_matched_predictions.tsv"
    lines = path.read_text().splitlines()
    lines[2] = "999\t" + lines[2].split("\t")[1]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"mnli_dev_matched_predictions.tsv, line 3: id '999'"):
        A.analyze_run(str(copy), "mnli", SAMPLES, confidences=False)
    with pytest.raises(FileNotFoundError, match="no dev predictions"):
        A.analyze_run(str(tmp_path), "mnli", SAMPLES)


def test_run_comparisons(runs):
    from workbench.explore import charts
    from workbench.runs.tables import read_table, summarize

    _, directory, table_csv = runs
    table = read_table(str(table_csv))
    protocol = summarize(str(table_csv), os.path.join(os.path.dirname(SAMPLES), "paper_results.csv"))
    spread = charts.seed_spread(table)
    stsb = next(t for t in spread.data if t.name.startswith("stsb"))
    assert len(stsb.y) == 2  # two STS-B runs, one point each
    (heatmap,) = charts.grid_heatmaps(table, protocol)  # only STS-B varies a hyperparameter
    cells = heatmap.data[0]
    assert heatmap.layout.xaxis.title.text == "learning_rate" and len(cells.x) == 2
    star = heatmap.data[1]
    best = cells.x[int(np.nanargmax(np.asarray(cells.z, float)[0]))]
    assert star.x[0] == best  # the paper's protocol: best mean dev score
    runs_ok = table[table["status"] == "ok"].drop_duplicates("run_id")
    curves = charts.training_curves(list(runs_ok["output_dir"]))
    assert len(curves.data) == len(runs_ok) and all(len(t.x) > 0 for t in curves.data)
    gap = charts.paper_gap(protocol)
    known = protocol[protocol["paper_value"].notna()]
    assert list(gap.data[0].y) == list(known["difference"])


def test_hparams_are_logged_for_tensorboard(runs):
    from workbench.runs.hparams import HPARAM_COLUMNS, log_hparams, read_hparams

    made, *_ = runs
    result, _ = made["mnli"]
    params = {k: result.rows[0][k] for k in HPARAM_COLUMNS}
    first = log_hparams(result.output_dir, params, result.metrics)
    second = log_hparams(result.output_dir, {**params, "note": None}, result.metrics)  # a re-log replaces
    assert not os.path.exists(first) or first == second
    hparams, values = read_hparams(result.output_dir)
    assert hparams["task"] == "mnli" and hparams["learning_rate"] == pytest.approx(1e-3)
    assert hparams["note"] == "None"
    assert values["dev_matched/accuracy"] == pytest.approx(result.metrics["dev_matched"]["accuracy"])
    assert set(values) == {"dev_matched/accuracy", "dev_mismatched/accuracy"}
