"""GLUE (all nine tasks and the diagnostic AX set) and XNLI.

Files are read exactly as distributed: tab-separated, no quote processing (the
official code uses `csv.reader(delimiter="\\t", quotechar=None)`), each task with
its own columns and header quirks. Test files have no labels; predictions are
written as the GLUE server expects (`MRPC.tsv`: `index<TAB>prediction`).
"""

import csv
import dataclasses
import io
import os

import keras
import numpy as np

from workbench.files import read_text, write_text_atomic
from workbench.models.heads import BertClassifier
from workbench.tasks import metrics as M
from workbench.tasks.options import reject_options
from workbench.tasks.registry import GLUE_FILES, MNLI_FILES, Hyperparameters, Task
from workbench.text.inputs import Features, encode_pairs

NLI_LABELS = ("contradiction", "entailment", "neutral")
STSB_SCORE_RANGE = (0.0, 5.0)  # GLUE STS-B similarity scores
XNLI_LANGUAGES = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")


@dataclasses.dataclass
class PairExample:
    guid: str  # the row's id in the file (used as `index` in submissions)
    text_a: str
    text_b: str = None
    label: object = None  # label string, float score (STS-B), or None (test)
    language: str = None  # XNLI only


@dataclasses.dataclass(frozen=True)
class Columns:
    """Where a split's fields are: column indices (None = absent)."""

    text_a: int
    text_b: int = None
    label: int = None
    guid: int = None
    header: bool = True


def read_tsv(path):
    """Rows of a TSV exactly as the official code reads it: no quoting. A file
    that is not UTF-8 is an error naming its line."""
    text = read_text(path)
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))
    except csv.Error as e:  # e.g. a NUL byte
        raise ValueError(f"{path}: not a readable TSV file ({e})") from None


class GlueTask(Task):
    """A GLUE sentence or sentence-pair task defined by its file layout.

    Args:
        name: registry name.
        files: {split: file name}.
        columns: {split: Columns}.
        labels: label strings in the official order; None for regression.
        metrics: metric names, headline first.
        submission: GLUE submission file per test split, e.g. {"test": "MRPC.tsv"}.
        skip_malformed: count and skip rows with missing fields (QQP's train file
            has such rows) instead of stopping with an error; the count per
            split is in `skipped_rows` and printed.
        optional_splits: evaluation splits whose file may be absent (AX's
            labelled diagnostic set is not always downloadable).

    Attributes:
        skipped_rows: {split: rows skipped by the last `load`}.

    Example:
    ```python
    qqp = get_task("qqp")
    train = qqp.load("data", "train")
    print(qqp.skipped_rows["train"])
    ```
    """

    def __init__(
        self,
        name,
        files,
        columns,
        labels,
        metrics,
        submission,
        paper_name,
        skip_malformed=False,
        hparams=None,
        data_subdirs=None,
        labelled_test=False,
        optional_splits=(),
    ):
        self.name = name
        self._files = files
        self._columns = columns
        self.labels = labels
        self.head = "classifier" if labels else "regression"
        self.metrics = metrics
        self.submission = submission
        self.paper_name = paper_name
        self.skip_malformed = skip_malformed
        self.hparams = hparams or Hyperparameters()
        self._data_subdirs = data_subdirs or {}
        self.labelled_test = labelled_test
        self.optional_splits = tuple(optional_splits)
        self.train_split = "train" if "train" in files else None
        self.eval_splits = tuple(s for s in files if s.startswith("dev"))
        self.test_splits = tuple(s for s in files if s.startswith("test"))
        self.skipped_rows = {}

    @property
    def splits(self):
        return tuple(s for s in (self.train_split, *self.eval_splits, *self.test_splits) if s)

    def files(self, split):
        return self._files[split]

    def task_dir(self, data_dir, split=None):
        return os.path.join(data_dir, self._data_subdirs.get(split, self.name))

    # ---- loading ----
    def load(self, data_dir, split):
        path = self.path(data_dir, split)
        cols = self._columns[split]
        rows = read_tsv(path)
        start = 1 if cols.header else 0
        needed = max(c for c in (cols.text_a, cols.text_b, cols.label, cols.guid) if c is not None)
        examples, skipped = [], []
        for line_number, row in enumerate(rows[start:], start=start + 1):
            if not row or row == [""]:
                continue
            if len(row) <= needed:
                if self.skip_malformed:
                    skipped.append(line_number)
                    continue
                raise ValueError(
                    f"{path}, line {line_number}: expected at least {needed + 1} tab-separated fields, found {len(row)}"
                )
            label = row[cols.label] if cols.label is not None else None
            if label is not None:
                label = self._parse_label(label, path, line_number)
            examples.append(
                PairExample(
                    guid=row[cols.guid] if cols.guid is not None else str(line_number - start - 1),
                    text_a=row[cols.text_a],
                    text_b=row[cols.text_b] if cols.text_b is not None else None,
                    label=label,
                )
            )
        self.skipped_rows[split] = len(skipped)
        if skipped:
            shown = ", ".join(map(str, skipped[:5])) + (", ..." if len(skipped) > 5 else "")
            print(f"{path}: skipped {len(skipped)} row(s) with fewer than {needed + 1} fields (line {shown})")
        if split == self.train_split:
            self.require_training_examples(examples, data_dir, split)
        return examples

    def _parse_label(self, value, path, line_number):
        if self.labels is None:  # STS-B, the one regression task: similarity scores 0 to 5
            low, high = STSB_SCORE_RANGE
            try:
                score = float(value)
            except ValueError:
                score = None
            if score is None or not low <= score <= high:  # also NaN and infinities
                raise ValueError(f"{path}, line {line_number}: score {value!r} is not a number in [{low:g}, {high:g}]")
            return score
        if value not in self.labels:
            raise ValueError(f"{path}, line {line_number}: label {value!r} is not one of {list(self.labels)}")
        return value

    # ---- model ----
    def featurize(self, examples, tokenizer, max_seq_length, training=False):
        texts_b = [e.text_b for e in examples] if self._columns[self.splits[0]].text_b is not None else None
        inputs = encode_pairs(tokenizer, [e.text_a for e in examples], texts_b, max_seq_length)
        labels = None
        if examples and examples[0].label is not None:
            if self.labels is None:
                labels = np.asarray([e.label for e in examples], np.float32)
            else:
                labels = np.asarray([self.labels.index(e.label) for e in examples], np.int32)
        return Features(inputs, labels)

    def build_model(self, encoder):
        return BertClassifier(encoder, num_classes=len(self.labels) if self.labels else 1)

    def loss(self):
        if self.labels is None:
            return keras.losses.MeanSquaredError()
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def decode(self, examples, features, outputs):
        outputs = np.asarray(outputs)
        if self.labels is None:
            return [float(x) for x in outputs[:, 0]]
        return [self.labels[i] for i in outputs.argmax(-1)]

    # ---- evaluation ----
    def score(self, examples, predictions, split):
        gold = [e.label for e in examples]
        if self.labels is None:
            return {m: M.CLASSIFICATION_METRICS[m](gold, predictions) for m in self.metrics}
        index = {label: i for i, label in enumerate(self.labels)}
        y_true = [index[g] for g in gold]
        y_pred = [index[p] for p in predictions]
        return {m: M.CLASSIFICATION_METRICS[m](y_true, y_pred) for m in self.metrics}

    def score_notes(self, examples, predictions, split):
        if self.labels is not None:
            return {}
        note = M.correlation_note([e.label for e in examples], predictions)  # NaN whatever the constant
        return {m: f"{m} undefined: {note}" for m in self.metrics} if note else {}

    def write_predictions(self, examples, predictions, output_dir, split):
        name = self.submission.get(split) or f"{self.name}_{split}_predictions.tsv"
        lines = ["index\tprediction"]
        for e, p in zip(examples, predictions):
            lines.append(f"{e.guid}\t{p:.3f}" if self.labels is None else f"{e.guid}\t{p}")
        path = os.path.join(output_dir, name)
        write_text_atomic(path, "\n".join(lines) + "\n")
        return [path]


class XnliTask(GlueTask):
    """XNLI: train on MultiNLI (English, or its machine translation into
    `train_language`), evaluate on the XNLI dev and test sets in every language
    (or `languages`), with accuracy per language and overall.

    Args:
        train_language: language of `multinli.train.<lang>.tsv` (the official
            code used zh; "en" is the zero-shot cross-lingual setting).
        languages: languages kept from xnli.dev.tsv / xnli.test.tsv.
    """

    def __init__(self, train_language="en", languages=XNLI_LANGUAGES):
        unknown = [lang for lang in (train_language, *languages) if lang not in XNLI_LANGUAGES]
        if unknown:
            raise ValueError(f"xnli: unknown language(s) {unknown}; XNLI has {', '.join(XNLI_LANGUAGES)}")
        super().__init__(
            name="xnli",
            files={"train": f"multinli.train.{train_language}.tsv", "dev": "xnli.dev.tsv", "test": "xnli.test.tsv"},
            columns={"train": Columns(0, 1, 2), "dev": Columns(6, 7, 1), "test": Columns(6, 7, 1)},
            labels=NLI_LABELS,
            metrics=("accuracy",),
            submission={},
            paper_name={},
            labelled_test=True,
        )
        self.train_language = train_language
        self.languages = tuple(languages)

    def load(self, data_dir, split):
        if split == "train":
            examples = super().load(data_dir, split)
            for e in examples:
                e.language = self.train_language
            return examples
        path = self.path(data_dir, split)
        rows = read_tsv(path)
        examples = []
        for line_number, row in enumerate(rows[1:], start=2):
            if not row or row == [""]:
                continue
            if len(row) < 8:
                raise ValueError(
                    f"{path}, line {line_number}: expected at least 8 tab-separated fields, found {len(row)}"
                )
            if row[0] not in self.languages:
                continue
            label = self._parse_label(row[1], path, line_number)
            examples.append(
                PairExample(
                    guid=f"{row[0]}-{line_number - 2}", text_a=row[6], text_b=row[7], label=label, language=row[0]
                )
            )
        return examples

    def _parse_label(self, value, path, line_number):
        # MultiNLI's machine-translated training files say "contradictory".
        return super()._parse_label("contradiction" if value == "contradictory" else value, path, line_number)

    def score(self, examples, predictions, split):
        result = super().score(examples, predictions, split)
        for lang in self.languages:
            pairs = [(e, p) for e, p in zip(examples, predictions) if e.language == lang]
            if pairs:
                result[f"accuracy_{lang}"] = M.accuracy([e.label for e, _ in pairs], [p for _, p in pairs])
        return result

    def write_predictions(self, examples, predictions, output_dir, split):
        lines = ["index\tlanguage\tprediction"] + [
            f"{e.guid}\t{e.language}\t{p}" for e, p in zip(examples, predictions)
        ]
        path = os.path.join(output_dir, f"xnli_{split}_predictions.tsv")
        write_text_atomic(path, "\n".join(lines) + "\n")
        return [path]


def _usual_layout(name, train_dev, test, labels, metrics, submission, **more):
    """The spec of a GLUE task laid out as most are: train.tsv, dev.tsv and test.tsv, the train and dev
    files read alike, one test split with its leaderboard `submission` file, the paper's name the task's."""
    return dict(
        name=name,
        files=dict(GLUE_FILES),
        columns={"train": train_dev, "dev": train_dev, "test": test},
        labels=labels,
        metrics=metrics,
        submission={"test": submission},
        paper_name={"test": name},
        **more,
    )


def make_task(name, **options):
    header_pair = Columns(1, 2, 3, guid=0)  # index, sentence1, sentence2, label
    unlabelled = Columns(1, 2, guid=0)  # index, sentence1, sentence2: most test files
    specs = (
        _usual_layout(
            "cola", Columns(3, label=1, header=False), Columns(1, guid=0), ("0", "1"), ("mcc", "accuracy"), "CoLA.tsv"
        ),
        _usual_layout("sst2", Columns(0, label=1), Columns(1, guid=0), ("0", "1"), ("accuracy",), "SST-2.tsv"),
        _usual_layout("mrpc", Columns(3, 4, 0), Columns(3, 4, guid=0), ("0", "1"), ("f1", "accuracy"), "MRPC.tsv"),
        _usual_layout(
            "stsb", Columns(7, 8, 9, guid=0), Columns(7, 8, guid=0), None, ("spearman", "pearson"), "STS-B.tsv"
        ),
        _usual_layout(
            "qqp", Columns(3, 4, 5, guid=0), unlabelled, ("0", "1"), ("f1", "accuracy"), "QQP.tsv", skip_malformed=True
        ),
        dict(
            name="mnli",
            files=dict(MNLI_FILES),
            columns={
                "train": Columns(8, 9, -1, guid=0),
                "dev_matched": Columns(8, 9, -1, guid=0),
                "dev_mismatched": Columns(8, 9, -1, guid=0),
                "test_matched": Columns(8, 9, guid=0),
                "test_mismatched": Columns(8, 9, guid=0),
            },
            labels=NLI_LABELS,
            metrics=("accuracy",),
            submission={"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"},
            paper_name={"test_matched": "mnli-m", "test_mismatched": "mnli-mm"},
        ),
        _usual_layout("qnli", header_pair, unlabelled, ("entailment", "not_entailment"), ("accuracy",), "QNLI.tsv"),
        _usual_layout("rte", header_pair, unlabelled, ("entailment", "not_entailment"), ("accuracy",), "RTE.tsv"),
        _usual_layout("wnli", header_pair, unlabelled, ("0", "1"), ("accuracy",), "WNLI.tsv"),
        # The diagnostic set is predicted with a model trained on MNLI; its
        # labelled release (diagnostic-full.tsv) is scored with R3 (Matthews corr.).
        dict(
            name="ax",
            files={"train": "train.tsv", "dev": "diagnostic-full.tsv", "test": "diagnostic.tsv"},
            columns={"train": Columns(8, 9, -1, guid=0), "dev": Columns(5, 6, 7), "test": unlabelled},
            labels=NLI_LABELS,
            metrics=("mcc", "accuracy"),
            submission={"test": "AX.tsv"},
            paper_name={},
            data_subdirs={"train": "mnli"},
            optional_splits=("dev",),
        ),
    )
    if name == "xnli":
        return XnliTask(**options)
    reject_options(name, options)
    return GlueTask(**{spec["name"]: spec for spec in specs}[name])
