"""The `strategy` switch under Keras' JAX backend: `keras.distribution` instead of `tf.distribute`.

`workbench.training.distribution.get_strategy` hands over to `get_distribution`
here when `keras.backend.backend()` is "jax". The run code needs three things
of a strategy, and `JaxDataParallel` has them: `scope()`, `num_replicas_in_sync`
and `workbench_device`. The distribution is also made Keras' global one, as
`get_strategy` sets the global precision policy, because `fit` and `predict`
run outside `scope()` and Keras' JAX trainer shards each batch by the global
distribution; `distribution.restored_precision` puts both back.

* `auto`: `DataParallel` over every local device of JAX's default platform
  (TPU cores, GPUs); on one device no distribution, plain Keras.
* `tpu`, `gpu`, `cpu`: `DataParallel` over the local devices of that
  platform; a clear error when there are none.
* `mirrored`: `DataParallel` over every local device of the default platform.
* `multi_worker`: `keras.distribution.initialize()` (`jax.distributed`), then
  `DataParallel` over the devices of all processes.

Batch sizes stay global: Keras splits each batch over the devices (and, with
several processes, a `tf.data` input over the processes).

Nothing here imports TensorFlow, so `python -m workbench speed` runs where it is
not installed.
"""

import contextlib
import logging
import os

import keras

log = logging.getLogger("workbench")

# Where `jax.distributed` finds the cluster, besides what JAX detects by itself
# (Cloud TPU pods, SLURM, Open MPI, Kubernetes).
MULTI_WORKER_VARIABLES = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)
_initialized = []


class JaxDataParallel:
    """A `keras.distribution.DataParallel` (or none, on one device) behind the
    small part of the `tf.distribute.Strategy` surface the workbench uses.

    Args:
        distribution: a `keras.distribution.Distribution`, or None for plain
            Keras on the default device.
        device: "cpu", "gpu" or "tpu" (what `precision="auto"` and
            `jit_compile="auto"` look at).
        replicas: devices the batch is split over.

    Example:
    ```python
    strategy = get_strategy("auto", "float32")  # under KERAS_BACKEND=jax
    with strategy.scope():
        model = BertClassifier(encoder, num_classes=2)
    strategy.num_replicas_in_sync  # e.g. 8 on a TPU v5e-8
    ```
    """

    def __init__(self, distribution, device, replicas):
        self.distribution = distribution
        self.workbench_device = device
        self.num_replicas_in_sync = replicas

    def scope(self):
        return self.distribution.scope() if self.distribution is not None else contextlib.nullcontext()


def _platform_devices(platform):
    import jax

    try:
        return jax.local_devices(backend=platform)
    except RuntimeError:  # JAX: "Unknown backend" / "Backend 'gpu' failed to initialize"
        return []


def compute_capabilities(devices):
    """(major, minor) of each CUDA device JAX sees (`compute_capability` is "9.0"
    on an H100/H200); devices without one count as (0, 0)."""
    capabilities = []
    for device in devices:
        text = str(getattr(device, "compute_capability", "0.0") or "0.0")
        major, _, minor = text.partition(".")
        capabilities.append((int(major or 0), int(minor or 0)))
    return capabilities


def _initialize_multi_worker():
    """`jax.distributed` through Keras, once per process, with an error that says
    how to configure it when JAX finds no cluster."""
    if _initialized:
        return
    try:
        keras.distribution.initialize()
    except (ValueError, RuntimeError) as error:
        configured = {name: os.environ[name] for name in MULTI_WORKER_VARIABLES if name in os.environ}
        raise RuntimeError(
            "strategy='multi_worker' under JAX needs a jax.distributed cluster: set "
            + ", ".join(MULTI_WORKER_VARIABLES)
            + " (the coordinator's host:port first, the number of processes, this process's index), "
            "or run where JAX detects one (a Cloud TPU pod slice, SLURM, Open MPI); it must happen before "
            f"any JAX computation in the process. Set here: {configured or 'none'}. JAX said: {error}"
        ) from error
    _initialized.append(True)


def get_distribution(kind, precision, auto_precision):
    """The JAX counterpart of `get_strategy` (same arguments, already validated
    there), setting Keras' global distribution and mixed-precision policy.
    `auto_precision` is `distribution.auto_precision`, passed in so that its one
    rule serves both backends without an import cycle."""
    import jax

    if kind == "multi_worker":
        _initialize_multi_worker()
    if kind in ("tpu", "gpu", "cpu"):
        devices = _platform_devices(kind)
        if not devices:
            raise RuntimeError(
                f"strategy={kind!r} but JAX sees no {kind.upper()} "
                f"(jax.local_devices(backend={kind!r}) is empty or fails; "
                f"JAX's devices: {', '.join(str(d) for d in jax.devices())}). "
                + (
                    "Install JAX with CUDA support (pip install 'jax[cuda13]')."
                    if kind == "gpu"
                    else "On a TPU VM install 'jax[tpu]'."
                    if kind == "tpu"
                    else ""
                )
            )
        device = kind
    else:
        device = jax.default_backend()
        devices = jax.devices() if kind == "multi_worker" else jax.local_devices()
        if device not in ("cpu", "gpu", "tpu"):  # e.g. "cuda"/"rocm" on some builds
            device = "gpu" if devices and devices[0].platform in ("gpu", "cuda", "rocm") else "cpu"

    if kind == "auto" and len(devices) == 1:
        distribution = None
    else:
        distribution = keras.distribution.DataParallel(devices=devices)
    if precision == "auto":
        precision = auto_precision(device, compute_capabilities(devices) if device == "gpu" else None)
    keras.mixed_precision.set_global_policy(precision)
    keras.distribution.set_distribution(distribution)
    log.info("JAX: %s over %d %s device(s), %s", type(distribution).__name__, len(devices), device, precision)
    return JaxDataParallel(distribution, device, len(devices))
