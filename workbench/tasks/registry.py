"""The benchmark registry: `get_task(name)` and the `Task` interface.

A task knows its official files, how to read them, how to turn examples into
model inputs, which head to put on the encoder, how to turn model outputs back
into predictions, how the official evaluation scores them, and which files a
leaderboard expects. The fine-tuning loop (`workbench.training.finetune`) only talks to
this interface, so every benchmark trains the same way.
"""

import dataclasses
import os

# name -> (module, class or factory); imported on first use.
_REGISTRY = {
    "cola": "workbench.tasks.glue",
    "sst2": "workbench.tasks.glue",
    "mrpc": "workbench.tasks.glue",
    "stsb": "workbench.tasks.glue",
    "qqp": "workbench.tasks.glue",
    "mnli": "workbench.tasks.glue",
    "qnli": "workbench.tasks.glue",
    "rte": "workbench.tasks.glue",
    "wnli": "workbench.tasks.glue",
    "ax": "workbench.tasks.glue",
    "xnli": "workbench.tasks.glue",
    "squad1": "workbench.tasks.squad",
    "squad2": "workbench.tasks.squad",
    "swag": "workbench.tasks.swag",
    "conll2003": "workbench.tasks.ner",
}
TASK_NAMES = tuple(_REGISTRY)
GLUE_TASKS = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "ax")
# The file of each split in most GLUE archives, and in MNLI's: what `workbench.tasks.glue` reads and
# `workbench.tasks.download` takes out of the archives.
GLUE_FILES = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
MNLI_FILES = {
    "train": "train.tsv",
    "dev_matched": "dev_matched.tsv",
    "dev_mismatched": "dev_mismatched.tsv",
    "test_matched": "test_matched.tsv",
    "test_mismatched": "test_mismatched.tsv",
}


@dataclasses.dataclass
class Hyperparameters:
    """Fine-tuning defaults, from the paper and the official README."""

    batch_size: int = 32  # global batch size
    learning_rate: float = 2e-5  # peak learning rate after warmup
    epochs: float = 3.0  # passes over the training set
    max_seq_length: int = 128  # tokens per input, [CLS] and [SEP] included
    warmup_proportion: float = 0.1  # share of steps with linear warmup


class Task:
    """One benchmark. Subclasses set the class attributes and implement the methods.

    Attributes:
        name: registry name (`"mrpc"`).
        head: `"classifier"`, `"regression"`, `"span"`, `"multiple_choice"` or `"token"`.
        labels: label strings in the official order (None for regression and spans).
        metrics: metric names; the first is the task's headline metric.
        train_split, eval_splits, test_splits: split names.
        hparams: `Hyperparameters` defaults.
        paper_name: the task's name in `data/paper_results.csv` per eval split.
    """

    name = ""
    head = "classifier"
    labels = None
    metrics = ("accuracy",)
    train_split = "train"
    eval_splits = ("dev",)
    test_splits = ("test",)
    hparams = Hyperparameters()
    paper_name = {}
    data_subdir = None

    # ---- files ----
    def files(self, split):
        """File names (relative to the task's data directory) of a split."""
        raise NotImplementedError

    def task_dir(self, data_dir, split=None):
        return os.path.join(data_dir, self.data_subdir or self.name)

    def path(self, data_dir, split):
        """The split's file path; a clear error naming it and the download command."""
        if split not in self.splits:
            raise ValueError(f"Task {self.name!r} has no split {split!r}; its splits are {list(self.splits)}")
        path = os.path.join(self.task_dir(data_dir, split), self.files(split))
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"{self.name}: expected {path} for split {split!r}. "
                f"Get the data with: python -m workbench download {self.download_name} --data-dir {data_dir}"
            )
        return path

    @property
    def download_name(self):
        return self.name

    @property
    def splits(self):
        return (self.train_split, *self.eval_splits, *self.test_splits)

    def has_labels(self, split):
        return split != "test" and not split.startswith("test_") or self.labelled_test

    labelled_test = False
    optional_splits = ()  # evaluation splits a run skips (with a message) when their file is absent

    def data_counts(self):
        """{split: {name: count}}: what the last `load` of each split left out or found off
        (QQP's malformed rows `skipped_rows`; SQuAD's answers that do not match their
        offsets or that the original cannot find in whole words), only the non-zero ones.
        A run writes them to `data_counts.json` and prints them."""
        counts = {}
        for split, n in getattr(self, "skipped_rows", {}).items():
            if n:
                counts.setdefault(split, {})["skipped_rows"] = n
        for split, values in getattr(self, "answer_counts", {}).items():
            off = {f"answers_{k}": v for k, v in values.items() if k != "answers" and v}
            if off:
                counts.setdefault(split, {}).update(answers=values.get("answers", 0), **off)
        return counts

    def require_training_examples(self, examples, data_dir, split=None):
        """Stop with an error naming the file when a training split has no
        examples (an empty or header-only file, or every row skipped).

        Called right after the training split is loaded and before the model
        is built or loaded, so a bad data file costs seconds, not a model
        download. Returns `examples`.
        """
        split = split or self.train_split
        if not examples:
            path = os.path.join(self.task_dir(data_dir, split), self.files(split))
            raise ValueError(
                f"{path}: no {split} examples in the file (empty, header only, or every row skipped); "
                "nothing was trained"
            )
        return examples

    # ---- the pipeline ----
    def load(self, data_dir, split):
        """A list of examples of the split."""
        raise NotImplementedError

    def featurize(self, examples, tokenizer, max_seq_length, training=False):
        """`workbench.text.inputs.Features` for the examples."""
        raise NotImplementedError

    def build_model(self, encoder):
        raise NotImplementedError

    def loss(self):
        raise NotImplementedError

    def decode(self, examples, features, outputs):
        """Predictions, one per example, from the model's raw outputs."""
        raise NotImplementedError

    def score(self, examples, predictions, split):
        """{metric: value} as the official evaluation computes it."""
        raise NotImplementedError

    def score_notes(self, examples, predictions, split):
        """{metric: why its value is undefined or degenerate} for the results table's
        `note` column; empty when every score is an ordinary number."""
        return {}

    def write_predictions(self, examples, predictions, output_dir, split):
        """Write prediction files (leaderboard format for test splits); return their paths."""
        raise NotImplementedError

    def predict(self, model, features, batch_size=64, examples=None):
        """Predictions for `features` (one per example, `decode`d), every batch of the same shape
        (`predict_outputs`)."""
        return self.decode(examples, features, predict_outputs(model, features.inputs, batch_size))

    def describe(self):
        return {
            "task": self.name,
            "splits": ", ".join(self.splits),
            "labels": ", ".join(self.labels)
            if self.labels
            else {"regression": "score 0-5", "span": "answer span", "token": "-"}.get(self.head, "-"),
            "metrics": ", ".join(self.metrics),
        }


def padded_batches(inputs, batch_size):
    """(dataset, valid): `inputs` ({name: array (N, ...)}) in batches of exactly `batch_size`, the last
    one filled up with copies of the first row, and the (N + padding,) bool mask of the real rows.

    Static shapes are what a TPU compiles once (XLA on GPUs too): a smaller last batch would be a
    second program. The padding rows are real inputs (no all-padding sequence, whose attention is
    degenerate); they are computed and dropped, so no example is dropped or counted twice.
    """
    import numpy as np
    import tensorflow as tf

    from workbench.training.loop import without_autotune

    n = len(next(iter(inputs.values())))
    pad = -n % batch_size
    padded = {name: np.concatenate([a, np.repeat(a[:1], pad, axis=0)]) for name, a in inputs.items()}
    valid = np.arange(n + pad) < n
    dataset = tf.data.Dataset.from_tensor_slices(padded).batch(batch_size, drop_remainder=True)
    return without_autotune(dataset), valid


def predict_outputs(model, inputs, batch_size):
    """The model's raw outputs for `inputs` ({name: array (N, ...)}), N rows, predicted in full batches
    (`padded_batches`). Under a multi-worker strategy every worker computes all of them with its own
    copy of the weights (Keras' `predict` would split the batches over the workers and fail to gather
    them, keras-team/keras#20585); the chief alone writes them."""
    import keras
    import numpy as np
    import tensorflow as tf

    dataset, valid = padded_batches(inputs, batch_size)
    if isinstance(getattr(model, "distribute_strategy", None), tf.distribute.MultiWorkerMirroredStrategy):
        forward = tf.function(lambda x: model(x, training=False))
        batches = [keras.tree.map_structure(np.asarray, forward(x)) for x in dataset]
        outputs = keras.tree.map_structure(lambda *parts: np.concatenate(parts), *batches)
    else:
        outputs = model.predict(dataset, verbose=0)
    return keras.tree.map_structure(lambda a: np.asarray(a)[valid], outputs)


def get_task(name, **options):
    """The task named `name` (see `TASK_NAMES`); options go to its constructor
    (e.g. `get_task("xnli", train_language="zh")`)."""
    import importlib

    key = str(name).lower()
    if key not in _REGISTRY:
        raise ValueError(f"Unknown task {name!r}; valid tasks: {', '.join(TASK_NAMES)}")
    module = importlib.import_module(_REGISTRY[key])
    return module.make_task(key, **options)
