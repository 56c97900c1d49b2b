"""Pretraining data (the official algorithm's properties) and training."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from tiny_runs import CORPUS, ROOT, VOCAB, finetune_params, pretrain_params

from workbench.text.wordpiece import load_vocab
from workbench.training.pretraining_data import PretrainingDataOptions, create_pretraining_data, parse_example


def read_instances(directory, seq, preds):
    files = sorted(f for f in os.listdir(directory) if f.endswith(".tfrecord"))
    data = tf.data.TFRecordDataset([os.path.join(directory, f) for f in files]).map(
        lambda r: parse_example(r, seq, preds)
    )
    return [{k: v.numpy() for k, v in x.items()} for x in data]


@pytest.fixture(scope="module")
def created(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretraining")
    options = PretrainingDataOptions(
        max_seq_length=64, max_predictions_per_seq=12, dupe_factor=3, whole_word_mask=False
    )
    stats = create_pretraining_data(
        CORPUS, str(out / "plain"), VOCAB, options, shards=2, workers=1, log=lambda *_: None
    )
    # A small vocabulary, so that many words are split into ## pieces.
    from workbench.text.tokenizer import build_vocab, save_vocab
    from workbench.training.pretraining_data import read_documents

    save_vocab(build_vocab([s for d in read_documents(CORPUS) for s in d], vocab_size=120), out / "small_vocab.txt")
    wwm = PretrainingDataOptions(max_seq_length=64, max_predictions_per_seq=12, dupe_factor=3, whole_word_mask=True)
    create_pretraining_data(
        CORPUS, str(out / "wwm"), str(out / "small_vocab.txt"), wwm, shards=2, workers=1, log=lambda *_: None
    )
    return out, stats, read_instances(str(out / "plain"), 64, 12), read_instances(str(out / "wwm"), 64, 12)


def test_feature_layout_and_special_tokens(created):
    _, stats, instances, _ = created
    vocab = load_vocab(VOCAB)
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    assert stats["instances"] == len(instances) > 1000
    for x in instances[:300]:
        n = int(x["input_mask"].sum())
        assert (
            x["input_ids"].shape == (64,)
            and x["masked_lm_positions"].shape == (12,)
            and x["next_sentence_labels"].shape == (1,)
        )
        assert (x["input_mask"][:n] == 1).all() and (x["input_ids"][n:] == 0).all()
        assert x["input_ids"][0] == cls and x["input_ids"][n - 1] == sep
        seps = np.nonzero(x["input_ids"][:n] == sep)[0]
        assert (
            len(seps) == 2
            and (x["segment_ids"][: seps[0] + 1] == 0).all()
            and (x["segment_ids"][seps[0] + 1 : n] == 1).all()
        )
        k = int(x["masked_lm_weights"].sum())
        positions = x["masked_lm_positions"][:k]
        assert k >= 1 and (np.diff(positions) > 0).all()
        assert not set(positions) & {0, *seps.tolist()}  # [CLS]/[SEP] never masked
        assert not set(x["masked_lm_ids"][:k]) & {cls, sep}
        assert (x["masked_lm_weights"][k:] == 0).all() and (x["masked_lm_ids"][k:] == 0).all()


def test_masking_rates_and_next_sentence_balance(created):
    _, stats, instances, _ = created
    vocab = load_vocab(VOCAB)
    mask = vocab.index("[MASK]")
    masked = replaced = kept = maskable = 0
    for x in instances:
        k = int(x["masked_lm_weights"].sum())
        ids, labels = x["input_ids"][x["masked_lm_positions"][:k]], x["masked_lm_ids"][:k]
        masked += k
        replaced += int((ids == mask).sum())
        kept += int((ids == labels).sum())
        maskable += int(x["input_mask"].sum()) - 3
    assert 0.13 < masked / maskable < 0.17  # 15%, rounded per instance
    assert 0.77 < replaced / masked < 0.83  # 80% [MASK]
    assert 0.08 < kept / masked < 0.13  # 10% unchanged (+ random picks of the same token)
    random_next = np.mean([x["next_sentence_labels"][0] for x in instances])
    # Half the multi-sentence chunks take a random B; single-sentence chunks always do.
    assert 0.45 < random_next < 0.7 and abs(random_next - stats["next_sentence_random_fraction"]) < 1e-9


def test_whole_word_masking_masks_every_piece(created):
    out, _, _, instances = created
    vocab = load_vocab(out / "small_vocab.txt")
    pieces_seen = 0
    for x in instances:
        k = int(x["masked_lm_weights"].sum())
        masked = set(x["masked_lm_positions"][:k].tolist())
        labels = dict(zip(x["masked_lm_positions"][:k].tolist(), x["masked_lm_ids"][:k].tolist()))
        for position in masked:
            original = vocab[labels[position]]
            if original.startswith("##"):
                pieces_seen += 1
                # The word's previous piece is masked too, unless truncation from
                # the front cut it away (then the piece follows [CLS] or [SEP]).
                assert position - 1 in masked or vocab[x["input_ids"][position - 1]] in ("[CLS]", "[SEP]")
            following = position + 1
            if following < 64 and x["input_mask"][following] and following not in masked:
                # the next token is not a continuation of this word (else it would be masked)
                token = vocab[x["input_ids"][following]]
                assert not token.startswith("##") or x["input_ids"][following] == vocab.index("[MASK]")
    assert pieces_seen > 20


def test_deterministic_for_a_seed_whatever_the_workers(created, tmp_path):
    out, _, _, _ = created
    options = PretrainingDataOptions(max_seq_length=64, max_predictions_per_seq=12, dupe_factor=3)
    create_pretraining_data(CORPUS, str(tmp_path / "two"), VOCAB, options, shards=2, workers=2, log=lambda *_: None)
    for name in ("part-00000-of-00002.tfrecord", "part-00001-of-00002.tfrecord"):
        assert (tmp_path / "two" / name).read_bytes() == (out / "plain" / name).read_bytes()
    other = PretrainingDataOptions(max_seq_length=64, max_predictions_per_seq=12, dupe_factor=3, random_seed=7)
    create_pretraining_data(CORPUS, str(tmp_path / "seed7"), VOCAB, other, shards=2, workers=1, log=lambda *_: None)
    assert (tmp_path / "seed7" / "part-00000-of-00002.tfrecord").read_bytes() != (
        out / "plain" / "part-00000-of-00002.tfrecord"
    ).read_bytes()


def test_bad_corpora_and_options(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="is empty"):
        create_pretraining_data(str(empty), str(tmp_path / "o"), VOCAB)
    one = tmp_path / "one.txt"
    one.write_text("a cat sleeps.\nthe dog runs.\n")
    with pytest.raises(ValueError, match="single document.*blank line"):
        create_pretraining_data(str(one), str(tmp_path / "o"), VOCAB)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        create_pretraining_data(str(tmp_path / "nope.txt"), str(tmp_path / "o"), VOCAB)
    with pytest.raises(ValueError, match="max_predictions_per_seq=200 must be between 1 and max_seq_length - 3 = 125"):
        create_pretraining_data(CORPUS, str(tmp_path / "o"), VOCAB, PretrainingDataOptions(max_predictions_per_seq=200))
    with pytest.raises(ValueError, match=r"missing special token"):
        create_pretraining_data(CORPUS, str(tmp_path / "o"), ["the", "cat", "[UNK]"])
    short = tmp_path / "short.txt"
    short.write_text("the cat sleeps.\n\nthe dog runs.\n\nthe fox waits.\nthe owl sings.\n")
    messages = []
    stats = create_pretraining_data(
        str(short),
        str(tmp_path / "s"),
        VOCAB,
        PretrainingDataOptions(max_seq_length=32, max_predictions_per_seq=5),
        shards=1,
        log=messages.append,
    )
    assert stats["documents_with_one_sentence"] == 2 and stats["instances"] > 0 and "single sentence" in messages[0]


# Long enough that the masked-LM loss falls by more than 1 (the learning test), with checkpoints to resume from.
PRETRAIN = pretrain_params(
    phase1_steps=60, phase2_steps=6, batch_size=32, warmup_steps=6, checkpoint_every=20, eval_instances=128
)

KILLED = r"""
import json, os, sys
import workbench
import workbench.training.loop as T
from workbench.training.pretrain import pretrain
save = T.StepCheckpoint.on_train_batch_end
def kill(self, batch, logs=None):
    save(self, batch, logs)
    if self.step == 30 and "phase1" in self.directory:
        os._exit(137)
T.StepCheckpoint.on_train_batch_end = kill
pretrain(**json.loads(sys.argv[1]))
"""


def test_pretraining_learns_resumes_and_feeds_fine_tuning(tmp_path, monkeypatch):
    from workbench.training.finetune import finetune
    from workbench.training.pretrain import pretrain

    straight = pretrain(output_dir=str(tmp_path / "a"), results_csv=str(tmp_path / "a.csv"), **PRETRAIN)
    phase1 = straight.metrics[1]
    assert phase1["final"]["masked_lm_loss"] < phase1["initial"]["masked_lm_loss"] - 1.0
    table = pd.read_csv(tmp_path / "a.csv")
    assert {"masked_lm_accuracy", "masked_lm_loss", "next_sentence_accuracy", "next_sentence_loss"} == set(
        table["metric"]
    )
    assert set(table["phase"]) == {1, 2} and set(table["seq_length"]) == {32, 64}
    assert (table["status"] == "ok").all() and (tmp_path / "a" / "parameters.json").exists()
    assert list(straight.history.groupby("phase")["step"].max()) == [60, 6]
    # Killed mid-phase-1 and rerun: same steps, same data, same result.
    args = dict(PRETRAIN, output_dir=str(tmp_path / "b"), results_csv=str(tmp_path / "b.csv"))
    proc = subprocess.run([sys.executable, "-c", KILLED, json.dumps(args)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 137, proc.stderr[-2000:]
    resumed = pretrain(**args)
    assert resumed.metrics[1]["final"] == pytest.approx(phase1["final"], abs=1e-5)
    assert resumed.metrics[2]["final"] == pytest.approx(straight.metrics[2]["final"], abs=1e-5)
    # Each step's own loss is recorded, so the resumed history matches step by step.
    np.testing.assert_allclose(resumed.history["loss"], straight.history["loss"], atol=1e-5)
    # Resuming with another learning rate would mix two runs: refused.
    with pytest.raises(ValueError, match="learning_rate: 0.002 in the stored run, 0.001 now"):
        pretrain(**dict(args, learning_rate=1e-3))
    # The output is a model the fine-tuning loop takes as `model`. The default feature cache is a
    # folder relative to the working directory: here, the test's own.
    monkeypatch.chdir(tmp_path)
    tuned = finetune(
        **finetune_params(
            "vocab",  # the model's own
            "learning_rate",  # the task's default
            "feature_cache",  # the default folder
            task="rte",
            model=straight.model_dir,
            output_dir=str(tmp_path / "ft"),
            results_csv=str(tmp_path / "ft.csv"),
            save_model=False,
        )
    )
    assert "dev" in tuned.metrics and pd.read_csv(tmp_path / "ft.csv")["init"].iloc[0] == straight.model_dir
    assert list((tmp_path / "results" / "feature_cache").glob("rte-*.npz"))
    # Continuing pretraining from the Google-layout export keeps the heads.
    from workbench.checkpoints.load import load_pretrained

    assert "cls/predictions/output_bias" in load_pretrained(os.path.join(straight.output_dir, "google")).head_weights


def test_a_diverging_pretraining_phase_is_recorded_and_stops(tmp_path):
    from workbench.training.loop import TrainingDiverged
    from workbench.training.pretrain import PRETRAIN_COLUMNS, pretrain

    args = dict(PRETRAIN, phase1_steps=4, phase2_steps=0, checkpoint_every=1, eval_instances=32, warmup_steps=0)
    with pytest.raises(TrainingDiverged) as error:  # Adam steps of ~1e30 overflow the LayerNorm variances
        pretrain(
            **dict(args, learning_rate=1e30), output_dir=str(tmp_path / "run"), results_csv=str(tmp_path / "p.csv")
        )
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table.columns) == PRETRAIN_COLUMNS and list(table["status"]) == ["diverged"]
    assert table["phase"].iloc[0] == 1 and table["step"].iloc[0] == error.value.step
    assert table["error"].iloc[0] == str(error.value) and f"at step {error.value.step}:" in str(error.value)
    latest = tmp_path / "run" / "checkpoints" / "phase1" / "latest"
    assert error.value.checkpoint_step == error.value.step - 1
    assert latest.read_text().strip() == f"step-{error.value.step - 1}"
    assert not (tmp_path / "run" / "model").exists() and not (tmp_path / "run" / "metrics.json").exists()


def test_pretrain_notebook_runs_under_papermill(tmp_path):
    import papermill

    params = {k: v for k, v in PRETRAIN.items() if k not in ("eval_instances", "shards")}
    params.update(
        phase1_steps=20, phase2_steps=0, output_dir=str(tmp_path / "run"), results_csv=str(tmp_path / "p.csv")
    )
    papermill.execute_notebook(
        os.path.join(ROOT, "notebooks", "pretrain.ipynb"),
        str(tmp_path / "out.ipynb"),
        parameters=params,
        cwd=ROOT,
        progress_bar=False,
    )
    assert os.path.exists(tmp_path / "run" / "model" / "config.json")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["1"]["final"]["masked_lm_loss"] > 0


def test_pretraining_streams_shards_made_earlier_by_glob(created, tmp_path):
    from workbench.training.params import ParameterError
    from workbench.training.pretrain import pretrain

    out, stats, _, _ = created
    args = dict(
        PRETRAIN,
        corpus=None,
        phase1_data=str(out / "plain" / "*.tfrecord"),  # a glob, as on gs://; stats.json beside it
        phase1_seq_length=64,
        phase1_max_predictions=12,
        phase1_steps=3,
        phase2_steps=0,
        batch_size=8,
        eval_instances=16,
        output_dir=str(tmp_path / "run"),
        results_csv=str(tmp_path / "pretrain.csv"),
    )
    result = pretrain(**args)
    assert list(result.history["step"]) == [1, 2, 3]
    assert not (tmp_path / "run" / "data").exists()  # nothing created: the given shards were read
    with pytest.raises(ParameterError, match="'corpus' is required unless phase1_data"):
        pretrain(**dict(args, phase1_data=None))
    with pytest.raises(ParameterError, match="'phase1_seq_length' is 32 but the shards .* max_seq_length=64"):
        pretrain(**dict(args, phase1_seq_length=32, output_dir=str(tmp_path / "other")))
