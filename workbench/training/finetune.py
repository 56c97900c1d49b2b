"""Fine-tune BERT on any benchmark: the loop every fine-tuning notebook calls.

    result = finetune(task="mrpc", model="base", vocab="vocab.txt")

One run: validate the parameters, load the task's splits, featurize, build the
task head on the encoder under the chosen strategy, train with BERT's optimizer
(checkpointing every `checkpoint_every` steps; rerunning with the same
`output_dir` resumes from the last checkpoint on exactly the same data order),
evaluate on the dev splits, write dev predictions and leaderboard files for the
test splits, and append one row per (split, metric) to `results/finetune.csv`.
A run resumes only with the parameters it began with (`output_dir/parameters.json`),
and a NaN or infinite loss stops it, recorded with status `diverged`
(docs/run-path.md).
"""

import dataclasses
import json
import math
import os
import shutil

from workbench.training.distribution import restored_precision
from workbench.training.params import validate_params

# Parameters that cannot change a run's results: where results go, how often to
# checkpoint, what to keep. The run id leaves them out, and a run may resume
# with other values of them (every other parameter must be as the run began).
BOOKKEEPING_PARAMETERS = (
    "output_dir",
    "results_csv",
    "notebook",
    "run_id",
    "feature_cache",
    "save_model",
    "checkpoint_every",
    "steps_per_execution",
)


@dataclasses.dataclass
class FinetuneResult:
    run_id: str
    output_dir: str
    metrics: dict  # {split: {metric: value}}
    history: object  # pandas DataFrame: step, loss, learning_rate
    rows: list  # what was appended to the results table
    prediction_files: list
    data_counts: dict = dataclasses.field(default_factory=dict)  # what loading and featurization left out


@dataclasses.dataclass
class Recipe:
    """The hyperparameters a run trains with: the given ones, and the task's
    paper defaults for those left None.

    Args:
        max_seq_length: tokens per input.
        batch_size: global batch size.
        learning_rate: peak learning rate.
        epochs: passes over the training set.
        warmup_proportion: share of optimizer steps with linear warmup.

    Example:
    ```python
    recipe = Recipe.of(validate_params({"task": "mrpc"}), get_task("mrpc"))  # batch 32, lr 2e-5, 3 epochs
    ```
    """

    max_seq_length: int
    batch_size: int
    learning_rate: float
    epochs: float
    warmup_proportion: float

    @classmethod
    def of(cls, p, task):
        hp = task.hparams
        return cls(
            max_seq_length=p.max_seq_length or hp.max_seq_length,
            batch_size=p.batch_size or hp.batch_size,
            learning_rate=p.learning_rate or hp.learning_rate,
            epochs=p.epochs or hp.epochs,
            warmup_proportion=hp.warmup_proportion if p.warmup_proportion is None else p.warmup_proportion,
        )

    def steps(self, examples, gradient_accumulation):
        """(batches, optimizer steps) for `examples` training features: whole
        accumulation groups, at least one."""
        batches = max(gradient_accumulation, math.ceil(self.epochs * math.ceil(examples / self.batch_size)))
        batches -= batches % gradient_accumulation
        return batches, batches // gradient_accumulation


def default_run_id(p):
    """Same results-affecting parameters, same id (so a rerun resumes); readable prefix."""
    from workbench.runs.record import model_name, run_id

    return run_id(f"{p.task}-{model_name(p.model)}-s{p.seed}", dataclasses.asdict(p), ignore=BOOKKEEPING_PARAMETERS)


@restored_precision()
def finetune(**params):
    """Run one fine-tuning experiment; see `FinetuneParams` for the parameters."""
    p = validate_params(params)
    import keras

    from workbench.checkpoints import PRESET_FILES
    from workbench.files import check_replaceable_directory
    from workbench.runs.record import claim_run_dir, release_run_dir, utc_now
    from workbench.runs.tables import append_rows, check_writable_table
    from workbench.tasks.registry import get_task
    from workbench.training.distribution import auto_steps_per_execution, describe_strategy, get_strategy, is_chief
    from workbench.training.loop import ResumableTraining, TrainingDiverged, training_stream

    task = get_task(p.task, **(p.task_options or {}))
    recipe = Recipe.of(p, task)
    run_id = p.run_id or default_run_id(p)
    output_dir = p.output_dir or os.path.join("results", "runs", run_id)
    keras.utils.set_random_seed(p.seed)
    strategy = get_strategy(p.strategy, p.precision)
    # In a multi-worker run every worker trains and evaluates; only the chief writes (docs/clusters.md).
    chief = is_chief(strategy)
    if chief:
        check_writable_table(p.results_csv)
        claim_run_dir(output_dir, dataclasses.asdict(p), ignore=BOOKKEEPING_PARAMETERS)
        if p.save_model:  # refused at the end, after training, otherwise
            check_replaceable_directory(os.path.join(output_dir, "model"), PRESET_FILES)
    try:
        steps_per_execution = auto_steps_per_execution(p.steps_per_execution, strategy, p.checkpoint_every)
        train, evaluation = _load_splits(task, p)
        pretrained, model = _build_model(task, p, strategy, recipe.max_seq_length)
        features = _training_features(task, p, train, pretrained.tokenizer, recipe.max_seq_length, chief)
        total_batches, optimizer_steps = recipe.steps(len(features), p.gradient_accumulation)
        _compile(model, task, p, recipe, optimizer_steps, features, strategy, steps_per_execution)
    except BaseException:
        if chief:  # e.g. a missing vocabulary: the corrected rerun may use this output_dir
            release_run_dir(output_dir)
        raise

    where = describe_strategy(strategy)
    row = _row_fields(p, recipe, run_id, output_dir, pretrained.init, where, len(train), optimizer_steps)
    training = ResumableTraining(
        model,
        total_batches,
        os.path.join(output_dir, "checkpoints"),
        os.path.join(output_dir, "history.csv"),
        p.checkpoint_every,
        tensorboard_dir=os.path.join(output_dir, "tensorboard"),
        description=f"{p.task} train",
        strategy=strategy,
        steps_per_execution=steps_per_execution,
        chief=chief,
    )
    try:
        outcome = training.fit(training_stream(features, recipe.batch_size, total_batches, p.seed))
    except TrainingDiverged as e:
        if chief:
            append_rows(p.results_csv, [{**row, "finished_at": utc_now(), "status": "diverged", "error": str(e)}])
        raise

    metrics, prediction_files, notes = _evaluate(
        task, model, pretrained.tokenizer, evaluation, recipe, output_dir if chief else None
    )
    row.update(
        train_seconds=round(outcome.seconds, 3), examples_per_second=outcome.examples_per_second(recipe.batch_size)
    )
    rows = _result_rows(row, metrics, prediction_files, notes)
    if not chief:  # the same metrics as the chief's; nothing written
        return FinetuneResult(run_id, output_dir, metrics, outcome.history, [], [], task.data_counts())
    data_counts = _data_counts(task, features, output_dir)
    if p.save_model:
        _save_model(pretrained, model, output_dir)
    from workbench.files import write_text_atomic

    write_text_atomic(os.path.join(output_dir, "metrics.json"), json.dumps(metrics, indent=1) + "\n")
    from workbench.runs.hparams import HPARAM_COLUMNS, log_hparams

    log_hparams(output_dir, {k: rows[0][k] for k in HPARAM_COLUMNS if k in rows[0]}, metrics)
    append_rows(p.results_csv, rows)
    shutil.rmtree(os.path.join(output_dir, "checkpoints"), ignore_errors=True)
    return FinetuneResult(run_id, output_dir, metrics, outcome.history, rows, prediction_files, data_counts)


def _data_counts(task, features, output_dir):
    """What loading and featurization left out (`Task.data_counts`, and the training
    features' own counts), printed and kept in the run directory as `data_counts.json`."""
    from workbench.files import write_text_atomic

    counts = task.data_counts()
    if features.counts:
        counts["train_features"] = dict(features.counts)
    for split, values in counts.items():
        print(f"{task.name} {split}: " + ", ".join(f"{k} {v}" for k, v in values.items()))
    write_text_atomic(os.path.join(output_dir, "data_counts.json"), json.dumps(counts, indent=1) + "\n")
    return counts


def _load_splits(task, p):
    """The training examples and {split: examples} of every eval and test split
    (a missing test or optional split is skipped with a note)."""
    train = task.require_training_examples(task.load(p.data_dir, task.train_split), p.data_dir)
    train = train[: p.max_train_examples]
    evaluation = {}
    for split in (*task.eval_splits, *task.test_splits):
        try:
            evaluation[split] = task.load(p.data_dir, split)[: p.max_eval_examples]
        except FileNotFoundError as e:
            if split in task.test_splits or split in getattr(task, "optional_splits", ()):
                print(f"skipping {split}: {e}")
                continue
            raise
    return train, evaluation


def _build_model(task, p, strategy, max_seq_length):
    """(pretrained, task model): the encoder loaded from `p.model` with the
    task's head, and the checkpoint's head weights where they fit."""
    from workbench.checkpoints.load import apply_head_weights, load_pretrained

    with strategy.scope():
        pretrained = load_pretrained(p.model, vocab=p.vocab, lowercase=p.lowercase)
        model = task.build_model(pretrained.encoder)
        if pretrained.head_weights and apply_head_weights(model, pretrained.head_weights):
            print(f"loaded the checkpoint's {type(model).__name__} head weights")
    if max_seq_length > pretrained.encoder.max_sequence_length:
        raise ValueError(
            f"Parameter 'max_seq_length' ({max_seq_length}) exceeds the model's "
            f"{pretrained.encoder.max_sequence_length} positions"
        )
    return pretrained, model


def _training_features(task, p, train, tokenizer, max_seq_length, chief=True):
    """The featurized training split, through the feature cache (the chief's: other
    workers of a multi-worker run featurize for themselves and write nothing)."""
    from workbench.training.feature_cache import cached_training_features

    features = cached_training_features(
        p.feature_cache if chief else None,
        task,
        train,
        tokenizer,
        max_seq_length,
        lambda: task.featurize(train, tokenizer, max_seq_length, training=True),
        options=p.task_options,
    )
    if len(features) == 0:
        raise ValueError(f"{p.task}: no training examples in {p.data_dir}")
    return features


def _compile(model, task, p, recipe, optimizer_steps, features, strategy, steps_per_execution=1):
    """Compile with BERT's optimizer and create every variable, so that a
    checkpoint can be restored."""
    from workbench.models.optimizer import create_optimizer
    from workbench.training.distribution import auto_jit_compile
    from workbench.training.loop import build_training_state

    with strategy.scope():
        model.compile(
            optimizer=create_optimizer(
                recipe.learning_rate,
                optimizer_steps,
                int(recipe.warmup_proportion * optimizer_steps),
                gradient_accumulation_steps=p.gradient_accumulation,
            ),
            loss=task.loss(),
            loss_weights=getattr(task, "loss_weights", None),
            jit_compile=auto_jit_compile(p.jit_compile, strategy),
            steps_per_execution=steps_per_execution,
        )
        build_training_state(model, {k: v[:1] for k, v in features.inputs.items()})


def _evaluate(task, model, tokenizer, evaluation, recipe, output_dir):
    """Predict every split, write the prediction (and leaderboard) files and
    score the labelled splits: ({split: {metric: value}}, files written,
    {split: {metric: note}} for undefined scores). `output_dir=None` writes
    nothing (the other workers of a multi-worker run)."""
    metrics, prediction_files, notes = {}, [], {}
    for split, examples in evaluation.items():
        if not examples:
            continue
        features = task.featurize(examples, tokenizer, recipe.max_seq_length)
        predictions = task.predict(model, features, batch_size=max(recipe.batch_size, 32), examples=examples)
        if output_dir is not None:
            prediction_dir = os.path.join(output_dir, "predictions")
            prediction_files += task.write_predictions(examples, predictions, prediction_dir, split)
        if task.has_labels(split):
            metrics[split] = task.score(examples, predictions, split)
            notes[split] = task.score_notes(examples, predictions, split)
    return metrics, prediction_files, notes


def _save_model(pretrained, model, output_dir):
    """The encoder as a keras-hub preset (`model/`) and the whole task model (`task_model.keras`)."""
    from workbench.checkpoints.load import save_pretrained
    from workbench.files import atomic_path

    save_pretrained(pretrained.encoder, pretrained.tokenizer, os.path.join(output_dir, "model"))
    with atomic_path(os.path.join(output_dir, "task_model.keras")) as tmp:
        model.save(tmp + ".keras")
        os.replace(tmp + ".keras", tmp)


def _row_fields(p, recipe, run_id, output_dir, init, where, train_examples, optimizer_steps):
    """The columns of the run's rows in the results table that every row shares."""
    return {
        "run_id": run_id,
        "status": "ok",
        "task": p.task,
        "model": str(p.model),
        "init": init,
        "max_seq_length": recipe.max_seq_length,
        "batch_size": recipe.batch_size,
        "learning_rate": recipe.learning_rate,
        "epochs": recipe.epochs,
        "warmup_proportion": recipe.warmup_proportion,
        "gradient_accumulation": p.gradient_accumulation,
        "seed": p.seed,
        "strategy": where["strategy"],
        "replicas": where["replicas"],
        "precision": where["precision"],
        "train_examples": train_examples,
        "train_steps": optimizer_steps,
        "train_seconds": "",
        "examples_per_second": "",
        "notebook": p.notebook,
        "output_dir": output_dir,
        "error": "",
    }


def _result_rows(row, metrics, prediction_files, notes=None):
    """One row per (split, metric), with the task's note where a score is undefined
    (STS-B's correlations of constant predictions are NaN, said in `note`); a task
    with nothing to score (no labelled split) still records that it ran."""
    from workbench.runs.record import utc_now

    row = {**row, "finished_at": utc_now()}
    rows = [
        {**row, "split": split, "metric": name, "value": value, "note": (notes or {}).get(split, {}).get(name, "")}
        for split, values in metrics.items()
        for name, value in values.items()
    ]
    return rows or [{**row, "split": "", "metric": "predictions_written", "value": len(prediction_files)}]
