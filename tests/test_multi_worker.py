"""Multi-worker training: 2 worker processes on 127.0.0.1 (TF_CONFIG, free ports) under
`strategy="multi_worker"` train as one process with the same global batch, only the chief writes,
and a run killed mid-way resumes on restart to the same result (docs/clusters.md).

The models have no dropout (a preset without it, and the classifier head's dropout set to 0): with
dropout each replica draws its own masks for its slice of the batch, so the losses would match one
process only in distribution, not value by value. They compute in float32: this CPU has native
bfloat16, and bfloat16 products of a batch of 8 and of two batches of 4 round differently (1e-4).
"""

import inspect
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from tiny_runs import CORPUS, ROOT, VOCAB, finetune_params, pretrain_params, tiny_config


def no_dropout(init):
    """The classifier head's constructor with its dropout at 0."""

    def without_dropout(self, backbone, num_classes, dropout=0.1, **kwargs):
        init(self, backbone, num_classes, 0.0, **kwargs)

    return without_dropout


# The child: the classifier without dropout; optionally killed right after it publishes its first
# checkpoint (the fault suite's hook).
CHILD = (
    inspect.getsource(no_dropout)
    + r"""
import json, os, signal, sys
runs, out, kill_after_checkpoint = json.loads(sys.argv[1])
from workbench.models import heads
heads.BertClassifier.__init__ = no_dropout(heads.BertClassifier.__init__)
if kill_after_checkpoint:
    real = os.replace
    def replace(src, dst):
        real(src, dst)
        if os.path.basename(dst) == "latest":
            print("KILLED after", open(dst).read().strip(), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace
import workbench  # noqa: F401
from workbench.training.finetune import finetune
from workbench.training.pretrain import pretrain
results = []
for kind, args in runs:  # one process, several runs (as in a notebook kernel)
    result = (finetune if kind == "finetune" else pretrain)(**args)
    rows = len(getattr(result, "rows", []))  # fine-tuning: what it appended
    results.append({"metrics": result.metrics, "loss": result.history["loss"].tolist(), "rows": rows})
with open(out, "w") as f:
    json.dump(results, f)
"""
)


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def launch(tmp_path, runs, name, kill_chief=False, timeout=400):
    """Run `runs` ([(kind, args)]) in 2 worker processes; return each worker's results (None when killed)."""
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    procs, outs = [], []
    for index in range(2):
        scratch = tmp_path / f"{name}-tmp{index}"  # each worker's temporary directory: empty at the end
        scratch.mkdir()
        env = dict(
            os.environ,
            PYTHONPATH=ROOT,
            TF_CPP_MIN_LOG_LEVEL="2",
            TMPDIR=str(scratch),
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        )
        out = str(tmp_path / f"{name}-{index}.json")
        outs.append(out)
        child = json.dumps([runs, out, kill_chief and index == 0])
        log = open(tmp_path / f"{name}-{index}.log", "w")
        procs.append(subprocess.Popen([sys.executable, "-c", CHILD, child], env=env, stdout=log, stderr=log))
    began = time.monotonic()
    while any(p.poll() is None for p in procs):
        if kill_chief and procs[0].poll() is not None and procs[1].poll() is None:
            procs[1].kill()  # its peer is gone: its next collective would wait for it
        if time.monotonic() - began > timeout:
            for p in procs:
                p.kill()
            pytest.fail(f"{name}: workers still running after {timeout} s")
        time.sleep(0.2)
    logs = [(tmp_path / f"{name}-{i}.log").read_text() for i in range(2)]
    if kill_chief:
        assert procs[0].returncode == -9 and "KILLED after step-" in logs[0], logs[0][-3000:]
        return None
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-4000:]
    for index in range(2):
        assert not os.listdir(tmp_path / f"{name}-tmp{index}"), f"worker {index} left temporary files"
    return [json.load(open(out)) for out in outs]


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """A 2-layer encoder without dropout, as a preset directory both runs start from."""
    import keras

    from workbench.checkpoints.load import save_pretrained
    from workbench.models.encoder import BertEncoder
    from workbench.text.tokenizer import BertTokenizer

    keras.utils.set_random_seed(3)
    tokenizer = BertTokenizer(VOCAB, lowercase=True)
    config = tiny_config(
        tokenizer.vocabulary_size(),
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    directory = str(tmp_path_factory.mktemp("preset") / "model")
    save_pretrained(BertEncoder.from_config_object(config), tokenizer, directory)
    return directory


def finetune_args(preset, tmp_path, name, **extra):
    # The preset brings its vocabulary.
    return finetune_params(
        "vocab",
        task="mrpc",
        model=preset,
        checkpoint_every=2,
        precision="float32",
        output_dir=str(tmp_path / name),
        results_csv=str(tmp_path / f"{name}.csv"),
        **extra,
    )


def pretrain_args(preset, tmp_path, name, strategy, **data):
    # One phase; `data` names the corpus or the shards made earlier, and the vocabulary with them.
    return pretrain_params(
        "corpus",
        "vocab",
        "phase2_seq_length",
        "phase2_max_predictions",
        **data,
        model=preset,
        phase1_steps=4,
        phase2_steps=0,
        batch_size=8,
        warmup_steps=1,
        eval_instances=16,
        strategy=strategy,
        precision="float32",
        output_dir=str(tmp_path / name),
        results_csv=str(tmp_path / f"{name}.csv"),
    )


@pytest.fixture(scope="module")
def runs(preset, tmp_path_factory):
    """One process each (fine-tuning, pretraining); then 2 workers fine-tuning, killed right after the chief's
    first checkpoint; then both restarted: they finish the fine-tuning and pretrain."""
    from workbench.models import heads
    from workbench.training.finetune import finetune
    from workbench.training.pretrain import pretrain

    tmp_path = tmp_path_factory.mktemp("runs")
    init = heads.BertClassifier.__init__
    heads.BertClassifier.__init__ = no_dropout(init)
    try:
        single = finetune(**finetune_args(preset, tmp_path, "single", strategy="cpu"))
    finally:
        heads.BertClassifier.__init__ = init
    single_pretraining = pretrain(**pretrain_args(preset, tmp_path, "single-pretrain", "cpu", corpus=CORPUS))

    tuning = ("finetune", finetune_args(preset, tmp_path, "multi", strategy="multi_worker"))
    assert launch(tmp_path, [tuning], "killed", kill_chief=True) is None
    assert (tmp_path / "multi" / "checkpoints" / "latest").read_text().strip() == "step-2"
    # The workers read the shards the single run made (each worker would otherwise make its own copy).
    made = dict(phase1_data=str(tmp_path / "single-pretrain" / "data" / "phase1"), vocab=VOCAB)
    pretraining = ("pretrain", pretrain_args(preset, tmp_path, "multi-pretrain", "multi_worker", **made))
    workers = launch(tmp_path, [tuning, pretraining], "resumed")
    return tmp_path, single, single_pretraining, workers


def test_two_workers_fine_tune_as_one_process_only_the_chief_writes_and_a_killed_run_resumes(runs):
    tmp_path, single, _, workers = runs
    for index in range(2):
        assert "resumed from" in (tmp_path / f"resumed-{index}.log").read_text()
    # The same per-step losses (6 steps of 8 examples, 4 per worker) and metrics as one unbroken process.
    for result, _ in workers:
        assert len(result["loss"]) == len(single.history) == 6
        np.testing.assert_allclose(result["loss"], single.history["loss"], rtol=0, atol=1e-4)
        assert result["metrics"].keys() == single.metrics.keys()
        for split, values in single.metrics.items():
            for metric, value in values.items():
                assert result["metrics"][split][metric] == pytest.approx(value, abs=1e-6), (split, metric)
    # Only the chief wrote: its rows once, predictions, the model, history and TensorBoard logs.
    assert workers[0][0]["rows"] == len(pd.read_csv(tmp_path / "multi.csv")) == 2 and workers[1][0]["rows"] == 0
    run = tmp_path / "multi"
    for written in ("predictions/MRPC.tsv", "model/config.json", "task_model.keras", "history.csv", "metrics.json"):
        assert (run / written).exists(), written
    assert (run / "tensorboard").is_dir() and not (run / "checkpoints").exists()
    np.testing.assert_allclose(pd.read_csv(run / "history.csv")["loss"], workers[0][0]["loss"], rtol=0)


def test_two_workers_pretrain_as_one_process(runs):
    tmp_path, _, single, workers = runs
    for _, result in workers:
        np.testing.assert_allclose(result["loss"], single.history["loss"], rtol=0, atol=1e-4)
        final = result["metrics"]["1"]["final"]
        for name, value in single.metrics[1]["final"].items():
            assert final[name] == pytest.approx(value, abs=1e-4), name
    assert len(pd.read_csv(tmp_path / "multi-pretrain.csv")) == 8  # 4 metrics before and after, once
    run = tmp_path / "multi-pretrain"
    assert (run / "model" / "config.json").exists() and (run / "google").is_dir()
    assert (run / "history_phase1.csv").exists() and (run / "tensorboard").is_dir()
