"""BERT Workbench: pretrain, fine-tune and look inside BERT, on keras-hub.

Public API (everything a notebook needs):

    BertConfig, BERT_SIZES                      model sizes and bert_config.json
    BertEncoder, build_encoder                  the encoder (keras-hub BertBackbone)
    BertPretrainer, BertClassifier,             the heads of the paper
    BertSpanExtractor, BertMultipleChoice,
    BertTokenClassifier
    attention_maps                              every layer's attention probabilities
    BertTokenizer, load_vocab, build_vocab      the original tokenizer, with offsets
    BertAdamW, BertLearningRateSchedule,        BERT's optimizer
    create_optimizer
    get_strategy, describe_strategy             CPU / GPU / TPU switch
    load_pretrained, save_pretrained            every model source; a keras-hub preset directory out
    get_task, TASK_NAMES                        the benchmarks behind one `Task` interface
    finetune, pretrain                          the runs the notebooks make
    explore_attention, AttentionExplorer                the interactive attention explorer

Subpackages: `models`, `text`, `tasks`, `training`, `checkpoints`, `explore`, `runs`, `bench`
(README's module table says what each holds).
"""

import os

# TensorFlow leaves oneDNN off on AMD CPUs; on our 2-core AMD machines it makes
# BERT training 1.3-1.6x faster. It must be set before TensorFlow is imported,
# and a user's explicit choice wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
# With the TPU build of TensorFlow installed (`tensorflow-tpu`, see workbench/install.py), importing TensorFlow on
# a machine that is no TPU VM asks the Google Cloud metadata server about TPUs and, with no network, waits without
# end (seen: 13 minutes, then stopped). Where no TPU is in sight, skip that query; a TPU VM is unaffected.
if not (os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR")):
    import glob as _glob

    if not (_glob.glob("/dev/accel*") or _glob.glob("/dev/vfio/[0-9]*")):
        os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")

# Names are imported on first use (PEP 562), so `python -m workbench --help`
# and light commands do not pay for importing TensorFlow.
_EXPORTS = {
    "attention_maps": "workbench.models.attention",
    "BertEncoder": "workbench.models.encoder",
    "build_encoder": "workbench.models.encoder",
    "BERT_SIZES": "workbench.models.config",
    "BertConfig": "workbench.models.config",
    "describe_strategy": "workbench.training.distribution",
    "get_strategy": "workbench.training.distribution",
    "BertClassifier": "workbench.models.heads",
    "BertMultipleChoice": "workbench.models.heads",
    "BertPretrainer": "workbench.models.heads",
    "BertSpanExtractor": "workbench.models.heads",
    "BertTokenClassifier": "workbench.models.heads",
    "BertAdamW": "workbench.models.optimizer",
    "BertLearningRateSchedule": "workbench.models.optimizer",
    "create_optimizer": "workbench.models.optimizer",
    "BertTokenizer": "workbench.text.tokenizer",
    "build_vocab": "workbench.text.tokenizer",
    "load_vocab": "workbench.text.tokenizer",
    "load_pretrained": "workbench.checkpoints.load",
    "save_pretrained": "workbench.checkpoints.load",
    "get_task": "workbench.tasks.registry",
    "TASK_NAMES": "workbench.tasks.registry",
    "finetune": "workbench.training.finetune",
    "pretrain": "workbench.training.pretrain",
    "explore_attention": "workbench.explore.explorer",
    "AttentionExplorer": "workbench.explore.explorer",
}


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = sorted(_EXPORTS)


def __dir__():
    return __all__
