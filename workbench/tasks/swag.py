"""SWAG: pick the most plausible of four endings.

As in the paper, each (context, ending) pair is encoded as [CLS] sent1 [SEP]
sent2 + ending [SEP]; one vector scores each pair's [CLS] output and a softmax
over the four choices is trained with cross-entropy.
"""

import csv
import dataclasses
import os

import keras
import numpy as np

from workbench.files import write_text_atomic
from workbench.models.heads import BertMultipleChoice
from workbench.tasks import metrics as M
from workbench.tasks.options import reject_options
from workbench.tasks.registry import Hyperparameters, Task
from workbench.text.inputs import Features, encode_pairs

NUM_CHOICES = 4


@dataclasses.dataclass
class ChoiceExample:
    guid: str  # the row's video-id and index, as in the file
    context: str  # sent1
    start: str  # sent2, the beginning of the continuation
    endings: list  # four endings
    label: int = None


class SwagTask(Task):
    name = "swag"
    head = "multiple_choice"
    labels = tuple(str(i) for i in range(NUM_CHOICES))
    metrics = ("accuracy",)
    eval_splits = ("dev",)
    test_splits = ("test",)
    # The paper: 3 epochs, learning rate 2e-5, batch size 16.
    hparams = Hyperparameters(batch_size=16, learning_rate=2e-5, epochs=3.0, max_seq_length=128)
    paper_name = {"dev": "swag"}

    def files(self, split):
        return {"train": "train.csv", "dev": "val.csv", "test": "test.csv"}[split]

    def load(self, data_dir, split):
        path = self.path(data_dir, split)
        import io

        from workbench.files import read_text

        try:
            rows = list(csv.reader(io.StringIO(read_text(path), newline="")))
        except csv.Error as e:
            raise ValueError(f"{path}: not a readable CSV file ({e})") from None
        if not rows:
            raise ValueError(f"{path}: empty file")
        header = rows[0]
        needed = ["sent1", "sent2", "ending0", "ending1", "ending2", "ending3"] + (["label"] if split != "test" else [])
        missing = [c for c in needed if c not in header]
        if missing:
            raise ValueError(f"{path}: missing columns {missing} (header: {header})")
        col = {name: header.index(name) for name in header}
        examples = []
        for line_number, row in enumerate(rows[1:], start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"{path}, line {line_number}: {len(row)} fields, header has {len(header)}")
            label = None
            if split != "test":
                if row[col["label"]] not in self.labels:
                    raise ValueError(f"{path}, line {line_number}: label {row[col['label']]!r} is not 0-3")
                label = int(row[col["label"]])
            guid = row[col["video-id"]] + "-" + row[0] if "video-id" in col else str(line_number - 2)
            examples.append(
                ChoiceExample(
                    guid,
                    row[col["sent1"]],
                    row[col["sent2"]],
                    [row[col[f"ending{i}"]] for i in range(NUM_CHOICES)],
                    label,
                )
            )
        if split == self.train_split:
            self.require_training_examples(examples, data_dir, split)
        return examples

    def featurize(self, examples, tokenizer, max_seq_length, training=False):
        contexts = [e.context for e in examples for _ in range(NUM_CHOICES)]
        continuations = [f"{e.start} {ending}".strip() for e in examples for ending in e.endings]
        flat = encode_pairs(tokenizer, contexts, continuations, max_seq_length)
        inputs = {k: v.reshape(len(examples), NUM_CHOICES, max_seq_length) for k, v in flat.items()}
        labels = (
            np.asarray([e.label for e in examples], np.int32) if examples and examples[0].label is not None else None
        )
        return Features(inputs, labels)

    def build_model(self, encoder):
        return BertMultipleChoice(encoder, num_choices=NUM_CHOICES)

    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def decode(self, examples, features, outputs):
        return [int(i) for i in np.asarray(outputs).argmax(-1)]

    def score(self, examples, predictions, split):
        return {"accuracy": M.accuracy([e.label for e in examples], predictions)}

    def write_predictions(self, examples, predictions, output_dir, split):
        path = os.path.join(output_dir, f"swag_{split}_predictions.csv")
        lines = ["id,pred"] + [f"{e.guid},{p}" for e, p in zip(examples, predictions)]
        write_text_atomic(path, "\n".join(lines) + "\n")
        return [path]


def make_task(name, **options):
    reject_options("swag", options)
    return SwagTask()
