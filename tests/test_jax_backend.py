"""The workbench under Keras' JAX backend (docs/jax.md).

`make test-jax` runs this file and every test marked `backend_agnostic`
(tests/conftest.py) with KERAS_BACKEND=jax; under the TensorFlow backend this
file is skipped.
"""

import os
import subprocess
import sys
import tempfile
import types

import keras
import numpy as np
import pandas as pd
import pytest
from tiny_runs import ROOT, finetune_params

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="JAX backend tests: make test-jax (KERAS_BACKEND=jax)"
)

# The fine-tuning resume test's run: 6 steps, a checkpoint every 2.
TINY = finetune_params(
    task="rte", checkpoint_every=2, save_model=False, seed=3, feature_cache=tempfile.mkdtemp(prefix="wb-feature-cache-")
)


def test_strategies_map_to_keras_distribution():
    from workbench.training.distribution import (
        auto_jit_compile,
        auto_precision,
        describe_strategy,
        get_strategy,
        restored_precision,
    )
    from workbench.training.jax_distribution import compute_capabilities

    with restored_precision():
        strategy = get_strategy("auto", "auto")  # one CPU device: plain Keras
        assert strategy.distribution is None and keras.distribution.distribution() is None
        assert describe_strategy(strategy) == {
            "strategy": "JaxDataParallel",
            "device": "cpu",
            "replicas": 1,
            "precision": "float32",  # XLA's CPU matmul gains nothing from bfloat16
        }
        assert auto_jit_compile("auto", strategy) is True and auto_jit_compile(False, strategy) is False
        strategy = get_strategy("cpu", "mixed_bfloat16")
        assert isinstance(keras.distribution.distribution(), keras.distribution.DataParallel)
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert keras.distribution.distribution() is None  # restored with the policy
    assert keras.mixed_precision.global_policy().name == "float32"
    for kind in ("gpu", "tpu"):
        with pytest.raises(RuntimeError, match=f"strategy='{kind}' but JAX sees no {kind.upper()}"):
            get_strategy(kind)
    with pytest.raises(ValueError, match="under JAX the TPU VM's own chips"):
        get_strategy("auto", tpu="grpc://10.0.0.2:8470")
    # JAX's "9.0" strings feed auto_precision's one rule.
    hopper, turing = types.SimpleNamespace(compute_capability="9.0"), types.SimpleNamespace(compute_capability="7.5")
    assert compute_capabilities([hopper, turing]) == [(9, 0), (7, 5)]
    assert auto_precision("gpu", compute_capabilities([hopper])) == "mixed_bfloat16"
    assert auto_precision("gpu", compute_capabilities([hopper, turing])) == "mixed_float16"


def test_multi_worker_without_a_cluster_says_how_to_configure_one(monkeypatch):
    from workbench.training.distribution import get_strategy, restored_precision

    for name in ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES", "JAX_COORDINATOR_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    with restored_precision(), pytest.raises(RuntimeError, match="KERAS_DISTRIBUTION_JOB_ADDRESSES.*Set here: none"):
        get_strategy("multi_worker")


class _Interrupted(Exception):
    pass


def test_fine_tuning_resumes_exactly(tmp_path, monkeypatch):
    import workbench.training.loop as loop
    from workbench.training.finetune import finetune

    straight = finetune(output_dir=str(tmp_path / "a"), results_csv=str(tmp_path / "a.csv"), **TINY)
    row = pd.read_csv(tmp_path / "a.csv").iloc[0]
    assert row["strategy"] == "JaxDataParallel" and row["precision"] == "float32" and row["status"] == "ok"
    assert len(straight.history) == 6 and np.isfinite(straight.history["loss"]).all()

    save = loop.StepCheckpoint.on_train_batch_end

    def stop_after_step_3(self, batch, logs=None):
        save(self, batch, logs)
        if self.step == 3:
            raise _Interrupted

    args = dict(TINY, output_dir=str(tmp_path / "b"), results_csv=str(tmp_path / "b.csv"))
    monkeypatch.setattr(loop.StepCheckpoint, "on_train_batch_end", stop_after_step_3)
    with pytest.raises(_Interrupted):
        finetune(**args)
    monkeypatch.setattr(loop.StepCheckpoint, "on_train_batch_end", save)
    assert (tmp_path / "b" / "checkpoints" / "latest").read_text().strip() == "step-2"
    resumed = finetune(**args)  # weights, optimizer moments and dropout RNG state from step 2
    assert resumed.metrics == straight.metrics
    np.testing.assert_allclose(resumed.history["loss"], straight.history["loss"], atol=1e-5)


def test_pretraining_steps_resume_exactly(tmp_path, monkeypatch):
    # pretrain() runs end to end under JAX too (resumed exactly after a kill, checked by hand:
    # docs/jax.md); this test keeps CI short with its parts: model, losses, optimizer, stream and loop.
    import workbench.training.loop as loop
    from workbench.bench.input import synthetic_features, write_pretraining_records
    from workbench.models.config import BertConfig
    from workbench.models.encoder import BertEncoder
    from workbench.models.heads import BertPretrainer
    from workbench.models.optimizer import create_optimizer
    from workbench.training.pretrain import phase_stream, pretraining_losses

    shard = write_pretraining_records(
        synthetic_features(32, seq=16, vocab_size=60, predictions=3), str(tmp_path / "shard.tfrecord")
    )

    def run(name):
        keras.utils.set_random_seed(1)
        config = BertConfig.from_size("tiny", vocab_size=60, hidden_dropout_prob=0.1)
        model = BertPretrainer(BertEncoder.from_config_object(config))
        model.compile(optimizer=create_optimizer(1e-3, 6, 1), loss=pretraining_losses(), jit_compile=True)
        sample = {k: np.zeros((1, 16), "int32") for k in ("token_ids", "segment_ids", "padding_mask")}
        loop.build_training_state(model, {**sample, "mask_positions": np.zeros((1, 3), "int32")})
        training = loop.ResumableTraining(model, 6, str(tmp_path / name), str(tmp_path / f"{name}.csv"), 2)
        return training.fit(phase_stream([shard], 32, 16, 3, 8, 6, seed=0))

    straight = run("a")
    assert list(straight.history["step"]) == [1, 2, 3, 4, 5, 6] and np.isfinite(straight.history["loss"]).all()
    save = loop.StepCheckpoint.on_train_batch_end

    def stop_after_step_3(self, batch, logs=None):
        save(self, batch, logs)
        if self.step == 3:
            raise _Interrupted

    monkeypatch.setattr(loop.StepCheckpoint, "on_train_batch_end", stop_after_step_3)
    with pytest.raises(_Interrupted):
        run("b")
    monkeypatch.setattr(loop.StepCheckpoint, "on_train_batch_end", save)
    resumed = run("b")
    assert resumed.start_step == 2
    np.testing.assert_allclose(resumed.history["loss"], straight.history["loss"], atol=1e-5)


# Makes `tensorflow` and `tensorflow_text` unimportable, as on a machine without them.
BLOCKER = """
import sys
for name in ("tensorflow", "tensorflow_text"):
    sys.modules[name] = None
"""

WITHOUT_TENSORFLOW = r"""
import sys
from workbench.cli import main
out = sys.argv[1]
common = ["--model", "tiny", "--seq", "16"]
assert main(["speed", *common, "--batch", "4", "--steps", "4", "--warmup", "1", "--min-seconds", "0",
             "--output", out + "/speed.csv"]) == 0
assert main(["max-batch", *common, "--start", "2", "--limit", "2", "--output", out + "/max_batch.csv"]) == 0
loaded = sorted(m for m, module in sys.modules.items() if module is not None and m.split(".")[0] in
                ("tensorflow", "tensorflow_text"))
assert not loaded, loaded
"""


def test_speed_and_max_batch_run_without_tensorflow(tmp_path):
    (tmp_path / "blocker").mkdir()
    (tmp_path / "blocker" / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=os.pathsep.join([str(tmp_path / "blocker"), ROOT]))
    check = subprocess.run(
        [sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True, timeout=60
    )
    assert check.returncode != 0 and "ModuleNotFoundError" in check.stderr  # the blocker works
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    speed = pd.read_csv(tmp_path / "speed.csv").iloc[0]
    assert speed["backend"] == "jax" and speed["xla"] and speed["sequences_per_second"] > 0
    assert 0 < speed["mfu"] < 1.5 and speed["vs_keras_hub"] > 0 and pd.isna(speed["input_sequences_per_second"])
    assert "synthetic NumPy batches" in proc.stdout
    assert pd.read_csv(tmp_path / "max_batch.csv")["max_batch"].tolist() == [2]


def test_serving_export_under_jax_keeps_one_sequence_size(tmp_path):
    from workbench.checkpoints.export import _backend_export_options
    from workbench.models.config import BertConfig
    from workbench.models.encoder import BertEncoder
    from workbench.models.heads import BertMultipleChoice

    encoder = BertEncoder.from_config_object(BertConfig.from_size("tiny", vocab_size=50, max_position_embeddings=64))
    options = _backend_export_options(BertMultipleChoice(encoder, num_choices=3))["jax2tf_kwargs"]
    assert options["polymorphic_shapes"] == [
        {name: "(batch, 3, seq)" for name in ("token_ids", "segment_ids", "padding_mask")}
    ]
    assert options["polymorphic_constraints"] == ["seq <= 64"] and options["with_gradient"] is False
