"""Fine-tune BERT on any benchmark: the loop every fine-tuning notebook calls.

    result = finetune(task="mrpc", model="base", vocab="vocab.txt")

One run: validate the parameters, load the task's splits, featurize, build the
task head on the encoder under the chosen strategy, train with BERT's optimizer
(checkpointing every `checkpoint_every` steps; rerunning with the same
`output_dir` resumes from the last checkpoint on exactly the same data order),
evaluate on the dev splits, write dev predictions and leaderboard files for the
test splits, and append one row per (split, metric) to `results/finetune.csv`.
"""

import dataclasses
import datetime
import hashlib
import json
import math
import os
import shutil
import time

from workbench.training.distribution import restored_precision
from workbench.training.params import validate_params


@dataclasses.dataclass
class FinetuneResult:
    run_id: str
    output_dir: str
    metrics: dict  # {split: {metric: value}}
    history: object  # pandas DataFrame: step, loss, learning_rate
    rows: list  # what was appended to the results table
    prediction_files: list


def default_run_id(p):
    """Same parameters, same id (so a rerun resumes); readable prefix."""
    keys = {
        k: v
        for k, v in dataclasses.asdict(p).items()
        if k not in ("output_dir", "notebook", "results_csv", "run_id", "feature_cache")
    }
    digest = hashlib.sha1(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()[:8]
    model = os.path.basename(os.path.normpath(str(p.model)))
    return f"{p.task}-{model}-s{p.seed}-{digest}"


@restored_precision()
def finetune(**params):
    """Run one fine-tuning experiment; see `FinetuneParams` for the parameters."""
    p = validate_params(params)
    import keras

    from workbench.checkpoints.load import apply_head_weights, load_pretrained, save_pretrained
    from workbench.models.optimizer import create_optimizer
    from workbench.runs.tables import append_rows
    from workbench.tasks.registry import get_task
    from workbench.training.distribution import describe_strategy, get_strategy
    from workbench.training.loop import LossHistory, ProgressBar, StepCheckpoint, training_stream

    task = get_task(p.task, **(p.task_options or {}))
    hp = task.hparams
    max_seq_length = p.max_seq_length or hp.max_seq_length
    batch_size = p.batch_size or hp.batch_size
    learning_rate = p.learning_rate or hp.learning_rate
    epochs = p.epochs or hp.epochs
    warmup = hp.warmup_proportion if p.warmup_proportion is None else p.warmup_proportion
    run_id = p.run_id or default_run_id(p)
    output_dir = p.output_dir or os.path.join("results", "runs", run_id)
    os.makedirs(output_dir, exist_ok=True)

    keras.utils.set_random_seed(p.seed)
    strategy = get_strategy(p.strategy, p.precision)
    where = describe_strategy(strategy)

    # ---- data ----
    train = task.load(p.data_dir, task.train_split)[: p.max_train_examples]
    evaluation = {}
    for split in (*task.eval_splits, *task.test_splits):
        try:
            evaluation[split] = task.load(p.data_dir, split)[: p.max_eval_examples]
        except FileNotFoundError as e:
            if split in task.test_splits or split in getattr(task, "optional_splits", ()):
                print(f"skipping {split}: {e}")
                continue
            raise

    # ---- model ----
    with strategy.scope():
        pretrained = load_pretrained(p.model, vocab=p.vocab, lowercase=p.lowercase)
        model = task.build_model(pretrained.encoder)
        if pretrained.head_weights and apply_head_weights(model, pretrained.head_weights):
            print(f"loaded the checkpoint's {type(model).__name__} head weights")
    tokenizer = pretrained.tokenizer
    if max_seq_length > pretrained.encoder.max_sequence_length:
        raise ValueError(
            f"Parameter 'max_seq_length' ({max_seq_length}) exceeds the model's "
            f"{pretrained.encoder.max_sequence_length} positions"
        )
    from workbench.training.feature_cache import cached_training_features

    train_features = cached_training_features(
        p.feature_cache,
        task,
        train,
        tokenizer,
        max_seq_length,
        lambda: task.featurize(train, tokenizer, max_seq_length, training=True),
        options=p.task_options,
    )
    if len(train_features) == 0:
        raise ValueError(f"{p.task}: no training examples in {p.data_dir}")
    batches_per_epoch = math.ceil(len(train_features) / batch_size)
    total_batches = max(p.gradient_accumulation, math.ceil(epochs * batches_per_epoch))
    total_batches -= total_batches % p.gradient_accumulation
    optimizer_steps = total_batches // p.gradient_accumulation
    with strategy.scope():
        model.compile(
            optimizer=create_optimizer(
                learning_rate,
                optimizer_steps,
                int(warmup * optimizer_steps),
                gradient_accumulation_steps=p.gradient_accumulation,
            ),
            loss=task.loss(),
            loss_weights=getattr(task, "loss_weights", None),
            jit_compile=p.jit_compile,
        )
        _build(model, train_features)

    # ---- train (resumable) ----
    checkpoint = StepCheckpoint(os.path.join(output_dir, "checkpoints"), every=p.checkpoint_every)
    start_batch = checkpoint.restore(model)
    history = LossHistory(os.path.join(output_dir, "history.csv"), start_batch)
    train_seconds = 0.0
    if start_batch < total_batches:
        stream = training_stream(train_features, batch_size, total_batches, p.seed).skip(start_batch)
        callbacks = [
            checkpoint,
            history,
            ProgressBar(total_batches, start_batch, f"{p.task} train"),
            keras.callbacks.TensorBoard(
                os.path.join(output_dir, "tensorboard"), update_freq=max(1, p.checkpoint_every // 10)
            ),
        ]
        started = time.perf_counter()
        model.fit(
            stream, epochs=1, steps_per_epoch=total_batches - start_batch, verbose=0, callbacks=callbacks, shuffle=False
        )
        train_seconds = time.perf_counter() - started
        checkpoint.save(model, total_batches)
    trained_batches = total_batches - start_batch

    # ---- evaluate and predict ----
    metrics, prediction_files = {}, []
    prediction_dir = os.path.join(output_dir, "predictions")
    for split, examples in evaluation.items():
        if not examples:
            continue
        features = task.featurize(examples, tokenizer, max_seq_length)
        predictions = task.predict(model, features, batch_size=max(batch_size, 32), examples=examples)
        prediction_files += task.write_predictions(examples, predictions, prediction_dir, split)
        if task.has_labels(split):
            metrics[split] = task.score(examples, predictions, split)
    if p.save_model:
        save_pretrained(pretrained.encoder, tokenizer, os.path.join(output_dir, "model"))
        from workbench.files import atomic_path

        with atomic_path(os.path.join(output_dir, "task_model.keras")) as tmp:
            model.save(tmp + ".keras")
            os.replace(tmp + ".keras", tmp)

    # ---- record ----
    finished = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    common = {
        "run_id": run_id,
        "finished_at": finished,
        "status": "ok",
        "task": p.task,
        "model": str(p.model),
        "init": pretrained.init,
        "max_seq_length": max_seq_length,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "epochs": epochs,
        "warmup_proportion": warmup,
        "gradient_accumulation": p.gradient_accumulation,
        "seed": p.seed,
        "strategy": where["strategy"],
        "replicas": where["replicas"],
        "precision": where["precision"],
        "train_examples": len(train),
        "train_steps": optimizer_steps,
        "train_seconds": round(train_seconds, 3),
        "examples_per_second": round(trained_batches * batch_size / train_seconds, 2) if train_seconds else "",
        "notebook": p.notebook,
        "output_dir": output_dir,
        "error": "",
    }
    rows = [
        {**common, "split": split, "metric": name, "value": value}
        for split, values in metrics.items()
        for name, value in values.items()
    ]
    if not rows:  # a task with nothing to score (no labelled split) still records that it ran
        rows = [{**common, "split": "", "metric": "predictions_written", "value": len(prediction_files)}]
    from workbench.files import write_text_atomic

    write_text_atomic(os.path.join(output_dir, "metrics.json"), json.dumps(metrics, indent=1) + "\n")
    append_rows(p.results_csv, rows)
    shutil.rmtree(os.path.join(output_dir, "checkpoints"), ignore_errors=True)
    return FinetuneResult(run_id, output_dir, metrics, history.frame(), rows, prediction_files)


def _build(model, features):
    """Create all variables (model and optimizer) before a checkpoint is restored."""
    sample = {k: v[:1] for k, v in features.inputs.items()}
    model(sample)
    model.optimizer.build(model.trainable_variables)
