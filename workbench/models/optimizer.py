"""BERT's optimizer: Adam with decoupled weight decay, warmup + linear decay.

The original `AdamWeightDecayOptimizer` differs from `keras.optimizers.AdamW` in
one way that changes results: it has no bias correction of the moment
estimates, so early steps are larger (3.16x at step 1, while the second-moment
estimate is still small; warmup keeps them harmless). `BertAdamW` reproduces the original;
everything else (global-norm clipping, gradient accumulation, excluding
LayerNorm and biases from decay) is Keras' own machinery.
"""

import keras
from keras import ops

from workbench.models.keras_internals import optimizer_variable_index

# The original excludes every variable whose name contains "LayerNorm",
# "layer_norm" or "bias"; in Keras the LayerNorm variables are gamma/beta.
NO_DECAY_PATTERN = r"bias|gamma|beta|layer_norm|LayerNorm"


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
    """Single-device TensorFlow variables (the fused kernel takes their handles;
    mirrored ones go through Keras' distribution-aware assignments instead)."""
    import tensorflow as tf

    return all(isinstance(v, tf.Variable) and not isinstance(v, tf.distribute.DistributedValues) for v in variables)


@keras.saving.register_keras_serializable(package="workbench")
class BertAdamW(keras.optimizers.Optimizer):
    """Adam with decoupled weight decay and no bias correction (the original's
    `AdamWeightDecayOptimizer`):

        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        w = w - lr (m / (sqrt(v) + eps) + weight_decay w)

    Args:
        learning_rate: float or schedule.
        weight_decay: decoupled decay rate (0.01 in the original).
        beta_1, beta_2, epsilon: Adam constants (0.9, 0.999, 1e-6 in the original).
        **kwargs: Keras optimizer options, e.g. `global_clipnorm=1.0`,
            `gradient_accumulation_steps=4`.

    Example:
    ```python
    optimizer = BertAdamW(BertLearningRateSchedule(2e-5, 1000, 100), global_clipnorm=1.0)
    ```
    """

    def __init__(
        self, learning_rate=1e-4, weight_decay=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-6, name="bert_adamw", **kwargs
    ):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.exclude_from_weight_decay(var_names=[NO_DECAY_PATTERN])

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])

    def apply(self, grads, trainable_variables=None):
        # The embedding gradient arrives sparse; global-norm clipping would turn
        # it dense twice (for the norm and for the scaling). Once, before Keras
        # sees it, is enough: the update below is dense anyway, as in the original.
        if self.global_clipnorm and keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
        return super().apply(grads, trainable_variables)

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        index = optimizer_variable_index(self, variable)
        m, v = self._momentums[index], self._velocities[index]
        if keras.backend.backend() == "tensorflow" and _plain_tf_variables(variable, m.value, v.value):
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
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config


def create_optimizer(
    learning_rate, total_steps, warmup_steps=0, weight_decay=0.01, gradient_accumulation_steps=1, clipnorm=1.0
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
    """
    if gradient_accumulation_steps < 1:
        raise ValueError(f"gradient_accumulation_steps must be >= 1, got {gradient_accumulation_steps}")
    return BertAdamW(
        learning_rate=BertLearningRateSchedule(learning_rate, total_steps, warmup_steps, gradient_accumulation_steps),
        weight_decay=weight_decay,
        global_clipnorm=clipnorm,
        gradient_accumulation_steps=gradient_accumulation_steps if gradient_accumulation_steps > 1 else None,
    )
