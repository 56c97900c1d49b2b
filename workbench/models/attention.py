"""Attention probabilities of every layer, computed with the model's own weights.

The official code never exposed attention maps. Here they come from re-running
the encoder's embedding layers and each keras-hub `TransformerEncoder` with
`return_attention_scores=True`: the same layer objects and variables, no copy of
the model, for a bare encoder or any head built on one.
"""

import weakref

import tensorflow as tf

# encoder -> traced attention function; weak, so it never keeps a model alive.
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
    encoder = find_encoder(model)
    return [
        m.numpy()
        for m in _attention_function(encoder)(
            tf.convert_to_tensor(inputs["token_ids"], tf.int32),
            tf.convert_to_tensor(inputs["segment_ids"], tf.int32),
            tf.convert_to_tensor(inputs["padding_mask"], tf.int32),
        )
    ]


def _attention_function(encoder):
    # Traced once per encoder and kept on it, so interactive use (the attention
    # explorer) pays the tracing cost only on the first input.
    fn = _TRACED.get(encoder)
    if fn is None:

        @tf.function(reduce_retracing=True)
        def fn(token_ids, segment_ids, padding_mask):
            x = encoder.token_embedding(token_ids)
            x = encoder.embeddings_add((x, encoder.position_embedding(x), encoder.segment_embedding(segment_ids)))
            x = encoder.embeddings_layer_norm(x)
            maps = []
            for layer in encoder.transformer_layers:
                x, scores = layer(x, padding_mask=padding_mask, return_attention_scores=True, training=False)
                maps.append(tf.cast(scores, tf.float32))
            return maps

        _TRACED[encoder] = fn
    return fn
