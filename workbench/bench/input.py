"""Does the input pipeline keep up with training, and does `fit()` return on time?

* `input_throughput`: sequences/s the workbench's own streams deliver with no
  model attached: the fine-tuning stream (`training_stream` over featurized
  arrays held in memory) and the pretraining stream (`phase_stream` over
  TFRecord shards). `speed` records it beside the training throughput of the
  same run; the goal is at least 10x.
* `fit_return_delays`: seconds between the last batch and `fit()` returning,
  for short runs over the workbench stream and over the same stream with tf.data
  autotuning left on (see `workbench.training.loop.without_autotune`).

Example:
```python
features = synthetic_features(512, seq=128)
input_throughput("train", features, batch_size=32, batches=100)  # sequences/s
```
"""

import os
import statistics
import tempfile
import time

import numpy as np


def synthetic_features(count, seq=128, vocab_size=30522, predictions=20, seed=0):
    """Featurized-looking arrays (random ids, full-length), with classifier labels
    and the masked-LM fields pretraining records carry."""
    from workbench.text.inputs import Features

    rng = np.random.default_rng(seed)
    inputs = {
        "token_ids": rng.integers(5, vocab_size, (count, seq)).astype("int32"),
        "segment_ids": np.repeat([[0] * (seq // 2) + [1] * (seq - seq // 2)], count, 0).astype("int32"),
        "padding_mask": np.ones((count, seq), "int32"),
    }
    meta = {
        "mask_positions": np.sort(rng.integers(1, seq, (count, predictions)), axis=1).astype("int32"),
        "masked_ids": rng.integers(5, vocab_size, (count, predictions)).astype("int32"),
    }
    return Features(inputs, rng.integers(0, 2, count).astype("int32"), meta)


def write_pretraining_records(features, path):
    """`features` as TFRecords in the layout `create_pretraining_data` writes."""
    import tensorflow as tf

    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    with tf.io.TFRecordWriter(path) as writer:
        for i in range(len(features)):
            positions = features.meta["mask_positions"][i]
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "input_ids": ints(features.inputs["token_ids"][i]),
                        "input_mask": ints(features.inputs["padding_mask"][i]),
                        "segment_ids": ints(features.inputs["segment_ids"][i]),
                        "masked_lm_positions": ints(positions),
                        "masked_lm_ids": ints(features.meta["masked_ids"][i]),
                        "masked_lm_weights": tf.train.Feature(
                            float_list=tf.train.FloatList(value=[1.0] * len(positions))
                        ),
                        "next_sentence_labels": ints([features.labels[i]]),
                    }
                )
            )
            writer.write(example.SerializeToString())
    return path


def _drain(dataset, batch_size):
    """Sequences/s of iterating `dataset`, the first batch (pipeline start) excluded."""
    iterator = iter(dataset)
    next(iterator)
    count, started = 0, time.perf_counter()
    for _ in iterator:
        count += batch_size
    return count / (time.perf_counter() - started)


def input_throughput(mode, features, batch_size, batches):
    """Sequences/s of the stream `mode` ("train", "predict" or "pretrain") trains on."""
    from workbench.training.loop import training_stream

    if mode == "pretrain":
        from workbench.training.pretrain import phase_stream

        with tempfile.TemporaryDirectory() as directory:
            path = write_pretraining_records(features, os.path.join(directory, "shard.tfrecord"))
            predictions = features.meta["mask_positions"].shape[1]
            seq = features.inputs["token_ids"].shape[1]
            return _drain(
                phase_stream([path], len(features), seq, predictions, batch_size, batches, seed=0), batch_size
            )
    if mode == "predict":
        return _drain(features.dataset(batch_size, with_labels=False).repeat().take(batches), batch_size)
    return _drain(training_stream(features, batch_size, batches, seed=0), batch_size)


def fit_return_delays(autotune, runs=4, steps=40, batch_size=8, seq=32):
    """Seconds from the last batch's end to `fit()` returning, for `runs` short
    runs of a tiny classifier over the workbench stream (autotune=False) or the
    same stream with tf.data autotuning on (autotune=True)."""
    import keras
    import tensorflow as tf

    from workbench.models.encoder import build_encoder
    from workbench.models.heads import BertClassifier
    from workbench.training.loop import training_stream

    features = synthetic_features(64, seq=seq, vocab_size=100)

    class LastBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.time = time.perf_counter()

    delays = []
    for _ in range(runs):
        model = BertClassifier(build_encoder("tiny", vocab_size=100, max_position_embeddings=seq), num_classes=2)
        # XLA makes each step short, so a run ends while the autotuner sleeps (what users saw).
        model.compile(
            optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True
        )
        stream = training_stream(features, batch_size, steps, seed=0)
        if autotune:
            options = tf.data.Options()
            options.autotune.enabled = True
            stream = stream.with_options(options)
        last = LastBatch()
        model.fit(stream, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[last], shuffle=False)
        delays.append(time.perf_counter() - last.time)
    return delays


def describe_delays(delays):
    return f"median {statistics.median(delays):.2f} s, max {max(delays):.2f} s over {len(delays)} runs"
