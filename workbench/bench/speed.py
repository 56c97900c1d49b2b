"""`python -m workbench speed`: throughput, FLOP/s and MFU, beside plain keras-hub.

Step times come from batch-end callbacks (median after warm-up), never from
the wall time of `fit()`, which can return seconds after its last step.

FLOPs per sequence of length T, with L layers of width H, N non-embedding
parameters, P masked positions and vocabulary V:

    train:    6 N T + 12 L H T^2              (forward + backward; attention scores and mixing)
    predict:  2 N T +  4 L H T^2
    pretrain: train + 6 P H (H + V)           (the MLM transform and the tied decoder)

MFU is achieved FLOP/s per device divided by the peak measured in the same process (per device:
the replicas' accelerators each count once; replicas on logical CPU devices share one CPU): a
large matmul in the same dtype (its fastest run), the faster of XLA and plain TensorFlow (on CPU,
XLA's matmul was measured at half of TensorFlow's, below what the model itself
reached, so it is no peak); under JAX, jax.jit's matmul.

Defaults are the fine-tuning path's: `precision="auto"` (bfloat16 on TPUs, on GPUs of
compute capability >= 8.0 and, under TensorFlow, on CPUs with native bfloat16) and `xla="auto"`
(TensorFlow: XLA on GPUs and TPUs, also under strategies, not on CPU, where it was measured slower;
JAX: always). The keras-hub baseline is what a user writes without the workbench (`BertBackbone` +
`Dense`, Adam, Keras' default compilation) in the same backend and the same precision policy, so
`vs_keras_hub` compares like with like (until 2026-11-30 it ran in float32 beside a bfloat16 workbench).
Each row also has the input pipeline's own throughput for the same shapes
(`workbench.bench.input`), to show that data never starves the step, and the Keras backend.

Under the JAX backend with TensorFlow not installed, the batches are NumPy arrays
fed by a `keras.utils.PyDataset` and the input-pipeline column stays empty: this
module, and everything it imports, imports TensorFlow only inside functions and
only where it is installed.
"""

import gc
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
    "backend",
    # "ok"; the device report (bench/device_report.py) also writes "skipped" and "failed" rows, whose
    # measured columns stay empty and whose `note` says why.
    "status",
    "note",
    # `speed --ceiling`: the MFU of the step's layer matmuls alone (bench/matmul_ceiling.py), the most the
    # model could reach at this shape on this device; empty when not measured.
    "matmul_mfu",
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


def measure_peak(dtype, xla, size=None, repeats=20, products=None):
    """FLOP/s of a (size x size) @ (size x size) matmul in `dtype` (a name such as
    "bfloat16"), the fastest of `repeats` timings; under JAX always through `jax.jit`.

    The fastest, not the median: on a shared VM the median moved by 10% between
    runs (bfloat16: 0.355-0.400 TFLOP/s), and a low peak inflates MFU.

    On a CPU one timing is one 2048^2 product. On a GPU or TPU that product (17
    GFLOP) is so short that dispatching it and waiting for it would be much of the
    time, understating the peak (and overstating MFU); there the defaults are
    8192^2 and 10 products queued back to back per timing, with one wait at the
    end, so the time is the device's."""
    from workbench.bench.matmul_ceiling import fastest_seconds

    accelerator = _device_name().split()[0] != "CPU"
    size = size or (8192 if accelerator else 2048)
    products = products or (10 if accelerator else 1)
    square = ((), size, size, size, False, False)
    return 2 * size**3 * products / fastest_seconds([square], dtype, xla, repeats, calls=products)


def tensorflow_installed():
    """Whether TensorFlow can be imported (the JAX-only install has none)."""
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


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


def _array_batches(x, y, batch):
    """The NumPy stand-in for the tf.data stream where TensorFlow is not installed:
    a `keras.utils.PyDataset` with the two `tf.data.Dataset` methods the timing
    uses (`repeat()`, `map(fn)`)."""
    import keras

    class ArrayBatches(keras.utils.PyDataset):
        def __init__(self, fn=None, infinite=False):
            super().__init__()
            self.fn, self.infinite = fn, infinite
            self.count = len(next(iter(x.values()))) // batch

        @property
        def num_batches(self):
            return None if self.infinite else self.count

        def __len__(self):
            return self.count

        def __getitem__(self, index):
            rows = slice((index % self.count) * batch, (index % self.count + 1) * batch)
            item = ({k: v[rows] for k, v in x.items()}, _take(y, rows))
            return self.fn(*item) if self.fn else item

        def repeat(self):
            return ArrayBatches(self.fn, infinite=True)

        def map(self, fn):
            return ArrayBatches(fn, self.infinite)

    return ArrayBatches()


def _take(y, rows):
    return {k: v[rows] for k, v in y.items()} if isinstance(y, dict) else y[rows]


def _data(config, seq, batch, steps, mode, predictions, rng):
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
    if not tensorflow_installed():
        return _array_batches(x, y, batch)
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True).cache().prefetch(2)


def _profile(model, data, mode, directory, steps=2):
    """A profiler trace (TensorFlow's, or JAX's under JAX) of `steps` warm steps, for
    TensorBoard's profile plugin (`tensorboard --logdir DIR`, Profile tab: op statistics)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        start, stop = (lambda: jax.profiler.start_trace(directory)), jax.profiler.stop_trace
    else:
        import tensorflow as tf

        start, stop = (lambda: tf.profiler.experimental.start(directory)), tf.profiler.experimental.stop

    class Trace(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 1:
                start()

        def on_train_batch_end(self, batch, logs=None):
            if batch == steps:
                stop()

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


def _setup(model_size, seq, precision, strategy, vocab_size, seed):
    """What `measure` and `max_batch_size` both start from, so a max-batch row is about the model and data a
    speed row times: the seeded random state, the strategy (its precision policy set), the model's config,
    and the masked positions per sequence of pretraining batches (15% of the tokens, as the original)."""
    import keras

    from workbench.models.config import BertConfig
    from workbench.training.distribution import get_strategy

    keras.utils.set_random_seed(seed)
    dist = get_strategy(strategy, precision)
    config = BertConfig.from_size(model_size, vocab_size=vocab_size, max_position_embeddings=max(512, seq))
    return dist, config, max(1, round(0.15 * seq))


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
    ceiling=False,
):
    """Measure one configuration; returns a row of `SPEED_COLUMNS`.

    Timed: the median of the steps after `warmup`, at least `steps - warmup`
    of them and at least `min_seconds` of them (more steps for small models).

    `xla` is True, False or "auto" (`distribution.auto_jit_compile`: on for GPUs and TPUs), recorded as chosen.
    `profile_dir`: also write a profiler trace of two warm steps there
    (after the timed steps, so it does not disturb them).
    `ceiling`: also time the step's layer matmuls alone (`matmul_mfu`, see
    `workbench.bench.matmul_ceiling`; train and predict), on one replica's share of the batch."""
    import keras
    import keras_hub

    from workbench.training.distribution import auto_jit_compile, describe_strategy

    if mode not in ("train", "predict", "pretrain"):
        raise ValueError(f"mode must be train, predict or pretrain, got {mode!r}")
    if steps <= warmup:
        raise ValueError(f"steps ({steps}) must exceed warmup ({warmup})")
    if ceiling and mode == "pretrain":
        raise ValueError("ceiling: the layer matmuls alone are timed for train and predict, not pretrain")
    dist, config, predictions = _setup(model_size, seq, precision, strategy, vocab_size, seed)
    where = describe_strategy(dist)
    rng = np.random.default_rng(seed)
    data = _data(config, seq, batch, steps, mode, predictions, rng)
    with dist.scope():
        model = _workbench_model(config, mode, auto_jit_compile(xla, dist))
    seconds = _time_model(model, data, mode, steps, warmup, min_seconds)
    xla = bool(model.jit_compile)
    if profile_dir:  # its own 3 batches (one to warm up, two traced): `data` may hold fewer
        _profile(model, _data(config, seq, batch, 3, mode, predictions, rng), mode, profile_dir)
    ratio = ""
    compute_dtype = keras.mixed_precision.global_policy().compute_dtype
    del model  # its weights and optimizer state leave device memory before the baseline's step needs it
    gc.collect()
    ceiling_flops = None
    if ceiling:  # before the baseline model takes memory
        from workbench.bench.matmul_ceiling import measure_ceiling

        ceiling_flops = measure_ceiling(config, seq, max(1, batch // where["replicas"]), mode, compute_dtype, xla)
    if baseline and mode != "pretrain":
        # What a user would write with plain keras-hub, compiled with Keras' defaults, in the
        # workbench's backend and precision policy (its logits in float32, as the workbench's).
        with dist.scope():
            backbone = keras_hub.models.BertBackbone(
                vocabulary_size=config.vocab_size,
                num_layers=config.num_hidden_layers,
                num_heads=config.num_attention_heads,
                hidden_dim=config.hidden_size,
                intermediate_dim=config.intermediate_size,
                max_sequence_length=config.max_position_embeddings,
            )
            inputs = backbone.input
            logits = keras.layers.Dense(2, dtype="float32")(backbone(inputs)["pooled_output"])
            plain = keras.Model(inputs, logits)
            plain.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            baseline_seconds = _time_model(plain, data, mode, steps, warmup, min_seconds)
        ratio = round(baseline_seconds / seconds, 3)
    input_rate = ""
    if tensorflow_installed():  # the workbench's own tf.data streams
        from workbench.bench.input import input_throughput, synthetic_features

        input_rate = round(
            input_throughput(
                mode, synthetic_features(batch * 8, seq, config.vocab_size, predictions, seed), batch, 200
            ),
            1,
        )
    peak = measure_peak(compute_dtype, xla=True)
    if keras.backend.backend() != "jax":  # under JAX both are jax.jit's matmul
        peak = max(peak, measure_peak(compute_dtype, xla=False))
    flops = flops_per_sequence(config, seq, mode, predictions) * batch / seconds
    # MFU is per device: the replicas' accelerators each have the peak measured on one of them;
    # replicas on a CPU (logical devices) share the one CPU whose peak was measured with all its cores.
    devices = where["replicas"] if where["device"] != "cpu" else 1
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
        "mfu": round(flops / (peak * devices), 4),
        "vs_keras_hub": ratio,
        "input_sequences_per_second": input_rate,
        "backend": keras.backend.backend(),
        "status": "ok",
        "matmul_mfu": "" if ceiling_flops is None else round(ceiling_flops / peak, 4),
    }


def _machine():
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cores"


def _device_name():
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        return f"CPU x{os.cpu_count()}" if device.platform == "cpu" else f"{device.device_kind} x{jax.device_count()}"
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


MAX_BATCH_COLUMNS = [
    "finished_at",
    "machine",
    "device",
    "model",
    "mode",
    "seq",
    "precision",
    "xla",
    "max_batch",
    "backend",
]


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
    """TensorFlow's ResourceExhaustedError (or an internal error saying so), or
    JAX's XlaRuntimeError "RESOURCE_EXHAUSTED: Out of memory ..."."""
    import sys

    text = str(error)
    says_so = "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()
    if sys.modules.get("tensorflow") is not None:  # loaded (None: a blocked import)
        import tensorflow as tf

        if isinstance(error, tf.errors.ResourceExhaustedError):
            return True
        if isinstance(error, (tf.errors.InternalError, tf.errors.UnknownError)):
            return says_so
    return type(error).__name__ in ("XlaRuntimeError", "JaxRuntimeError") and says_so


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
    search=search_max_batch,
):
    """The largest batch that trains (or predicts) one step of the workbench's
    model at `seq` without running out of device memory; returns a row of
    `MAX_BATCH_COLUMNS`. Meant for accelerators: on a CPU, memory runs out as a
    killed process, not as an error, so keep `limit` within the host's RAM.

    `search(fits, start, limit)` picks the batches to try (`search_max_batch`, or the
    device report's `memory_guided_search`, which needs fewer compilations)."""
    import keras

    from workbench.training.distribution import auto_jit_compile, describe_strategy

    dist, config, predictions = _setup(model_size, seq, precision, strategy, vocab_size, seed)
    jit_compile = auto_jit_compile(xla, dist)
    with dist.scope():
        models = [_workbench_model(config, mode, jit_compile)]
    rng = np.random.default_rng(seed)

    def fits(batch):
        data = _data(config, seq, batch, 2, mode, predictions, rng)
        try:
            _time_model(models[0], data, mode, 2, 0)
            return True
        except Exception as e:  # noqa: BLE001 - only out-of-memory errors mean "does not fit"
            if not _out_of_memory(e):
                raise
        # Keras' JAX trainer detaches the weights from the model while `fit` runs and puts them back at the
        # end; a step that fails leaves them detached, so the next try needs a new model. Made here, after
        # the handler has let go of the failed step's arrays, and after the old model is gone.
        models.clear()
        gc.collect()
        with dist.scope():
            models.append(_workbench_model(config, mode, jit_compile))
        return False

    found = search(fits, start, limit)
    where = describe_strategy(dist)
    return {
        "finished_at": utc_now(),
        "machine": _machine(),
        "device": _device_name(),
        "model": model_size,
        "mode": mode,
        "seq": seq,
        "precision": where["precision"],
        "xla": bool(models[0].jit_compile),
        "max_batch": found,
        "backend": keras.backend.backend(),
    }
