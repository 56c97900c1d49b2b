"""CoNLL-2003 named entity recognition.

The distributed files (`eng.train`, `eng.testa`, `eng.testb`) have one token
per line (word, POS, chunk, NER tag), `-DOCSTART-` lines and a blank line
between sentences, and use IOB1 tags. They are converted to IOB2 for training
and scoring alike; each word's label sits on its first WordPiece, the other
pieces are ignored by the loss, and predictions are read back per word.
Scoring is entity-level micro F1 with conlleval semantics (seqeval).
"""

import dataclasses
import os

import keras
import numpy as np

from workbench.files import write_text_atomic
from workbench.models.heads import BertTokenClassifier
from workbench.tasks import metrics as M
from workbench.tasks.options import reject_options
from workbench.tasks.registry import Hyperparameters, Task
from workbench.text.inputs import Features

ENTITY_TYPES = ("PER", "ORG", "LOC", "MISC")
LABELS = ("O",) + tuple(f"{p}-{t}" for t in ENTITY_TYPES for p in ("B", "I"))
IGNORE = -100  # label of WordPiece continuations and padding: not scored by the loss


@dataclasses.dataclass
class TaggedSentence:
    guid: str
    words: list
    tags: list = None  # IOB2 tags, None for unlabelled input


def iob1_to_iob2(tags):
    """IOB1 (B- only between adjacent same-type entities) to IOB2 (B- starts every entity)."""
    out = []
    for i, tag in enumerate(tags):
        if tag.startswith("I-"):
            previous = out[i - 1] if i else "O"
            if previous == "O" or previous[2:] != tag[2:]:
                tag = "B-" + tag[2:]
        out.append(tag)
    return out


class ConllNerTask(Task):
    name = "conll2003"
    head = "token"
    labels = LABELS
    metrics = ("f1", "precision", "recall")
    eval_splits = ("dev",)
    test_splits = ("test",)
    labelled_test = True  # eng.testb is labelled: it is what the paper reports
    hparams = Hyperparameters(batch_size=32, learning_rate=5e-5, epochs=3.0, max_seq_length=128)
    paper_name = {"dev": "conll2003-ner", "test": "conll2003-ner"}

    def files(self, split):
        return {"train": "eng.train", "dev": "eng.testa", "test": "eng.testb"}[split]

    def load(self, data_dir, split):
        path = self.path(data_dir, split)
        sentences, words, tags = [], [], []

        def flush():
            if words:
                sentences.append(TaggedSentence(f"{split}-{len(sentences)}", list(words), iob1_to_iob2(tags)))
                words.clear()
                tags.clear()

        from workbench.files import read_text

        for line_number, line in enumerate(read_text(path).split("\n"), start=1):
            fields = line.split()
            if not fields:
                flush()
                continue
            if fields[0] == "-DOCSTART-":
                flush()
                continue
            if len(fields) != 4:
                raise ValueError(
                    f"{path}, line {line_number}: expected 4 columns (word POS chunk NER), found {len(fields)}"
                )
            tag = fields[3]
            if tag not in LABELS:
                raise ValueError(f"{path}, line {line_number}: unknown NER tag {tag!r}; expected one of {list(LABELS)}")
            words.append(fields[0])
            tags.append(tag)
        flush()
        if split == self.train_split:
            self.require_training_examples(sentences, data_dir, split)
        return sentences

    def featurize(self, examples, tokenizer, max_seq_length, training=False):
        cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
        n = len(examples)
        token_ids = np.zeros((n, max_seq_length), np.int32)
        labels = np.full((n, max_seq_length), IGNORE, np.int32)
        word_start = np.full((n, max_seq_length), -1, np.int32)  # position -> word index
        truncated_words = 0
        for i, sentence in enumerate(examples):
            ids, label_row, word_row = [cls_id], [IGNORE], [-1]
            for w, word in enumerate(sentence.words):
                pieces = tokenizer.encode_with_offsets(word)[0] or [tokenizer.token_to_id("[UNK]")]
                if len(ids) + len(pieces) > max_seq_length - 1:
                    truncated_words += len(sentence.words) - w
                    break
                tag = LABELS.index(sentence.tags[w]) if sentence.tags else IGNORE
                ids.extend(pieces)
                label_row.extend([tag] + [IGNORE] * (len(pieces) - 1))
                word_row.extend([w] + [-1] * (len(pieces) - 1))
            ids.append(sep_id)
            label_row.append(IGNORE)
            word_row.append(-1)
            token_ids[i, : len(ids)] = ids
            labels[i, : len(ids)] = label_row
            word_start[i, : len(ids)] = word_row
        mask = (token_ids != 0).astype(np.int32)
        inputs = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": mask}
        has_tags = bool(examples) and examples[0].tags is not None
        return Features(
            inputs, labels if has_tags else None, {"word_start": word_start, "truncated_words": truncated_words}
        )

    def build_model(self, encoder):
        return BertTokenClassifier(encoder, num_labels=len(LABELS))

    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE)

    def decode(self, examples, features, outputs):
        best = np.asarray(outputs).argmax(-1)
        predictions = []
        for i, sentence in enumerate(examples):
            tags = ["O"] * len(sentence.words)  # words cut by max_seq_length stay "O"
            for position in np.nonzero(features.meta["word_start"][i] >= 0)[0]:
                tags[features.meta["word_start"][i][position]] = LABELS[best[i, position]]
            predictions.append(tags)
        return predictions

    def score(self, examples, predictions, split):
        return M.ner_scores([s.tags for s in examples], predictions)

    def write_predictions(self, examples, predictions, output_dir, split):
        """conlleval input: `word gold predicted` per line, blank between sentences."""
        lines = []
        for sentence, tags in zip(examples, predictions):
            gold = sentence.tags or ["O"] * len(tags)
            lines.extend(f"{w} {g} {p}" for w, g, p in zip(sentence.words, gold, tags))
            lines.append("")
        path = os.path.join(output_dir, f"conll2003_{split}_predictions.txt")
        write_text_atomic(path, "\n".join(lines) + "\n")
        return [path]


def make_task(name, **options):
    reject_options("conll2003", options)
    return ConllNerTask()
