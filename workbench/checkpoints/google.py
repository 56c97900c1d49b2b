"""The original Google BERT release layout: read, map onto keras-hub, write back.

A release directory holds `bert_model.ckpt.{index,data-*}` (a TF1 name-based
checkpoint), `bert_config.json` and `vocab.txt`. Variables are named
`bert/embeddings/word_embeddings`, `bert/encoder/layer_N/attention/self/query/kernel`,
... with 2-D kernels; keras-hub keeps attention kernels per head, (H, A, H/A).
`encoder_mapping` is the one table between the two namings; the Hugging Face
reader renames its tensors to Google names and uses it too.

TF Model Garden's TF2 BERT checkpoints (the v3 releases keras-hub's own base
presets were converted from) ship with the same file names but are object-based:
`encoder/layer_with_weights-N/.../.ATTRIBUTES/VARIABLE_VALUE`, with per-head
attention kernels. `model_garden_to_google` renames them to the original names,
so one loader and one shape check serve both.
"""

import logging
import os
import re

import numpy as np

from workbench.models.config import BertConfig
from workbench.models.keras_internals import masked_lm_head_weights, transformer_sublayers

log = logging.getLogger("workbench")

# Variables of a training checkpoint that are not model weights.
_TRAINING_STATE = re.compile(
    r"(^|/)(adam_[mv]|Adam(_\d+)?|global_step|beta[12]_power|bad_steps|good_steps|loss_scale"
    r"|save_counter|_CHECKPOINTABLE_OBJECT_GRAPH|optimizer|\.OPTIMIZER_SLOT)($|/)"
)

# Release names the original code knows the casing of (validate_case_matches_checkpoint).
UNCASED_RELEASES = (
    "uncased_L-24_H-1024_A-16",
    "uncased_L-12_H-768_A-12",
    "multilingual_L-12_H-768_A-12",
    "chinese_L-12_H-768_A-12",
)
CASED_RELEASES = ("cased_L-12_H-768_A-12", "cased_L-24_H-1024_A-16", "multi_cased_L-12_H-768_A-12")


def _identity(x):
    return x


def encoder_mapping(encoder):
    """[(google name, keras variable, to_keras, to_google)] for every encoder weight."""
    heads, hidden = encoder.num_heads, encoder.hidden_dim
    head_dim = hidden // heads
    rows = [
        ("bert/embeddings/word_embeddings", encoder.token_embedding.embeddings),
        ("bert/embeddings/position_embeddings", encoder.position_embedding.position_embeddings),
        ("bert/embeddings/token_type_embeddings", encoder.segment_embedding.embeddings),
        ("bert/embeddings/LayerNorm/gamma", encoder.embeddings_layer_norm.gamma),
        ("bert/embeddings/LayerNorm/beta", encoder.embeddings_layer_norm.beta),
        ("bert/pooler/dense/kernel", encoder.pooled_dense.kernel),
        ("bert/pooler/dense/bias", encoder.pooled_dense.bias),
    ]
    out = [(name, var, _identity, _identity) for name, var in rows]
    for i, layer in enumerate(encoder.transformer_layers):
        p = f"bert/encoder/layer_{i}/"
        sublayers = transformer_sublayers(layer)
        attention = sublayers.self_attention
        for short, dense in (
            ("query", attention.query_dense),
            ("key", attention.key_dense),
            ("value", attention.value_dense),
        ):
            out.append(
                (
                    p + f"attention/self/{short}/kernel",
                    dense.kernel,
                    lambda x: x.reshape(hidden, heads, head_dim),
                    lambda x: x.reshape(hidden, hidden),
                )
            )
            out.append(
                (
                    p + f"attention/self/{short}/bias",
                    dense.bias,
                    lambda x: x.reshape(heads, head_dim),
                    lambda x: x.reshape(hidden),
                )
            )
        out.append(
            (
                p + "attention/output/dense/kernel",
                attention.output_dense.kernel,
                lambda x: x.reshape(heads, head_dim, hidden),
                lambda x: x.reshape(hidden, hidden),
            )
        )
        out.append((p + "attention/output/dense/bias", attention.output_dense.bias, _identity, _identity))
        plain = (
            ("attention/output/LayerNorm/gamma", sublayers.self_attention_layer_norm.gamma),
            ("attention/output/LayerNorm/beta", sublayers.self_attention_layer_norm.beta),
            ("intermediate/dense/kernel", sublayers.feedforward_intermediate_dense.kernel),
            ("intermediate/dense/bias", sublayers.feedforward_intermediate_dense.bias),
            ("output/dense/kernel", sublayers.feedforward_output_dense.kernel),
            ("output/dense/bias", sublayers.feedforward_output_dense.bias),
            ("output/LayerNorm/gamma", sublayers.feedforward_layer_norm.gamma),
            ("output/LayerNorm/beta", sublayers.feedforward_layer_norm.beta),
        )
        out.extend((p + name, var, _identity, _identity) for name, var in plain)
    return out


def head_mapping(model):
    """[(google name, variable, to_keras, to_google)] for the head of a workbench
    model, in the original's names (classifier heads store (labels, H) matrices)."""
    from workbench.models.heads import BertClassifier, BertPretrainer, BertSpanExtractor, BertTokenClassifier

    transpose = (lambda x: x.T, lambda x: x.T)
    if isinstance(model, BertPretrainer):
        mlm = masked_lm_head_weights(model.masked_lm_head)
        return [
            ("cls/predictions/transform/dense/kernel", mlm["dense_kernel"], _identity, _identity),
            ("cls/predictions/transform/dense/bias", mlm["dense_bias"], _identity, _identity),
            ("cls/predictions/transform/LayerNorm/gamma", mlm["layer_norm_gamma"], _identity, _identity),
            ("cls/predictions/transform/LayerNorm/beta", mlm["layer_norm_beta"], _identity, _identity),
            ("cls/predictions/output_bias", mlm["output_bias"], _identity, _identity),
            ("cls/seq_relationship/output_weights", model.next_sentence_head.kernel, *transpose),
            ("cls/seq_relationship/output_bias", model.next_sentence_head.bias, _identity, _identity),
        ]
    if isinstance(model, BertSpanExtractor):
        return [
            ("cls/squad/output_weights", model.span_dense.kernel, *transpose),
            ("cls/squad/output_bias", model.span_dense.bias, _identity, _identity),
        ]
    if isinstance(model, (BertClassifier, BertTokenClassifier)):
        return [
            ("output_weights", model.output_dense.kernel, *transpose),
            ("output_bias", model.output_dense.bias, _identity, _identity),
        ]
    return []


def assign(mapping, weights, source, strict=True):
    """Assign `weights` ({google name: array}) through `mapping`.

    Shape mismatches are errors naming the variable and both shapes; with
    `strict`, missing variables are an error listing them. Returns the names used.
    """
    missing = [name for name, *_ in mapping if name not in weights]
    if missing and strict:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise ValueError(f"{source}: missing variables: {shown}")
    used = set()
    for name, variable, to_keras, _to_google in mapping:
        if name not in weights:
            continue
        value = np.asarray(weights[name])
        expected = tuple(variable.shape)
        try:
            converted = to_keras(value)
        except ValueError:
            converted = None
        if converted is None or tuple(converted.shape) != expected:
            wanted = tuple(_to_google(np.zeros(expected)).shape)
            raise ValueError(
                f"{source}: variable {name} has shape {tuple(value.shape)}, the model expects "
                f"{wanted} (config and checkpoint disagree)"
            )
        variable.assign(converted.astype(variable.dtype))
        used.add(name)
    return used


def warn_unused(weights, used, source):
    unused = sorted(n for n in weights if n not in used and not _TRAINING_STATE.search(n))
    if unused:
        log.warning(
            "%s: %d variable(s) not used: %s",
            source,
            len(unused),
            ", ".join(unused[:10]) + (" ..." if len(unused) > 10 else ""),
        )
    return unused


# ---- reading ----------------------------------------------------------------------------
def is_google_release(directory):
    return any(f.startswith("bert_model.ckpt") and f.endswith(".index") for f in os.listdir(directory))


def checkpoint_prefix(directory):
    indexes = sorted(f for f in os.listdir(directory) if f.endswith(".index") and f.startswith("bert_model.ckpt"))
    return os.path.join(directory, indexes[0][: -len(".index")])


def read_checkpoint(prefix):
    """{name: array} of a TF1 name-based checkpoint."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


# Model Garden's BertEncoder tracks its weighted layers in this order: the three
# embedding tables, the embedding LayerNorm, one entry per transformer layer, the pooler.
_GARDEN_EMBEDDINGS = {
    0: "bert/embeddings/word_embeddings",
    1: "bert/embeddings/position_embeddings",
    2: "bert/embeddings/token_type_embeddings",
}
_GARDEN_LAYER = {
    "_attention_layer/_query_dense": "attention/self/query",
    "_attention_layer/_key_dense": "attention/self/key",
    "_attention_layer/_value_dense": "attention/self/value",
    "_attention_layer/_output_dense": "attention/output/dense",
    "_attention_output_dense": "attention/output/dense",  # early v2 checkpoints
    "_attention_layer_norm": "attention/output/LayerNorm",
    "_intermediate_dense": "intermediate/dense",
    "_output_dense": "output/dense",
    "_output_layer_norm": "output/LayerNorm",
}
_GARDEN_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def is_model_garden(weights):
    return any(n.endswith("layer_with_weights-0/embeddings" + _GARDEN_SUFFIX) for n in weights)


def model_garden_to_google(weights, source):
    """({original name: array}, number of heads) for a Model Garden TF2 checkpoint.

    Per-head kernels (H, A, H/A) and (A, H/A, H) become the original 2-D ones;
    variables outside the encoder keep their names (so they are reported unused).
    """
    anchor = next(n for n in weights if n.endswith("layer_with_weights-0/embeddings" + _GARDEN_SUFFIX))
    prefix = anchor[: -len("layer_with_weights-0/embeddings" + _GARDEN_SUFFIX)]
    pattern = re.compile(
        re.escape(prefix)
        + r"layer_with_weights-(\d+)/(?:(.+)/)?(kernel|bias|gamma|beta|embeddings)"
        + re.escape(_GARDEN_SUFFIX)
        + "$"
    )
    parsed = {n: m for n in weights if (m := pattern.match(n))}
    transformer = sorted({int(m.group(1)) for m in parsed.values() if m.group(2) in _GARDEN_LAYER})
    if transformer != list(range(4, 4 + len(transformer))):
        raise ValueError(f"{source}: Model Garden checkpoint with unexpected transformer layer entries {transformer}")
    layers = len(transformer)
    pooler = 4 + layers
    query = next(
        (
            weights[n]
            for n, m in parsed.items()
            if m.group(1) == "4" and m.group(2) == "_attention_layer/_query_dense" and m.group(3) == "kernel"
        ),
        None,
    )
    if query is None or np.ndim(query) != 3:
        raise ValueError(
            f"{source}: Model Garden checkpoint without a per-head query kernel in its first transformer layer"
        )
    heads = int(query.shape[1])
    out = {n: v for n, v in weights.items() if n not in parsed and not n.startswith(prefix + "layer_with_weights-")}
    for name, m in parsed.items():
        index, path, leaf = int(m.group(1)), m.group(2) or "", m.group(3)
        value = np.asarray(weights[name])
        if index in _GARDEN_EMBEDDINGS and leaf == "embeddings":
            out[_GARDEN_EMBEDDINGS[index]] = value
        elif index == 3 and leaf in ("gamma", "beta"):
            out[f"bert/embeddings/LayerNorm/{leaf}"] = value
        elif index == pooler and leaf in ("kernel", "bias"):
            out[f"bert/pooler/dense/{leaf}"] = value
        elif index in transformer and path in _GARDEN_LAYER:
            target = f"bert/encoder/layer_{index - 4}/{_GARDEN_LAYER[path]}/{leaf}"
            if path.endswith(("_query_dense", "_key_dense", "_value_dense")):
                value = value.reshape(value.shape[0], -1) if leaf == "kernel" else value.reshape(-1)
            elif _GARDEN_LAYER[path] == "attention/output/dense" and leaf == "kernel":
                value = value.reshape(-1, value.shape[-1])
            out[target] = value
        else:
            out[name] = value
    return out, heads


def config_from_shapes(weights, source, num_heads=None):
    """A `BertConfig` read off the variable shapes (for checkpoints without a
    bert_config.json, and to recognise which release a checkpoint is)."""
    try:
        vocab, hidden = weights["bert/embeddings/word_embeddings"].shape
        positions = weights["bert/embeddings/position_embeddings"].shape[0]
        types = weights["bert/embeddings/token_type_embeddings"].shape[0]
        intermediate = weights["bert/encoder/layer_0/intermediate/dense/kernel"].shape[1]
    except KeyError as e:
        raise ValueError(f"{source}: not a BERT checkpoint (no {e.args[0]})") from None
    layers = len({m.group(1) for n in weights if (m := re.match(r"bert/encoder/layer_(\d+)/", n))})
    return BertConfig(
        vocab_size=int(vocab),
        hidden_size=int(hidden),
        num_hidden_layers=layers,
        num_attention_heads=num_heads or max(1, int(hidden) // 64),
        intermediate_size=int(intermediate),
        max_position_embeddings=int(positions),
        type_vocab_size=int(types),
    )


def release_casing(directory, vocab_tokens):
    """(lowercase, reason): from the release name when it is a known one, else
    from the vocabulary (a cased vocabulary has capitalised word pieces)."""
    name = os.path.basename(os.path.normpath(directory))
    for release in CASED_RELEASES:
        if name.endswith(release):
            return False, f"release name {name}"
    for release in UNCASED_RELEASES:
        if name.endswith(release):
            return True, f"release name {name}"
    # The small BERTs and whole-word-masking releases say it in their names too.
    if "uncased" in name.lower():
        return True, f"directory name {name}"
    if "cased" in name.lower():
        return False, f"directory name {name}"
    capitalised = sum(1 for t in vocab_tokens if t[:1].isupper() and not t.startswith("["))
    return capitalised < 0.01 * max(1, len(vocab_tokens)), "vocabulary"


def load_google_release(directory, lowercase=None, dtype=None):
    """The encoder, tokenizer and head weights of an original release directory."""
    from workbench.models.encoder import BertEncoder
    from workbench.text.tokenizer import BertTokenizer, load_vocab

    prefix = checkpoint_prefix(directory)
    weights = read_checkpoint(prefix)
    heads_from_shapes = None
    if is_model_garden(weights):
        weights, heads_from_shapes = model_garden_to_google(weights, prefix)
    config_path = os.path.join(directory, "bert_config.json")
    shape_config = config_from_shapes(weights, prefix, heads_from_shapes)
    config = BertConfig.from_json_file(config_path) if os.path.exists(config_path) else shape_config
    if heads_from_shapes and config.num_attention_heads != heads_from_shapes:
        raise ValueError(
            f"{config_path} says num_attention_heads={config.num_attention_heads} but the checkpoint's "
            f"attention kernels have {heads_from_shapes} heads"
        )
    vocab_path = os.path.join(directory, "vocab.txt")
    tokens = load_vocab(vocab_path)
    if len(tokens) != shape_config.vocab_size:
        raise ValueError(
            f"{vocab_path} has {len(tokens)} tokens but the checkpoint's embedding table "
            f"has {shape_config.vocab_size} rows"
        )
    detected, reason = release_casing(directory, tokens)
    if lowercase is not None and lowercase != detected:
        log.warning(
            "%s: lowercase=%s but the %s says the model is %s; using lowercase=%s as asked",
            directory,
            lowercase,
            reason,
            "uncased" if detected else "cased",
            lowercase,
        )
    encoder = BertEncoder.from_config_object(config, dtype=dtype)
    used = assign(encoder_mapping(encoder), weights, prefix)
    heads = {n: v for n, v in weights.items() if n.startswith("cls/") or n in ("output_weights", "output_bias")}
    warn_unused({n: v for n, v in weights.items() if n not in heads}, used, prefix)
    tokenizer = BertTokenizer(tokens, lowercase=detected if lowercase is None else lowercase)
    return encoder, tokenizer, heads


# ---- writing ----------------------------------------------------------------------------
def google_weights(model):
    """{google name: array} of a workbench encoder or head model."""
    from workbench.models.attention import find_encoder

    encoder = find_encoder(model)
    mapping = encoder_mapping(encoder) + (head_mapping(model) if model is not encoder else [])
    return {name: to_google(var.numpy()) for name, var, _, to_google in mapping}


def save_google_release(model, tokenizer, directory):
    """Write `bert_model.ckpt.*`, `bert_config.json` and `vocab.txt` in the
    original layout (atomically: a temporary directory renamed at the end)."""
    import tensorflow as tf

    from workbench.checkpoints import GOOGLE_FILES
    from workbench.files import atomic_directory
    from workbench.models.attention import find_encoder
    from workbench.text.tokenizer import save_vocab

    weights = google_weights(model)
    with atomic_directory(directory, GOOGLE_FILES) as staging:
        with tf.Graph().as_default():
            variables = [tf.compat.v1.Variable(value, name=name) for name, value in weights.items()]
            saver = tf.compat.v1.train.Saver(variables)
            with tf.compat.v1.Session() as session:
                session.run(tf.compat.v1.global_variables_initializer())
                saver.save(session, os.path.join(staging, "bert_model.ckpt"), write_meta_graph=False, write_state=False)
        find_encoder(model).to_config_object().to_json_file(os.path.join(staging, "bert_config.json"))
        save_vocab(tokenizer.get_vocabulary(), os.path.join(staging, "vocab.txt"))
    return directory
