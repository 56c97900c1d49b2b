"""One switch for where the model runs: CPU, one or many GPUs, or a TPU.

Batch sizes in the workbench are always *global*: a batch of 32 under a strategy
with 8 replicas gives each replica 4 examples per step (tf.distribute splits the
batch). To keep per-replica work constant when adding devices, multiply the
batch size by `strategy.num_replicas_in_sync` (and usually the learning rate).
"""

import contextlib
import glob
import logging
import os

import keras

try:
    import tensorflow as tf
except ImportError:  # a JAX-only install: get_strategy hands over to jax_distribution, the rules below need no TF
    tf = None

STRATEGIES = ("auto", "tpu", "gpu", "mirrored", "multi_worker", "cpu")
log = logging.getLogger("workbench")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def _tpu_resolver(tpu):
    """A connected TPU cluster resolver, or None when no TPU is in sight.

    Only tries when something points at a TPU (an explicit address, Colab's
    COLAB_TPU_ADDR, TPU_NAME, or a TPU VM's /dev/accel* devices): a blind try
    would wait on the GCE metadata server on ordinary machines.
    """
    if tpu is None:
        if os.environ.get("COLAB_TPU_ADDR"):
            tpu = "grpc://" + os.environ["COLAB_TPU_ADDR"]
        elif os.environ.get("TPU_NAME"):
            tpu = os.environ["TPU_NAME"]
        elif glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"):
            tpu = "local"
        else:
            return None
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        if tpu != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, OSError, tf.errors.OpError) as e:  # OSError: no GCE metadata server
        raise RuntimeError(f"A TPU was indicated ({tpu!r}) but could not be connected: {e}") from e
    return resolver


def cpu_supports_bfloat16():
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), where
    oneDNN runs bfloat16 matmuls at twice the float32 rate (measured 0.40 vs
    0.20 TFLOP/s on our 2-vCPU AMD EPYC); elsewhere bfloat16 is emulated and slower."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def gpu_compute_capabilities():
    """(major, minor) compute capability of every GPU TensorFlow sees (an empty list on CPU/TPU hosts)."""
    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capabilities.append(tuple(details.get("compute_capability") or (0, 0)))
    return capabilities


def auto_precision(device, gpu_capabilities=None):
    """What `precision="auto"` means on `device` ("tpu", "gpu" or "cpu").

    bfloat16 where the hardware multiplies it natively and it needs no loss scaling: TPUs, GPUs of compute
    capability 8.0 and above (A100, H100/H200, L4, RTX 30xx and later) and CPUs with AVX512-BF16/AMX. Older
    GPUs (V100, T4) get float16 with Keras' dynamic loss scaling; other CPUs float32. Under the JAX backend CPUs
    get float32: XLA's CPU matmul gains nothing from bfloat16 (measured 0.18 vs 0.23 TFLOP/s float32, 2048^2 on
    the 2-vCPU AVX512-BF16 machine), where TensorFlow's oneDNN doubles.
    """
    if device == "tpu":
        return "mixed_bfloat16"
    if device == "gpu":
        capabilities = gpu_compute_capabilities() if gpu_capabilities is None else gpu_capabilities
        return "mixed_bfloat16" if capabilities and min(capabilities) >= (8, 0) else "mixed_float16"
    native = cpu_supports_bfloat16() and keras.backend.backend() == "tensorflow"
    return "mixed_bfloat16" if native else "float32"


def auto_jit_compile(jit_compile, strategy):
    """What `jit_compile="auto"` means for a run under `strategy`.

    Keras turns its own "auto" off under any tf.distribute strategy, so MirroredStrategy and TPU runs would go
    without XLA. The workbench compiles with XLA on GPUs and TPUs (a TPU needs it; on GPUs it fuses the
    elementwise work) and leaves it off on CPUs, where it was slower (BERT-Tiny 163 vs 186 seq/s,
    docs/measurements.md). An explicit True/False is kept.
    """
    if jit_compile != "auto":
        return bool(jit_compile)
    if keras.backend.backend() == "jax":  # without jax.jit every op of a step is dispatched on its own
        return True
    return getattr(strategy, "workbench_device", "cpu") in ("gpu", "tpu")


# Steps per call into the compiled training step on a TPU. Each call is a round trip from the host to
# the TPU; with one step per call the TPU idles between steps (Keras' and TensorFlow's TPU guides run
# many steps per call, the original BERT 1000 `iterations_per_loop`). Larger values save little more
# and delay the per-step losses and the non-finite check until the call ends. It is at most this, and
# a divisor of `checkpoint_every` (checkpoints fall between calls): 100 divides the defaults 200 and 1000.
TPU_STEPS_PER_EXECUTION = 100


def auto_steps_per_execution(steps_per_execution, strategy, checkpoint_every):
    """What `steps_per_execution="auto"` means for a run under `strategy`: 1 on CPUs and GPUs (a call's
    overhead is small beside a step there, and single steps keep `model.fit`), on a TPU the largest
    divisor of `checkpoint_every` up to `TPU_STEPS_PER_EXECUTION`. An explicit int is kept."""
    if steps_per_execution != "auto":
        return int(steps_per_execution)
    if keras.backend.backend() != "tensorflow":  # several steps per call run through tf.distribute only
        return 1
    if getattr(strategy, "workbench_device", "cpu") != "tpu":
        return 1
    return max(d for d in range(1, TPU_STEPS_PER_EXECUTION + 1) if checkpoint_every % d == 0)


def is_chief(strategy):
    """Whether this process writes the run's outputs: always, except on the workers of a multi-worker
    run other than the chief (the `chief` task of TF_CONFIG, or worker 0 when there is none; under JAX,
    process 0 of `jax.distributed`)."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.process_index() == 0
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    if not resolver.task_type:
        return True
    if "chief" in resolver.cluster_spec().as_dict():
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0


@contextlib.contextmanager
def restored_precision():
    """Put the caller's global mixed-precision policy back after the block (or
    decorated function): `get_strategy` sets it, and a model built after a
    `finetune()` call should not silently inherit the run's bfloat16."""
    policy = keras.mixed_precision.global_policy()
    distribution = keras.distribution.distribution()  # what get_strategy sets under JAX
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(policy)
        keras.distribution.set_distribution(distribution)


# One per process: the collective ops between workers are configured once, when TensorFlow starts, and a
# second strategy in the same process (a second run in a notebook kernel) makes the workers lose each other.
_multi_worker_strategy = None


def get_strategy(kind="auto", precision="auto", tpu=None):
    """A `tf.distribute` strategy, and the matching global mixed-precision policy.

    Args:
        kind: `"auto"` (a TPU if one connects (a TPU that is indicated but does not
            connect is a warning, then the other devices), else MirroredStrategy over all GPUs
            when there are several, else the default strategy), `"tpu"`, `"gpu"`
            (one GPU, or all of them mirrored), `"mirrored"` (all local devices
            of the strongest kind, also several logical CPUs), `"multi_worker"`
            (MultiWorkerMirroredStrategy, configured by TF_CONFIG), `"cpu"`.
        precision: `"auto"` (`auto_precision`: bfloat16 on TPUs, on GPUs of compute
            capability >= 8.0 and on CPUs with native bfloat16, float16 on older GPUs,
            else float32), or
            `"float32"` (the original's numerics), `"mixed_float16"`, `"mixed_bfloat16"`.
        tpu: TPU name or address; by default found from the environment.

    Returns:
        The strategy; build models inside `strategy.scope()`.

    Example:
    ```python
    strategy = get_strategy("auto")
    with strategy.scope():
        model = BertClassifier(encoder, num_classes=2)
    ```
    """
    if kind not in STRATEGIES:
        raise ValueError(f"Unknown strategy {kind!r}; expected one of {', '.join(STRATEGIES)}")
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if keras.backend.backend() == "jax":  # keras.distribution instead of tf.distribute: docs/jax.md
        if tpu is not None:
            raise ValueError("tpu= names a TPU for TensorFlow; under JAX the TPU VM's own chips are used")
        from workbench.training.jax_distribution import get_distribution

        return get_distribution(kind, precision, auto_precision)

    strategy, device = None, "cpu"
    if kind in ("auto", "tpu"):
        try:
            resolver = _tpu_resolver(tpu)
        except RuntimeError as error:
            if kind == "tpu":
                raise
            # "auto" on a host where something only *looks* like a TPU (a stale TPU_NAME, /dev/vfio devices
            # of a GPU host): say so and go on with the devices that are there.
            log.warning("%s; strategy='auto' goes on without a TPU", error)
            resolver = None
        if resolver is not None:
            strategy, device = tf.distribute.TPUStrategy(resolver), "tpu"
        elif kind == "tpu":
            raise RuntimeError(
                "strategy='tpu' but no TPU is connected: no tpu address given, COLAB_TPU_ADDR and TPU_NAME "
                "are unset and there is no /dev/accel* device. On Colab choose Runtime > Change runtime type > TPU."
            )
    if kind == "multi_worker":
        # Before anything lists devices: that starts TensorFlow's runtime, and the collective ops
        # between workers must be configured before it starts ("... at program startup").
        global _multi_worker_strategy
        if _multi_worker_strategy is None:
            _multi_worker_strategy = tf.distribute.MultiWorkerMirroredStrategy()
        strategy = _multi_worker_strategy
        device = "gpu" if tf.config.list_logical_devices("GPU") else "cpu"
    if strategy is None:
        gpus = tf.config.list_logical_devices("GPU")
        if kind == "gpu":
            if not gpus:
                raise RuntimeError(
                    "strategy='gpu' but TensorFlow sees no GPU (tf.config.list_logical_devices('GPU') is empty)"
                )
            strategy = (
                tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.OneDeviceStrategy(gpus[0].name)
            )
        elif kind == "mirrored":
            devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
            strategy = tf.distribute.MirroredStrategy(devices)
        elif kind == "cpu":
            strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
        elif len(gpus) > 1:
            strategy = tf.distribute.MirroredStrategy()
        elif gpus:
            strategy = tf.distribute.OneDeviceStrategy(gpus[0].name)
        else:
            strategy = tf.distribute.get_strategy()
        device = "gpu" if gpus and kind != "cpu" else "cpu"

    if precision == "auto":
        precision = auto_precision(device)
    keras.mixed_precision.set_global_policy(precision)
    strategy.workbench_device = device
    return strategy


def describe_strategy(strategy):
    """What a result row records about where it ran."""
    return {
        "strategy": type(strategy).__name__,
        "device": getattr(strategy, "workbench_device", "cpu"),
        "replicas": strategy.num_replicas_in_sync,
        "precision": keras.mixed_precision.global_policy().name,
    }
