"""BERT's optimizer: Adam with decoupled weight decay, warmup + linear decay.

The original `AdamWeightDecayOptimizer` differs from `keras.optimizers.AdamW` in
one way that changes results: it has no bias correction of the moment
estimates, so early steps are larger (3.16x at step 1, while the second-moment
estimate is still small; warmup keeps them harmless). `BertAdamW` reproduces the original;
everything else (global-norm clipping, gradient accumulation, excluding
LayerNorm and biases from decay) is Keras' own machinery, except that on
TensorFlow with single-device variables clipping, decay and the update run as
one XLA kernel per variable (`_update_kernel`: the optimizer step of BERT-Base
366-434 -> 211-262 ms), with the same results, for models of at least
`ONE_KERNEL_MIN_PARAMETERS`.
"""

import functools
import math
import weakref

import keras
from keras import ops

from workbench.models.keras_internals import WholeUpdateOptimizer, optimizer_variable_index, uses_weight_decay

# The original excludes every variable whose name contains "LayerNorm",
# "layer_norm" or "bias"; in Keras the LayerNorm variables are gamma/beta, matched
# as a whole name only (Keras matches `variable.name`: "gamma" eagerly and under
# JAX, "scope/gamma:0" in TensorFlow's compiled steps), so that a layer named
# e.g. "beta_head" is decayed as the original decays it.
NO_DECAY_PATTERN = r"bias|layer_norm|LayerNorm|(^|/)(gamma|beta)(:\d+)?$"

# Below this many parameters `one_kernel_update="auto"` keeps Keras' steps: the
# kernels compile once per optimizer (~1 s), which a small model earns back only
# after many steps. Measured (2-vCPU Intel Xeon, optimizer `apply` alone): the
# tests' 2-layer model with the 1,371-word sample vocabulary (0.7M parameters)
# saves 1.2 ms a step (4.0-4.6 -> 3.1 ms) for 0.9-1.0 s more compile time, about
# 800 steps to break even, while tests and the embedded demo run tens of steps;
# BERT-Tiny with the real vocabulary (4.4M) saves 4.8 ms (15.5 -> 10.7) for
# 0.85 s (~180 steps), BERT-Small (29M) 43 ms for 0.7 s, BERT-Base (110M) 150 ms
# with no extra first-step time.
ONE_KERNEL_MIN_PARAMETERS = 2_000_000


@keras.saving.register_keras_serializable(package="workbench")
class BertLearningRateSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The original schedule: linear warmup from 0 to `peak`, then linear decay
    to 0 at `total_steps`. As in the original, the decay is measured from step 0,
    so right after warmup the rate is `peak * (1 - warmup/total)`.

    Args:
        peak: the learning rate after warmup (e.g. 2e-5 fine-tuning, 1e-4 pretraining).
        total_steps: optimizer steps of the whole run.
        warmup_steps: steps of linear warmup (10% of `total_steps` for fine-tuning).
        batches_per_step: gradient-accumulation factor. Keras passes the schedule
            its batch counter; dividing by this makes `total_steps` and
            `warmup_steps` count optimizer updates.

    Example:
    ```python
    schedule = BertLearningRateSchedule(2e-5, total_steps=1000, warmup_steps=100)
    float(schedule(50))  # 1e-5
    ```
    """

    def __init__(self, peak, total_steps, warmup_steps=0, batches_per_step=1):
        if total_steps <= 0:
            raise ValueError(f"total_steps must be positive, got {total_steps}")
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}], got {warmup_steps}")
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.batches_per_step = int(batches_per_step)

    def __call__(self, step):
        step = ops.cast(ops.floor_divide(step, self.batches_per_step), "float32")
        decayed = self.peak * (1.0 - ops.minimum(step, self.total_steps) / self.total_steps)
        if self.warmup_steps == 0:
            return decayed
        warmup = self.peak * step / self.warmup_steps
        return ops.where(step < self.warmup_steps, warmup, decayed)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "batches_per_step": self.batches_per_step,
        }


def _plain_tf_variables(*variables):
    """Single-device TensorFlow variables behind these (Keras or TensorFlow)
    variables: the fused kernels take them as they are; mirrored ones go
    through Keras' distribution-aware assignments instead."""
    import tensorflow as tf

    return all(
        isinstance(v, tf.Variable) and not isinstance(v, tf.distribute.DistributedValues)
        for v in (v.value if isinstance(v, keras.Variable) else v for v in variables)
    )


@functools.cache
def _clip_scale_kernel():
    """The global-norm clip factor of a list of gradients as one XLA kernel (TensorFlow)."""
    import tensorflow as tf

    def squared_norm(g):
        # Row sums as a product with a column of ones: XLA's CPU reduction of a
        # 30522x768 gradient ran at 2.8 GB/s (34 ms), this product at 19 GB/s (5 ms).
        width = g.shape[-1] if g.shape.rank else 1
        rows = tf.reshape(tf.square(g), [-1, width])
        return tf.reduce_sum(tf.matmul(rows, tf.ones([width, 1], g.dtype)))

    @tf.function(jit_compile=True, autograph=False)
    def clip_scale(gradients, clipnorm):
        # Keras' `clip_by_global_norm`: NaN when the norm is not finite.
        norm = tf.sqrt(tf.add_n([squared_norm(g) for g in gradients]))
        return clipnorm * tf.minimum(1.0 / norm, 1.0 / clipnorm) + (norm - norm)

    return clip_scale


# optimizer -> its update kernel (see `_update_kernel`).
_update_kernels = weakref.WeakKeyDictionary()


def _update_kernel(optimizer):
    """The clip + decay + Adam update of one variable in place, as one XLA kernel
    (TensorFlow), for this optimizer's variables.

    Why: Keras clips, decays and updates in separate passes (the squared
    gradients, their sums, a scaled copy of every gradient, `w - w * wd * lr`
    for each decayed variable, then Adam): about 7.5 GB of memory traffic per
    BERT-Base step against 3.5 GB for one read of the gradients (the norm) and
    one read-modify-write of (w, m, v) here. The kernel takes the variables
    themselves, so XLA updates their buffers in place: BERT-Base's optimizer
    step took 211-262 ms this way, 313-318 ms with values in and out (fresh
    buffers for 1.3 GB each step) and 366-434 ms as Keras' separate steps
    (2-vCPU Intel Xeon, `tf.function` around `apply`). Each optimizer has its
    own: one function for the whole process failed when a second model trained
    in an XLA-compiled step (TensorFlow: "Called a function referencing
    variables which have been deleted", in tests/test_tpu_rules.py).
    """
    kernel = _update_kernels.get(optimizer)
    if kernel is not None:
        return kernel
    import tensorflow as tf

    @tf.function(jit_compile=True, autograph=False)
    def update(variable, m, v, gradient, learning_rate, scale, decay, beta_1, beta_2, epsilon):
        # The original AdamWeightDecayOptimizer's step, with ResourceApplyAdam's
        # forms of the moment updates (as in `BertAdamW.update_step`).
        g = tf.cast(gradient, variable.dtype) * scale
        m_new = m + (g - m) * (1 - beta_1)
        v_new = v + (tf.square(g) - v) * (1 - beta_2)
        w = variable.read_value()
        step = m_new / (tf.sqrt(v_new) + epsilon)
        if decay:
            step += decay * w
        m.assign(m_new)
        v.assign(v_new)
        variable.assign(w - learning_rate * step)

    _update_kernels[optimizer] = update
    return update


@keras.saving.register_keras_serializable(package="workbench")
class BertAdamW(WholeUpdateOptimizer):
    """Adam with decoupled weight decay and no bias correction (the original's
    `AdamWeightDecayOptimizer`):

        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        w = w - lr (m / (sqrt(v) + eps) + weight_decay w)

    Args:
        learning_rate: float or schedule.
        weight_decay: decoupled decay rate (0.01 in the original).
        beta_1, beta_2, epsilon: Adam constants (0.9, 0.999, 1e-6 in the original).
        one_kernel_update: `True` to clip, decay and update each variable in one
            XLA kernel where that applies (TensorFlow, single-device variables,
            XLA available, `global_clipnorm` or no clipping), `False` for
            Keras' steps, `"auto"` for the kernel only for models of at least
            `ONE_KERNEL_MIN_PARAMETERS` (the kernels' compile time is not
            earned back in a small model's few steps). Same results either way.
        **kwargs: Keras optimizer options, e.g. `global_clipnorm=1.0`,
            `gradient_accumulation_steps=4`.

    Example:
    ```python
    optimizer = BertAdamW(BertLearningRateSchedule(2e-5, 1000, 100), global_clipnorm=1.0)
    ```
    """

    def __init__(
        self,
        learning_rate=1e-4,
        weight_decay=0.01,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        one_kernel_update="auto",
        name="bert_adamw",
        **kwargs,
    ):
        if not (isinstance(one_kernel_update, bool) or one_kernel_update == "auto"):
            raise ValueError(f'one_kernel_update must be "auto", True or False, got {one_kernel_update!r}')
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.one_kernel_update = one_kernel_update
        self.exclude_from_weight_decay(var_names=[NO_DECAY_PATTERN])

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])
        # One XLA kernel per variable for clip + decay + Adam, where TensorFlow
        # runs single-device variables and has XLA (other strategies' variables,
        # per-variable clipping and the JAX backend take Keras' steps).
        from workbench.models.fast_layers import xla_available

        wanted = self.one_kernel_update is True or (
            self.one_kernel_update == "auto" and sum(math.prod(v.shape) for v in var_list) >= ONE_KERNEL_MIN_PARAMETERS
        )
        self._whole = (
            wanted
            and keras.backend.backend() == "tensorflow"
            and not self.clipnorm
            and not self.clipvalue
            and _plain_tf_variables(*var_list, *self._momentums, *self._velocities)
            and xla_available()
        )

    def whole_update_applies(self):
        if not getattr(self, "_whole", False):
            return False
        import tensorflow as tf

        # Under a strategy with several replicas (central storage, parameter
        # servers) the variables may still look plain, but Keras' steps
        # all-reduce the gradients first and update through the strategy.
        return not tf.distribute.has_strategy() or isinstance(
            tf.distribute.get_strategy(), tf.distribute.OneDeviceStrategy
        )

    def whole_update(self, grads, variables, learning_rate):
        import tensorflow as tf

        update = _update_kernel(self)
        scale = _clip_scale_kernel()(grads, float(self.global_clipnorm)) if self.global_clipnorm else tf.ones(())
        for gradient, variable in zip(grads, variables):
            index = optimizer_variable_index(self, variable)
            update(
                variable.value,
                self._momentums[index].value,
                self._velocities[index].value,
                gradient,
                tf.cast(learning_rate, variable.dtype),
                tf.cast(scale, variable.dtype),
                # Keras' TensorFlow steps match the exclusions against the
                # TensorFlow variable's scoped name (e.g. "beta_head/kernel:0").
                float(self.weight_decay) if uses_weight_decay(self, variable.value) else 0.0,
                self.beta_1,
                self.beta_2,
                self.epsilon,
            )

    def apply(self, grads, trainable_variables=None):
        # The embedding gradient arrives sparse (TensorFlow). The update is dense
        # anyway, as in the original, and global-norm clipping would turn it
        # dense twice (for the norm and for the scaling): once, here, for every path.
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
        return super().apply(grads, trainable_variables)

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        index = optimizer_variable_index(self, variable)
        m, v = self._momentums[index], self._velocities[index]
        if keras.backend.backend() == "tensorflow" and _plain_tf_variables(variable, m, v):
            # TensorFlow's fused Adam kernel: one pass over (w, m, v, g) instead
            # of about ten elementwise ops. Its bias correction is
            # lr * sqrt(1 - beta_2^t) / (1 - beta_1^t); with both powers given
            # as 0 that factor is 1, which is the original's update exactly.
            import tensorflow as tf

            zero = tf.zeros((), variable.dtype)
            tf.raw_ops.ResourceApplyAdam(
                var=variable.handle,
                m=m.value.handle,
                v=v.value.handle,
                beta1_power=zero,
                beta2_power=zero,
                lr=lr,
                beta1=tf.constant(self.beta_1, variable.dtype),
                beta2=tf.constant(self.beta_2, variable.dtype),
                epsilon=tf.constant(self.epsilon, variable.dtype),
                grad=gradient,
            )
            return
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        self.assign_sub(variable, ops.multiply(lr, ops.divide(m, ops.add(ops.sqrt(v), self.epsilon))))

    def get_config(self):
        config = super().get_config()
        config.update(
            beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, one_kernel_update=self.one_kernel_update
        )
        return config


def create_optimizer(
    learning_rate,
    total_steps,
    warmup_steps=0,
    weight_decay=0.01,
    gradient_accumulation_steps=1,
    clipnorm=1.0,
    one_kernel_update="auto",
):
    """BERT's optimizer with the original defaults.

    Args:
        learning_rate: peak learning rate.
        total_steps: optimizer updates in the run (after accumulation).
        warmup_steps: warmup updates.
        weight_decay: decoupled weight decay, not applied to LayerNorm and biases.
        gradient_accumulation_steps: batches whose gradients are averaged per
            update, to reach a large effective batch on small memory.
        clipnorm: global-norm clipping threshold (None disables).
        one_kernel_update: see `BertAdamW`.
    """
    if gradient_accumulation_steps < 1:
        raise ValueError(f"gradient_accumulation_steps must be >= 1, got {gradient_accumulation_steps}")
    return BertAdamW(
        learning_rate=BertLearningRateSchedule(learning_rate, total_steps, warmup_steps, gradient_accumulation_steps),
        weight_decay=weight_decay,
        global_clipnorm=clipnorm,
        gradient_accumulation_steps=gradient_accumulation_steps if gradient_accumulation_steps > 1 else None,
        one_kernel_update=one_kernel_update,
    )
