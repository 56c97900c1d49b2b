"""Faster drop-in classes for keras-hub BERT's layers: same variables, same math.

A `BertEncoder` keeps keras-hub's layers and weights, so every keras-hub tool
works on it, but `use_fast_layers` changes the class of some built sublayers so
that their `call` does the same computation with fewer passes over memory.
Each was found in TensorFlow profiles of a training step on our 2-vCPU CPU
(`python -m workbench speed --profile DIR`):

* `FlatEinsumDense`: Keras runs the attention projections (`abc,cde->abde`,
  `abcd,cde->abe`) as a matmul that broadcasts the kernel over the batch; its
  kernel gradient is one matmul per example plus a sum. Here: one 2-D matmul.
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
* `FusedAttention`: while training, the masked softmax and the dropout on the
  attention probabilities (same 16-bit mask) are one XLA kernel each way.

Inside a model compiled with XLA as a whole (GPU, TPU) the kernels are inlined
into the one program. `plain_layers()` turns the fused paths off, e.g. while
tracing a SavedModel for a server that may lack the XLA JIT.

Example:
```python
encoder = keras_hub.models.BertBackbone(
    vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64)
use_fast_layers(encoder)  # same weights and outputs; LayerNorms and dropouts fused
with plain_layers():      # e.g. to compare, or to trace for a server without XLA
    encoder(inputs, training=True)
```
"""

import contextlib
import functools
import math
import threading

import keras
import numpy as np
import tensorflow as tf

_state = threading.local()


@contextlib.contextmanager
def plain_layers():
    """Within this block the fast layers run keras-hub's plain TensorFlow ops."""
    previous = getattr(_state, "plain", False)
    _state.plain = True
    try:
        yield
    finally:
        _state.plain = previous


@functools.cache
def xla_available():
    # Some TensorFlow builds have no XLA CPU JIT; then everything runs plain.
    # The probe runs eagerly even when first asked while a graph is traced.
    try:
        with tf.init_scope():
            tf.function(lambda x: x + 1.0, jit_compile=True)(tf.constant(1.0)).numpy()
        return True
    except Exception:  # noqa: BLE001 (any failure means: no usable XLA here)
        return False


def _fused_enabled():
    return not getattr(_state, "plain", False) and xla_available()


def xla_fused(elementwise, num_differentiable):
    """`elementwise(*inputs)` with its forward pass and its gradient each compiled by XLA
    into one kernel. The first `num_differentiable` inputs get gradients; the
    others (random bits, ...) get none. The output has the first input's dtype.

    16-bit float inputs are computed in float32 inside the kernel: XLA's CPU
    code for bfloat16 arithmetic was measured 2.7x slower than converting
    (tanh-GELU backward on 32x128x3072: 38.8 ms vs 14.6 ms), and the result is
    the more precise one.
    """

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


@keras.saving.register_keras_serializable(package="workbench")
class FlatEinsumDense(keras.layers.EinsumDense):
    """An attention projection computed as one 2-D matmul.

    In a profile of a BERT-Base training step (bfloat16, 2-vCPU CPU) Keras'
    kernel-broadcasting projections took 32% of the op time for 1/3 of the
    matmul FLOPs, 1.45x slower per FLOP than the feed-forward matmuls. Folding
    batch and sequence into one axis makes forward and both gradients plain 2-D
    matmuls: op time -4.7% per step.
    """

    # equation: number of kernel axes contracted with the input
    FLAT_EQUATIONS = {"abc,cde->abde": 1, "abcd,cde->abe": 2}

    def call(self, inputs, training=None):
        folded = self.FLAT_EQUATIONS.get(self.equation)
        if folded is None or getattr(self, "lora_enabled", False) or getattr(self, "quantization_mode", None):
            return super().call(inputs, training=training)
        kernel = self.kernel
        shape = keras.ops.shape(inputs)
        contraction = int(np.prod(kernel.shape[:folded]))
        rows = keras.ops.reshape(inputs, (-1, contraction))
        x = keras.ops.matmul(rows, keras.ops.reshape(kernel, (contraction, -1)))
        x = keras.ops.reshape(x, (shape[0], shape[1], *kernel.shape[folded:]))
        if self.bias is not None:
            x = keras.ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x


# === LayerNorm ===


@functools.cache
def _layer_norm_kernel(epsilon):
    def layer_norm(x, gamma, beta):
        # Keras' arithmetic (in float32, also for 16-bit activations).
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        scale = tf.math.rsqrt(variance + epsilon) * gamma
        return x * scale + (beta - mean * scale)

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
    return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def _gelu_erf(x):
    # Hugging Face's `gelu`: x * Phi(x).
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
    count = tf.reduce_prod(shape)
    words = tf.random.stateless_uniform([(count + 1) // 2], seed, minval=None, maxval=None, dtype=tf.uint32)
    halves = tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:count]
    return tf.reshape(halves, shape)


def _dropout_bits(dropout_layer, shape):
    # The layer's SeedGenerator, as Keras' dropout draws it (int64 state -> int32 seed).
    seed = tf.cast(tf.math.floormod(dropout_layer.seed_generator.next(), tf.int32.max - 1), tf.int32)
    return random_uint16(shape, seed)


def _drop(x, bits, dropped):
    # Inside a kernel. dropped: how many of the 65536 16-bit values drop an
    # element; the rest are scaled by the inverse keep fraction.
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
        return _dropout_kernel(dropped)(inputs, _dropout_bits(self, tf.shape(inputs)))


# === Attention: masked softmax + dropout ===


@functools.cache
def _softmax_dropout_kernel(dropped):
    def softmax_dropout(scores, mask, bits):
        # Keras' masked softmax (masked scores to -1e9, masked probabilities to 0), then dropout.
        probs = tf.where(mask, tf.nn.softmax(tf.where(mask, scores, -1e9), axis=-1), 0.0)
        return _drop(probs, bits, dropped)

    return xla_fused(softmax_dropout, num_differentiable=1)


@keras.saving.register_keras_serializable(package="workbench")
class FusedAttention(keras.layers.MultiHeadAttention):
    """Keras' `MultiHeadAttention` whose masked softmax and attention dropout
    run as one XLA kernel each way while training (BERT's self-attention:
    4-D heads, a padding mask, dropout). Everything else, and any call that
    asks for the attention probabilities, runs as in `MultiHeadAttention`."""

    def _compute_attention(
        self,
        query,
        key,
        value,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        use_causal_mask=False,
    ):
        dropped = round(65536 * self._dropout_layer.rate)
        if not (
            training
            and attention_mask is not None
            and not return_attention_scores
            and not use_causal_mask
            and not self._flash_attention
            and len(query.shape) == 4
            and len(attention_mask.shape) == 3
            and 0 < dropped < 65536
            and _fused_enabled()
        ):
            return super()._compute_attention(
                query,
                key,
                value,
                attention_mask=attention_mask,
                training=training,
                return_attention_scores=return_attention_scores,
                use_causal_mask=use_causal_mask,
            )
        query = keras.ops.multiply(query, keras.ops.cast(self._inverse_sqrt_key_dim, query.dtype))
        scores = keras.ops.einsum(self._dot_product_equation, key, query)  # (batch, heads, query, key)
        mask = keras.ops.expand_dims(keras.ops.cast(attention_mask, "bool"), axis=1)
        probs = _softmax_dropout_kernel(dropped)(scores, mask, _dropout_bits(self._dropout_layer, tf.shape(scores)))
        return keras.ops.einsum(self._combine_equation, probs, value), None


# === Applying them ===

_FAST_CLASSES = {
    keras.layers.LayerNormalization: FusedLayerNormalization,
    keras.layers.Dense: FusedActivationDense,
    keras.layers.Dropout: BitDropout,
    keras.layers.MultiHeadAttention: FusedAttention,
}


def use_fast_layers(model):
    """Switch a built keras-hub BERT's sublayers to the fast classes above, in place.

    Only layers of exactly the plain Keras class are switched; variables, names
    and configs stay as they were. A `BertEncoder` saves its constructor config
    and re-applies this when loaded; a functional model built around the
    layers saves their fast class names, registered here ("workbench>...").
    """
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if type(layer) is keras.layers.EinsumDense and layer.equation in FlatEinsumDense.FLAT_EQUATIONS:
            layer.__class__ = FlatEinsumDense
        elif type(layer) in _FAST_CLASSES:
            layer.__class__ = _FAST_CLASSES[type(layer)]
    return model
