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
import json
import os
import shutil
import tempfile

import numpy as np

from workbench.training.distribution import restored_precision
from workbench.training.params import PretrainParams, validate_pretrain_params  # noqa: F401  (PretrainParams re-exported)

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
    "status",
    "error",
]


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
    # (sum of masked_lm_weights), not by the padded slot count. `phase_stream`
    # scales the weights of each global batch so that they sum to its slot count
    # (`batch_weights`), and the loss divides by the slot count: the same value,
    # also under R replicas, where Keras would divide each replica's share by
    # that replica's own weights and average (not the batch's loss).
    return {
        "mlm_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum_over_batch_size"),
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


def batch_weights(x, y, w):
    """(x, y, w) with the masked-LM weights of this global batch scaled to sum to its slot count
    (`pretraining_losses` divides by the slot count: the original's loss, sum(w * ce) / sum(w))."""
    import tensorflow as tf

    weights = w["mlm_logits"]
    scale = tf.math.divide_no_nan(tf.cast(tf.size(weights), weights.dtype), tf.reduce_sum(weights))
    return x, y, {**w, "mlm_logits": weights * scale}


# Records permuted together when a pretraining phase streams its shards: the whole of a small corpus, and
# blocks of 100,000 records of a large one (about the original `run_pretraining.py`'s order: shards are already
# shuffled when written, and its input function shuffled in a buffer of 100 records). 100,000 records of length
# 512 take a few hundred MB, as the shuffle buffer this replaces did.
SHUFFLE_BLOCK = 100_000


def phase_stream(files, instances, seq_length, max_predictions, batch_size, total_batches, seed):
    """Deterministic batches: epoch e is the records in a stateless shuffle keyed by (seed, e).

    `files` are shard paths, or a directory or glob of them on any filesystem
    TensorFlow reads (`gs://...` on Cloud TPU); records stream from the files in
    sorted order, `SHUFFLE_BLOCK` records at a time, never all in memory.
    """
    import tensorflow as tf

    from workbench.training.pretraining_data import list_shards, parse_example

    files = list_shards(files) if isinstance(files, (str, os.PathLike)) else sorted(files)
    records = tf.data.TFRecordDataset(files)
    epochs = -(-total_batches * batch_size // instances)
    seed = tf.constant(seed, tf.int64)

    # Each block of an epoch is permuted by a stateless shuffle keyed by (seed, epoch, block), so the order is a
    # function of (seed, step) alone: not of the global seed (`Dataset.shuffle` takes it in, and fails to trace
    # with a tensor seed when the global seed is 0), nor of how many iterators were made (a reshuffling
    # `shuffle` moves on with each, and `model.fit` under a strategy makes one more than the distributed loop).
    def epoch_records(epoch):
        def permuted(block_index, block):
            key = tf.stack([seed, epoch * 2**20 + block_index])
            order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(block, tf.int64)[0]), seed=key)
            return tf.data.Dataset.from_tensor_slices(tf.gather(block, order))

        return records.batch(SHUFFLE_BLOCK).enumerate().flat_map(permuted)

    stream = tf.data.Dataset.range(epochs).flat_map(epoch_records)
    from workbench.training.loop import without_autotune

    stream = stream.map(
        lambda r: parse_example(r, seq_length, max_predictions),
        num_parallel_calls=os.cpu_count() or 1,
        deterministic=True,
    )
    batches = stream.batch(batch_size, drop_remainder=True).take(total_batches)
    return without_autotune(batches.map(to_model_inputs).map(batch_weights))


def evaluate_pretraining(model, files, seq_length, max_predictions, count, batch_size=64):
    """The official metrics on the first `count` instances."""
    import keras
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
        # Every batch full size (a TPU compiles one shape): the last one is filled up with copies of its
        # first row, whose outputs are dropped.
        n = int(tf.shape(y["nsp_logits"])[0])
        x = {k: tf.concat([v, tf.repeat(v[:1], batch_size - n, axis=0)], 0) for k, v in x.items()}
        out = {k: v[:n] for k, v in model(x, training=False).items()}
        mlm = keras.ops.convert_to_numpy(out["mlm_logits"]).astype(np.float64)
        ids, weights = y["mlm_logits"].numpy(), w["mlm_logits"].numpy()
        log_probs = mlm - mlm.max(-1, keepdims=True)
        log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
        mlm_ce = -np.take_along_axis(log_probs, ids[..., None], -1)[..., 0]
        sums["mlm_correct"] += float(((mlm.argmax(-1) == ids) * weights).sum())
        sums["mlm_loss"] += float((mlm_ce * weights).sum())
        sums["mlm_weight"] += float(weights.sum())
        nsp = keras.ops.convert_to_numpy(out["nsp_logits"]).astype(np.float64)
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


# Parameters that cannot change a run's results (see finetune.BOOKKEEPING_PARAMETERS).
BOOKKEEPING_PARAMETERS = ("output_dir", "results_csv", "notebook", "run_id", "checkpoint_every", "steps_per_execution")


@dataclasses.dataclass
class Phase:
    """One phase of the recipe.

    Args:
        number: 1 or 2 (names its checkpoints, history and data directories).
        steps: optimizer steps.
        seq_length: tokens per sequence.
        max_predictions: masked positions per sequence.

    Example:
    ```python
    Phase(1, 900_000, 128, 20)  # the paper's first phase
    ```
    """

    number: int
    steps: int
    seq_length: int
    max_predictions: int


def default_run_id(p):
    """Same results-affecting parameters, same id (so a rerun resumes)."""
    from workbench.runs.record import model_name, run_id

    return run_id(f"pretrain-{model_name(p.model)}-s{p.seed}", dataclasses.asdict(p), ignore=BOOKKEEPING_PARAMETERS)


@restored_precision()
def pretrain(**params):
    """Run the two-phase pretraining recipe; see `PretrainParams`."""
    p = validate_pretrain_params(params)
    import keras

    from workbench.checkpoints import GOOGLE_FILES, PRESET_FILES
    from workbench.files import check_replaceable_directory
    from workbench.runs.record import claim_run_dir, release_run_dir
    from workbench.runs.tables import append_rows, check_writable_table
    from workbench.training.distribution import describe_strategy, get_strategy, is_chief

    run_id = p.run_id or default_run_id(p)
    output_dir = p.output_dir or os.path.join("results", "pretrain_runs", run_id)
    keras.utils.set_random_seed(p.seed)
    strategy = get_strategy(p.strategy, p.precision)
    where = describe_strategy(strategy)
    # In a multi-worker run every worker trains; only the chief writes (docs/clusters.md). The others
    # make their own copy of the vocabulary and data (seeded: the same) in a scratch directory.
    chief = is_chief(strategy)
    scratch = None if chief else tempfile.mkdtemp(prefix="workbench-worker-")
    if chief:
        check_writable_table(p.results_csv, PRETRAIN_COLUMNS)
        claim_run_dir(output_dir, dataclasses.asdict(p), ignore=BOOKKEEPING_PARAMETERS)
        # Refused at the end, after training, otherwise.
        check_replaceable_directory(os.path.join(output_dir, "model"), PRESET_FILES)
        check_replaceable_directory(os.path.join(output_dir, "google"), GOOGLE_FILES)
    try:
        pretrained, model = _build_model(p, scratch or output_dir, strategy)
        metrics, histories, rows = {}, [], []
        for phase in _phases(p, pretrained.encoder.max_sequence_length):
            files, stats = _phase_data(p, phase, scratch or output_dir, pretrained.tokenizer)
            row = _row_fields(p, phase, run_id, output_dir, where, stats["instances"])
            initial, final, outcome = _train_phase(model, p, phase, files, stats, output_dir, strategy, row, chief)
            metrics[phase.number] = {"initial": initial, "final": final}
            histories.append(outcome.history.assign(phase=phase.number)[["phase", *outcome.history.columns]])
            row.update(
                train_seconds=round(outcome.seconds, 3), sequences_per_second=outcome.examples_per_second(p.batch_size)
            )
            rows += _result_rows(row, phase, initial, final)
    except BaseException:
        if chief:  # stopped before training (a missing corpus, a too long sequence): the rerun may use output_dir
            release_run_dir(output_dir, also=("vocab.txt",) if p.vocab is None else ())  # a vocab it learned
        raise
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    model_dir = os.path.join(output_dir, "model")
    if chief:
        model_dir = _save_outputs(model, pretrained, output_dir, metrics)
        append_rows(p.results_csv, rows, columns=PRETRAIN_COLUMNS)
    import pandas as pd

    return PretrainResult(run_id, output_dir, model_dir, metrics, pd.concat(histories, ignore_index=True))


def _build_model(p, output_dir, strategy):
    """(pretrained, BertPretrainer): a size name starts from random weights
    (with a vocabulary learned from the corpus unless `vocab` is given), a
    model directory or preset continues from its weights and heads."""
    from workbench.checkpoints.load import apply_head_weights, is_size_name, load_pretrained
    from workbench.models.heads import BertPretrainer
    from workbench.text.tokenizer import build_vocab, save_vocab
    from workbench.training.pretraining_data import read_documents

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
    return pretrained, model


def _phases(p, max_sequence_length):
    phases = [Phase(1, p.phase1_steps, p.phase1_seq_length, p.phase1_max_predictions)]
    if p.phase2_steps:
        phases.append(Phase(2, p.phase2_steps, p.phase2_seq_length, p.phase2_max_predictions))
    for phase in phases:
        if phase.seq_length > max_sequence_length:
            raise ValueError(
                f"Parameter 'phase{phase.number}_seq_length': {phase.seq_length} exceeds the model's "
                f"{max_sequence_length} positions"
            )
    return phases


def _phase_data(p, phase, output_dir, tokenizer):
    """(TFRecord files, stats) of the phase's data: shards made earlier (`phase1_data`,
    `phase2_data`: a directory or glob on any filesystem TensorFlow reads, streamed
    from there), or created from the corpus once under `output_dir` (local or a URL;
    a rerun reuses them)."""
    from workbench.training.params import ParameterError
    from workbench.training.pretraining_data import create_pretraining_data, list_shards

    given = getattr(p, f"phase{phase.number}_data")
    if given:
        files, stats = list_shards(given), _shard_stats(given)
        made = stats.get("options", {})
        expected = {
            f"phase{phase.number}_seq_length": ("max_seq_length", phase.seq_length),
            f"phase{phase.number}_max_predictions": ("max_predictions_per_seq", phase.max_predictions),
            "lowercase": ("do_lower_case", tokenizer.do_lower_case),
        }
        for parameter, (option, value) in expected.items():
            if option in made and made[option] != value:
                raise ParameterError(
                    f"Parameter {parameter!r} is {value!r} but the shards in {given} were made with "
                    f"{option}={made[option]!r}; make them again or set {parameter} to match"
                )
        return files, stats
    import tensorflow as tf

    # Through tf.io.gfile: output_dir may be a URL (gs://), which create_pretraining_data writes too.
    data_dir = os.path.join(output_dir, "data", f"phase{phase.number}")
    if not tf.io.gfile.exists(os.path.join(data_dir, "stats.json")):
        options = p.data_options(phase.number, do_lower_case=tokenizer.do_lower_case)
        create_pretraining_data(p.corpus, data_dir, tokenizer.get_vocabulary(), options, shards=p.shards)
    return list_shards(data_dir), _shard_stats(data_dir)


def _shard_stats(location):
    """The `stats.json` written beside shards (in the directory, or the glob's directory)."""
    import tensorflow as tf

    location = os.fspath(location).rstrip("/")
    directory = location if tf.io.gfile.isdir(location) else os.path.dirname(location)
    path = os.path.join(directory, "stats.json")
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path}: no stats.json beside the shards {location} (pretraining-data writes one)")
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def _train_phase(model, p, phase, files, stats, output_dir, strategy, row, chief=True):
    """Compile for the phase (fresh warmup), resume it, score the official
    metrics before (on a fresh start) and after: (initial, final, outcome).
    A diverged phase is recorded in the results table and re-raised (the
    chief writes; every worker of a multi-worker run trains and scores)."""
    from workbench.files import read_json, write_text_atomic
    from workbench.models.optimizer import create_optimizer
    from workbench.runs.record import utc_now
    from workbench.runs.tables import append_rows
    from workbench.training.distribution import auto_jit_compile, auto_steps_per_execution
    from workbench.training.loop import ResumableTraining, TrainingDiverged, build_training_state

    total_batches = phase.steps * p.gradient_accumulation
    steps_per_execution = auto_steps_per_execution(p.steps_per_execution, strategy, p.checkpoint_every)
    with strategy.scope():
        model.compile(
            optimizer=create_optimizer(
                p.learning_rate, phase.steps, min(p.warmup_steps, phase.steps), p.weight_decay, p.gradient_accumulation
            ),
            loss=pretraining_losses(),
            jit_compile=auto_jit_compile("auto", strategy),
            steps_per_execution=steps_per_execution,
        )
        sample = {k: np.zeros((1, phase.seq_length), "int32") for k in ("token_ids", "segment_ids", "padding_mask")}
        build_training_state(model, {**sample, "mask_positions": np.zeros((1, phase.max_predictions), "int32")})
    training = ResumableTraining(
        model,
        total_batches,
        os.path.join(output_dir, "checkpoints", f"phase{phase.number}"),
        os.path.join(output_dir, f"history_phase{phase.number}.csv"),
        p.checkpoint_every,
        tensorboard_dir=os.path.join(output_dir, "tensorboard", f"phase{phase.number}"),
        description=f"phase {phase.number} (seq {phase.seq_length})",
        strategy=strategy,
        steps_per_execution=steps_per_execution,
        chief=chief,
    )
    seq_length, max_predictions = phase.seq_length, phase.max_predictions
    # The step-0 metrics are kept beside the checkpoints, so a phase resumed after a kill
    # still reports where it started (they cannot be measured again from a later step).
    initial_path = os.path.join(output_dir, f"initial_phase{phase.number}.json")
    if training.start_step == 0:
        initial = evaluate_pretraining(model, files, seq_length, max_predictions, p.eval_instances)
        if chief:
            write_text_atomic(initial_path, json.dumps(initial) + "\n")
    else:
        initial = read_json(initial_path) if os.path.exists(initial_path) else None
    stream = phase_stream(
        files, stats["instances"], seq_length, max_predictions, p.batch_size, total_batches, p.seed + phase.number
    )
    try:
        outcome = training.fit(stream)
    except TrainingDiverged as e:
        if chief:
            failed = {**row, "finished_at": utc_now(), "step": e.step, "status": "diverged", "error": str(e)}
            append_rows(p.results_csv, [failed], columns=PRETRAIN_COLUMNS)
        raise
    final = evaluate_pretraining(model, files, seq_length, max_predictions, p.eval_instances)
    return initial, final, outcome


def _row_fields(p, phase, run_id, output_dir, where, instances):
    """The columns a phase's rows in the results table share."""
    return {
        "run_id": run_id,
        "status": "ok",
        "phase": phase.number,
        "model": p.model,
        "seq_length": phase.seq_length,
        "max_predictions": phase.max_predictions,
        "batch_size": p.batch_size,
        "learning_rate": p.learning_rate,
        "steps": phase.steps,
        "instances": instances,
        "strategy": where["strategy"],
        "replicas": where["replicas"],
        "precision": where["precision"],
        "notebook": p.notebook,
        "output_dir": output_dir,
        "error": "",
    }


def _result_rows(row, phase, initial, final):
    """One row per official metric, before (step 0, a fresh start only) and after the phase."""
    from workbench.runs.record import utc_now

    row = {**row, "finished_at": utc_now()}
    return [
        {**row, "step": step, "metric": name, "value": value}
        for step, values in ((0, initial), (phase.steps, final))
        for name, value in (values or {}).items()
    ]


def _save_outputs(model, pretrained, output_dir, metrics):
    """The encoder as a keras-hub preset (returned), the Google layout with the
    heads, and metrics.json."""
    from workbench.checkpoints.google import save_google_release
    from workbench.checkpoints.load import save_pretrained
    from workbench.files import write_text_atomic

    model_dir = save_pretrained(pretrained.encoder, pretrained.tokenizer, os.path.join(output_dir, "model"))
    save_google_release(model, pretrained.tokenizer, os.path.join(output_dir, "google"))
    write_text_atomic(os.path.join(output_dir, "metrics.json"), json.dumps(metrics, indent=1) + "\n")
    return model_dir
