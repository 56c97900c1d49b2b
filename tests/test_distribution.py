import json
import os
import subprocess
import sys

import keras
import pytest

import workbench.training.distribution as distribution
from workbench.training.distribution import auto_jit_compile, auto_precision, describe_strategy, get_strategy

# Expectations follow the devices present, so the tests pass on CPU, GPU and TPU hosts alike.
GPUS = distribution.tf.config.list_physical_devices("GPU")

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
    # "mirrored" spans the GPUs where there are any, else the two logical CPUs the script made.
    assert (n_default, n_mirrored) == (1, len(GPUS) or 2)
    for a, b in zip(default, mirrored):
        assert abs(a - b) <= 1e-4 * max(1.0, abs(a)), (default, mirrored)


def test_strategy_errors_are_clear(monkeypatch):
    for var in ("COLAB_TPU_ADDR", "TPU_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(distribution.glob, "glob", lambda pattern: [])  # no /dev/accel* or /dev/vfio here
    with pytest.raises(ValueError, match="Unknown strategy 'gpus'.*auto, tpu, gpu, mirrored, multi_worker, cpu"):
        get_strategy("gpus")
    with pytest.raises(ValueError, match="Unknown precision 'fp8'"):
        get_strategy("cpu", precision="fp8")
    with pytest.raises(RuntimeError, match="no TPU is connected"):
        get_strategy("tpu")
    if GPUS:
        assert describe_strategy(get_strategy("gpu"))["device"] == "gpu"
    else:
        with pytest.raises(RuntimeError, match="sees no GPU"):
            get_strategy("gpu")


def test_auto_falls_back_with_a_warning_when_an_indicated_tpu_does_not_connect(monkeypatch, caplog):
    class Unreachable:
        def __init__(self, tpu):
            raise OSError(f"no TPU named {tpu}")  # what TPUClusterResolver raises without a metadata server

    monkeypatch.setenv("TPU_NAME", "stale-tpu-name")
    monkeypatch.setattr(distribution.tf.distribute.cluster_resolver, "TPUClusterResolver", Unreachable)
    with caplog.at_level("WARNING", logger="workbench"):
        strategy = get_strategy("auto")
    assert describe_strategy(strategy)["device"] == ("gpu" if GPUS else "cpu")
    assert "A TPU was indicated ('stale-tpu-name') but could not be connected" in caplog.text
    assert "goes on without a TPU" in caplog.text
    with pytest.raises(RuntimeError, match=r"A TPU was indicated \(.stale-tpu-name.\) but could not be connected"):
        get_strategy("tpu")  # an explicit "tpu" still errors


def test_auto_precision_by_device():
    assert auto_precision("tpu") == "mixed_bfloat16"
    assert auto_precision("gpu", gpu_capabilities=[(8, 0)]) == "mixed_bfloat16"  # A100: no loss scaling needed
    assert auto_precision("gpu", gpu_capabilities=[(9, 0), (9, 0)]) == "mixed_bfloat16"  # H100/H200
    assert auto_precision("gpu", gpu_capabilities=[(7, 5)]) == "mixed_float16"  # T4
    assert auto_precision("gpu", gpu_capabilities=[(8, 6), (7, 0)]) == "mixed_float16"  # the weakest GPU decides
    assert auto_precision("cpu") == ("mixed_bfloat16" if distribution.cpu_supports_bfloat16() else "float32")


def test_xla_auto_is_on_for_gpus_and_tpus_also_under_strategies():
    class Strategy:
        def __init__(self, device):
            self.workbench_device = device

    assert auto_jit_compile("auto", Strategy("tpu")) is True
    assert auto_jit_compile("auto", Strategy("gpu")) is True
    assert auto_jit_compile("auto", Strategy("cpu")) is False
    assert auto_jit_compile(True, Strategy("cpu")) is True and auto_jit_compile(False, Strategy("gpu")) is False
    strategy = get_strategy("mirrored", precision="float32")
    assert auto_jit_compile("auto", strategy) is bool(GPUS)


def test_auto_uses_the_devices_present_and_precision_overrides(monkeypatch):
    try:
        if GPUS:
            strategy = get_strategy("auto")
            assert describe_strategy(strategy)["device"] == "gpu"
            assert describe_strategy(strategy)["precision"] == auto_precision("gpu")
        else:
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
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    assert distribution.cpu_supports_bfloat16() == (" avx512_bf16" in flags or " amx_bf16" in flags)
