"""The one training loop of fine-tuning and pretraining: a deterministic data
stream, and `ResumableTraining`, which restores the newest step checkpoint,
trains to the end with checkpoints, per-step losses and a progress bar, and
stops at the first non-finite loss.

Resuming is exact: the data stream is a pure function of (seed, step), the
checkpoint holds the model weights, the optimizer state and every dropout
layer's random-number state, so a run killed at any point and restarted ends
with the same weights as one that never stopped (on CPU, where kernels are
deterministic).
"""

import csv
import dataclasses
import json
import math
import os
import shutil
import tempfile
import time

import keras
import tensorflow as tf

from workbench.files import write_text_atomic

# tf.data's autotuner re-plans the pipeline from a background thread
# (ModelThread in TensorFlow's model_dataset_op.cc) that sleeps in doubling
# intervals, 10 ms, 20 ms, ... 5.12 s, 10.24 s, up to 60 s, and destroying the
# iterator at the end of `fit()` waited for that sleep: short runs returned
# 1.0-5.1 s after their last step in 5 of 8 tries (the late returns, clustered
# near multiples of 10 s, reported in issue #8).
# Our pipelines read in-memory arrays or parse fixed-size records, so a fixed
# prefetch depth and parallelism do as well, and nothing waits at the end.
PREFETCH_BATCHES = 4


def without_autotune(dataset, prefetch=PREFETCH_BATCHES):
    """`dataset` prefetched `prefetch` batches deep, with tf.data autotuning off."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(prefetch).with_options(options)


def training_stream(features, batch_size, total_batches, seed):
    """`total_batches` full batches: epoch after epoch of the features, each
    epoch in its own seeded order. Position k of the stream depends only on
    (seed, k), which is what makes skipping to a checkpoint exact."""
    n = len(features)
    arrays = tf.nest.map_structure(tf.convert_to_tensor, (features.inputs, features.labels))
    epochs = -(-total_batches * batch_size // n)
    # Stateless shuffles keyed by (seed, epoch): no op-seed bookkeeping, so any
    # seed (0 included) and any global seed give the same order.
    order = tf.data.Dataset.range(epochs).flat_map(
        lambda epoch: tf.data.Dataset.from_tensor_slices(
            tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
            )
        )
    )
    batches = order.batch(batch_size, drop_remainder=True).take(total_batches)
    return without_autotune(batches.map(lambda rows: tf.nest.map_structure(lambda a: tf.gather(a, rows), arrays)))


def build_training_state(model, sample):
    """Create every variable of `model` and of its optimizer by running
    `sample` through it, so that a checkpoint can be restored into them."""
    model(sample)
    model.optimizer.build(model.trainable_variables)


class TrainingDiverged(RuntimeError):
    """The loss (or a weight) became NaN or infinite: training stopped there.

    Nothing of the failed step was saved: the newest checkpoint, named by
    `checkpoint`, is the last good state (None when the run had not written one).

    Args:
        step: the step (batch number, counted from 1 over the whole run) whose loss was not finite.
        value: what was found, e.g. `"loss nan"`.
        checkpoint: directory of the last good checkpoint, or None.
        checkpoint_step: the step that checkpoint holds (0 if none).

    Example:
    ```python
    try:
        training.fit(stream)
    except TrainingDiverged as e:
        print(e.step, e.checkpoint)  # where it failed, what to inspect
    ```
    """

    def __init__(self, step, value, checkpoint, checkpoint_step):
        self.step, self.value, self.checkpoint, self.checkpoint_step = step, value, checkpoint, checkpoint_step
        last = (
            f"last good checkpoint: {checkpoint} (step {checkpoint_step})"
            if checkpoint
            else "no checkpoint had been written yet"
        )
        super().__init__(
            f"{value} at step {step}: training stopped, {last}; nothing after it was written. "
            "A smaller learning_rate (or float32 precision) may help; a run with other parameters "
            "needs another output_dir."
        )


def _random_state_variables(model):
    """The state of every SeedGenerator (dropout masks) in the model."""
    return [v for v in model.variables if "seed_generator" in v.path]


def _all_finite(model):
    return all(
        bool(keras.ops.all(keras.ops.isfinite(v)))
        for v in model.weights
        if "float" in keras.backend.standardize_dtype(v.dtype)
    )


def _write_checkpoint(model, step, directory):
    model.save_weights(os.path.join(directory, "model.weights.h5"))
    state = {"step": step, "random_state": [v.numpy().tolist() for v in _random_state_variables(model)]}
    write_text_atomic(os.path.join(directory, "state.json"), json.dumps(state))


class StepCheckpoint(keras.callbacks.Callback):
    """Saves the training state every `every` steps; `restore` before `fit`.

    Each checkpoint is a directory `step-<n>/` written through a temporary name;
    `latest` names the newest complete one, so a kill mid-save loses nothing.
    A step whose loss is not finite, or weights that are not, raise
    `TrainingDiverged` instead of being saved, so the newest checkpoint is
    always a good one.

    In a multi-worker run every worker restores from `directory` (it must be on
    a filesystem all workers see) and every worker saves, as TensorFlow's
    multi-worker guide prescribes (saving may take part in collective ops), but
    only the chief (`chief=True`) saves there: the others write into a temporary
    directory that is removed at once.

    Args:
        directory: where the `step-<n>/` directories go.
        every: steps between checkpoints.
        chief: whether this process writes `directory` (False: other workers of a multi-worker run).

    Example:
    ```python
    checkpoint = StepCheckpoint("run/checkpoints", every=200)
    start = checkpoint.restore(model)  # 0 on a fresh run
    ```
    """

    def __init__(self, directory, every, chief=True):
        super().__init__()
        self.directory = directory
        self.every = every
        self.chief = chief
        self.step = 0
        self.saved_step = 0

    def latest(self):
        """Path of the newest complete checkpoint, or None."""
        latest = os.path.join(self.directory, "latest")
        if not os.path.exists(latest):
            return None
        with open(latest, encoding="utf-8") as f:
            return os.path.join(self.directory, f.read().strip())

    def restore(self, model):
        """Load the newest checkpoint into `model` (built, with its optimizer
        built); return the number of steps it had trained (0 if none)."""
        path = self.latest()
        if path is None:
            self.step = self.saved_step = 0
            return 0
        model.load_weights(os.path.join(path, "model.weights.h5"))
        with open(os.path.join(path, "state.json"), encoding="utf-8") as f:
            state = json.load(f)
        for variable, value in zip(_random_state_variables(model), state["random_state"]):
            variable.assign(value)
        self.step = self.saved_step = state["step"]
        print(f"resumed from {path} (step {self.step})")
        return self.step

    def diverged(self, step, value):
        """The error for a non-finite `value` found at `step`."""
        return TrainingDiverged(step, value, self.latest(), self.saved_step)

    def save(self, model, step):
        if step == self.saved_step and self.latest():
            return
        if not _all_finite(model):
            raise self.diverged(step, "non-finite weights")
        if not self.chief:
            scratch = tempfile.mkdtemp(prefix="workbench-worker-checkpoint-")
            try:
                _write_checkpoint(model, step, scratch)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            self.saved_step = step
            return
        os.makedirs(self.directory, exist_ok=True)
        name = f"step-{step}"
        staging = os.path.join(self.directory, f".tmp-{name}")
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(staging)
        _write_checkpoint(model, step, staging)
        final = os.path.join(self.directory, name)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
        write_text_atomic(os.path.join(self.directory, "latest"), name + "\n")
        self.saved_step = step
        for old in os.listdir(self.directory):  # keep the newest two
            if old.startswith("step-") and old != name and int(old[5:]) < step - self.every:
                shutil.rmtree(os.path.join(self.directory, old), ignore_errors=True)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            raise self.diverged(self.step, f"loss {loss}")
        if self.step % self.every == 0:
            self.save(self.model, self.step)


class StepLoss(keras.callbacks.Callback):
    """Makes `logs["loss"]` each step's own loss instead of Keras' running mean.

    Keras logs the mean loss since `fit` began, kept as a float32 total; taking
    one step's loss back out of that mean loses digits as the total grows
    (over a long pretraining phase, most of them). Resetting the loss trackers
    before every step leaves them holding that step's loss alone, for every
    callback after this one (history, checkpoint check, progress bar, TensorBoard).
    With `model.fit` this needs `steps_per_execution=1`; `ResumableTraining` runs
    larger values through `DistributedSteps`, which reports every step's own loss.

    Example:
    ```python
    model.fit(stream, callbacks=[StepLoss(), LossHistory("history.csv")])
    ```
    """

    def on_train_batch_begin(self, batch, logs=None):
        self.model.reset_metrics()


class LossHistory(keras.callbacks.Callback):
    """Each step's loss and learning rate in a CSV, appended as training goes; on
    resume the rows after the restored step are dropped (they will be redone).

    Args:
        path: the CSV file (`step,loss,learning_rate`).
        start_step: the step training resumes from.

    Example:
    ```python
    history = LossHistory("run/history.csv", start_step=0)
    model.fit(stream, callbacks=[StepLoss(), history])
    history.frame()
    ```
    """

    COLUMNS = ("step", "loss", "learning_rate")

    def __init__(self, path, start_step=0):
        super().__init__()
        self.path = path
        self.step = start_step
        self.rows = []
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                records = list(csv.DictReader(f))
            for number, record in enumerate(records, 2):
                try:
                    row = {k: float(record[k]) for k in self.COLUMNS}
                except (TypeError, ValueError):
                    if number == len(records) + 1:  # the last line, torn by a kill mid-write: rewritten below
                        break
                    raise ValueError(f"{path}, line {number}: not a step,loss,learning_rate row: {record}") from None
                if row["step"] <= start_step:
                    self.rows.append(row)
        lines = [",".join(self.COLUMNS)] + [",".join(repr(r[k]) for k in self.COLUMNS) for r in self.rows]
        write_text_atomic(path, "\n".join(lines) + "\n")

    def on_train_batch_end(self, batch, logs=None):
        # With `StepLoss` before this callback, logs["loss"] is this step's loss.
        self.step += 1
        loss = float(logs.get("loss", float("nan")))
        # The distributed loop runs several steps per call and reports each step's rate in the logs.
        rate = logs.get("learning_rate", self.model.optimizer.learning_rate)
        row = {"step": float(self.step), "loss": loss, "learning_rate": float(rate)}
        self.rows.append(row)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(",".join(repr(row[k]) for k in self.COLUMNS) + "\n")

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(self.COLUMNS)).astype(float)


class ProgressBar(keras.callbacks.Callback):
    """A tqdm progress bar over the whole run (notebook widget or terminal).

    Args:
        total: steps of the whole run.
        initial: steps already done (a resumed run starts the bar there).
        description: the bar's label.

    Example:
    ```python
    model.fit(stream, callbacks=[ProgressBar(600, initial=200, description="mrpc train")])
    ```
    """

    def __init__(self, total, initial=0, description="train"):
        super().__init__()
        self.total, self.initial, self.description = total, initial, description
        self.bar = None

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, initial=self.initial, desc=self.description, unit="step")

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)
        if logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.4f}", refresh=False)

    def on_train_end(self, logs=None):
        self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@dataclasses.dataclass
class TrainingOutcome:
    """What `ResumableTraining.fit` did.

    Args:
        start_step: the step it resumed from (0: a fresh start).
        total_steps: the run's steps; all of them are done.
        seconds: wall time of the steps trained in this call (0.0 if none were left).
        history: DataFrame `step, loss, learning_rate` of the whole run.

    Example:
    ```python
    outcome = training.fit(stream)
    outcome.trained_steps, outcome.examples_per_second(batch_size=32)
    ```
    """

    start_step: int
    total_steps: int
    seconds: float
    history: object

    @property
    def trained_steps(self):
        return self.total_steps - self.start_step

    def examples_per_second(self, batch_size):
        """Throughput of this call's steps (empty when none ran, as the tables want)."""
        return round(self.trained_steps * batch_size / self.seconds, 2) if self.seconds else ""


class DistributedSteps:
    """Training steps written with the strategy's own API, several per call.

    `model.fit` cannot train under `MultiWorkerMirroredStrategy` (Keras 3.15 fails with
    "Attempt to convert a value (PerReplica...) to a Tensor", keras-team/keras#20585), and with
    `steps_per_execution > 1` it reports one loss per call instead of one per step. This runs
    `steps_per_execution` steps in one `tf.function` and returns each step's own loss and learning
    rate, so per-step history, the non-finite check and step checkpoints stay exact.

    Each step is Keras' own `train_step`: the model's `compute_loss` (which divides by the number of
    replicas, as Keras does) and its compiled optimizer. The gradients are summed over all replicas
    *before* the optimizer sees them, and the optimizer is applied once, in cross-replica context: Keras
    would clip each replica's partial gradient by its own global norm, which differs from clipping the
    whole batch's gradient (BERT clips at 1.0), so a run with R replicas would not be the run with one.
    Gradient accumulation is the optimizer's, as with `fit`. Under a TPU strategy, or with a loss-scale
    optimizer (`mixed_float16`), the optimizer must run in replica context; there Keras' own order
    (clip per replica, then sum) applies, as under `fit`.

    Each replica gets its slice of every global batch (`distribute_datasets_from_function`), so R
    replicas see exactly the batch one process sees, in the same order.

    Args:
        model: compiled, variables built, created under `strategy.scope()`.
        strategy: the run's `tf.distribute` strategy.
        steps_per_execution: steps per call.

    Example:
    ```python
    steps = DistributedSteps(model, strategy, steps_per_execution=4)
    iterator = steps.iterator(training_stream(features, 32, 600, seed=1))
    losses, rates = steps.run(iterator, 4)  # four steps' losses
    ```
    """

    def __init__(self, model, strategy, steps_per_execution=1):
        self.model = model
        self.strategy = strategy
        self.steps_per_execution = steps_per_execution
        self.replicas = strategy.num_replicas_in_sync
        optimizer = model.optimizer
        self.apply_in_replica_context = isinstance(strategy, tf.distribute.TPUStrategy) or isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        )
        self._functions = {}

    def iterator(self, stream):
        """An iterator over `stream` (global batches) that hands each replica its slice."""
        if self.replicas == 1:
            return iter(stream)  # one replica: nothing to split
        batch = tf.nest.flatten(stream.element_spec)[0].shape[0]
        if batch is None or batch % self.replicas:
            raise ValueError(
                f"Parameter 'batch_size' ({batch}) must be a multiple of the {self.replicas} replicas "
                "of the strategy (each replica trains on an equal slice of the global batch)"
            )
        per_replica = batch // self.replicas

        def dataset(context):
            # This input pipeline feeds `local` replicas: rows [first, first + local * per_replica) of each batch.
            local = self.replicas // context.num_input_pipelines
            first = context.input_pipeline_id * local * per_replica
            mine = stream.map(lambda *b: tf.nest.map_structure(lambda t: t[first : first + local * per_replica], b))
            return mine.rebatch(per_replica, drop_remainder=True)

        options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
        return iter(self.strategy.distribute_datasets_from_function(dataset, options))

    def _replica_step(self, data):
        model = self.model
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            scaled = model.optimizer.scale_loss(loss)
        variables = model.trainable_variables
        grads = tape.gradient(scaled, variables)
        if self.apply_in_replica_context:
            model.optimizer.apply(grads, variables)
            return loss, []
        # Dense before the sum (the optimizer densifies the embedding gradient anyway).
        grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
        return loss, tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)

    def _step(self, iterator):
        loss, grads = self.strategy.run(self._replica_step, args=(next(iterator),))
        if not self.apply_in_replica_context:
            grads = [self.strategy.experimental_local_results(g)[0] for g in grads]
            self.model.optimizer.apply(grads, self.model.trainable_variables)
        # Each replica's loss is already divided by the replica count (Keras' compute_loss): the sum is the mean.
        loss = self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        return tf.cast(loss, tf.float32), tf.cast(self.model.optimizer.learning_rate, tf.float32)

    def _function(self, steps):
        if steps not in self._functions:

            @tf.function
            def execute(iterator):
                losses = tf.TensorArray(tf.float32, size=steps)
                rates = tf.TensorArray(tf.float32, size=steps)
                for i in tf.range(steps):
                    loss, rate = self._step(iterator)
                    losses = losses.write(i, loss)
                    rates = rates.write(i, rate)
                return losses.stack(), rates.stack()

            self._functions[steps] = execute
        return self._functions[steps]

    def run(self, iterator, steps):
        """Train `steps` steps from `iterator`: (losses, learning rates), NumPy arrays, one per step."""
        losses, rates = self._function(steps)(iterator)
        return losses.numpy(), rates.numpy()


def uses_distributed_steps(strategy, steps_per_execution):
    """Whether `ResumableTraining` trains through `DistributedSteps` rather than `model.fit`: under a
    multi-worker strategy (where `fit` fails) and for several steps per call (where `fit` reports one
    loss per call). Everything else keeps `model.fit`, which every Keras backend runs."""
    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    return multi_worker or steps_per_execution > 1


class ResumableTraining:
    """One resumable training run, as fine-tuning and pretraining do it.

    Creating it restores the newest checkpoint in `checkpoint_dir` into `model`
    (`start_step` says where that left off) and trims `history_path` to it;
    `fit` trains the remaining steps with per-step losses, checkpoints every
    `checkpoint_every` steps, a progress bar and TensorBoard logs, and saves a
    final checkpoint. A non-finite loss raises `TrainingDiverged` at its step.

    The steps run through `model.fit`, or through `DistributedSteps` under a
    multi-worker strategy or with `steps_per_execution > 1`; the callbacks
    (history, checkpoints, progress, TensorBoard) are the same either way.
    In a multi-worker run only the chief (`chief=True`) writes the history,
    checkpoints and TensorBoard logs; every worker restores from
    `checkpoint_dir`, and all of them must find the same step there.

    Args:
        model: compiled, with its variables built (`build_training_state`).
        total_steps: batches of the whole run.
        checkpoint_dir: where step checkpoints go.
        history_path: CSV of per-step losses.
        checkpoint_every: steps between checkpoints (a multiple of `steps_per_execution`).
        tensorboard_dir: TensorBoard logs (None: none).
        description: the progress bar's label.
        strategy: the run's `tf.distribute` strategy (None: the current one).
        steps_per_execution: training steps per call into the compiled step.
        chief: whether this process writes (False on the other workers of a multi-worker run).

    Example:
    ```python
    training = ResumableTraining(model, 600, "run/checkpoints", "run/history.csv", checkpoint_every=200)
    outcome = training.fit(training_stream(features, 32, 600, seed=1))
    ```
    """

    def __init__(
        self,
        model,
        total_steps,
        checkpoint_dir,
        history_path,
        checkpoint_every,
        tensorboard_dir=None,
        description="train",
        strategy=None,
        steps_per_execution=1,
        chief=True,
    ):
        if checkpoint_every % steps_per_execution:
            raise ValueError(
                f"Parameter 'checkpoint_every' ({checkpoint_every}) must be a multiple of "
                f"'steps_per_execution' ({steps_per_execution}): checkpoints are taken between calls"
            )
        self.model = model
        self.total_steps = total_steps
        self.strategy = strategy or tf.distribute.get_strategy()
        self.steps_per_execution = steps_per_execution
        self.chief = chief
        self.checkpoint = StepCheckpoint(checkpoint_dir, every=checkpoint_every, chief=chief)
        self.start_step = self.checkpoint.restore(model)
        self._check_workers_agree()
        self._scratch = None
        if not chief:  # the history is written by the chief; the others keep theirs in a scratch directory
            self._scratch = tempfile.mkdtemp(prefix="workbench-worker-")
            chiefs = history_path
            history_path = os.path.join(self._scratch, os.path.basename(history_path))
            if os.path.exists(chiefs):  # the steps before the restored checkpoint, as the chief recorded them
                shutil.copyfile(chiefs, history_path)
        self.history = LossHistory(history_path, self.start_step)
        self.tensorboard_dir = tensorboard_dir if chief else None
        self.description = description

    def _check_workers_agree(self):
        """All workers of a multi-worker run must resume from the same step (the same `checkpoint_dir`)."""
        if not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return
        step = tf.constant(float(self.start_step))
        total, squares = (
            float(self.strategy.reduce(tf.distribute.ReduceOp.SUM, self.strategy.run(lambda v=v: v), axis=None))
            for v in (step, step * step)
        )
        n = self.strategy.num_replicas_in_sync
        if abs(n * squares - total * total) > 0.5:
            raise RuntimeError(
                f"the workers found different checkpoints to resume from (this one: step {self.start_step} in "
                f"{self.checkpoint.directory}; mean over the workers: {total / n:g}). Every worker must see the "
                "chief's output_dir: put it on a filesystem all hosts share"
            )

    def fit(self, stream):
        """Train on `stream` (all `total_steps` batches from the start: the
        steps already done are skipped) and return a `TrainingOutcome`."""
        seconds = 0.0
        try:
            if self.start_step < self.total_steps:
                seconds = self._train(stream)
                if self.checkpoint.step != self.total_steps:  # Keras only warns when the data runs out
                    raise RuntimeError(
                        f"the training data ended after step {self.checkpoint.step} of {self.total_steps}; "
                        f"the newest checkpoint is {self.checkpoint.latest()}"
                    )
                self.checkpoint.save(self.model, self.total_steps)
        finally:
            if self._scratch:
                shutil.rmtree(self._scratch, ignore_errors=True)
        return TrainingOutcome(self.start_step, self.total_steps, seconds, self.history.frame())

    def _callbacks(self):
        # Order matters: the losses are made per-step first, recorded, then
        # checked before anything is saved.
        callbacks = [StepLoss(), self.history, self.checkpoint]
        if self.chief:
            callbacks.append(ProgressBar(self.total_steps, self.start_step, self.description))
        if self.tensorboard_dir:
            callbacks.append(
                keras.callbacks.TensorBoard(self.tensorboard_dir, update_freq=max(1, self.checkpoint.every // 10))
            )
        return callbacks

    def _train(self, stream):
        """Train the remaining steps; return the seconds they took."""
        callbacks = self._callbacks()
        began = time.perf_counter()
        try:
            if uses_distributed_steps(self.strategy, self.steps_per_execution):
                self._train_distributed(stream.skip(self.start_step), callbacks)
            else:
                self.model.fit(
                    stream.skip(self.start_step),
                    epochs=1,
                    steps_per_epoch=self.total_steps - self.start_step,
                    verbose=0,
                    callbacks=callbacks,
                    shuffle=False,
                )
        finally:
            for callback in callbacks:
                if isinstance(callback, ProgressBar):
                    callback.close()
        return time.perf_counter() - began

    def _train_distributed(self, stream, callbacks):
        if keras.backend.backend() != "tensorflow":
            raise ValueError(
                f"Parameter 'steps_per_execution' ({self.steps_per_execution}) > 1 and multi-worker training "
                f"need the TensorFlow backend (per-step losses); Keras runs on {keras.backend.backend()!r}"
            )
        steps = DistributedSteps(self.model, self.strategy, self.steps_per_execution)
        callbacks = keras.callbacks.CallbackList(callbacks, model=self.model)
        iterator = steps.iterator(stream)
        step, n = self.start_step, self.steps_per_execution
        callbacks.on_train_begin()
        while step < self.total_steps:
            # Calls end on multiples of steps_per_execution, where checkpoints may fall (also after a resume
            # from a run that checkpointed elsewhere), and at the end of the run.
            count = min(n - step % n, self.total_steps - step)
            try:
                losses, rates = steps.run(iterator, count)
            except tf.errors.OutOfRangeError:
                break  # the data ended; `fit` names the step
            for loss, rate in zip(losses, rates):
                callbacks.on_train_batch_begin(step)
                callbacks.on_train_batch_end(step, {"loss": float(loss), "learning_rate": float(rate)})
                step += 1
        callbacks.on_train_end()
