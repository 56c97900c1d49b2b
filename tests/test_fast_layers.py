import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_inputs

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
    use_fast_layers,
    xla_available,
)


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
    layer = keras.layers.LayerNormalization(epsilon=1e-12)
    layer.build((4, 6, 32))
    layer.gamma.assign(rng.normal(1.0, 0.2, 32).astype("float32"))
    layer.beta.assign(rng.normal(0.0, 0.2, 32).astype("float32"))
    layer.__class__ = FusedLayerNormalization
    assert_fast_matches_plain(layer, rng.normal(0.5, 2.0, (4, 6, 32)).astype("float32"), atol=2e-5)


@pytest.mark.parametrize("activation", [gelu_tanh, gelu_exact])
def test_bias_gelu_dense_matches_keras_forward_and_backward(rng, activation):
    layer = keras.layers.Dense(48, activation=activation)
    layer.build((4, 6, 32))
    layer.bias.assign(rng.normal(0.0, 0.5, 48).astype("float32"))
    layer.__class__ = FusedActivationDense
    assert_fast_matches_plain(layer, rng.normal(0.0, 1.0, (4, 6, 32)).astype("float32"), atol=2e-5)


def test_other_activations_run_as_plain_dense(rng):
    layer = keras.layers.Dense(8, activation="tanh")
    layer.build((2, 4))
    layer.__class__ = FusedActivationDense
    graph = tf.function(layer).get_concrete_function(tf.TensorSpec((2, 4))).graph
    assert "Tanh" in {op.type for op in graph.get_operations()}


def test_layers_in_mixed_bfloat16_keep_float32_statistics(rng):
    layer = keras.layers.LayerNormalization(epsilon=1e-12, dtype="mixed_bfloat16")
    layer.build((2, 3, 16))
    layer.__class__ = FusedLayerNormalization
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


def test_attention_probabilities_and_inference_take_the_keras_path(rng):
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.1)
    x = tf.constant(rng.normal(0, 1, (2, 5, 8)), tf.float32)
    mask = tf.ones((2, 5, 5), bool)
    layer(x, x, attention_mask=mask)
    layer.__class__ = FusedAttention
    expected = layer(x, x, attention_mask=mask, training=False)
    with plain_layers():
        np.testing.assert_allclose(layer(x, x, attention_mask=mask, training=False), expected, atol=1e-6)
    _, probs = layer(x, x, attention_mask=mask, training=True, return_attention_scores=True)
    np.testing.assert_allclose(probs.numpy().sum(-1), 1.0, atol=1e-5)  # softmax before dropout, as Keras returns it


def test_encoder_uses_the_fast_classes_and_gradients_match_plain(rng):
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
    kinds = {type(layer).__name__ for layer in encoder._flatten_layers(include_self=False)}
    assert {
        "FlatEinsumDense",
        "FusedLayerNormalization",
        "FusedActivationDense",
        "BitDropout",
        "FusedAttention",
    } <= kinds
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
    encoder = use_fast_layers(
        keras.Sequential(
            [keras.layers.Dense(8, activation=gelu_tanh), keras.layers.LayerNormalization(), keras.layers.Dropout(0.1)]
        )
    )
    encoder.build((2, 4))

    def call_types():
        fn = tf.function(lambda x: encoder(x, training=True))
        graph = fn.get_concrete_function(tf.TensorSpec((2, 4))).graph
        return {op.type for op in graph.get_operations()}

    assert "PartitionedCall" in call_types()
    with plain_layers():
        assert "PartitionedCall" not in call_types()
