"""An independent NumPy implementation of BERT's forward pass, from the equations.

Weights are given under the original Google checkpoint names (2-D kernels), as
`bert/embeddings/word_embeddings`, `bert/encoder/layer_0/attention/self/query/kernel`,
`cls/predictions/transform/dense/kernel`, ... Tests compare the workbench's Keras
models (and, for checkpoints, its loaders) against this code. Computation is in
float64 so the reference itself adds no rounding error worth mentioning.
"""

import numpy as np
from scipy.special import erf


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def gelu_exact(x):
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


ACTIVATIONS = {"gelu": gelu_tanh, "gelu_exact": gelu_exact, "relu": lambda x: np.maximum(x, 0), "tanh": np.tanh}


def layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def encoder_forward(w, num_layers, num_heads, token_ids, segment_ids, padding_mask, hidden_act="gelu"):
    """Returns (sequence_output (B,T,H), pooled_output (B,H), [attention probs (B,A,T,T)] per layer)."""
    w = {k: np.asarray(v, np.float64) for k, v in w.items()}
    act = ACTIVATIONS[hidden_act]
    token_ids, segment_ids = np.asarray(token_ids), np.asarray(segment_ids)
    batch, seq = token_ids.shape
    e = "bert/embeddings/"
    x = (
        w[e + "word_embeddings"][token_ids]
        + w[e + "position_embeddings"][:seq][None]
        + w[e + "token_type_embeddings"][segment_ids]
    )
    x = layer_norm(x, w[e + "LayerNorm/gamma"], w[e + "LayerNorm/beta"])
    hidden = x.shape[-1]
    head_dim = hidden // num_heads
    # Padded keys get a large negative score, so softmax gives them zero weight.
    key_bias = (1.0 - np.asarray(padding_mask, np.float64))[:, None, None, :] * -10000.0
    maps = []
    for i in range(num_layers):
        p = f"bert/encoder/layer_{i}/"

        def dense(t, name, p=p):
            return t @ w[p + name + "/kernel"] + w[p + name + "/bias"]

        def heads(t):
            return t.reshape(batch, seq, num_heads, head_dim).transpose(0, 2, 1, 3)

        q, k, v = (heads(dense(x, f"attention/self/{n}")) for n in ("query", "key", "value"))
        probs = softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(head_dim) + key_bias)
        maps.append(probs)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
        x = layer_norm(
            x + dense(context, "attention/output/dense"),
            w[p + "attention/output/LayerNorm/gamma"],
            w[p + "attention/output/LayerNorm/beta"],
        )
        ffn = dense(act(dense(x, "intermediate/dense")), "output/dense")
        x = layer_norm(x + ffn, w[p + "output/LayerNorm/gamma"], w[p + "output/LayerNorm/beta"])
    pooled = np.tanh(x[:, 0] @ w["bert/pooler/dense/kernel"] + w["bert/pooler/dense/bias"])
    return x, pooled, maps


def masked_lm_forward(w, sequence_output, positions, hidden_act="gelu"):
    """Logits (B, P, V) at `positions`: transform, LayerNorm, tied decoder, bias."""
    w = {k: np.asarray(v, np.float64) for k, v in w.items()}
    picked = np.take_along_axis(sequence_output, np.asarray(positions)[..., None], axis=1)
    t = ACTIVATIONS[hidden_act](
        picked @ w["cls/predictions/transform/dense/kernel"] + w["cls/predictions/transform/dense/bias"]
    )
    t = layer_norm(t, w["cls/predictions/transform/LayerNorm/gamma"], w["cls/predictions/transform/LayerNorm/beta"])
    return t @ w["bert/embeddings/word_embeddings"].T + w["cls/predictions/output_bias"]


def next_sentence_forward(w, pooled_output):
    """Logits (B, 2); the original stores output_weights as (2, H)."""
    return (
        pooled_output @ np.asarray(w["cls/seq_relationship/output_weights"], np.float64).T
        + w["cls/seq_relationship/output_bias"]
    )


def google_weights_from_keras(model):
    """The weights of a workbench encoder (or a head) under Google checkpoint names.

    Written here, independently of the library's checkpoint code, by reading the
    keras-hub variable paths.
    """
    values = {v.path: v.numpy() for v in model.weights}
    out = {}
    e = "bert/embeddings/"
    out[e + "word_embeddings"] = values["token_embedding/embeddings"]
    out[e + "position_embeddings"] = values["position_embedding/embeddings"]
    out[e + "token_type_embeddings"] = values["segment_embedding/embeddings"]
    out[e + "LayerNorm/gamma"] = values["embeddings_layer_norm/gamma"]
    out[e + "LayerNorm/beta"] = values["embeddings_layer_norm/beta"]
    i = 0
    while f"transformer_layer_{i}/self_attention_layer/query/kernel" in values:
        k, p = f"transformer_layer_{i}/", f"bert/encoder/layer_{i}/"
        for name in ("query", "key", "value"):
            kernel = values[k + f"self_attention_layer/{name}/kernel"]
            out[p + f"attention/self/{name}/kernel"] = kernel.reshape(kernel.shape[0], -1)
            out[p + f"attention/self/{name}/bias"] = values[k + f"self_attention_layer/{name}/bias"].reshape(-1)
        kernel = values[k + "self_attention_layer/attention_output/kernel"]
        out[p + "attention/output/dense/kernel"] = kernel.reshape(-1, kernel.shape[-1])
        out[p + "attention/output/dense/bias"] = values[k + "self_attention_layer/attention_output/bias"]
        for ours, theirs in (
            ("self_attention_layer_norm", "attention/output/LayerNorm"),
            ("feedforward_layer_norm", "output/LayerNorm"),
        ):
            out[p + theirs + "/gamma"] = values[k + ours + "/gamma"]
            out[p + theirs + "/beta"] = values[k + ours + "/beta"]
        for ours, theirs in (
            ("feedforward_intermediate_dense", "intermediate/dense"),
            ("feedforward_output_dense", "output/dense"),
        ):
            out[p + theirs + "/kernel"] = values[k + ours + "/kernel"]
            out[p + theirs + "/bias"] = values[k + ours + "/bias"]
        i += 1
    out["bert/pooler/dense/kernel"] = values["pooled_dense/kernel"]
    out["bert/pooler/dense/bias"] = values["pooled_dense/bias"]
    if "masked_lm_head/output_bias" in values:
        out["cls/predictions/transform/dense/kernel"] = values["masked_lm_head/intermediate_dense/kernel"]
        out["cls/predictions/transform/dense/bias"] = values["masked_lm_head/intermediate_dense/bias"]
        out["cls/predictions/transform/LayerNorm/gamma"] = values["masked_lm_head/intermediate_layer_norm/gamma"]
        out["cls/predictions/transform/LayerNorm/beta"] = values["masked_lm_head/intermediate_layer_norm/beta"]
        out["cls/predictions/output_bias"] = values["masked_lm_head/output_bias"]
        out["cls/seq_relationship/output_weights"] = values["next_sentence_head/kernel"].T
        out["cls/seq_relationship/output_bias"] = values["next_sentence_head/bias"]
    return out
