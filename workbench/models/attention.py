"""Attention probabilities of every layer, computed with the model's own weights.

The official code never exposed attention maps. Here they come from re-running
the encoder's embedding layers and each keras-hub `TransformerEncoder` with
`return_attention_scores=True`: the same layer objects and variables, no copy of
the model, for a bare encoder or any head built on one.

The forward is compiled once per encoder: a `tf.function` under TensorFlow, a
`jax.jit` of a stateless call (the weights are arguments, so later training is
seen) under JAX.
"""

import weakref

import keras
import numpy as np

# encoder -> traced forward function; weak, so it never keeps a model alive.
_TRACED = weakref.WeakKeyDictionary()


def find_encoder(model):
    """The `BertBackbone` inside `model` (a head, or the encoder itself)."""
    import keras_hub

    if isinstance(model, keras_hub.models.BertBackbone):
        return model
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, keras_hub.models.BertBackbone):
        return backbone
    raise TypeError(f"{type(model).__name__} is not a BERT encoder and has no `backbone` attribute holding one")


def layer_outputs(model, inputs, attention=False):
    """Every layer's output, and with `attention=True` every layer's attention
    probabilities, from one pass through the encoder's own layers.

    The one encoder forward behind `attention_maps` and
    `workbench.explore.hidden_states.hidden_states`: the embedding layers, then
    each Transformer layer in turn, without dropout.

    Args:
        model: a `BertEncoder`/`BertBackbone` or any workbench head.
        inputs: dict with `token_ids`, `segment_ids`, `padding_mask`, shape (batch, seq).
        attention: also return the attention probabilities (they cost
            batch x heads x seq^2 floats per layer, so only when asked).

    Returns:
        `(states, maps)`: `states` is [embedding output, layer 1, ..., layer L],
        each a float32 NumPy array (batch, seq, hidden); `maps` is one float32
        array (batch, heads, seq, seq) per layer, or [] without `attention`.

    Example:
    ```python
    states, maps = layer_outputs(classifier, features, attention=True)
    states[-1]  # the last layer's output
    ```
    """
    encoder = find_encoder(model)
    ids = [np.asarray(inputs[name], "int32") for name in ("token_ids", "segment_ids", "padding_mask")]
    states, maps = _forward_function(encoder)(*ids, bool(attention))
    return [np.asarray(s) for s in states], [np.asarray(m) for m in maps]


def attention_maps(model, inputs):
    """Every layer's attention probabilities.

    Args:
        model: a `BertEncoder`/`BertBackbone` or any workbench head.
        inputs: dict with `token_ids`, `segment_ids`, `padding_mask`, shape (batch, seq).

    Returns:
        A list with one float32 NumPy array per layer, shape (batch, heads, seq, seq);
        row i holds how token i distributes its attention (rows sum to 1; padded
        key positions get 0).

    Example:
    ```python
    maps = attention_maps(classifier, features)
    maps[-1][0, 3]  # last layer, first example, head 3
    ```
    """
    return layer_outputs(model, inputs, attention=True)[1]


def _forward(encoder, token_ids, segment_ids, padding_mask, attention):
    ops = keras.ops
    x = encoder.token_embedding(token_ids)
    x = encoder.embeddings_add((x, encoder.position_embedding(x), encoder.segment_embedding(segment_ids)))
    x = encoder.embeddings_layer_norm(x)
    states, maps = [ops.cast(x, "float32")], []
    for layer in encoder.transformer_layers:
        if attention:
            x, scores = layer(x, padding_mask=padding_mask, return_attention_scores=True, training=False)
            maps.append(ops.cast(scores, "float32"))
        else:
            x = layer(x, padding_mask=padding_mask, training=False)
        states.append(ops.cast(x, "float32"))
    return states, maps


def _jax_function(encoder):
    import functools

    import jax

    @functools.partial(jax.jit, static_argnums=4)
    def stateless(values, token_ids, segment_ids, padding_mask, attention):
        with keras.StatelessScope(state_mapping=list(zip(encoder.variables, values))):
            return _forward(encoder, token_ids, segment_ids, padding_mask, attention)

    def fn(token_ids, segment_ids, padding_mask, attention):
        values = [v.value for v in encoder.variables]
        return stateless(values, token_ids, segment_ids, padding_mask, attention)

    return fn


def _tensorflow_function(encoder):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def fn(token_ids, segment_ids, padding_mask, attention):
        return _forward(encoder, token_ids, segment_ids, padding_mask, attention)

    def call(token_ids, segment_ids, padding_mask, attention):
        return fn(*(tf.convert_to_tensor(t, tf.int32) for t in (token_ids, segment_ids, padding_mask)), attention)

    return call


def _forward_function(encoder):
    # Compiled once per encoder (and per `attention` flag) and kept on it, so
    # interactive use (the attention explorer) pays the tracing cost only on
    # the first input.
    fn = _TRACED.get(encoder)
    if fn is None:
        fn = _jax_function(encoder) if keras.backend.backend() == "jax" else _tensorflow_function(encoder)
        _TRACED[encoder] = fn
    return fn
