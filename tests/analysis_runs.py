"""Tiny real fine-tuning runs on the embedded samples, shared by the analysis
and browser tests (each module makes its runs once)."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "data", "samples")
TINY = dict(
    model="tiny",
    vocab=os.path.join(SAMPLES, "vocab.txt"),
    data_dir=SAMPLES,
    batch_size=8,
    max_seq_length=32,
    learning_rate=1e-3,
    epochs=1.0,
    feature_cache=None,
)
SEQ = {"squad1": 96, "squad2": 96}


def tiny_run(task, directory, results_csv, seed=1, **overrides):
    """One finished tiny run of `task` in `directory`/<task>-s<seed>; returns its `FinetuneResult`."""
    from workbench.training.finetune import finetune

    params = {**TINY, "max_seq_length": SEQ.get(task, TINY["max_seq_length"]), **overrides}
    return finetune(
        task=task,
        seed=seed,
        output_dir=os.path.join(str(directory), f"{task}-s{seed}"),
        results_csv=str(results_csv),
        **params,
    )
