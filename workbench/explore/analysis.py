"""Look at the results, not only the score: per-task analysis of a fine-tuning run.

    analysis = analyze_run("results/runs/mnli-tiny-s1-...", task="mnli", data_dir="data")
    analysis.show()                  # in a notebook
    analysis.write_html()            # <run_dir>/analysis.html, standalone and offline
    analysis.explore(0)              # attention explorer on the first listed mistake

Everything is computed from what a run already writes (the dev prediction files
under `predictions/`, `metrics.json`, the fine-tuned `model/` and
`task_model.keras`) plus the task's own dev examples, read again with
`get_task(name).load(...)`. Only classification confidences are not on disk:
they come from one more pass of the saved task model over the dev examples
(skipped with `confidences=False`, or when the run saved no model). Scores use
the official metric functions in `workbench.tasks.metrics`.
"""

import dataclasses
import html
import json
import math
import os
import re

import numpy as np
import pandas as pd

from workbench.tasks import metrics as M

MISTAKES = 20  # mistakes listed per split
QUESTION_WORDS = ("what", "which", "who", "when", "where", "why", "how")
ANSWER_LENGTHS = ((1, 1, "1"), (2, 2, "2"), (3, 3, "3"), (4, 5, "4-5"), (6, 10, "6-10"), (11, math.inf, "11+"))
ENTITY_COLOURS = {"PER": "#ffd8a8", "ORG": "#b2f2bb", "LOC": "#a5d8ff", "MISC": "#eebefa"}
PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; max-width: 1200px; color: #222; }
table.dataframe { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
table.dataframe td, table.dataframe th { border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; }
.note { color: #666; font-size: 13px; }
.example { border-left: 3px solid #ccc; padding: 4px 10px; margin: 10px 0; font-size: 14px; }
mark.gold { background: #b2f2bb; } mark.pred { background: #ffc9c9; }
mark.both { background: linear-gradient(#b2f2bb 50%, #ffc9c9 50%); }
span.ent { border-radius: 3px; padding: 0 2px; } span.ent sub { font-size: 9px; color: #555; }
span.wrong { outline: 2px solid #e03131; }
"""


@dataclasses.dataclass
class Section:
    """One part of an analysis: a title, figures, tables and marked-up examples.

    Args:
        title: heading.
        figures: plotly figures.
        tables: `(caption, DataFrame)` pairs.
        blocks: HTML fragments built here from escaped text (marked answers, entities).
        notes: sentences shown under the heading.
    """

    title: str
    figures: list = dataclasses.field(default_factory=list)
    tables: list = dataclasses.field(default_factory=list)
    blocks: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)


class RunAnalysis:
    """The analysis of one run: sections to look at and the listed mistakes.

    Args:
        task: the `Task`.
        run_dir: the run's output directory (the HTML page goes there).
        sections: `Section`s, in page order.
        mistakes: DataFrame, one row per listed mistake (split, example,
            id, text_a, text_b, gold, predicted, confidence); its row number is
            what `explore` takes.
        model_dir: the fine-tuned encoder (`<run_dir>/model`), for `explore`.
        max_seq_length: tokens the run used, for `explore`.

    Example:
    ```python
    analysis = analyze_run(run_dir, task="rte", data_dir="data")
    analysis.mistakes.head()
    analysis.explore(0).widget
    ```
    """

    def __init__(self, task, run_dir, sections, mistakes, model_dir=None, max_seq_length=None):
        self.task = task
        self.run_dir = run_dir
        self.sections = sections
        self.mistakes = mistakes
        self.model_dir = model_dir
        self.max_seq_length = max_seq_length

    @property
    def figures(self):
        return [fig for section in self.sections for fig in section.figures]

    def show(self):
        """Display every section in a notebook."""
        from IPython.display import HTML, Markdown, display

        for section in self.sections:
            display(Markdown(f"### {section.title}"))
            for note in section.notes:
                display(Markdown(note))
            for fig in section.figures:
                fig.show()
            for caption, table in section.tables:
                display(Markdown(f"**{caption}**"))
                display(table)
            if section.blocks:
                display(HTML("<style>" + PAGE_STYLE + "</style>" + "".join(section.blocks)))

    def to_html(self, title=None):
        """The page as one string: plotly.js embedded once, no external files."""
        title = title or f"Analysis of {os.path.basename(os.path.normpath(self.run_dir))} ({self.task.name})"
        parts = [
            "<!DOCTYPE html><html><head><meta charset='utf-8'>",
            f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
        ]
        first = True
        for section in self.sections:
            parts.append(f"<h2>{html.escape(section.title)}</h2>")
            parts += [f"<p class='note'>{html.escape(note)}</p>" for note in section.notes]
            for fig in section.figures:
                parts.append(fig.to_html(full_html=False, include_plotlyjs=first, config={"displaylogo": False}))
                first = False
            for caption, table in section.tables:
                parts.append(f"<h3>{html.escape(caption)}</h3>")
                parts.append(table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep=""))
            parts += section.blocks
        parts.append("</body></html>")
        return "".join(parts)

    def write_html(self, path=None):
        """Write the standalone page (default `<run_dir>/analysis.html`) atomically; returns its path."""
        from workbench.files import write_text_atomic

        path = path or os.path.join(self.run_dir, "analysis.html")
        write_text_atomic(path, self.to_html())
        return path

    def explore(self, mistake=0, **kwargs):
        """The attention explorer (`explore_attention`) on listed mistake
        number `mistake`, with the run's fine-tuned encoder."""
        from workbench.explore.explorer import explore_attention

        if self.mistakes.empty:
            raise ValueError("this analysis lists no mistakes")
        if not 0 <= mistake < len(self.mistakes):
            raise IndexError(
                f"mistake {mistake}: this analysis lists {len(self.mistakes)} (0-{len(self.mistakes) - 1})"
            )
        if not self.model_dir or not os.path.isdir(self.model_dir):
            raise FileNotFoundError(
                f"{self.model_dir or self.run_dir}: the run saved no fine-tuned model (save_model=False); "
                "nothing to explore"
            )
        row = self.mistakes.iloc[mistake]
        kwargs.setdefault("max_seq_length", self.max_seq_length or 128)
        return explore_attention(self.model_dir, row["text_a"], row["text_b"] or "", **kwargs)


# ---- entry points -----------------------------------------------------------------------------
def analyze_result(result, data_dir, task_options=None, confidences=True):
    """`analyze_run` for a `FinetuneResult` (what `finetune()` returns): the
    task and max_seq_length come from its result rows."""
    row = result.rows[0]
    return analyze_run(
        result.output_dir,
        row["task"],
        data_dir,
        task_options=task_options,
        max_seq_length=int(row["max_seq_length"]),
        confidences=confidences,
    )


def analyze_run(run_dir, task, data_dir, task_options=None, max_seq_length=None, confidences=True):
    """The analysis of a finished fine-tuning run.

    Args:
        run_dir: the run's output directory.
        task: task name (or a `Task`).
        data_dir: where the task's files are (the run's `data_dir`).
        task_options: the run's task options (e.g. SQuAD's null threshold).
        max_seq_length: the run's; needed for classification confidences.
        confidences: compute classification confidences with the saved task model.
    """
    from workbench.tasks.registry import Task, get_task

    task = task if isinstance(task, Task) else get_task(task, **(task_options or {}))
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    splits = [s for s in (*task.eval_splits, *task.test_splits) if task.has_labels(s)]
    splits = [s for s in splits if os.path.exists(prediction_file(task, run_dir, s))]
    if not splits:
        expected = prediction_file(task, run_dir, (task.eval_splits or task.test_splits)[0])
        raise FileNotFoundError(f"{run_dir}: no dev predictions to analyze (expected {expected})")
    data = {}
    for split in splits:
        predictions = read_predictions(task, run_dir, split)
        examples = task.load(data_dir, split)[: _count(task, predictions)]
        check_alignment(task, examples, predictions, prediction_file(task, run_dir, split))
        data[split] = (examples, predictions)
    model_dir = os.path.join(run_dir, "model")
    probabilities = {}
    if (
        confidences
        and task.head in ("classifier", "multiple_choice")
        and os.path.exists(os.path.join(run_dir, "task_model.keras"))
        and max_seq_length
    ):
        probabilities = model_probabilities(run_dir, task, {s: d[0] for s, d in data.items()}, max_seq_length)
    builder = {
        "classifier": classification_sections,
        "multiple_choice": classification_sections,
        "regression": regression_sections,
        "span": squad_sections,
        "token": ner_sections,
    }[task.head]
    if task.head in ("classifier", "multiple_choice"):
        sections, mistakes = builder(task, data, probabilities, data_dir=data_dir)
    else:
        sections, mistakes = builder(task, data)
    scores = _read_metrics(run_dir)
    if scores is not None:
        sections.insert(0, Section("Scores of the run", tables=[("metrics.json", scores)]))
    return RunAnalysis(
        task, run_dir, sections, mistakes, model_dir if os.path.isdir(model_dir) else None, max_seq_length
    )


def _read_metrics(run_dir):
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        metrics = json.load(f)
    rows = [{"split": s, "metric": m, "value": v} for s, values in metrics.items() for m, v in values.items()]
    return pd.DataFrame(rows, columns=["split", "metric", "value"])


# ---- what a run wrote ---------------------------------------------------------------------------
def prediction_file(task, run_dir, split):
    """The dev prediction file the task's `write_predictions` writes for `split`
    (the first of them for SQuAD)."""
    directory = os.path.join(run_dir, "predictions")
    if task.head == "span":
        return os.path.join(directory, "predictions.json")
    if task.head == "token":
        return os.path.join(directory, f"{task.name}_{split}_predictions.txt")
    if task.head == "multiple_choice":
        return os.path.join(directory, f"{task.name}_{split}_predictions.csv")
    if task.name == "xnli":
        return os.path.join(directory, f"xnli_{split}_predictions.tsv")
    return os.path.join(directory, task.submission.get(split) or f"{task.name}_{split}_predictions.tsv")


def read_predictions(task, run_dir, split):
    """Predictions as the run wrote them: a DataFrame (GLUE, SWAG: id and
    prediction), a dict of SQuAD files, or NER word/gold/predicted rows."""
    path = prediction_file(task, run_dir, split)
    if task.head == "span":
        directory = os.path.dirname(path)
        files = {}
        for name in ("predictions", "nbest_predictions", "null_odds"):
            file = os.path.join(directory, f"{name}.json")
            if os.path.exists(file):
                with open(file, encoding="utf-8") as f:
                    files[name] = json.load(f)
        return files
    if task.head == "token":
        sentences, current = [], []
        with open(path, encoding="utf-8") as f:
            for line_number, line in enumerate(f, start=1):
                fields = line.split()
                if not fields:
                    if current:
                        sentences.append(current)
                        current = []
                    continue
                if len(fields) != 3:
                    raise ValueError(f"{path}, line {line_number}: expected 'word gold predicted', found {line!r}")
                current.append(fields)
        if current:
            sentences.append(current)
        return sentences
    if task.head == "multiple_choice":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        return frame.rename(columns={"id": "index", "pred": "prediction"})
    import csv

    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)


def _count(task, predictions):
    return len(predictions["predictions"]) if task.head == "span" else len(predictions)


def check_alignment(task, examples, predictions, path):
    """The prediction file and the examples read again must be the same
    examples in the same order; otherwise the analysis would pair wrong texts."""
    if len(examples) != _count(task, predictions):
        raise ValueError(f"{path}: {_count(task, predictions)} predictions but the split has {len(examples)} examples")
    if task.head == "span":
        missing = [e.qid for e in examples if e.qid not in predictions["predictions"]]
        if missing:
            raise ValueError(f"{path}: no prediction for question(s) {missing[:5]} of the dev set in data_dir")
        return
    if task.head == "token":
        for i, (sentence, rows) in enumerate(zip(examples, predictions)):
            if [r[0] for r in rows] != sentence.words[: len(rows)]:
                raise ValueError(f"{path}: sentence {i + 1} differs from the dev set in data_dir")
        return
    ids = [str(e.guid) for e in examples]
    if list(predictions["index"]) != ids:
        first = next(i for i, (a, b) in enumerate(zip(predictions["index"], ids)) if a != b)
        raise ValueError(
            f"{path}, line {first + 2}: id {predictions['index'].iloc[first]!r} where the dev set in data_dir "
            f"has {ids[first]!r}: the predictions come from other data"
        )


def model_probabilities(run_dir, task, examples_by_split, max_seq_length, batch_size=64):
    """{split: (n, classes) probabilities} from the run's saved task model:
    the run writes only the predicted labels, confidences need the logits."""
    import keras
    import scipy.special

    import workbench.models.heads  # noqa: F401  (registers the head classes for loading)
    from workbench.checkpoints.load import load_pretrained
    from workbench.tasks.registry import predict_outputs

    model = keras.saving.load_model(os.path.join(run_dir, "task_model.keras"), compile=False)
    tokenizer = load_pretrained(os.path.join(run_dir, "model")).tokenizer
    result = {}
    for split, examples in examples_by_split.items():
        features = task.featurize(examples, tokenizer, max_seq_length)
        logits = np.asarray(predict_outputs(model, features.inputs, batch_size), np.float64)
        result[split] = scipy.special.softmax(logits, axis=-1)
    return result


# ---- classification: GLUE, AX, XNLI, SWAG --------------------------------------------------------
def _texts(task, example):
    """(text_a, text_b) of an example, as the explorer and the mistake list show it."""
    if task.head == "multiple_choice":
        return example.context, example.start
    return example.text_a, example.text_b


def classification_sections(task, data, probabilities, data_dir=None, mistakes_per_split=MISTAKES):
    """Confusion matrix, per-class precision/recall/F1 and the most confident
    mistakes per split; XNLI per language, MNLI matched beside mismatched, AX
    by diagnostic category."""
    import plotly.graph_objects as go
    import sklearn.metrics

    labels = list(task.labels)
    sections, mistake_rows, per_split = [], [], {}
    for split, (examples, predictions) in data.items():
        if task.head == "multiple_choice":
            gold = np.asarray([e.label for e in examples])
            pred = predictions["prediction"].astype(int).to_numpy()
        else:
            index = {label: i for i, label in enumerate(labels)}
            gold = np.asarray([index[e.label] for e in examples])
            pred = np.asarray([index[p] for p in predictions["prediction"]])
        matrix = sklearn.metrics.confusion_matrix(gold, pred, labels=range(len(labels)))
        precision, recall, f1, support = sklearn.metrics.precision_recall_fscore_support(
            gold, pred, labels=range(len(labels)), zero_division=0
        )
        per_class = pd.DataFrame(
            {"label": labels, "precision": precision, "recall": recall, "f1": f1, "support": support}
        )
        scores = task.score(examples, [_label(task, p) for p in pred], split)
        per_split[split] = (scores, per_class)
        fig = go.Figure(
            go.Heatmap(
                z=matrix,
                x=[f"pred {label}" for label in labels],
                y=[f"gold {label}" for label in labels],
                colorscale="Blues",
                texttemplate="%{z}",
                hovertemplate="%{y}, %{x}: %{z}<extra></extra>",
            )
        )
        fig.update_layout(
            title=f"{task.name} {split}: confusion matrix ({len(gold)} examples)",
            yaxis={"autorange": "reversed"},
            height=300 + 30 * len(labels),
            width=420 + 40 * len(labels),
        )
        section = Section(f"{split}: confusion matrix and per-class scores", figures=[fig])
        section.tables.append((f"{split}: per-class precision, recall, F1 (scikit-learn)", per_class))
        # Most confident mistakes (in file order when there are no confidences).
        wrong = np.nonzero(gold != pred)[0]
        confidence = probabilities[split][np.arange(len(pred)), pred] if split in probabilities else None
        if confidence is not None:
            wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
        else:
            section.notes.append(
                "Mistakes in file order: no confidences (they need the run's task_model.keras and max_seq_length)."
            )
        rows = []
        for i in wrong[:mistakes_per_split]:
            text_a, text_b = _texts(task, examples[i])
            row = {
                "split": split,
                "example": int(i),
                "id": str(getattr(examples[i], "guid", i)),
                "text_a": text_a,
                "text_b": text_b or "",
                "gold": labels[gold[i]],
                "predicted": labels[pred[i]],
                "confidence": float(confidence[i]) if confidence is not None else float("nan"),
            }
            if task.head == "multiple_choice":
                row["gold"] = f"{gold[i]}: {examples[i].endings[gold[i]]}"
                row["predicted"] = f"{pred[i]}: {examples[i].endings[pred[i]]}"
            rows.append(row)
        mistake_rows += rows
        sections.append(section)
    mistakes = _mistake_frame(mistake_rows)
    if not mistakes.empty:
        sections.append(
            Section(
                "Most confident mistakes",
                tables=[("analysis.explore(n) opens the attention explorer on mistake n", _numbered(mistakes))],
            )
        )
    if task.name == "xnli":
        sections.append(_xnli_languages(task, per_split))
    if len(per_split) > 1 and task.name == "mnli":
        sections.append(_side_by_side(task, per_split))
    if task.name == "ax" and data_dir is not None:
        sections.append(_ax_categories(task, data, data_dir))
    return sections, mistakes


def _label(task, index):
    return int(index) if task.head == "multiple_choice" else task.labels[index]


def _mistake_frame(rows):
    columns = ["split", "example", "id", "text_a", "text_b", "gold", "predicted", "confidence"]
    return pd.DataFrame(rows, columns=columns)


def _numbered(mistakes):
    return mistakes.reset_index(drop=True).rename_axis("n").reset_index()


def _xnli_languages(task, per_split):
    import plotly.graph_objects as go

    fig = go.Figure()
    for split, (scores, _) in per_split.items():
        languages = [lang for lang in task.languages if f"accuracy_{lang}" in scores]
        fig.add_trace(go.Bar(x=languages, y=[100 * scores[f"accuracy_{lang}"] for lang in languages], name=split))
    fig.update_layout(title="XNLI accuracy per language", yaxis_title="accuracy (%)", barmode="group", height=380)
    return Section("Accuracy per language", figures=[fig])


def _side_by_side(task, per_split):
    import plotly.graph_objects as go

    fig = go.Figure()
    for split, (scores, per_class) in per_split.items():
        names = ["accuracy"] + [f"F1 {label}" for label in per_class["label"]]
        values = [100 * scores["accuracy"]] + list(100 * per_class["f1"])
        fig.add_trace(go.Bar(x=names, y=values, name=split))
    fig.update_layout(title=f"{task.name}: matched beside mismatched", yaxis_title="%", barmode="group", height=380)
    return Section("Matched beside mismatched", figures=[fig])


AX_CATEGORY_COLUMNS = ("Lexical Semantics", "Predicate-Argument Structure", "Logic", "Knowledge")


def _ax_categories(task, data, data_dir):
    """R3 (Matthews correlation, the GLUE diagnostic's metric) and accuracy per
    coarse and fine category of the labelled diagnostic file."""
    import plotly.graph_objects as go

    from workbench.tasks.glue import read_tsv

    split = next(iter(data))
    examples, predictions = data[split]
    path = task.path(data_dir, split)
    rows = read_tsv(path)
    header = rows[0]
    missing = [c for c in AX_CATEGORY_COLUMNS if c not in header]
    if missing:
        return Section("By diagnostic category", notes=[f"{path} has no category columns {missing}."])
    body = [r for r in rows[1:] if r and r != [""]][: len(examples)]
    records = []
    for row, example, predicted in zip(body, examples, predictions["prediction"]):
        for coarse in AX_CATEGORY_COLUMNS:
            cell = row[header.index(coarse)].strip()
            for fine in filter(None, (c.strip() for c in cell.split(";"))):
                records.append((coarse, fine, example.label, predicted))
    if not records:
        return Section("By diagnostic category", notes=[f"{path}: no example has a category."])
    frame = pd.DataFrame(records, columns=["coarse", "category", "gold", "predicted"])
    index = {label: i for i, label in enumerate(task.labels)}
    table = (
        frame.groupby(["coarse", "category"])
        .apply(
            lambda g: pd.Series(
                {
                    "examples": len(g),
                    "R3": M.matthews_corr(g["gold"].map(index), g["predicted"].map(index)),
                    "accuracy": M.accuracy(g["gold"], g["predicted"]),
                }
            ),
            include_groups=False,
        )
        .reset_index()
    )
    fig = go.Figure()
    for coarse, group in table.groupby("coarse", sort=False):
        fig.add_trace(
            go.Bar(
                x=group["category"],
                y=group["R3"],
                name=coarse,
                customdata=group["examples"],
                hovertemplate="%{x}: R3 %{y:.3f} (%{customdata} examples)<extra></extra>",
            )
        )
    fig.update_layout(title="Diagnostic set: R3 by category", yaxis_title="R3 (Matthews corr.)", height=420)
    return Section(
        "By diagnostic category",
        figures=[fig],
        tables=[("R3 and accuracy per category", table)],
        notes=["An example can be in several categories; R3 over few examples is noisy."],
    )


# ---- STS-B ---------------------------------------------------------------------------------------
def regression_sections(task, data, mistakes_per_split=MISTAKES):
    """Predicted against gold scores with Pearson and Spearman; the largest errors."""
    import plotly.graph_objects as go

    sections, rows = [], []
    for split, (examples, predictions) in data.items():
        gold = np.asarray([e.label for e in examples], float)
        pred = predictions["prediction"].astype(float).to_numpy()
        pearson, spearman = M.pearson(gold, pred), M.spearman(gold, pred)
        fig = go.Figure(
            go.Scattergl(
                x=gold,
                y=pred,
                mode="markers",
                marker={"size": 5, "opacity": 0.6},
                text=[f"{e.text_a}<br>{e.text_b}" for e in examples] if len(examples) <= 2000 else None,
                name="examples",
            )
        )
        fig.add_trace(go.Scatter(x=[0, 5], y=[0, 5], mode="lines", line={"dash": "dot"}, name="perfect"))
        fig.update_layout(
            title=f"{task.name} {split}: Pearson {pearson:.3f}, Spearman {spearman:.3f}",
            xaxis_title="gold score",
            yaxis_title="predicted score",
            height=460,
            width=560,
        )
        note = (
            "Scored from the prediction file (scores rounded to 3 decimals, as submitted); metrics.json has the run's."
        )
        sections.append(Section(f"{split}: predicted against gold", figures=[fig], notes=[note]))
        error = np.abs(pred - gold)
        for i in np.argsort(-error, kind="stable")[:mistakes_per_split]:
            rows.append(
                {
                    "split": split,
                    "example": int(i),
                    "id": str(examples[i].guid),
                    "text_a": examples[i].text_a,
                    "text_b": examples[i].text_b or "",
                    "gold": f"{gold[i]:.2f}",
                    "predicted": f"{pred[i]:.2f}",
                    "confidence": float("nan"),
                }
            )
    mistakes = _mistake_frame(rows)
    sections.append(Section("Largest errors", tables=[("analysis.explore(n) opens mistake n", _numbered(mistakes))]))
    return sections, mistakes


# ---- SQuAD ---------------------------------------------------------------------------------------
def question_word(question):
    """The question's wh-word (what, which, who, ...; whom/whose count as who), "other" if none."""
    for word in re.findall(r"[a-z]+", question.lower()):
        if word in ("whom", "whose"):
            return "who"
        if word in QUESTION_WORDS:
            return word
    return "other"


def answer_length(answers):
    """Bucket of the first gold answer's length in words; "no answer" for v2.0 impossible questions."""
    texts = [a for a in answers if a.strip()]
    if not texts:
        return "no answer"
    n = len(texts[0].split())
    return next(name for low, high, name in ANSWER_LENGTHS if low <= n <= high)


def null_threshold_curve(f1_span, f1_null, score_diff):
    """F1 over all questions against the null threshold (v2.0): a question is
    answered "no answer" when its score difference exceeds the threshold.

    Args:
        f1_span: per-question F1 of the best non-null answer.
        f1_null: per-question F1 of answering "no answer".
        score_diff: null score minus best span score, per question.
    Returns:
        (thresholds, F1 in [0, 1]) at each distinct finite score difference,
        plus the "all no answer" start.
    """
    order = np.argsort(score_diff, kind="stable")
    diff, span, null = score_diff[order], f1_span[order], f1_null[order]
    n = len(diff)
    # At threshold diff[i], questions 0..i are answered with their span.
    f1 = (null.sum() - np.cumsum(null) + np.cumsum(span)) / n
    keep = np.append(diff[1:] != diff[:-1], True) & (np.abs(diff) < 1e8)
    return np.concatenate([[diff.min() - 1.0 if n else 0.0], diff[keep]]), np.concatenate([[null.mean()], f1[keep]])


def _mark_context(context, gold_spans, predicted_span):
    """The context as HTML with gold spans and the predicted span marked."""
    flags = np.zeros(len(context), np.int8)
    for start, end in gold_spans:
        flags[start:end] |= 1
    if predicted_span:
        flags[predicted_span[0] : predicted_span[1]] |= 2
    out, i = [], 0
    while i < len(context):
        j = i
        while j < len(context) and flags[j] == flags[i]:
            j += 1
        text = html.escape(context[i:j])
        css = {0: None, 1: "gold", 2: "pred", 3: "both"}[int(flags[i])]
        out.append(f"<mark class='{css}'>{text}</mark>" if css else text)
        i = j
    return "".join(out)


def _gold_spans(example):
    spans = []
    for k, answer in enumerate(dict.fromkeys(a for a in example.answers if a)):
        start = example.answer_start if k == 0 and example.answer_start is not None else example.context.find(answer)
        if start >= 0:
            spans.append((start, start + len(answer)))
    return spans


def squad_sections(task, data, worst=MISTAKES):
    """Worst questions with answers marked in the context; exact match and F1
    by question word and answer length; v2.0: HasAns beside NoAns and F1
    against the null threshold."""
    import plotly.graph_objects as go

    (split, (examples, files)), *_ = data.items()
    predictions = files["predictions"]
    nbest = files.get("nbest_predictions", {})
    gold = {e.qid: e.answers for e in examples}
    exact, f1 = M.squad_scores(gold, predictions)
    frame = pd.DataFrame(
        {
            "qid": [e.qid for e in examples],
            "question word": [question_word(e.question) for e in examples],
            "answer length": [answer_length(e.answers) for e in examples],
            "exact_match": [100 * exact[e.qid] for e in examples],
            "f1": [100 * f1[e.qid] for e in examples],
        }
    )
    sections = []
    breakdown = Section(f"{split}: exact match and F1 by question and answer")
    order = {"question word": [*QUESTION_WORDS, "other"], "answer length": [n for *_, n in ANSWER_LENGTHS]}
    order["answer length"].append("no answer")
    for column in ("question word", "answer length"):
        table = frame.groupby(column)[["exact_match", "f1"]].mean()
        table["questions"] = frame.groupby(column).size()
        table = table.reindex([k for k in order[column] if k in table.index]).reset_index()
        fig = go.Figure(
            [
                go.Bar(
                    x=table[column],
                    y=table[m],
                    name=m,
                    customdata=table["questions"],
                    hovertemplate="%{x}: %{y:.1f} (%{customdata} questions)<extra></extra>",
                )
                for m in ("exact_match", "f1")
            ]
        )
        fig.update_layout(title=f"by {column}", yaxis_title="%", barmode="group", height=360)
        breakdown.figures.append(fig)
        breakdown.tables.append((f"by {column}", table))
    sections.append(breakdown)

    if task.version == "2.0":
        odds = files.get("null_odds", {})
        result = M.squad_v2_evaluate(gold, predictions, odds or None)
        groups = [g for g in ("HasAns", "NoAns") if f"{g}_f1" in result]
        fig = go.Figure(
            [
                go.Bar(
                    x=[f"{g} ({result[f'{g}_total']})" for g in groups],
                    y=[100 * result[f"{g}_{m}"] for g in groups],
                    name=m,
                )
                for m in ("exact_match", "f1")
            ]
        )
        fig.update_layout(title="HasAns beside NoAns", yaxis_title="%", barmode="group", height=360)
        v2 = Section(f"{split}: answerable beside unanswerable", figures=[fig])
        if odds:
            best_text = {q: next((c["text"] for c in nbest.get(q, []) if c["text"]), "") for q in gold}
            _, f1_span = M.squad_scores(gold, best_text)
            _, f1_null = M.squad_scores(gold, {q: "" for q in gold})
            qids = list(gold)
            thresholds, curve = null_threshold_curve(
                np.array([f1_span[q] for q in qids]),
                np.array([f1_null[q] for q in qids]),
                np.array([float(odds[q]) for q in qids]),
            )
            fig = go.Figure(go.Scatter(x=thresholds, y=100 * curve, mode="lines", line={"shape": "hv"}, name="F1"))
            used = task.null_score_diff_threshold
            best = int(np.argmax(curve))
            fig.add_vline(x=used, line_dash="dash", line_color="#e03131", annotation_text=f"used {used:g}")
            fig.add_vline(
                x=thresholds[best],
                line_dash="dot",
                line_color="#2f9e44",
                annotation_text=f"best {thresholds[best]:.3g}",
                annotation_position="bottom right",
            )
            fig.update_layout(
                title=f"F1 against the null threshold: {100 * curve[best]:.1f} at best, "
                f"official best_f1 {100 * result['best_f1']:.1f}",
                xaxis_title="null score − best span score threshold",
                yaxis_title="F1 (%)",
                height=380,
            )
            v2.notes.append(
                "The curve decides each question again from its best span at every threshold. The official "
                "best_f1 scores the written predictions, where questions nulled at the run's threshold stay "
                "empty, so the curve can reach higher."
            )
            v2.figures.append(fig)
        sections.append(v2)

    # Worst questions: lowest F1, the most confident first.
    confidence = {
        q: next((c["probability"] for c in nbest.get(q, []) if c["text"] == predictions[q]), float("nan")) for q in gold
    }
    frame["confidence"] = [confidence[e.qid] for e in examples]
    frame["example"] = np.arange(len(examples))
    ranked = frame.assign(c=frame["confidence"].fillna(0)).sort_values(["f1", "c"], ascending=[True, False])
    worst_rows = ranked[ranked["f1"] < 100].head(worst)
    blocks, rows = [], []
    for n, (_, r) in enumerate(worst_rows.iterrows()):
        e = examples[int(r["example"])]
        predicted = predictions[e.qid]
        start = e.context.find(predicted) if predicted else -1
        context = _mark_context(e.context, _gold_spans(e), (start, start + len(predicted)) if start >= 0 else None)
        golds = ", ".join(html.escape(a) for a in dict.fromkeys(e.answers)) or "<i>no answer</i>"
        blocks.append(
            f"<div class='example'><b>{n}. {html.escape(e.question)}</b> (F1 {r['f1']:.0f}, "
            f"confidence {r['confidence']:.2f})<br>gold: <mark class='gold'>{golds}</mark> — predicted: "
            f"<mark class='pred'>{html.escape(predicted) or '<i>no answer</i>'}</mark><br>{context}</div>"
        )
        rows.append(
            {
                "split": split,
                "example": int(r["example"]),
                "id": e.qid,
                "text_a": e.question,
                "text_b": e.context,
                "gold": " | ".join(e.answers) or "(no answer)",
                "predicted": predicted or "(no answer)",
                "confidence": r["confidence"],
            }
        )
    worst_section = Section(
        f"{split}: worst questions",
        blocks=blocks,
        notes=[
            "Lowest F1 first, the most confident among equals. Green: gold answers; red: the prediction "
            "(its first occurrence in the context). analysis.explore(n) opens question n."
        ],
    )
    sections.append(worst_section)
    return sections, _mistake_frame(rows)


# ---- CoNLL-2003 ----------------------------------------------------------------------------------
def _entity_html(words, tags, other_entities):
    """Words with entities colour-marked; entities absent from `other_entities` outlined."""
    from seqeval.metrics.sequence_labeling import get_entities

    entities = {(start, end): kind for kind, start, end in get_entities(list(tags))}
    out, i = [], 0
    while i < len(words):
        span = next(((s, e) for (s, e) in entities if s == i), None)
        if span is None:
            out.append(html.escape(words[i]))
            i += 1
            continue
        kind = entities[span]
        wrong = " wrong" if (kind, span[0], span[1]) not in other_entities else ""
        text = html.escape(" ".join(words[span[0] : span[1] + 1]))
        colour = ENTITY_COLOURS.get(kind, "#dee2e6")
        out.append(f"<span class='ent{wrong}' style='background:{colour}'>{text}<sub>{html.escape(kind)}</sub></span>")
        i = span[1] + 1
    return " ".join(out)


def ner_sections(task, data, worst=MISTAKES):
    """Per-entity-type precision/recall/F1 (seqeval's report) and the
    sentences with the most entity errors, gold and predicted marked."""
    import plotly.graph_objects as go
    import seqeval.metrics
    from seqeval.metrics.sequence_labeling import get_entities

    sections, rows = [], []
    for split, (examples, predictions) in data.items():
        gold = [[r[1] for r in sentence] for sentence in predictions]
        pred = [[r[2] for r in sentence] for sentence in predictions]
        report = seqeval.metrics.classification_report(gold, pred, output_dict=True, zero_division=0)
        table = pd.DataFrame(
            [
                {"type": k, **{m: v[m] for m in ("precision", "recall", "f1-score", "support")}}
                for k, v in report.items()
            ]
        )
        types = table[~table["type"].str.contains(" avg")]
        fig = go.Figure(
            [go.Bar(x=types["type"], y=100 * types[m], name=m) for m in ("precision", "recall", "f1-score")]
        )
        fig.update_layout(title=f"{task.name} {split}: per entity type", yaxis_title="%", barmode="group", height=360)
        section = Section(f"{split}: entity types", figures=[fig], tables=[("seqeval classification report", table)])
        errors = []
        for i, (g, p) in enumerate(zip(gold, pred)):
            g_set, p_set = set(get_entities(g)), set(get_entities(p))
            if g_set != p_set:
                errors.append((len(g_set ^ p_set), i, g_set, p_set))
        errors.sort(key=lambda item: (-item[0], item[1]))
        blocks = []
        for count, i, g_set, p_set in errors[:worst]:
            words = [r[0] for r in predictions[i]]
            blocks.append(
                f"<div class='example'><b>{len(rows)}.</b> {count} entity error(s)<br>gold: "
                f"{_entity_html(words, gold[i], p_set)}<br>predicted: {_entity_html(words, pred[i], g_set)}</div>"
            )
            rows.append(
                {
                    "split": split,
                    "example": i,
                    "id": examples[i].guid,
                    "text_a": " ".join(words),
                    "text_b": "",
                    "gold": " ".join(f"{w}/{t}" for w, t in zip(words, gold[i]) if t != "O"),
                    "predicted": " ".join(f"{w}/{t}" for w, t in zip(words, pred[i]) if t != "O"),
                    "confidence": float("nan"),
                }
            )
        legend = " ".join(f"<span class='ent' style='background:{c}'>{k}</span>" for k, c in ENTITY_COLOURS.items())
        section.blocks.append(
            f"<h3>{html.escape(split)}: sentences with the most entity errors</h3><p class='note'>{legend}; "
            "outlined in red: an entity the other line does not have. analysis.explore(n) opens sentence n.</p>"
        )
        section.blocks += blocks
        sections.append(section)
    return sections, _mistake_frame(rows)


# ---- linking the pages of many runs ---------------------------------------------------------------
def analysis_links(table, relative_to):
    """HTML table linking every successful run's analysis page, with paths
    relative to `relative_to` (where the report page sits)."""
    ok = table[table["status"] == "ok"].drop_duplicates("run_id")
    rows = []
    for _, run in ok.iterrows():
        page = os.path.join(str(run["output_dir"]), "analysis.html")
        link = html.escape(os.path.relpath(page, relative_to))
        cell = f"<a href='{link}'>analysis</a>" if os.path.exists(page) else "no analysis page"
        rows.append(
            f"<tr><td>{html.escape(str(run['run_id']))}</td><td>{html.escape(str(run['task']))}</td>"
            f"<td>{html.escape(str(run['seed']))}</td><td>{cell}</td></tr>"
        )
    return (
        "<table class='analysis-links'><tr><th>run</th><th>task</th><th>seed</th><th>page</th></tr>"
        + "".join(rows)
        + "</table>"
    )
