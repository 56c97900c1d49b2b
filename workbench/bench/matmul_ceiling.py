"""The MFU a step could reach if it were nothing but its matmuls.

MFU divides a step's FLOP/s by the peak of one large square matmul. A model's
own products are smaller and oddly shaped (BERT-Tiny multiplies 4096x128 by
128x128; attention multiplies 64 pairs of 128x64 blocks), and the backward pass
adds transposed products, so they may not reach that peak even alone. This
module times exactly the products of one step of the encoder's layers (the
forward ones, and for training the two gradient products of each), in the
model's compute dtype, with nothing else between them, and reports their
FLOP/s over the same peak: the ceiling for MFU at that shape, on that machine,
before any of the step's other work (LayerNorm, softmax, dropout, the
optimizer).

Why: on the 2-vCPU Intel Xeon with AMX (2026-11-30, bfloat16, seq 128, batch
32) BERT-Base's products alone ran at 0.95-0.98 of the peak, while
BERT-Tiny's reached only 0.38-0.40 (0.41-0.45 with query, key and value as
one product): with those products, the MFU goal of 0.5 for BERT-Tiny there was
out of reach whatever else in the step changed.

A layer's products run as one compiled function, called once per layer, and
each has its own operands: TensorFlow's graph optimizer merges identical
products (with operands shared by all layers in one function, BERT-Base's
"ran" at 17x the peak). One function for all layers, with L times the
operands, measured the same for BERT-Tiny (0.38 of the peak either way).
"""

import math
import time


def layer_products(config, seq, batch, mode="train"):
    """The matmuls of one encoder layer for a step on `batch` sequences of `seq`
    tokens: query, key, value and output projections, the feed-forward pair,
    attention scores and mixing; for `mode="train"` also the input and weight
    gradient products of each. The pooler and the classifier are left out
    (with the biases and LayerNorms, 4% of BERT-Tiny's fine-tuning FLOPs in
    the MFU formula, under 1% of BERT-Base's). Each product is `(batch dims,
    m, k, n, transpose_a, transpose_b)`: an (m x k) by (k x n) product,
    operands stored transposed where the gradient's product reads them so."""
    if mode not in ("train", "predict"):
        # Pretraining's MLM transform and tied decoder are head products, a large share of a small
        # model's step (55% of BERT-Tiny's FLOPs at seq 128): not layer products.
        raise ValueError(f"mode must be train or predict, got {mode!r}")
    h, i, heads = config.hidden_size, config.intermediate_size, config.num_attention_heads
    tokens, width = seq * batch, h // heads
    forward = [((), tokens, h, h)] * 4 + [((), tokens, h, i), ((), tokens, i, h)]
    attention = [((batch, heads), seq, width, seq), ((batch, heads), seq, seq, width)]
    products = [(b, m, k, n, False, False) for b, m, k, n in forward + attention]
    if mode == "predict":
        return products
    for b, m, k, n in forward + attention:
        products.append((b, m, n, k, False, True))  # input gradient: dY (m x n) @ B^T (n x k)
        products.append((b, k, m, n, True, False))  # weight (or second operand) gradient: A^T (k x m) @ dY (m x n)
    return products


def product_flops(products):
    return sum(2 * math.prod(batch_dims) * m * k * n for batch_dims, m, k, n, _, _ in products)


def _operand_shapes(product):
    batch_dims, m, k, n, transpose_a, transpose_b = product
    a = (*batch_dims, k, m) if transpose_a else (*batch_dims, m, k)
    b = (*batch_dims, n, k) if transpose_b else (*batch_dims, k, n)
    return a, b


def fastest_seconds(products, dtype, xla=False, repeats=10, calls=1):
    """Seconds of the fastest of `repeats` timings of `calls` back-to-back calls
    of one compiled function computing all `products` (each with its own
    random operands, made on the device), under the Keras backend in use:
    TensorFlow's `tf.function` (`jit_compile=xla`) or `jax.jit`. One wait ends
    each timing, so on an accelerator the time is the device's.

    Both the MFU peak (`speed.measure_peak`: one square product) and the
    ceiling (`measure_ceiling`: a step's layer products, one call per layer)
    are timed here."""
    import keras

    shapes = [shape for product in products for shape in _operand_shapes(product)]
    flags = [(ta, tb) for *_, ta, tb in products]
    # One compiled function's outputs are ready together: wait for (and, under
    # TensorFlow, copy out) only the smallest; copying all of them out made
    # BERT-Tiny's products look 25% slower (0.28-0.30 of the peak, not 0.38).
    smallest = min(range(len(products)), key=lambda j: math.prod(products[j][0]) * products[j][1] * products[j][3])
    if keras.backend.backend() == "jax":
        import jax
        import jax.numpy as jnp

        def swap(x, transpose):
            return jnp.swapaxes(x, -1, -2) if transpose else x

        keys = jax.random.split(jax.random.key(0), len(shapes))
        arrays = [jax.random.normal(key, shape, dtype) for key, shape in zip(keys, shapes)]
        compiled = jax.jit(
            lambda *xs: [swap(xs[2 * j], ta) @ swap(xs[2 * j + 1], tb) for j, (ta, tb) in enumerate(flags)]
        )

        def wait(outputs):
            outputs[smallest].block_until_ready()
    else:
        import tensorflow as tf

        arrays = [tf.cast(tf.random.stateless_normal(shape, seed=(0, j)), dtype) for j, shape in enumerate(shapes)]
        compiled = tf.function(
            lambda *xs: [
                tf.matmul(xs[2 * j], xs[2 * j + 1], transpose_a=ta, transpose_b=tb) for j, (ta, tb) in enumerate(flags)
            ],
            jit_compile=bool(xla),
        )

        def wait(outputs):
            outputs[smallest].numpy()

    def run():
        for _ in range(calls):
            outputs = compiled(*arrays)
        wait(outputs)

    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_ceiling(config, seq, batch, mode="train", dtype="bfloat16", xla=False, repeats=10):
    """FLOP/s of one step's layer products alone (the fastest of `repeats`
    timings of all `config.num_hidden_layers` layers; `fastest_seconds`)."""
    products = layer_products(config, seq, batch, mode)
    layers = config.num_hidden_layers
    return product_flops(products) * layers / fastest_seconds(products, dtype, xla, repeats, calls=layers)
