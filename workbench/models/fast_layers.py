"""Faster layers for BERT: the same variables and math as Keras' own, fewer passes over memory.

`workbench.models.encoder` constructs a BERT from these classes (they are
subclasses of the Keras layers keras-hub uses, with the same variables and
configs, so weights, presets and `.keras` files are keras-hub's). Each was
found in TensorFlow profiles of a training step on our 2-vCPU CPU
(`python -m workbench speed --profile DIR`):

* `flat_einsum_dense` (used by `FusedAttention`): Keras runs the attention
  projections (`abc,cde->abde`, `abcd,cde->abe`) as a matmul that broadcasts
  the kernel over the batch; its kernel gradient is one matmul per example plus
  a sum. Here: one 2-D matmul.
* `FusedLayerNormalization`, `FusedActivationDense`: TensorFlow runs a
  LayerNorm as about ten elementwise ops and bias + tanh-GELU as about eight,
  each a pass over the activations, forward and again backward. Here the
  elementwise part is one XLA-compiled kernel forward and one backward (the
  backward recomputes the forward inside its kernel instead of keeping
  intermediates). The matmuls stay with TensorFlow's oneDNN kernels, which
  are twice as fast as XLA's on CPU.
* `BitDropout`: the keep mask comes from 16-bit random numbers (a float32
  uniform costs a 32-bit Philox output per element, twice the random bits
  needed) and mask, scale and select are one XLA kernel. The effective rate is
  `round(65536 * rate) / 65536` (0.1 -> 0.1000061) and the kept values are
  scaled by the inverse of that keep fraction, so expectations are exact.
* `FusedAttention`: flat projections and, while training, the masked softmax
  and the dropout on the attention probabilities (same 16-bit mask) as one XLA
  kernel each way.

Inside a model compiled with XLA as a whole (GPU, TPU) the kernels are inlined
into the one program. Where TensorFlow has no XLA JIT the fused kernels are off
(one warning on the `workbench` logger says so). `plain_layers()` makes every
class here run Keras' own `call`, e.g. while tracing a SavedModel for a server
that may lack the XLA JIT.

The kernels are TensorFlow ops. Under any other Keras backend (JAX) every class
here runs Keras' own `call`, which XLA compiles and fuses with the whole step,
and this module does not import TensorFlow: the variables, their paths and the
math are the same, so weights and presets move between backends unchanged.

Example:
```python
norm = FusedLayerNormalization(epsilon=1e-12)
y = norm(x)                # one XLA kernel; same result as keras.layers.LayerNormalization
with plain_layers():       # e.g. to compare, or to trace for a server without XLA
    y_plain = norm(x)
```
"""

import contextlib
import functools
import logging
import math
import threading

import keras
import numpy as np

from workbench.models.keras_internals import attention_dropout_seed_generator, keras_mask

log = logging.getLogger("workbench")
_state = threading.local()


@contextlib.contextmanager
def plain_layers():
    """Within this block the fast layers run Keras' own `call` (plain backend ops)."""
    previous = getattr(_state, "plain", False)
    _state.plain = True
    try:
        yield
    finally:
        _state.plain = previous


@functools.cache
def xla_available():
    """Whether TensorFlow can JIT-compile with XLA here (probed once, logged if not).

    Some TensorFlow builds have no XLA CPU JIT; then the fused kernels are off
    and the plain ops run, several times slower per step, which a user should
    hear about once. The probe runs eagerly even when first asked while a graph
    is traced.
    """
    import tensorflow as tf

    try:
        with tf.init_scope():
            tf.function(lambda x: x + 1.0, jit_compile=True)(tf.constant(1.0)).numpy()
        return True
    except Exception as error:  # noqa: BLE001 (any failure means: no usable XLA here)
        log.warning(
            "XLA JIT is unavailable in this TensorFlow build (%s: %s); the fused kernels of "
            "workbench.models.fast_layers are off and plain TensorFlow ops run instead (slower)",
            type(error).__name__,
            str(error).splitlines()[0] if str(error) else "",
        )
        return False


def _plain():
    # Keras' own `call`: asked for (`plain_layers()`), or a backend other than
    # TensorFlow, whose compiler fuses the plain ops itself.
    return getattr(_state, "plain", False) or keras.backend.backend() != "tensorflow"


def _fused_enabled():
    return not _plain() and xla_available()


def xla_fused(elementwise, num_differentiable):
    """`elementwise(*inputs)` with its forward pass and its gradient each compiled by XLA
    into one kernel. The first `num_differentiable` inputs get gradients; the
    others (random bits, ...) get none. The output has the first input's dtype.

    16-bit float inputs are computed in float32 inside the kernel: XLA's CPU
    code for bfloat16 arithmetic was measured 2.7x slower than converting
    (tanh-GELU backward on 32x128x3072: 38.8 ms vs 14.6 ms), and the result is
    the more precise one.
    """
    import tensorflow as tf

    def fn(*inputs):
        wide = [tf.cast(t, tf.float32) if t.dtype in (tf.bfloat16, tf.float16) else t for t in inputs]
        return tf.cast(elementwise(*wide), inputs[0].dtype)

    forward = tf.function(fn, jit_compile=True, autograph=False)

    @tf.function(jit_compile=True, autograph=False)
    def backward(upstream, *inputs):
        differentiable = list(inputs[:num_differentiable])
        with tf.GradientTape() as tape:
            tape.watch(differentiable)
            outputs = fn(*differentiable, *inputs[num_differentiable:])
        return tape.gradient(outputs, differentiable, output_gradients=upstream)

    @tf.custom_gradient
    def fused(*inputs):
        def gradient(upstream):
            return list(backward(upstream, *inputs)) + [None] * (len(inputs) - num_differentiable)

        return forward(*inputs), gradient

    return fused


# === Flat attention projections ===

# EinsumDense equation of an attention projection -> number of kernel axes
# contracted with the input.
_FLAT_EQUATIONS = {"abc,cde->abde": 1, "abcd,cde->abe": 2}


def flat_einsum_dense(layer, inputs):
    """An attention projection (`keras.layers.EinsumDense`) computed as one 2-D matmul.

    In a profile of a BERT-Base training step (bfloat16, 2-vCPU CPU) Keras'
    kernel-broadcasting projections took 32% of the op time for 1/3 of the
    matmul FLOPs, 1.45x slower per FLOP than the feed-forward matmuls: their
    kernel gradient is one matmul per example plus a sum. Folding batch and
    sequence into one axis makes forward and both gradients plain 2-D matmuls:
    op time -4.7% per step. Other equations, LoRA and quantized layers run the
    layer itself.
    """
    folded = _FLAT_EQUATIONS.get(layer.equation)
    if folded is None or getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None):
        return layer(inputs)
    kernel = layer.kernel
    shape = keras.ops.shape(inputs)
    contraction = int(np.prod(kernel.shape[:folded]))
    rows = keras.ops.reshape(inputs, (-1, contraction))
    x = keras.ops.matmul(rows, keras.ops.reshape(kernel, (contraction, -1)))
    x = keras.ops.reshape(x, (shape[0], shape[1], *kernel.shape[folded:]))
    if layer.bias is not None:
        x = keras.ops.add(x, layer.bias)
    if layer.activation is not None:
        x = layer.activation(x)
    return x


# === LayerNorm ===


@functools.cache
def _layer_norm_kernel(epsilon):
    """LayerNorm in float32 with the row statistics as matrix-vector products.

    Why: TensorFlow 2.21's XLA CPU compiler splits a row reduction into a
    reduce-window and a reduce and writes every full-size intermediate in
    between (the converted input, the squared deviations, and in the backward
    pass four more), so `tf.nn.moments` inside the kernel made it about fifteen
    passes over memory. A product with a column of 1/width is a dot, which XLA
    keeps as one matmul: forward + backward at BERT-Base shapes (32x128x768,
    bfloat16) 48 -> 29 ms, whole BERT-Base training step 6% faster (5.99 -> 6.36
    and 3.25 -> 3.43 seq/s in alternating processes on the 2-vCPU Intel Xeon).
    The mean is then subtracted before squaring, as Keras' `moments` does.
    """
    import tensorflow as tf

    def layer_norm(x, gamma, beta):
        width = x.shape[-1]
        rows = tf.reshape(x, [-1, width])
        average = tf.fill([width, 1], 1.0 / width)
        mean = tf.matmul(rows, average)
        centered = rows - mean
        variance = tf.matmul(tf.square(centered), average)
        normalized = centered * (tf.math.rsqrt(variance + epsilon) * gamma) + beta
        return tf.reshape(normalized, tf.shape(x))

    return xla_fused(layer_norm, num_differentiable=3)


@keras.saving.register_keras_serializable(package="workbench")
class FusedLayerNormalization(keras.layers.LayerNormalization):
    """Keras' `LayerNormalization` over the last axis as one XLA kernel each way."""

    def call(self, inputs):
        if not (_fused_enabled() and self._fusable()):
            return super().call(inputs)
        gamma = keras.ops.cast(self.gamma, "float32")
        beta = keras.ops.cast(self.beta, "float32")
        outputs = _layer_norm_kernel(float(self.epsilon))(inputs, gamma, beta)
        return keras.ops.cast(outputs, self.compute_dtype)

    def _fusable(self):
        # keras-hub's LayerNorms: last axis, with gain and offset.
        return self.axis in (-1, [-1]) and self.center and self.scale and not self.rms_scaling


# === Bias + GELU ===


def _gelu_tanh(x):
    # The original BERT's `gelu`: 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))).
    import tensorflow as tf

    return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def _gelu_erf(x):
    # Hugging Face's `gelu`: x * Phi(x).
    import tensorflow as tf

    return 0.5 * x * (1.0 + tf.math.erf(x * (1.0 / math.sqrt(2.0))))


@functools.cache
def _bias_activation_kernel(form):
    activation = {"tanh": _gelu_tanh, "erf": _gelu_erf}[form]
    return xla_fused(lambda x, bias: activation(x + bias), num_differentiable=2)


@keras.saving.register_keras_serializable(package="workbench")
class FusedActivationDense(keras.layers.Dense):
    """Keras' `Dense` whose bias add and GELU run as one XLA kernel each way.

    The activation is recognised by its `gelu_form` attribute ("tanh" or
    "erf"), which `workbench.models.encoder` sets on its GELU functions; any other
    activation runs as in `Dense`.
    """

    def call(self, inputs, training=None):
        form = getattr(self.activation, "gelu_form", None)
        if (
            form is None
            or self.bias is None
            or not _fused_enabled()
            or getattr(self, "lora_enabled", False)
            or getattr(self, "quantization_mode", None)
        ):
            return super().call(inputs, training=training)
        x = keras.ops.matmul(inputs, self.kernel)
        return _bias_activation_kernel(form)(x, keras.ops.cast(self.bias, x.dtype))


# === Dropout ===


def random_uint16(shape, seed):
    """Uniform 16-bit random integers: half as many 32-bit Philox outputs."""
    import tensorflow as tf

    count = tf.reduce_prod(shape)
    words = tf.random.stateless_uniform([(count + 1) // 2], seed, minval=None, maxval=None, dtype=tf.uint32)
    halves = tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:count]
    return tf.reshape(halves, shape)


def _seed(seed_generator):
    # The next seed of a SeedGenerator, as Keras' dropout draws it (int64 state -> int32 seed).
    import tensorflow as tf

    return tf.cast(tf.math.floormod(seed_generator.next(), tf.int32.max - 1), tf.int32)


def _drop(x, bits, dropped):
    # Inside a kernel. dropped: how many of the 65536 16-bit values drop an
    # element; the rest are scaled by the inverse keep fraction.
    import tensorflow as tf

    keep = tf.cast(bits, tf.int32) >= dropped
    return tf.where(keep, x * (65536.0 / (65536 - dropped)), tf.zeros_like(x))


@functools.cache
def _dropout_kernel(dropped):
    return xla_fused(lambda x, bits: _drop(x, bits, dropped), num_differentiable=1)


@keras.saving.register_keras_serializable(package="workbench")
class BitDropout(keras.layers.Dropout):
    """Keras' `Dropout` with a 16-bit random mask applied in one XLA kernel.

    Drops with probability `round(65536 * rate) / 65536` and scales kept values
    by the inverse keep fraction. Rates that round to 0 or to 1, and
    `noise_shape`, run as in `Dropout`.
    """

    def call(self, inputs, training=False):
        dropped = round(65536 * self.rate)
        if not (training and 0 < dropped < 65536 and self.noise_shape is None and _fused_enabled()):
            return super().call(inputs, training=training)
        import tensorflow as tf

        return _dropout_kernel(dropped)(inputs, random_uint16(tf.shape(inputs), _seed(self.seed_generator)))


# === Attention: flat projections, masked softmax + dropout ===


@functools.cache
def _softmax_dropout_kernel(dropped):
    import tensorflow as tf

    def softmax_dropout(scores, mask, bits):
        # Keras' masked softmax (masked scores to -1e9, masked probabilities to 0), then dropout.
        probs = tf.where(mask, tf.nn.softmax(tf.where(mask, scores, -1e9), axis=-1), 0.0)
        return _drop(probs, bits, dropped)

    return xla_fused(softmax_dropout, num_differentiable=1)


# Keras' einsum equations for 3-D inputs attending over axis 1 (BERT's case):
# key (B,S,N,H), query (B,T,N,H) -> scores (B,N,T,S); probs, value -> (B,T,N,H).
_SCORES_EQUATION = "aecd,abcd->acbe"
_COMBINE_EQUATION = "acbe,aecd->abcd"


@keras.saving.register_keras_serializable(package="workbench")
class FusedAttention(keras.layers.MultiHeadAttention):
    """Keras' `MultiHeadAttention` with flat projections and, while training,
    the masked softmax and attention dropout as one XLA kernel each way.

    BERT's self-attention (3-D inputs, an explicit `attention_mask`, no Keras
    masks on the inputs, no causal mask) runs here from the public sublayers
    (`query_dense`, ..., `output_dense`), with the projections as 2-D matmuls
    (`flat_einsum_dense`) and the dropout mask from 16-bit random numbers like
    `BitDropout`, drawn from the random state of Keras' own attention dropout.
    Any other call, a call that asks for the attention probabilities, other
    configurations (gate, sliding window, flash attention, other attention
    axes), everything inside `plain_layers()` and every call under a backend
    other than TensorFlow run Keras' own `MultiHeadAttention.call`.

    Args:
        as `keras.layers.MultiHeadAttention`.

    Example:
    ```python
    attention = FusedAttention(num_heads=2, key_dim=16, dropout=0.1)
    y = attention(x, x, attention_mask=mask, training=True)  # x: (batch, seq, 32)
    ```
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = self.get_config()
        self._bert_shaped = (
            not config["use_gate"]
            and config["output_shape"] is None
            and config["sliding_window"] is None
            and config["attention_axes"] in (None, 1, (1,), [1])
            and not kwargs.get("flash_attention")
        )

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        if not (
            self._bert_shaped
            and attention_mask is not None
            and query_mask is None
            and value_mask is None
            and key_mask is None
            and not return_attention_scores
            and not use_causal_mask
            and len(query.shape) == 3
            and len(value.shape) == 3
            and len(attention_mask.shape) == 3
            and all(keras_mask(t) is None for t in (query, value, key))
            and not keras.config.is_flash_attention_enabled()
            and not _plain()
        ):
            return super().call(
                query,
                value,
                key=key,
                query_mask=query_mask,
                value_mask=value_mask,
                key_mask=key_mask,
                attention_mask=attention_mask,
                return_attention_scores=return_attention_scores,
                training=training,
                use_causal_mask=use_causal_mask,
            )
        key = value if key is None else key
        query = flat_einsum_dense(self.query_dense, query)
        key = flat_einsum_dense(self.key_dense, key)
        value = flat_einsum_dense(self.value_dense, value)
        query = keras.ops.multiply(query, keras.ops.cast(1.0 / math.sqrt(float(self.key_dim)), query.dtype))
        scores = keras.ops.einsum(_SCORES_EQUATION, key, query)  # (batch, heads, query, key)
        mask = keras.ops.expand_dims(keras.ops.cast(attention_mask, "bool"), axis=1)
        dropped = round(65536 * self.dropout)
        if training and 0 < dropped < 65536 and xla_available():
            import tensorflow as tf

            bits = random_uint16(tf.shape(scores), _seed(attention_dropout_seed_generator(self)))
            probs = _softmax_dropout_kernel(dropped)(scores, mask, bits)
        else:
            # Keras' masked softmax (`keras.layers.Softmax` with a mask) and dropout.
            probs = keras.ops.softmax(keras.ops.where(mask, scores, -1e9), axis=-1)
            probs = keras.ops.where(mask, probs, keras.ops.zeros_like(probs))
            if training and self.dropout > 0:
                probs = keras.random.dropout(probs, self.dropout, seed=attention_dropout_seed_generator(self))
        return flat_einsum_dense(self.output_dense, keras.ops.einsum(_COMBINE_EQUATION, probs, value))
