"""Pretrain BERT with masked LM + next-sentence prediction, in two phases.

    result = pretrain(corpus="corpus.txt", model="base", phase1_steps=900_000, phase2_steps=100_000)

As the official README recommends, most steps run at sequence length 128 (20
predictions per sequence) and the rest at 512 (80), the second phase continuing
from the first with a fresh warmup. Each phase creates its data with the
official algorithm (`workbench.training.pretraining_data`), trains with BERT's optimizer
(lr 1e-4, 10k warmup steps, linear decay, weight decay 0.01 by default),
checkpoints every `checkpoint_every` steps (a killed run resumes with the same
step count and data order), evaluates the official metrics and appends them
to `results/pretrain.csv`. The result is a keras-hub preset directory
(`output_dir/model`) that the fine-tuning notebooks take as `model`, and the
original Google layout with the MLM/NSP heads (`output_dir/google`) to continue
pretraining from.
"""

import dataclasses
import datetime
import json
import os
import time

import numpy as np

from workbench.training.distribution import restored_precision

PRETRAIN_COLUMNS = [
    "run_id",
    "finished_at",
    "phase",
    "step",
    "metric",
    "value",
    "model",
    "seq_length",
    "max_predictions",
    "batch_size",
    "learning_rate",
    "steps",
    "instances",
    "strategy",
    "replicas",
    "precision",
    "train_seconds",
    "sequences_per_second",
    "notebook",
    "output_dir",
]


@dataclasses.dataclass
class PretrainParams:
    """Parameters of a pretraining run (defaults: the paper's recipe)."""

    corpus: str  # text file(s)/glob: one sentence per line, blank line between documents
    model: str = "base"  # size name (random init) or a model directory/preset to continue from
    vocab: str | None = None  # vocab.txt; None: learn one of `vocab_size` from the corpus
    vocab_size: int = 30522  # size of a learned vocabulary
    lowercase: bool = True  # uncased model
    phase1_steps: int = 900_000  # steps at phase1_seq_length
    phase2_steps: int = 100_000  # steps at phase2_seq_length (0: one phase only)
    phase1_seq_length: int = 128
    phase1_max_predictions: int = 20
    phase2_seq_length: int = 512
    phase2_max_predictions: int = 80
    batch_size: int = 256  # global sequences per step (the paper: 256)
    learning_rate: float = 1e-4
    warmup_steps: int = 10_000  # per phase
    weight_decay: float = 0.01
    gradient_accumulation: int = 1  # batches per update: reach large batches on small memory
    dupe_factor: int = 10
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    whole_word_mask: bool = False
    data_seed: int = 12345  # data creation
    seed: int = 1  # initialisation, data order, dropout
    shards: int = 4  # data shards (and processes creating them)
    strategy: str = "auto"
    precision: str = "auto"
    checkpoint_every: int = 1000
    eval_instances: int = 512  # instances scored for the official metrics after each phase
    output_dir: str | None = None  # default results/pretrain_runs/<run_id>; reuse it to resume
    results_csv: str = "results/pretrain.csv"
    run_id: str | None = None
    notebook: str = ""


@dataclasses.dataclass
class PretrainResult:
    run_id: str
    output_dir: str
    model_dir: str  # keras-hub preset: pass as `model` to the fine-tuning notebooks
    metrics: dict  # {phase: {"initial": {...}, "final": {...}}}
    history: object  # DataFrame: phase, step, loss, learning_rate


def pretraining_losses():
    import keras

    # The original divides the masked-LM loss by the number of real predictions
    # (sum of masked_lm_weights), not by the padded slot count.
    return {
        "mlm_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight"),
        "nsp_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    }


def to_model_inputs(features):
    x = {
        "token_ids": features["input_ids"],
        "segment_ids": features["segment_ids"],
        "padding_mask": features["input_mask"],
        "mask_positions": features["masked_lm_positions"],
    }
    y = {"mlm_logits": features["masked_lm_ids"], "nsp_logits": features["next_sentence_labels"][..., 0]}
    import tensorflow as tf

    w = {"mlm_logits": features["masked_lm_weights"], "nsp_logits": tf.ones_like(features["masked_lm_weights"][..., 0])}
    return x, y, w


def phase_stream(files, instances, seq_length, max_predictions, batch_size, total_batches, seed):
    """Deterministic batches: epoch e is the records in a seeded shuffle (seed, e).

    `files` are shard paths, or a directory or glob of them on any filesystem
    TensorFlow reads (`gs://...` on Cloud TPU); records stream from the files in
    sorted order through a bounded shuffle buffer, never all in memory.
    """
    import tensorflow as tf

    from workbench.training.pretraining_data import list_shards, parse_example

    files = list_shards(files) if isinstance(files, (str, os.PathLike)) else sorted(files)
    records = tf.data.TFRecordDataset(files)
    epochs = -(-total_batches * batch_size // instances)
    buffer = min(instances, 100_000)
    # A seeded shuffle that reshuffles on each repetition: epoch e's order is
    # fixed by (global seed, seed, e), so a resumed run with the same seeds
    # replays it (the op seed is a Python int: seed 0 works too).
    stream = records.shuffle(buffer, seed=seed, reshuffle_each_iteration=True).repeat(epochs)
    from workbench.training.loop import without_autotune

    stream = stream.map(
        lambda r: parse_example(r, seq_length, max_predictions),
        num_parallel_calls=os.cpu_count() or 1,
        deterministic=True,
    )
    return without_autotune(stream.batch(batch_size, drop_remainder=True).take(total_batches).map(to_model_inputs))


def evaluate_pretraining(model, files, seq_length, max_predictions, count, batch_size=64):
    """The official metrics on the first `count` instances."""
    import tensorflow as tf

    from workbench.training.pretraining_data import parse_example

    data = (
        tf.data.TFRecordDataset(sorted(files))
        .take(count)
        .map(lambda r: parse_example(r, seq_length, max_predictions))
        .batch(batch_size)
    )
    sums = dict(mlm_correct=0.0, mlm_loss=0.0, mlm_weight=0.0, nsp_correct=0.0, nsp_loss=0.0, nsp_count=0.0)
    for features in data:
        x, y, w = to_model_inputs(features)
        out = model(x, training=False)
        mlm = out["mlm_logits"].numpy().astype(np.float64)
        ids, weights = y["mlm_logits"].numpy(), w["mlm_logits"].numpy()
        log_probs = mlm - mlm.max(-1, keepdims=True)
        log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
        mlm_ce = -np.take_along_axis(log_probs, ids[..., None], -1)[..., 0]
        sums["mlm_correct"] += float(((mlm.argmax(-1) == ids) * weights).sum())
        sums["mlm_loss"] += float((mlm_ce * weights).sum())
        sums["mlm_weight"] += float(weights.sum())
        nsp = out["nsp_logits"].numpy().astype(np.float64)
        labels = y["nsp_logits"].numpy()
        nsp_log = nsp - nsp.max(-1, keepdims=True)
        nsp_log -= np.log(np.exp(nsp_log).sum(-1, keepdims=True))
        sums["nsp_correct"] += float((nsp.argmax(-1) == labels).sum())
        sums["nsp_loss"] += float(-np.take_along_axis(nsp_log, labels[:, None], -1).sum())
        sums["nsp_count"] += len(labels)
    return {
        "masked_lm_accuracy": sums["mlm_correct"] / sums["mlm_weight"],
        "masked_lm_loss": sums["mlm_loss"] / sums["mlm_weight"],
        "next_sentence_accuracy": sums["nsp_correct"] / sums["nsp_count"],
        "next_sentence_loss": sums["nsp_loss"] / sums["nsp_count"],
    }


@restored_precision()
def pretrain(**params):
    """Run the two-phase pretraining recipe; see `PretrainParams`."""
    p = PretrainParams(**params)
    import hashlib

    import keras

    from workbench.checkpoints.google import save_google_release
    from workbench.checkpoints.load import apply_head_weights, is_size_name, load_pretrained, save_pretrained
    from workbench.models.heads import BertPretrainer
    from workbench.models.optimizer import create_optimizer
    from workbench.runs.tables import append_rows
    from workbench.text.tokenizer import build_vocab, save_vocab
    from workbench.training.distribution import describe_strategy, get_strategy
    from workbench.training.loop import LossHistory, ProgressBar, StepCheckpoint
    from workbench.training.pretraining_data import (
        PretrainingDataOptions,
        create_pretraining_data,
        list_shards,
        read_documents,
    )

    key = json.dumps(
        {
            k: v
            for k, v in dataclasses.asdict(p).items()
            if k not in ("output_dir", "results_csv", "notebook", "run_id")
        },
        sort_keys=True,
    )
    run_id = (
        p.run_id
        or f"pretrain-{os.path.basename(os.path.normpath(p.model))}-s{p.seed}"
        f"-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    )
    output_dir = p.output_dir or os.path.join("results", "pretrain_runs", run_id)
    os.makedirs(output_dir, exist_ok=True)
    keras.utils.set_random_seed(p.seed)
    strategy = get_strategy(p.strategy, p.precision)
    where = describe_strategy(strategy)

    # ---- vocabulary and model ----
    vocab = p.vocab
    if vocab is None and is_size_name(p.model):
        vocab = os.path.join(output_dir, "vocab.txt")
        if not os.path.exists(vocab):
            sentences = [s for d in read_documents(p.corpus) for s in d]
            save_vocab(build_vocab(sentences, vocab_size=p.vocab_size, lowercase=p.lowercase), vocab)
    with strategy.scope():
        pretrained = load_pretrained(p.model, vocab=vocab, lowercase=p.lowercase)
        model = BertPretrainer(pretrained.encoder)
        if pretrained.head_weights:
            apply_head_weights(model, pretrained.head_weights)
    tokenizer = pretrained.tokenizer
    vocab_tokens = tokenizer.get_vocabulary()

    phases = [(1, p.phase1_steps, p.phase1_seq_length, p.phase1_max_predictions)]
    if p.phase2_steps:
        phases.append((2, p.phase2_steps, p.phase2_seq_length, p.phase2_max_predictions))
    for _, _, seq_length, _ in phases:
        if seq_length > pretrained.encoder.max_sequence_length:
            raise ValueError(
                f"sequence length {seq_length} exceeds the model's {pretrained.encoder.max_sequence_length} positions"
            )
    metrics, histories, rows = {}, [], []
    for phase, steps, seq_length, max_predictions in phases:
        # ---- data (created once; a rerun reuses it) ----
        data_dir = os.path.join(output_dir, "data", f"phase{phase}")
        if not os.path.exists(os.path.join(data_dir, "stats.json")):
            options = PretrainingDataOptions(
                max_seq_length=seq_length,
                max_predictions_per_seq=max_predictions,
                masked_lm_prob=p.masked_lm_prob,
                dupe_factor=p.dupe_factor,
                short_seq_prob=p.short_seq_prob,
                random_seed=p.data_seed + phase,
                do_lower_case=tokenizer.do_lower_case,
                whole_word_mask=p.whole_word_mask,
            )
            create_pretraining_data(p.corpus, data_dir, vocab_tokens, options, shards=p.shards)
        with open(os.path.join(data_dir, "stats.json"), encoding="utf-8") as f:
            stats = json.load(f)
        files = list_shards(data_dir)

        # ---- train (resumable) ----
        total_batches = steps * p.gradient_accumulation
        with strategy.scope():
            model.compile(
                optimizer=create_optimizer(
                    p.learning_rate, steps, min(p.warmup_steps, steps), p.weight_decay, p.gradient_accumulation
                ),
                loss=pretraining_losses(),
            )
            sample = {k: np.zeros((1, seq_length), "int32") for k in ("token_ids", "segment_ids", "padding_mask")}
            model({**sample, "mask_positions": np.zeros((1, max_predictions), "int32")})
            model.optimizer.build(model.trainable_variables)
        checkpoint = StepCheckpoint(os.path.join(output_dir, "checkpoints", f"phase{phase}"), every=p.checkpoint_every)
        start = checkpoint.restore(model)
        history = LossHistory(os.path.join(output_dir, f"history_phase{phase}.csv"), start)
        initial = (
            evaluate_pretraining(model, files, seq_length, max_predictions, p.eval_instances) if start == 0 else None
        )
        seconds = 0.0
        if start < total_batches:
            stream = phase_stream(
                files, stats["instances"], seq_length, max_predictions, p.batch_size, total_batches, p.seed + phase
            ).skip(start)
            callbacks = [
                checkpoint,
                history,
                ProgressBar(total_batches, start, f"phase {phase} (seq {seq_length})"),
                keras.callbacks.TensorBoard(
                    os.path.join(output_dir, "tensorboard", f"phase{phase}"),
                    update_freq=max(1, p.checkpoint_every // 10),
                ),
            ]
            began = time.perf_counter()
            model.fit(
                stream, epochs=1, steps_per_epoch=total_batches - start, verbose=0, callbacks=callbacks, shuffle=False
            )
            seconds = time.perf_counter() - began
            checkpoint.save(model, total_batches)
        final = evaluate_pretraining(model, files, seq_length, max_predictions, p.eval_instances)
        metrics[phase] = {"initial": initial, "final": final}
        frame = history.frame()
        frame.insert(0, "phase", phase)
        histories.append(frame)
        finished = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        common = {
            "run_id": run_id,
            "finished_at": finished,
            "phase": phase,
            "model": p.model,
            "seq_length": seq_length,
            "max_predictions": max_predictions,
            "batch_size": p.batch_size,
            "learning_rate": p.learning_rate,
            "steps": steps,
            "instances": stats["instances"],
            "strategy": where["strategy"],
            "replicas": where["replicas"],
            "precision": where["precision"],
            "train_seconds": round(seconds, 3),
            "sequences_per_second": round((total_batches - start) * p.batch_size / seconds, 2) if seconds else "",
            "notebook": p.notebook,
            "output_dir": output_dir,
        }
        for step, values in ((0, initial), (steps, final)):
            for name, value in (values or {}).items():
                rows.append({**common, "step": step, "metric": name, "value": value})

    # ---- outputs ----
    model_dir = save_pretrained(pretrained.encoder, tokenizer, os.path.join(output_dir, "model"))
    save_google_release(model, tokenizer, os.path.join(output_dir, "google"))
    from workbench.files import write_text_atomic

    write_text_atomic(os.path.join(output_dir, "metrics.json"), json.dumps(metrics, indent=1) + "\n")
    append_rows(p.results_csv, rows, columns=PRETRAIN_COLUMNS)
    import pandas as pd

    return PretrainResult(run_id, output_dir, model_dir, metrics, pd.concat(histories, ignore_index=True))
