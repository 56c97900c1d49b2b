"""Hugging Face BERT checkpoints: a directory with `config.json` and
`model.safetensors` (or `pytorch_model.bin`), or an `hf://owner/name` handle.

Tensors are renamed to the original Google names (Linear weights transposed)
and assigned through the same table as Google releases. The activation is
taken as Hugging Face means it: `"gelu"` is the exact erf GELU there (keras-hub
would run it with the tanh form), `"gelu_new"`/`"gelu_pytorch_tanh"` the tanh one.
Heads of BertForPreTraining, BertForQuestionAnswering,
BertForSequenceClassification and BertForTokenClassification are kept.
"""

import logging
import os
import re

import numpy as np

from workbench.models.config import BertConfig

log = logging.getLogger("workbench")

HF_ACTIVATIONS = {
    "gelu": "gelu_exact",
    "gelu_new": "gelu",
    "gelu_pytorch_tanh": "gelu",
    "gelu_fast": "gelu",
    "relu": "relu",
    "tanh": "tanh",
    "swish": "swish",
    "silu": "swish",
}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def is_hf_directory(directory):
    config = os.path.join(directory, "config.json")
    if not os.path.exists(config) or not any(os.path.exists(os.path.join(directory, f)) for f in WEIGHT_FILES):
        return False
    from workbench.files import read_json

    values = read_json(config)
    return isinstance(values, dict) and values.get("model_type", "bert") == "bert"


REQUIRED_CONFIG = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")


def hf_config(values, source):
    if not isinstance(values, dict):
        raise ValueError(f"{source}/config.json: expected a JSON object, got {type(values).__name__}")
    missing = [k for k in REQUIRED_CONFIG if k not in values]
    if missing:
        raise ValueError(f"{source}/config.json lacks {missing}; a BERT config.json has {list(REQUIRED_CONFIG)}")
    act = values.get("hidden_act", "gelu")
    if act not in HF_ACTIVATIONS:
        raise ValueError(f"{source}: unsupported hidden_act {act!r}; known: {', '.join(HF_ACTIVATIONS)}")
    if abs(values.get("layer_norm_eps", 1e-12) - 1e-12) > 1e-15:
        log.warning("%s: layer_norm_eps=%s; keras-hub's BERT uses 1e-12", source, values["layer_norm_eps"])
    return BertConfig(
        vocab_size=values["vocab_size"],
        hidden_size=values["hidden_size"],
        num_hidden_layers=values["num_hidden_layers"],
        num_attention_heads=values["num_attention_heads"],
        intermediate_size=values["intermediate_size"],
        hidden_act=HF_ACTIVATIONS[act],
        hidden_dropout_prob=values.get("hidden_dropout_prob", 0.1),
        attention_probs_dropout_prob=values.get("attention_probs_dropout_prob", 0.1),
        max_position_embeddings=values.get("max_position_embeddings", 512),
        type_vocab_size=values.get("type_vocab_size", 2),
        initializer_range=values.get("initializer_range", 0.02),
    )


def read_tensors(directory):
    path = os.path.join(directory, "model.safetensors")
    if os.path.exists(path):
        from safetensors.numpy import load_file

        return load_file(path)
    path = os.path.join(directory, "pytorch_model.bin")
    try:
        import torch
    except ImportError:
        raise ValueError(
            f"{path}: reading PyTorch pickles needs torch; install it or save the model as model.safetensors"
        ) from None
    return {k: v.float().numpy() for k, v in torch.load(path, map_location="cpu", weights_only=True).items()}


_RENAMES = [
    (r"\.LayerNorm\.(weight|gamma)$", "/LayerNorm/gamma"),
    (r"\.LayerNorm\.(bias|beta)$", "/LayerNorm/beta"),
    (r"\.weight$", "/kernel"),
    (r"\.bias$", "/bias"),
]


def to_google_names(tensors):
    """{google name: array} from Hugging Face tensors (dense weights transposed)."""
    out = {}
    for name, value in tensors.items():
        if not name.startswith(("bert.", "cls.", "qa_outputs.", "classifier.")):
            name = "bert." + name  # a bare BertModel
        value = np.asarray(value)
        if name.startswith("bert.embeddings.") and name.endswith("_embeddings.weight"):
            out[name[: -len(".weight")].replace(".", "/")] = value
        elif name in ("cls.predictions.bias", "cls.predictions.decoder.bias"):
            out["cls/predictions/output_bias"] = value
        elif name == "cls.predictions.decoder.weight" or name.endswith("position_ids"):
            continue  # tied to the word embeddings / a buffer, not a weight
        elif name.startswith(("cls.seq_relationship.", "qa_outputs.", "classifier.")):
            # (labels, H) matrices, as the original's output_weights.
            prefix = {"cls": "cls/seq_relationship/", "qa_outputs": "cls/squad/", "classifier": ""}[name.split(".")[0]]
            out[prefix + ("output_weights" if name.endswith("weight") else "output_bias")] = value
        else:
            google = name.replace("bert.encoder.layer.", "bert/encoder/layer_")
            for pattern, replacement in _RENAMES:
                google = re.sub(pattern, replacement, google)
            google = google.replace(".", "/")
            out[google] = value.T if google.endswith("/kernel") else value
    return out


def resolve_handle(handle):
    """A local directory for `hf://owner/name` (downloaded with huggingface_hub
    into its cache; only the files loading needs: `model.safetensors`, or
    `pytorch_model.bin` when the repository has no safetensors). `HF_ENDPOINT`
    (a mirror) is read here, not when huggingface_hub was imported. A
    repository without BERT weights is an error naming what it holds."""
    from huggingface_hub import snapshot_download

    repo = handle[len("hf://") :].strip("/")
    if repo.count("/") > 1 or not repo:
        raise ValueError(f"{handle!r}: expected hf://<owner>/<name> or hf://<name>")
    endpoint = os.environ.get("HF_ENDPOINT") or None
    base = ["config.json", "vocab.txt", "tokenizer_config.json"]
    directory = snapshot_download(repo, endpoint=endpoint, allow_patterns=[*base, "*.safetensors"])
    if not os.path.exists(os.path.join(directory, "model.safetensors")):
        # Older repositories only have the PyTorch pickle: fetch it only then.
        directory = snapshot_download(repo, endpoint=endpoint, allow_patterns=[*base, "pytorch_model.bin"])
    present = sorted(os.listdir(directory))
    if not os.path.exists(os.path.join(directory, "config.json")) or not any(
        os.path.exists(os.path.join(directory, f)) for f in WEIGHT_FILES
    ):
        raise ValueError(
            f"{handle}: the repository has no config.json with {' or '.join(WEIGHT_FILES)} "
            f"(downloaded: {', '.join(present) or 'nothing'}); it is not a Hugging Face BERT checkpoint"
        )
    return directory


def load_hf_directory(directory, lowercase=None, dtype=None):
    """The encoder, tokenizer and head weights (Google names) of a Hugging Face BERT."""
    from workbench.checkpoints.google import assign, encoder_mapping, warn_unused
    from workbench.files import read_json
    from workbench.models.encoder import BertEncoder
    from workbench.text.tokenizer import BertTokenizer, load_vocab

    config = hf_config(read_json(os.path.join(directory, "config.json")), directory)
    weights = to_google_names(read_tensors(directory))
    encoder = BertEncoder.from_config_object(config, dtype=dtype)
    used = assign(encoder_mapping(encoder), weights, directory)
    heads = {n: v for n, v in weights.items() if n.startswith("cls/") or n in ("output_weights", "output_bias")}
    warn_unused({n: v for n, v in weights.items() if n not in heads}, used, directory)
    tokens = load_vocab(os.path.join(directory, "vocab.txt"))
    if len(tokens) != config.vocab_size:
        raise ValueError(
            f"{directory}/vocab.txt has {len(tokens)} tokens but the embedding table has {config.vocab_size} rows"
        )
    case = True
    tokenizer_config = os.path.join(directory, "tokenizer_config.json")
    if os.path.exists(tokenizer_config):
        case = read_json(tokenizer_config).get("do_lower_case", True)
    return encoder, BertTokenizer(tokens, lowercase=case if lowercase is None else lowercase), heads
