import json
import os
import subprocess
import sys

import keras
import pytest

from workbench.training.distribution import describe_strategy, get_strategy

MIRRORED_SCRIPT = r"""
import json, sys
import numpy as np
import workbench
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from workbench import BertClassifier, BertConfig, BertEncoder, create_optimizer, get_strategy

def run(kind):
    strategy = get_strategy(kind)
    keras.utils.set_random_seed(1)
    with strategy.scope():
        config = BertConfig.from_size("tiny", vocab_size=50, max_position_embeddings=16, hidden_size=32,
                                      num_attention_heads=2, intermediate_size=64,
                                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        model = BertClassifier(BertEncoder.from_config_object(config), num_classes=2, dropout=0.0)
        model.compile(optimizer=create_optimizer(1e-3, total_steps=6, warmup_steps=1),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = {"token_ids": rng.integers(5, 50, (48, 16)).astype("int32"),
         "segment_ids": np.zeros((48, 16), "int32"), "padding_mask": np.ones((48, 16), "int32")}
    y = (x["token_ids"][:, 1] > 25).astype("int32")
    history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    losses = [float(model.evaluate(x, y, batch_size=8, verbose=0))]
    return strategy.num_replicas_in_sync, history.history["loss"] + losses

print(json.dumps({"default": run("cpu"), "mirrored": run("mirrored")}))
"""


def test_mirrored_over_two_logical_cpus_matches_default_strategy():
    # Logical devices must be configured before TensorFlow starts: a fresh process.
    out = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    (n_default, default), (n_mirrored, mirrored) = result["default"], result["mirrored"]
    assert (n_default, n_mirrored) == (1, 2)
    for a, b in zip(default, mirrored):
        assert abs(a - b) <= 1e-4 * max(1.0, abs(a)), (default, mirrored)


def test_strategy_errors_are_clear(monkeypatch):
    for var in ("COLAB_TPU_ADDR", "TPU_NAME"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match="Unknown strategy 'gpus'.*auto, tpu, gpu, mirrored, multi_worker, cpu"):
        get_strategy("gpus")
    with pytest.raises(ValueError, match="Unknown precision 'fp8'"):
        get_strategy("cpu", precision="fp8")
    with pytest.raises(RuntimeError, match="no TPU is connected"):
        get_strategy("tpu")
    with pytest.raises(RuntimeError, match="sees no GPU"):
        get_strategy("gpu")


def test_auto_on_cpu_uses_native_bfloat16_else_float32_and_precision_overrides(monkeypatch):
    import workbench.training.distribution as distribution

    try:
        for native, expected in ((True, "mixed_bfloat16"), (False, "float32")):
            monkeypatch.setattr(distribution, "cpu_supports_bfloat16", lambda native=native: native)
            strategy = get_strategy("auto")
            assert describe_strategy(strategy) == {
                "strategy": type(strategy).__name__,
                "device": "cpu",
                "replicas": 1,
                "precision": expected,
            }
        get_strategy("cpu", precision="float32")
        assert keras.mixed_precision.global_policy().name == "float32"
        get_strategy("cpu", precision="mixed_bfloat16")
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_cpu_bfloat16_detection_reads_the_cpu_flags():
    import workbench.training.distribution as distribution

    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    assert distribution.cpu_supports_bfloat16() == (" avx512_bf16" in flags or " amx_bf16" in flags)
