import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
import pytest
from tiny_runs import SAMPLES, finetune_params

from workbench.runs.tables import FINETUNE_COLUMNS
from workbench.training.finetune import finetune, validate_params

# This module's runs share one feature cache: each task's samples are featurized once.
TINY = finetune_params(feature_cache=tempfile.mkdtemp(prefix="wb-feature-cache-"))


def test_parameters_are_validated_before_anything_runs():
    with pytest.raises(ValueError, match=r"Unknown parameter\(s\) \['batchsize'\].*batch_size"):
        validate_params({"task": "mrpc", "batchsize": 8})
    with pytest.raises(ValueError, match="Parameter 'batch_size' must be int or None, got '8'"):
        validate_params({"task": "mrpc", "batch_size": "8"})
    with pytest.raises(ValueError, match="Parameter 'learning_rate' must be float or None"):
        validate_params({"task": "mrpc", "learning_rate": True})
    with pytest.raises(ValueError, match="unknown task 'mrcp'"):
        validate_params({"task": "mrcp"})
    with pytest.raises(ValueError, match="'strategy'.*tpu"):
        validate_params({"task": "mrpc", "strategy": "gpus"})
    with pytest.raises(ValueError, match="'warmup_proportion' must be in"):
        validate_params({"task": "mrpc", "warmup_proportion": 1.5})
    with pytest.raises(ValueError, match="'task' is required"):
        validate_params({})
    assert validate_params({"task": "mrpc", "learning_rate": 1}).learning_rate == 1  # ints are fine for floats


def test_a_run_writes_rows_predictions_history_and_a_loadable_model(tmp_path):
    from workbench.checkpoints.load import load_pretrained

    results = tmp_path / "finetune.csv"
    result = finetune(
        task="mrpc", output_dir=str(tmp_path / "run"), results_csv=str(results), checkpoint_every=2, **TINY
    )
    assert set(result.metrics) == {"dev"} and set(result.metrics["dev"]) == {"f1", "accuracy"}
    table = pd.read_csv(results)
    assert list(table.columns) == FINETUNE_COLUMNS
    assert set(table["metric"]) == {"f1", "accuracy"} and (table["status"] == "ok").all()
    row = table.iloc[0]
    assert row["task"] == "mrpc" and row["batch_size"] == 8 and row["init"] == "random" and row["train_examples"] == 48
    import keras

    from workbench.training.distribution import auto_precision, tf

    # What "auto" picks follows the devices present (CPU here; GPU or TPU hosts pass too).
    device = "tpu" if row["strategy"] == "TPUStrategy" else "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    assert keras.mixed_precision.global_policy().name == "float32"  # the run's policy does not leak out
    assert row["train_steps"] == 6 and row["precision"] == auto_precision(device)
    assert row["examples_per_second"] > 0
    submission = tmp_path / "run" / "predictions" / "MRPC.tsv"
    assert (
        submission.read_text().splitlines()[0] == "index\tprediction" and len(submission.read_text().splitlines()) == 17
    )
    assert list(result.history["step"]) == [1, 2, 3, 4, 5, 6]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == result.metrics
    assert not (tmp_path / "run" / "checkpoints").exists()
    loaded = load_pretrained(str(tmp_path / "run" / "model"))
    assert loaded.encoder.num_layers == 2 and loaded.tokenizer.do_lower_case


def test_regression_and_paper_defaults(tmp_path):
    result = finetune(
        task="stsb", output_dir=str(tmp_path / "run"), results_csv=str(tmp_path / "t.csv"), save_model=False, **TINY
    )
    assert set(result.metrics["dev"]) == {"spearman", "pearson"}
    lines = (tmp_path / "run" / "predictions" / "STS-B.tsv").read_text().splitlines()
    assert float(lines[1].split("\t")[1]) == pytest.approx(float(lines[1].split("\t")[1]))
    from workbench.tasks.registry import get_task

    assert (get_task("mrpc").hparams.batch_size, get_task("mrpc").hparams.learning_rate) == (32, 2e-5)
    squad = get_task("squad1").hparams
    assert (squad.batch_size, squad.learning_rate, squad.epochs, squad.max_seq_length) == (12, 3e-5, 2.0, 384)


KILLED_RUN = r"""
import os, sys, json
import workbench
import workbench.training.loop as T
from workbench.training.finetune import finetune
save = T.StepCheckpoint.on_train_batch_end
def hard_kill_after_step_5(self, batch, logs=None):
    save(self, batch, logs)
    if self.step == 5:
        os._exit(137)  # like SIGKILL: no cleanup, no finally blocks
T.StepCheckpoint.on_train_batch_end = hard_kill_after_step_5
finetune(**json.loads(sys.argv[1]))
"""


def test_a_killed_run_resumes_to_the_same_result(tmp_path):
    args = dict(TINY, task="rte", epochs=2.0, checkpoint_every=2, save_model=False, seed=3)
    straight = finetune(output_dir=str(tmp_path / "a"), results_csv=str(tmp_path / "a.csv"), **args)
    killed = dict(args, output_dir=str(tmp_path / "b"), results_csv=str(tmp_path / "b.csv"))
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, json.dumps(killed)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 137, proc.stderr[-2000:]
    assert (tmp_path / "b" / "checkpoints" / "latest").read_text().strip() == "step-4"
    assert not (tmp_path / "b.csv").exists()
    resumed = finetune(**killed)
    assert resumed.metrics == straight.metrics
    np.testing.assert_allclose(resumed.history["loss"], straight.history["loss"], atol=1e-5)
    assert len(resumed.history) == len(straight.history) == 12


def test_skipped_rows_are_counted_printed_and_kept_with_the_run(tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(os.path.join(SAMPLES, "qqp"), data / "qqp")
    with open(data / "qqp" / "train.tsv", "a", encoding="utf-8") as f:
        f.write("999\t1\t2\tonly one question here\n")  # a malformed row, as QQP's train.tsv has some
    result = finetune(
        task="qqp",
        output_dir=str(tmp_path / "run"),
        results_csv=str(tmp_path / "finetune.csv"),
        max_train_examples=16,
        max_eval_examples=8,
        save_model=False,
        **{**TINY, "data_dir": str(data)},
    )
    # The sample's own broken row (line 50, as QQP's real train.tsv has them) and ours.
    assert result.data_counts == {"train": {"skipped_rows": 2}}
    assert json.loads((tmp_path / "run" / "data_counts.json").read_text()) == result.data_counts
    assert "qqp train: skipped_rows 2" in capsys.readouterr().out


def test_training_features_are_cached_by_content(tmp_path):
    from workbench.tasks.registry import get_task
    from workbench.text.tokenizer import BertTokenizer
    from workbench.training.feature_cache import cache_key, cached_training_features

    task, tokenizer = get_task("squad1"), BertTokenizer(TINY["vocab"], lowercase=True)
    examples = task.load(SAMPLES, task.train_split)
    builds = []

    def build(length=64):
        builds.append(length)
        return task.featurize(examples, tokenizer, length, training=True)

    first = cached_training_features(str(tmp_path), task, examples, tokenizer, 64, build)
    again = cached_training_features(str(tmp_path), task, examples, tokenizer, 64, build)
    assert builds == [64]  # the second call read the file
    for name in first.inputs:
        np.testing.assert_array_equal(first.inputs[name], again.inputs[name])
    for name in first.labels:  # SQuAD labels are a dict of start and end positions
        np.testing.assert_array_equal(first.labels[name], again.labels[name])
    cached_training_features(str(tmp_path), task, examples, tokenizer, 48, lambda: build(48))
    cached_training_features(str(tmp_path), task, examples[:-1], tokenizer, 64, build)
    assert builds == [64, 48, 64]  # another length or other data: another key
    (tmp_path / (cache_key(task, examples, tokenizer, 64) + ".npz")).write_bytes(
        b"not a zip"
    )  # a damaged file is rebuilt
    cached_training_features(str(tmp_path), task, examples, tokenizer, 64, build)
    assert len(builds) == 4 and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_a_diverging_run_stops_at_its_step_keeps_its_last_checkpoint_and_is_recorded(tmp_path):
    from workbench.training.loop import TrainingDiverged

    run, results = tmp_path / "run", tmp_path / "t.csv"
    args = dict(TINY, task="mrpc", output_dir=str(run), results_csv=str(results), checkpoint_every=1, save_model=False)
    # Adam moves every weight by about the learning rate: after one step the
    # weights are ~1e30 and the LayerNorm variances overflow.
    with pytest.raises(TrainingDiverged) as error:
        finetune(**dict(args, learning_rate=1e30))
    history = pd.read_csv(run / "history.csv")
    bad = int(history.loc[~np.isfinite(history["loss"]), "step"].iloc[0])
    assert np.isfinite(history["loss"][history["step"] < bad]).all() and history["step"].max() == bad
    message = str(error.value)
    assert f"at step {bad}:" in message and error.value.step == bad
    good = run / "checkpoints" / f"step-{bad - 1}"
    assert f"last good checkpoint: {good} (step {bad - 1})" in message
    assert (run / "checkpoints" / "latest").read_text().strip() == good.name  # nothing saved after it
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == sorted(["latest", f"step-{bad - 1}"])
    assert not (run / "metrics.json").exists() and not (run / "predictions").exists()
    table = pd.read_csv(results)
    assert list(table["status"]) == ["diverged"] and table["error"].iloc[0] == message
    assert list(table.columns) == FINETUNE_COLUMNS
    # Another learning rate in the same output_dir would mix two runs: refused
    # before anything is loaded, naming the parameter.
    with pytest.raises(ValueError, match=r"other parameters \(learning_rate: 1e\+30 in the stored run, 0\.001 now\)"):
        finetune(**dict(args, learning_rate=1e-3))
    assert len(pd.read_csv(results)) == 1 and (run / "checkpoints" / "latest").read_text().strip() == good.name


def test_options_for_a_task_without_any_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match=r"(?i)task 'mrpc' takes no options, got \['train_language'\]"):
        finetune(task="mrpc", task_options={"train_language": "zh"}, output_dir=str(tmp_path / "run"), **TINY)
    assert not (tmp_path / "run").exists()
