import keras
import numpy as np
import pytest

from workbench.models.optimizer import BertAdamW, BertLearningRateSchedule, create_optimizer


def one_kernel_update():
    # BertAdamW's one-kernel update needs TensorFlow with XLA (not the JAX backend, not the TPU build on a CPU).
    if keras.backend.backend() != "tensorflow":
        return False
    from workbench.models.fast_layers import xla_available

    return xla_available()


def original_adamw_step(w, g, m, v, lr, decay, wd=0.01, b1=0.9, b2=0.999, eps=1e-6):
    """The original AdamWeightDecayOptimizer: no bias correction, decoupled decay."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    update = m / (np.sqrt(v) + eps)
    if decay:
        update = update + wd * w
    return w - lr * update, m, v


def test_update_matches_the_original_optimizer(rng):
    kernel = keras.Variable(rng.normal(size=(3, 4)), name="kernel")
    bias = keras.Variable(rng.normal(size=(4,)), name="bias")
    gamma = keras.Variable(rng.normal(size=(4,)), name="gamma")
    optimizer = BertAdamW(learning_rate=0.01, weight_decay=0.01)
    ref = {
        name: (var.numpy().astype(np.float64), 0.0, 0.0)
        for name, var in (("kernel", kernel), ("bias", bias), ("gamma", gamma))
    }
    for _ in range(5):
        grads = [rng.normal(size=v.shape) for v in (kernel, bias, gamma)]
        optimizer.apply(grads, [kernel, bias, gamma])
        for (name, (w, m, v)), g in zip(list(ref.items()), grads):
            ref[name] = original_adamw_step(w, g, m, v, 0.01, decay=(name == "kernel"))
    for name, var in (("kernel", kernel), ("bias", bias), ("gamma", gamma)):
        np.testing.assert_allclose(var.numpy(), ref[name][0], rtol=1e-5, atol=1e-6)
    # Keras' AdamW (bias-corrected) takes a different first step.
    w = keras.Variable(np.ones((2,)), name="kernel")
    keras.optimizers.AdamW(0.01, weight_decay=0.0, epsilon=1e-6).apply([np.array([0.5, -0.5])], [w])
    w_ours = keras.Variable(np.ones((2,)), name="kernel")
    BertAdamW(0.01, weight_decay=0.0).apply([np.array([0.5, -0.5])], [w_ours])
    assert abs((1 - w.numpy()[0]) / (1 - w_ours.numpy()[0]) - np.sqrt(1 - 0.999) / (1 - 0.9)) < 1e-3


def test_layer_norm_and_bias_are_excluded_from_decay_in_a_real_model():
    from test_backbone import tiny_config

    from workbench.models.encoder import BertEncoder
    from workbench.models.heads import BertPretrainer

    model = BertPretrainer(BertEncoder.from_config_object(tiny_config()))
    optimizer = create_optimizer(0.1, total_steps=10, clipnorm=None)
    # A layer whose name contains "beta" or "gamma": the original decays its kernel.
    head = keras.layers.Dense(2, name="beta_gamma_head")
    head.build((None, 3))
    # With zero gradients Adam's step is 0, so only the decoupled decay moves a variable.
    variables = model.trainable_variables + head.trainable_variables
    for v in variables:
        v.assign(np.ones(v.shape, v.dtype))
    optimizer.apply([np.zeros(v.shape, v.dtype) for v in variables], variables)
    decayed = {v.path for v in variables if not np.allclose(v.numpy(), 1.0)}
    assert all(np.allclose(v.numpy(), 1.0 - 0.1 * 0.01) for v in variables if v.path in decayed)
    assert "transformer_layer_0/self_attention_layer/query/kernel" in decayed
    assert "token_embedding/embeddings" in decayed
    assert not [p for p in decayed if p.endswith(("bias", "gamma", "beta"))]
    assert "masked_lm_head/output_bias" not in decayed
    assert "beta_gamma_head/kernel" in decayed and "beta_gamma_head/bias" not in decayed


def test_schedule_warmup_then_linear_decay_from_step_zero():
    schedule = BertLearningRateSchedule(1e-3, total_steps=100, warmup_steps=10)
    lr = [float(schedule(s)) for s in (0, 5, 10, 50, 100, 150)]
    np.testing.assert_allclose(lr, [0.0, 5e-4, 1e-3 * 0.9, 5e-4, 0.0, 0.0], atol=1e-9)
    assert (
        keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule)).get_config()
        == schedule.get_config()
    )
    with pytest.raises(ValueError, match="warmup_steps"):
        BertLearningRateSchedule(1e-3, total_steps=10, warmup_steps=11)


def test_global_norm_clipping(rng):
    w1, w2 = keras.Variable(np.zeros(3), name="kernel"), keras.Variable(np.zeros(2), name="kernel")
    g1, g2 = np.array([30.0, 0.0, 40.0]), np.array([0.0, 0.0])  # global norm 50
    optimizer = BertAdamW(learning_rate=1.0, weight_decay=0.0, global_clipnorm=1.0, beta_1=0.0, beta_2=0.0, epsilon=0.0)
    optimizer.apply([g1, g2], [w1, w2])
    # With b1 = b2 = 0 the update is g / |g| elementwise, so check the clipped
    # gradient through the first moment instead.
    np.testing.assert_allclose(optimizer._momentums[0].numpy(), g1 / 50.0, rtol=1e-6)


def test_gradient_accumulation_averages_and_schedule_counts_updates(rng):
    grads = [rng.normal(size=(4,)) for _ in range(4)]
    accumulated = keras.Variable(np.ones(4), name="kernel")
    optimizer = create_optimizer(0.1, total_steps=2, warmup_steps=0, gradient_accumulation_steps=2, clipnorm=None)
    for g in grads:
        optimizer.apply([g], [accumulated])
    plain = keras.Variable(np.ones(4), name="kernel")
    reference = create_optimizer(0.1, total_steps=2, warmup_steps=0, clipnorm=None)
    for a, b in ((0, 1), (2, 3)):
        reference.apply([(grads[a] + grads[b]) / 2], [plain])
    np.testing.assert_allclose(accumulated.numpy(), plain.numpy(), rtol=1e-5, atol=1e-7)
    assert int(optimizer.iterations) == 2


@pytest.mark.skipif(not one_kernel_update(), reason="a TensorFlow XLA kernel; Keras' steps run here")
@pytest.mark.parametrize("accumulation", [1, 2])
def test_one_kernel_update_equals_kerass_clip_decay_and_adam_steps(rng, accumulation):
    """BertAdamW's one-kernel update (TensorFlow) against Keras' own clip,
    decay and update steps, in a compiled step as `fit` runs it: clipping
    active, decay exclusions (also by a layer's name, as Keras' TensorFlow
    steps match them), same-shaped variables, a sparse embedding gradient,
    accumulation."""
    import tensorflow as tf

    shapes = {"embeddings": (50, 8), "kernel": (8, 16), "other_kernel": (8, 16), "bias": (16,), "gamma": (8,)}
    start = {
        name: rng.normal(size=shape).astype("float32") for name, shape in [*shapes.items(), ("bias_head", (8, 16))]
    }
    batches = [
        [rng.normal(size=v.shape).astype("float32") * 10 for v in start.values()] for _ in range(2 * accumulation)
    ]

    def train(whole):
        head = keras.layers.Dense(16, use_bias=False, name="bias_head")  # excluded: "bias" in its scoped name
        head.build((None, 8))
        head.kernel.assign(start["bias_head"])
        variables = [keras.Variable(start[name], name=name) for name in shapes] + [head.kernel]
        optimizer = create_optimizer(
            0.01, total_steps=4, warmup_steps=1, gradient_accumulation_steps=accumulation, one_kernel_update=whole
        )
        optimizer.build(variables)
        assert optimizer.whole_update_applies() == whole

        @tf.function
        def step(grads):
            # The embedding gradient as a gather's: IndexedSlices over 3 rows.
            rows = tf.constant([1, 4, 4])
            sparse = tf.IndexedSlices(tf.gather(grads[0], rows), rows, tf.constant(shapes["embeddings"]))
            optimizer.apply([sparse, *grads[1:]], variables)

        for grads in batches:
            step([tf.constant(g) for g in grads])
        return [x.numpy() for x in (*variables, *optimizer._momentums, *optimizer._velocities)]

    fused, keras_steps = train(True), train(False)
    for a, b in zip(fused, keras_steps):
        # Float32 rounding only: the decay is folded into the step (a few ulps of 1);
        # a missing decay (lr * wd * w ~ 1e-4) or clip would be far outside.
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert (fused[0] != start["embeddings"]).all()  # decay moves every embedding row; Adam only rows 1 and 4


@pytest.mark.skipif(not one_kernel_update(), reason="a TensorFlow XLA kernel; Keras' steps run here")
def test_one_kernel_update_only_without_several_replicas():
    import tensorflow as tf

    variable = keras.Variable(np.ones(3), name="kernel")
    optimizer = BertAdamW(0.1, global_clipnorm=1.0, one_kernel_update=True)
    optimizer.build([variable])
    assert optimizer.whole_update_applies()
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        assert optimizer.whole_update_applies()
    # Central storage, parameter servers: Keras' steps all-reduce and update through the strategy.
    with tf.distribute.experimental.CentralStorageStrategy().scope():
        assert not optimizer.whole_update_applies()


@pytest.mark.skipif(not one_kernel_update(), reason="a TensorFlow XLA kernel; Keras' steps run here")
def test_one_kernel_update_by_default_only_for_models_worth_its_compile_time():
    from workbench.models.optimizer import ONE_KERNEL_MIN_PARAMETERS

    def applies(parameters, **kwargs):
        optimizer = BertAdamW(0.1, global_clipnorm=1.0, **kwargs)
        optimizer.build([keras.Variable(np.zeros((parameters // 2, 2), "float32"), name="kernel")])
        return optimizer.whole_update_applies()

    assert not applies(ONE_KERNEL_MIN_PARAMETERS - 2)
    assert applies(ONE_KERNEL_MIN_PARAMETERS)
    assert applies(64, one_kernel_update=True)
    assert not applies(ONE_KERNEL_MIN_PARAMETERS, one_kernel_update=False)


def test_one_kernel_update_is_validated_and_kept_in_the_config():
    with pytest.raises(ValueError, match="one_kernel_update"):
        BertAdamW(0.1, one_kernel_update="yes")
    optimizer = BertAdamW(0.1, one_kernel_update=False)
    assert BertAdamW.from_config(optimizer.get_config()).one_kernel_update is False
