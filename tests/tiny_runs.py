"""The tiny runs the tests train, written once: a 2-layer model on the embedded samples for a few steps.

A test takes a copy with its own changes, so what it does differently stands out and the shared values
live here only:

    finetune(**finetune_params(task="rte", seed=3, output_dir=..., results_csv=...))
    pretrain(**pretrain_params(phase2_steps=0, output_dir=..., results_csv=...))
    finetune_params("vocab", model=preset_dir)  # names before the changes: keys left out (the default applies)

Imported by name (`from tiny_runs import ...`), as pytest puts this folder on `sys.path`.
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "data", "samples")  # data/samples/<task>/: each task's official files, a few dozen rows
VOCAB = os.path.join(SAMPLES, "vocab.txt")  # the sample vocabulary; a model of random weights has none of its own
CORPUS = os.path.join(SAMPLES, "pretraining", "corpus.txt")  # the sample pretraining corpus

FINETUNE = dict(
    model="tiny",  # BertConfig size "tiny": 2 layers, hidden 128, 2 heads, random weights
    vocab=VOCAB,
    data_dir=SAMPLES,
    batch_size=8,  # 48 training examples (MRPC, RTE): 6 steps per epoch
    max_seq_length=32,  # the GLUE samples' pairs fit; SQuAD needs `SEQ`
    learning_rate=1e-3,  # high enough for a random model to move in 6 steps
    epochs=1.0,
    feature_cache=None,  # featurize afresh (a module sharing featurization passes its own temporary folder)
)
# Sequence lengths for the tasks whose examples do not fit in FINETUNE's (a question and a paragraph).
SEQ = {"squad1": 96, "squad2": 96}

PRETRAIN = dict(
    corpus=CORPUS,
    model="tiny",
    vocab=VOCAB,
    phase1_steps=6,  # a few steps per phase: both phases, their data and checkpoints, no learning to speak of
    phase2_steps=3,
    phase1_seq_length=32,
    phase1_max_predictions=5,  # about 15% of 32 tokens, as the paper's 20 of 128
    phase2_seq_length=64,
    phase2_max_predictions=10,
    batch_size=16,
    learning_rate=2e-3,
    warmup_steps=2,
    dupe_factor=1,  # each document masked once: the corpus makes enough instances
    checkpoint_every=2,  # several checkpoints within a phase, for the resume tests
    eval_instances=32,  # the instances scored for the official metrics after each phase
    shards=1,
)


def _changed(base, without, changes):
    unknown = [key for key in without if key not in base]
    if unknown:
        raise KeyError(f"not a tiny-run parameter: {unknown}")
    params = {key: value for key, value in base.items() if key not in without}
    params.update(changes)
    return params


def finetune_params(*without, **changes):
    """A copy of `FINETUNE` less the keys named in `without`, with `changes` (new keys too)."""
    return _changed(FINETUNE, without, changes)


def pretrain_params(*without, **changes):
    """A copy of `PRETRAIN` less the keys named in `without`, with `changes` (new keys too)."""
    return _changed(PRETRAIN, without, changes)


def tiny_config(vocab_size, **fields):
    """The smallest model the tests build directly: 2 layers, hidden 32, 2 heads, feed-forward 64."""
    from workbench.models.config import BertConfig

    return BertConfig.from_size(
        "tiny", vocab_size=vocab_size, hidden_size=32, num_attention_heads=2, intermediate_size=64, **fields
    )


def tiny_run(task, directory, results_csv, seed=1, **changes):
    """One finished tiny fine-tuning run of `task` in `directory`/<task>-s<seed>; returns its `FinetuneResult`.
    The analysis and browser tests share these (each module makes its runs once)."""
    from workbench.training.finetune import finetune

    return finetune(
        task=task,
        seed=seed,
        output_dir=os.path.join(str(directory), f"{task}-s{seed}"),
        results_csv=str(results_csv),
        **finetune_params(**{"max_seq_length": SEQ.get(task, FINETUNE["max_seq_length"]), **changes}),
    )
