import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_inputs

from workbench.models import fast_layers
from workbench.models.config import BertConfig
from workbench.models.encoder import BertEncoder, gelu_exact, gelu_tanh
from workbench.models.fast_layers import (
    BitDropout,
    FusedActivationDense,
    FusedAttention,
    FusedLayerNormalization,
    _softmax_dropout_kernel,
    plain_layers,
    random_uint16,
    xla_available,
)
from workbench.models.keras_internals import transformer_sublayers


def outputs_and_gradients(layer, x, **call_kwargs):
    """Forward output and gradients of a weighted sum of it (input and weights)."""
    x = tf.convert_to_tensor(x)
    weights = tf.random.stateless_normal(layer.compute_output_shape(x.shape), seed=[3, 4])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, **call_kwargs)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    return [y.numpy()] + [g.numpy() for g in grads]


def assert_fast_matches_plain(layer, x, atol, **call_kwargs):
    fast = outputs_and_gradients(layer, x, **call_kwargs)
    with plain_layers():
        plain = outputs_and_gradients(layer, x, **call_kwargs)
    for f, p in zip(fast, plain, strict=True):
        np.testing.assert_allclose(f.astype("float32"), p.astype("float32"), atol=atol, rtol=atol)


def test_xla_is_found_even_when_first_asked_inside_a_graph():
    # The probe once ran inside a traced graph, failed there and cached "no XLA":
    # the fast paths were then silently off in every fit().
    xla_available.cache_clear()
    seen = []
    tf.function(lambda: seen.append(xla_available()) or tf.constant(0))()
    assert seen == [True]


def test_layer_norm_matches_keras_forward_and_backward(rng):
    layer = FusedLayerNormalization(epsilon=1e-12)
    layer.build((4, 6, 32))
    layer.gamma.assign(rng.normal(1.0, 0.2, 32).astype("float32"))
    layer.beta.assign(rng.normal(0.0, 0.2, 32).astype("float32"))
    assert_fast_matches_plain(layer, rng.normal(0.5, 2.0, (4, 6, 32)).astype("float32"), atol=2e-5)


@pytest.mark.parametrize("activation", [gelu_tanh, gelu_exact])
def test_bias_gelu_dense_matches_keras_forward_and_backward(rng, activation):
    layer = FusedActivationDense(48, activation=activation)
    layer.build((4, 6, 32))
    layer.bias.assign(rng.normal(0.0, 0.5, 48).astype("float32"))
    assert_fast_matches_plain(layer, rng.normal(0.0, 1.0, (4, 6, 32)).astype("float32"), atol=2e-5)


def test_other_activations_run_as_plain_dense(rng):
    layer = FusedActivationDense(8, activation="tanh")
    layer.build((2, 4))
    graph = tf.function(layer).get_concrete_function(tf.TensorSpec((2, 4))).graph
    assert "Tanh" in {op.type for op in graph.get_operations()}


def test_layers_in_mixed_bfloat16_keep_float32_statistics(rng):
    layer = FusedLayerNormalization(epsilon=1e-12, dtype="mixed_bfloat16")
    layer.build((2, 3, 16))
    x = tf.constant(rng.normal(0, 3, (2, 3, 16)), tf.bfloat16)
    fast = outputs_and_gradients(layer, x)
    with plain_layers():
        plain = outputs_and_gradients(layer, x)
    assert fast[0].dtype == plain[0].dtype == tf.bfloat16.as_numpy_dtype
    assert fast[2].dtype == np.float32  # gamma's gradient, for the float32 variable
    for f, p in zip(fast, plain, strict=True):
        np.testing.assert_allclose(f.astype("float32"), p.astype("float32"), atol=2e-2, rtol=2e-2)


def test_random_uint16_is_uniform_and_any_size():
    bits = random_uint16(tf.constant([3, 333, 335]), tf.constant([1, 2])).numpy()  # an odd count
    assert bits.shape == (3, 333, 335) and bits.dtype == np.uint16
    assert abs(bits.mean() - 32767.5) < 300
    assert abs((bits < 6554).mean() - 0.1) < 3e-3


def test_bit_dropout_rate_scale_and_gradient():
    layer = BitDropout(0.1, seed=7)
    x = tf.ones((1000, 1000))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    grad = tape.gradient(y, x).numpy()
    y = y.numpy()
    dropped = np.round(65536 * 0.1)
    assert abs((y == 0).mean() - dropped / 65536) < 2e-3  # 10^6 draws: std 3e-4
    kept = y[y != 0]
    np.testing.assert_allclose(kept, 65536 / (65536 - dropped), rtol=1e-6)
    np.testing.assert_array_equal(grad, y)  # d(mask * scale * x)/dx = mask * scale
    assert abs(y.mean() - 1.0) < 2e-3  # expectation kept exactly, up to sampling


def test_bit_dropout_masks_follow_the_seed():
    x = tf.ones((64, 64))
    a, b = BitDropout(0.3, seed=1), BitDropout(0.3, seed=1)
    first = a(x, training=True).numpy()
    np.testing.assert_array_equal(first, b(x, training=True).numpy())
    assert (first != a(x, training=True).numpy()).any()  # a new mask each call
    np.testing.assert_array_equal(a(x, training=False).numpy(), x.numpy())


def test_bit_dropout_falls_back_for_rates_it_cannot_represent():
    layer = BitDropout(1e-6, seed=0)  # rounds to 0 of 65536
    graph = tf.function(lambda x: layer(x, training=True)).get_concrete_function(tf.TensorSpec((4, 4))).graph
    assert "StatelessRandomUniformV2" in {op.type for op in graph.get_operations()}


def test_softmax_dropout_kernel_matches_keras_masked_softmax_with_the_same_bits(rng):
    scores = tf.constant(rng.normal(0, 2, (2, 3, 5, 5)), tf.float32)
    mask = tf.constant(rng.random((2, 1, 5, 5)) > 0.3)
    bits = tf.constant(rng.integers(0, 65536, (2, 3, 5, 5)), tf.uint16)
    upstream = tf.constant(rng.normal(0, 1, (2, 3, 5, 5)), tf.float32)
    keep_scale = tf.where(tf.cast(bits, tf.int32) >= 6554, 65536 / (65536 - 6554), 0.0)

    def gradient_of(fn):
        with tf.GradientTape() as tape:
            tape.watch(scores)
            out = fn(scores)
        return out.numpy(), tape.gradient(out, scores, output_gradients=upstream).numpy()

    fused = gradient_of(lambda s: _softmax_dropout_kernel(6554)(s, mask, bits))
    reference = gradient_of(lambda s: keras.layers.Softmax()(s, mask=mask) * keep_scale)
    for f, r in zip(fused, reference, strict=True):
        np.testing.assert_allclose(f, r, atol=1e-6)


def padding_attention_mask(lengths, seq):
    valid = np.arange(seq)[None, :] < np.asarray(lengths)[:, None]
    return tf.constant(valid[:, None, :] & np.ones((1, seq, 1), bool))  # (batch, query, key)


def test_attention_probabilities_and_inference_match_keras(rng):
    layer = FusedAttention(num_heads=2, key_dim=4, dropout=0.1)
    x = tf.constant(rng.normal(0, 1, (2, 5, 8)), tf.float32)
    mask = padding_attention_mask([5, 3], 5)
    expected = layer(x, x, attention_mask=mask, training=False)  # flat projections, masked softmax
    with plain_layers():
        np.testing.assert_allclose(layer(x, x, attention_mask=mask, training=False), expected, atol=1e-6)
    _, probs = layer(x, x, attention_mask=mask, training=True, return_attention_scores=True)
    np.testing.assert_allclose(probs.numpy().sum(-1), 1.0, atol=1e-5)  # softmax before dropout, as Keras returns it
    assert np.abs(probs.numpy()[1, :, :, 3:]).max() == 0  # padded keys get no attention


@pytest.mark.parametrize("with_xla", [True, False])
def test_attention_training_path_matches_keras_forward_and_backward(rng, monkeypatch, with_xla):
    # Dropout 1/65536: the training path runs (fused kernel, or without XLA the
    # plain-op fallback) but drops nothing at this size, so it must equal Keras'
    # MultiHeadAttention (inside plain_layers) in outputs and all gradients.
    monkeypatch.setattr(fast_layers, "xla_available", lambda: with_xla)
    layer = FusedAttention(num_heads=2, key_dim=4, dropout=1 / 65536, seed=3)
    x = rng.normal(0, 1, (2, 5, 8)).astype("float32")
    layer(x, x)
    for w in layer.weights:
        w.assign(rng.normal(0.0, 0.5, w.shape).astype("float32"))
    mask = padding_attention_mask([5, 2], 5)
    assert_fast_matches_plain(_SelfAttention(layer, mask), x, atol=1e-5, training=True)


class _SelfAttention(keras.layers.Layer):
    """`attention(x, x, attention_mask=mask)` as a one-input layer for `assert_fast_matches_plain`."""

    def __init__(self, attention, mask):
        super().__init__()
        self.attention, self.mask = attention, mask

    def call(self, x, training=None):
        return self.attention(x, x, attention_mask=self.mask, training=training)

    def compute_output_shape(self, shape):
        return shape


def test_encoder_is_built_from_the_fast_classes_and_gradients_match_plain(rng):
    # Attention dropout 1/65536: the fused attention kernel runs (it needs a
    # rate above 0) but drops nothing at these sizes, so fast and plain agree.
    config = BertConfig.from_size(
        "tiny",
        vocab_size=60,
        max_position_embeddings=16,
        hidden_size=32,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=1 / 65536,
    )
    encoder = BertEncoder.from_config_object(config)
    assert isinstance(encoder.embeddings_layer_norm, FusedLayerNormalization)
    assert isinstance(encoder.embeddings_dropout, BitDropout)
    sublayers = transformer_sublayers(encoder.transformer_layers[0])
    assert isinstance(sublayers.self_attention, FusedAttention)
    assert isinstance(sublayers.feedforward_intermediate_dense, FusedActivationDense)
    assert sublayers.feedforward_intermediate_dense.activation is gelu_tanh
    assert isinstance(sublayers.feedforward_layer_norm, FusedLayerNormalization)
    assert isinstance(sublayers.feedforward_dropout, BitDropout)
    inputs = random_inputs(rng)

    def run():
        with tf.GradientTape() as tape:
            out = encoder(inputs, training=True)
            loss = tf.reduce_sum(out["sequence_output"] ** 2) + tf.reduce_sum(out["pooled_output"])
        return [
            g.numpy() if not isinstance(g, tf.IndexedSlices) else tf.convert_to_tensor(g).numpy()
            for g in tape.gradient(loss, encoder.trainable_weights)
        ]

    fast = run()
    with plain_layers():
        plain = run()
    for f, p in zip(fast, plain, strict=True):
        np.testing.assert_allclose(f, p, atol=1e-4, rtol=1e-4)


def test_plain_layers_leaves_no_xla_kernels_in_a_traced_graph():
    model = keras.Sequential(
        [
            FusedActivationDense(8, activation=gelu_tanh),
            FusedLayerNormalization(),
            BitDropout(0.1),
        ]
    )
    model.build((2, 4))

    def call_types():
        fn = tf.function(lambda x: model(x, training=True))
        graph = fn.get_concrete_function(tf.TensorSpec((2, 4))).graph
        return {op.type for op in graph.get_operations()}

    assert "PartitionedCall" in call_types()
    with plain_layers():
        assert "PartitionedCall" not in call_types()


def test_missing_xla_is_logged_once(monkeypatch, caplog):
    # Without the XLA JIT the fused kernels are off; that costs speed and was silent.
    def no_jit(*args, jit_compile=None, **kwargs):
        if jit_compile:
            raise tf.errors.InvalidArgumentError(None, None, "No registered XlaLaunch kernel")
        return real_function(*args, **kwargs)

    real_function = tf.function
    monkeypatch.setattr(tf, "function", no_jit)
    xla_available.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="workbench"):
            assert not xla_available()
            assert not xla_available()
    finally:
        monkeypatch.undo()
        xla_available.cache_clear()
    lines = [r.getMessage() for r in caplog.records if r.name == "workbench"]
    assert len(lines) == 1
    assert "XLA JIT is unavailable" in lines[0] and "fused kernels" in lines[0] and "XlaLaunch" in lines[0]
    assert xla_available()
