"""Training plumbing shared by fine-tuning and pretraining: a deterministic
data stream, step checkpoints for resuming, loss history and a progress bar.

Resuming is exact: the data stream is a pure function of (seed, step), the
checkpoint holds the model weights, the optimizer state and every dropout
layer's random-number state, so a run killed at any point and restarted ends
with the same weights as one that never stopped (on CPU, where kernels are
deterministic).
"""

import csv
import json
import os
import shutil

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


def _random_state_variables(model):
    """The state of every SeedGenerator (dropout masks) in the model."""
    return [v for v in model.variables if "seed_generator" in v.path]


class StepCheckpoint(keras.callbacks.Callback):
    """Saves the training state every `every` batches; `restore` before `fit`.

    Each checkpoint is a directory `step-<n>/` written through a temporary name;
    `latest` names the newest complete one, so a kill mid-save loses nothing.
    """

    def __init__(self, directory, every):
        super().__init__()
        self.directory = directory
        self.every = every
        self.step = 0

    def restore(self, model):
        """Load the newest checkpoint into `model` (built, with its optimizer
        built); return the number of batches it had trained (0 if none)."""
        latest = os.path.join(self.directory, "latest")
        if not os.path.exists(latest):
            self.step = 0
            return 0
        with open(latest, encoding="utf-8") as f:
            name = f.read().strip()
        path = os.path.join(self.directory, name)
        model.load_weights(os.path.join(path, "model.weights.h5"))
        with open(os.path.join(path, "state.json"), encoding="utf-8") as f:
            state = json.load(f)
        for variable, value in zip(_random_state_variables(model), state["random_state"]):
            variable.assign(value)
        self.step = state["step"]
        print(f"resumed from {path} (step {self.step})")
        return self.step

    def save(self, model, step):
        os.makedirs(self.directory, exist_ok=True)
        name = f"step-{step}"
        staging = os.path.join(self.directory, f".tmp-{name}")
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(staging)
        model.save_weights(os.path.join(staging, "model.weights.h5"))
        state = {"step": step, "random_state": [v.numpy().tolist() for v in _random_state_variables(model)]}
        write_text_atomic(os.path.join(staging, "state.json"), json.dumps(state))
        final = os.path.join(self.directory, name)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
        write_text_atomic(os.path.join(self.directory, "latest"), name + "\n")
        for old in os.listdir(self.directory):  # keep the newest two
            if old.startswith("step-") and old != name and int(old[5:]) < step - self.every:
                shutil.rmtree(os.path.join(self.directory, old), ignore_errors=True)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every == 0:
            self.save(self.model, self.step)


class LossHistory(keras.callbacks.Callback):
    """Per-batch loss and learning rate in a CSV, appended as training goes; on
    resume the rows after the restored step are dropped (they will be redone)."""

    COLUMNS = ("step", "loss", "learning_rate")

    def __init__(self, path, start_step=0):
        super().__init__()
        self.path = path
        self.step = start_step
        self.rows = []
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                self.rows = [
                    {k: float(r[k]) for k in self.COLUMNS}
                    for r in csv.DictReader(f)
                    if int(float(r["step"])) <= start_step
                ]
        lines = [",".join(self.COLUMNS)] + [",".join(repr(r[k]) for k in self.COLUMNS) for r in self.rows]
        write_text_atomic(path, "\n".join(lines) + "\n")

    def on_train_begin(self, logs=None):
        self._seen, self._mean = 0, 0.0

    def on_train_batch_end(self, batch, logs=None):
        # Keras logs the mean loss since `fit` began; every batch has the same
        # size, so this batch's own loss is n * mean_n - (n - 1) * mean_(n-1).
        self.step += 1
        self._seen += 1
        mean = float(logs.get("loss", float("nan")))
        loss = self._seen * mean - (self._seen - 1) * self._mean
        self._mean = mean
        row = {"step": float(self.step), "loss": loss, "learning_rate": float(self.model.optimizer.learning_rate)}
        self.rows.append(row)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(",".join(repr(row[k]) for k in self.COLUMNS) + "\n")

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(self.COLUMNS)).astype(float)


class ProgressBar(keras.callbacks.Callback):
    """A tqdm progress bar over the whole run (notebook widget or terminal)."""

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
        self.bar.close()
