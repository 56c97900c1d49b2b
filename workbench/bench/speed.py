"""`python -m workbench speed`: throughput, FLOP/s and MFU, beside plain keras-hub.

Step times come from batch-end callbacks (median after warm-up), never from
the wall time of `fit()`, which can return seconds after its last step.

FLOPs per sequence of length T, with L layers of width H, N non-embedding
parameters, P masked positions and vocabulary V:

    train:    6 N T + 12 L H T^2              (forward + backward; attention scores and mixing)
    predict:  2 N T +  4 L H T^2
    pretrain: train + 6 P H (H + V)           (the MLM transform and the tied decoder)

MFU is achieved FLOP/s divided by the peak measured in the same process: a
large matmul in the same dtype (its fastest run), the faster of XLA and plain TensorFlow (on CPU,
XLA's matmul was measured at half of TensorFlow's, below what the model itself
reached, so it is no peak).

Defaults are the fine-tuning path's: `precision="auto"` (bfloat16 on TPUs, on GPUs of
compute capability >= 8.0 and on CPUs with native bfloat16) and `xla="auto"` (XLA on
GPUs and TPUs, also under strategies, not on CPU, where it was measured slower). The keras-hub
baseline is what a user writes without the workbench: float32, defaults.
Each row also has the input pipeline's own throughput for the same shapes
(`workbench.bench.input`), to show that data never starves the step.
"""

import math
import os
import platform
import statistics
import time

import numpy as np

from workbench.runs.record import utc_now
from workbench.training.distribution import restored_precision

SPEED_COLUMNS = [
    "finished_at",
    "machine",
    "device",
    "implementation",
    "model",
    "mode",
    "seq",
    "batch",
    "precision",
    "xla",
    "strategy",
    "replicas",
    "step_seconds",
    "sequences_per_second",
    "tokens_per_second",
    "tflops",
    "peak_tflops",
    "mfu",
    "vs_keras_hub",
    "input_sequences_per_second",
]


def flops_per_sequence(config, seq, mode, predictions=0):
    n = config.num_parameters(non_embedding=True)
    attention = config.num_hidden_layers * config.hidden_size * seq * seq
    if mode == "predict":
        return 2 * n * seq + 4 * attention
    flops = 6 * n * seq + 12 * attention
    if mode == "pretrain":
        flops += 6 * predictions * config.hidden_size * (config.hidden_size + config.vocab_size)
    return flops


def measure_peak(dtype, xla, size=2048, repeats=20):
    """FLOP/s of a (size x size) @ (size x size) matmul, the fastest of `repeats`.

    The fastest, not the median: on a shared VM the median moved by 10% between
    runs (bfloat16: 0.355-0.400 TFLOP/s), and a low peak inflates MFU."""
    import tensorflow as tf

    a = tf.random.normal((size, size), dtype=dtype)
    b = tf.random.normal((size, size), dtype=dtype)
    fn = tf.function(lambda x, y: tf.matmul(x, y), jit_compile=bool(xla))
    fn(a, b).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(a, b).numpy()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times)


class _StepTimer:
    def __init__(self):
        import keras

        timer = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                timer.start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                timer.times.append(time.perf_counter() - timer.start)

            on_predict_batch_begin = on_train_batch_begin
            on_predict_batch_end = on_train_batch_end

        self.callback = Callback()
        self.times = []
        self.start = 0.0


def _data(config, seq, batch, steps, mode, predictions, rng):
    import tensorflow as tf

    n = batch * steps
    x = {
        "token_ids": rng.integers(5, config.vocab_size, (n, seq)).astype("int32"),
        "segment_ids": np.zeros((n, seq), "int32"),
        "padding_mask": np.ones((n, seq), "int32"),
    }
    if mode == "pretrain":
        x["mask_positions"] = np.sort(rng.integers(1, seq, (n, predictions)), axis=1).astype("int32")
        y = {
            "mlm_logits": rng.integers(5, config.vocab_size, (n, predictions)).astype("int32"),
            "nsp_logits": rng.integers(0, 2, n).astype("int32"),
        }
    else:
        y = rng.integers(0, 2, n).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True).cache().prefetch(2)


def _profile(model, data, mode, directory, steps=2):
    """A TensorFlow profiler trace of `steps` warm steps, for TensorBoard's
    profile plugin (`tensorboard --logdir DIR`, Profile tab: op statistics)."""
    import keras
    import tensorflow as tf

    class Trace(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 1:
                tf.profiler.experimental.start(directory)

        def on_train_batch_end(self, batch, logs=None):
            if batch == steps:
                tf.profiler.experimental.stop()

        on_predict_batch_begin, on_predict_batch_end = on_train_batch_begin, on_train_batch_end

    if mode == "predict":
        model.predict(data.map(lambda x, y: x), steps=steps + 1, verbose=0, callbacks=[Trace()])
    else:
        model.fit(data, epochs=1, steps_per_epoch=steps + 1, verbose=0, callbacks=[Trace()], shuffle=False)


def _workbench_model(config, mode, xla):
    """The model the fine-tuning (or pretraining) path trains, compiled as it does."""
    import keras

    from workbench.models.encoder import BertEncoder
    from workbench.models.heads import BertClassifier, BertPretrainer
    from workbench.models.optimizer import create_optimizer
    from workbench.training.pretrain import pretraining_losses

    encoder = BertEncoder.from_config_object(config)
    if mode == "pretrain":
        model = BertPretrainer(encoder)
        model.compile(optimizer=create_optimizer(1e-4, 10_000, 100), loss=pretraining_losses(), jit_compile=xla)
    else:
        model = BertClassifier(encoder, num_classes=2)
        model.compile(
            optimizer=create_optimizer(2e-5, 10_000, 100),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=xla,
        )
    return model


def _time_model(model, data, mode, steps, warmup, min_seconds=0.0):
    """Median step time after `warmup` steps, over at least `steps - warmup`
    steps and at least `min_seconds` of them: on a shared VM single steps of
    BERT-Tiny varied 0.10-0.17 s, and 15 of them gave medians 15% apart."""
    timer = _StepTimer()

    def run(dataset, count):
        if mode == "predict":
            model.predict(dataset.map(lambda x, y: x), steps=count, verbose=0, callbacks=[timer.callback])
        else:
            model.fit(dataset, epochs=1, steps_per_epoch=count, verbose=0, callbacks=[timer.callback], shuffle=False)

    run(data, steps)
    timed = timer.times[warmup:]
    if sum(timed) < min_seconds:
        more = math.ceil((min_seconds - sum(timed)) / statistics.median(timed))
        run(data.repeat(), min(more, MAX_EXTRA_STEPS))
    return statistics.median(timer.times[warmup:])


MAX_EXTRA_STEPS = 1000


@restored_precision()
def measure(
    model_size="tiny",
    seq=128,
    batch=32,
    mode="train",
    precision="auto",
    xla="auto",
    strategy="auto",
    steps=20,
    warmup=5,
    baseline=True,
    vocab_size=30522,
    seed=0,
    profile_dir=None,
    min_seconds=10.0,
):
    """Measure one configuration; returns a row of `SPEED_COLUMNS`.

    Timed: the median of the steps after `warmup`, at least `steps - warmup`
    of them and at least `min_seconds` of them (more steps for small models).

    `xla` is True, False or "auto" (`distribution.auto_jit_compile`: on for GPUs and TPUs), recorded as chosen.
    `profile_dir`: also write a TensorFlow profiler trace of two warm steps there
    (after the timed steps, so it does not disturb them)."""
    import keras
    import keras_hub
    import tensorflow as tf

    from workbench.models.config import BertConfig
    from workbench.training.distribution import auto_jit_compile, describe_strategy, get_strategy

    if mode not in ("train", "predict", "pretrain"):
        raise ValueError(f"mode must be train, predict or pretrain, got {mode!r}")
    if steps <= warmup:
        raise ValueError(f"steps ({steps}) must exceed warmup ({warmup})")
    keras.utils.set_random_seed(seed)
    dist = get_strategy(strategy, precision)
    where = describe_strategy(dist)
    config = BertConfig.from_size(model_size, vocab_size=vocab_size, max_position_embeddings=max(512, seq))
    predictions = max(1, round(0.15 * seq))
    rng = np.random.default_rng(seed)
    data = _data(config, seq, batch, steps, mode, predictions, rng)
    with dist.scope():
        model = _workbench_model(config, mode, auto_jit_compile(xla, dist))
    seconds = _time_model(model, data, mode, steps, warmup, min_seconds)
    xla = bool(model.jit_compile)
    if profile_dir:
        _profile(model, data, mode, profile_dir)
    ratio = ""
    compute_dtype = keras.mixed_precision.global_policy().compute_dtype
    if baseline and mode != "pretrain":
        # What a user would write with plain keras-hub: float32, compiled with defaults.
        with restored_precision(), dist.scope():
            keras.mixed_precision.set_global_policy("float32")
            backbone = keras_hub.models.BertBackbone(
                vocabulary_size=config.vocab_size,
                num_layers=config.num_hidden_layers,
                num_heads=config.num_attention_heads,
                hidden_dim=config.hidden_size,
                intermediate_dim=config.intermediate_size,
                max_sequence_length=config.max_position_embeddings,
            )
            inputs = backbone.input
            plain = keras.Model(inputs, keras.layers.Dense(2)(backbone(inputs)["pooled_output"]))
            plain.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            baseline_seconds = _time_model(plain, data, mode, steps, warmup, min_seconds)
        ratio = round(baseline_seconds / seconds, 3)
    from workbench.bench.input import input_throughput, synthetic_features

    input_rate = input_throughput(
        mode, synthetic_features(batch * 8, seq, config.vocab_size, predictions, seed), batch, 200
    )
    peak = max(measure_peak(getattr(tf, compute_dtype), True), measure_peak(getattr(tf, compute_dtype), False))
    flops = flops_per_sequence(config, seq, mode, predictions) * batch / seconds
    device = _device_name()
    return {
        "finished_at": utc_now(),
        "machine": _machine(),
        "device": device,
        "implementation": "workbench",
        "model": model_size,
        "mode": mode,
        "seq": seq,
        "batch": batch,
        "precision": where["precision"],
        "xla": bool(xla),
        "strategy": where["strategy"],
        "replicas": where["replicas"],
        "step_seconds": round(seconds, 5),
        "sequences_per_second": round(batch / seconds, 2),
        "tokens_per_second": round(batch * seq / seconds, 1),
        "tflops": round(flops / 1e12, 4),
        "peak_tflops": round(peak / 1e12, 4),
        "mfu": round(flops / peak, 4),
        "vs_keras_hub": ratio,
        "input_sequences_per_second": round(input_rate, 1),
    }


def _machine():
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cores"


def _device_name():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return (
        tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        if gpus
        else f"CPU x{os.cpu_count()}"
    )


def record(row, path="results/speed.csv"):
    from workbench.runs.tables import append_rows

    append_rows(path, [row], columns=MAX_BATCH_COLUMNS if "max_batch" in row else SPEED_COLUMNS)
    return row


MAX_BATCH_COLUMNS = ["finished_at", "machine", "device", "model", "mode", "seq", "precision", "xla", "max_batch"]


def search_max_batch(fits, start=8, limit=4096):
    """The largest batch size in [1, limit] for which `fits(batch)` is True,
    assuming fitting is monotone: doubling from `start`, then bisection down to
    1/8 of the last batch that fitted (the resolution of the original README's
    memory table). Returns 0 when not even batch 1 fits."""
    low, high = 0, None  # low fits (0: nothing yet), high does not
    batch = min(start, limit)
    while batch <= limit:
        if fits(batch):
            low = batch
            if batch == limit:
                return low
            batch = min(batch * 2, limit)
        else:
            high = batch
            break
    if high is None:
        return low
    if low == 0:  # even `start` failed: search below it
        return search_max_batch(fits, 1, high - 1) if high > 1 else 0
    resolution = max(1, low // 8)
    while high - low > resolution:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


def _out_of_memory(error):
    import tensorflow as tf

    if isinstance(error, tf.errors.ResourceExhaustedError):
        return True
    text = str(error)
    return isinstance(error, (tf.errors.InternalError, tf.errors.UnknownError)) and (
        "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()
    )


@restored_precision()
def max_batch_size(
    model_size,
    seq=128,
    mode="train",
    precision="auto",
    xla="auto",
    strategy="auto",
    start=8,
    limit=4096,
    vocab_size=30522,
    seed=0,
):
    """The largest batch that trains (or predicts) one step of the workbench's
    model at `seq` without running out of device memory; returns a row of
    `MAX_BATCH_COLUMNS`. Meant for accelerators: on a CPU, memory runs out as a
    killed process, not as an error, so keep `limit` within the host's RAM."""
    import keras

    from workbench.models.config import BertConfig
    from workbench.training.distribution import auto_jit_compile, describe_strategy, get_strategy

    keras.utils.set_random_seed(seed)
    dist = get_strategy(strategy, precision)
    config = BertConfig.from_size(model_size, vocab_size=vocab_size, max_position_embeddings=max(512, seq))
    predictions = max(1, round(0.15 * seq))
    with dist.scope():
        model = _workbench_model(config, mode, auto_jit_compile(xla, dist))
    rng = np.random.default_rng(seed)

    def fits(batch):
        data = _data(config, seq, batch, 2, mode, predictions, rng)
        try:
            _time_model(model, data, mode, 2, 0)
        except Exception as e:  # noqa: BLE001 - only out-of-memory errors mean "does not fit"
            if _out_of_memory(e):
                return False
            raise
        return True

    found = search_max_batch(fits, start, limit)
    where = describe_strategy(dist)
    return {
        "finished_at": utc_now(),
        "machine": _machine(),
        "device": _device_name(),
        "model": model_size,
        "mode": mode,
        "seq": seq,
        "precision": where["precision"],
        "xla": bool(model.jit_compile),
        "max_batch": found,
    }
