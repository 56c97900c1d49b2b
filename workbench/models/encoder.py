"""The BERT encoder: keras-hub's `BertBackbone` graph, built from the layers the original needs.

keras-hub hard-codes the tanh approximation of GELU and one dropout rate. The
original `bert_config.json` names the activation and has a separate dropout for
attention probabilities, and Hugging Face checkpoints were trained with the exact
erf GELU. `BertEncoder` is a `BertBackbone` (same layers, weights, variable
names and weight order, so every keras-hub tool and preset works on it) whose
layers are *constructed* with those settings and as the faster classes of
`workbench.models.fast_layers` (same variables and math): nothing is changed on
a built layer, so what a Keras upgrade changes fails loudly in
`workbench.models.keras_internals` instead of silently giving another model.
"""

import keras
import keras_hub

from workbench.models.config import ACTIVATIONS, BertConfig, parse_size
from workbench.models.fast_layers import BitDropout, FusedActivationDense, FusedAttention, FusedLayerNormalization
from workbench.models.keras_internals import TransformerSublayers, set_transformer_sublayers


@keras.saving.register_keras_serializable(package="workbench")
def gelu_tanh(x):
    # The original code's `gelu`: 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))).
    return keras.activations.gelu(x, approximate=True)


gelu_tanh.gelu_form = "tanh"  # lets FusedActivationDense run it as one XLA kernel


@keras.saving.register_keras_serializable(package="workbench")
def gelu_exact(x):
    # Hugging Face's `gelu`: x * Phi(x) with the erf-based normal CDF.
    return keras.activations.gelu(x, approximate=False)


gelu_exact.gelu_form = "erf"


_ACTIVATION_FUNCTIONS = {
    "gelu": gelu_tanh,
    "gelu_exact": gelu_exact,
    "relu": keras.activations.relu,
    "tanh": keras.activations.tanh,
    "swish": keras.activations.silu,
}


def activation_function(name):
    if name not in _ACTIVATION_FUNCTIONS:
        raise ValueError(f"Unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    return _ACTIVATION_FUNCTIONS[name]


def _initializer(stddev):
    # The original's `create_initializer`: a truncated normal of `initializer_range`.
    return keras.initializers.TruncatedNormal(stddev=stddev)


# Registered under keras-hub's class name on purpose: Keras names a functional
# model's layers in weight files by class name (`layers/transformer_encoder`), so
# this name keeps the weight files of keras-hub's BERT and ours interchangeable.
@keras.saving.register_keras_serializable(package="workbench")
class TransformerEncoder(keras_hub.layers.TransformerEncoder):
    """keras-hub's `TransformerEncoder` (post-LayerNorm, as BERT) whose `build`
    creates the fast sublayers with a separate attention-probability dropout.

    keras-hub's `call` runs the sublayers; this `build` creates the same ones,
    with the same names, variables and creation order as keras-hub's (so weight
    paths and `get_weights()` order are keras-hub's), from
    `workbench.models.fast_layers`.

    Args:
        intermediate_dim, num_heads, dropout, activation, layer_norm_epsilon,
        kernel_initializer, bias_initializer, normalize_first: as in
            `keras_hub.layers.TransformerEncoder`; `dropout` is the hidden
            dropout (after attention and after the feed-forward block).
        attention_dropout: dropout on the attention probabilities; defaults to
            `dropout` (keras-hub's single rate).

    Example:
    ```python
    layer = TransformerEncoder(intermediate_dim=64, num_heads=2, dropout=0.1, attention_dropout=0.0)
    y = layer(x, padding_mask=mask)  # x: (batch, seq, 32)
    ```
    """

    def __init__(self, intermediate_dim, num_heads, dropout=0, attention_dropout=None, **kwargs):
        super().__init__(intermediate_dim, num_heads, dropout=dropout, **kwargs)
        self.attention_dropout = dropout if attention_dropout is None else attention_dropout

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        key_dim = int(hidden_dim // self.num_heads)
        if key_dim == 0:
            raise ValueError(f"hidden size {hidden_dim} is smaller than num_heads={self.num_heads}")
        # Created and built in keras-hub's order, each with its own clone of the
        # initializers: random draws happen in the same sequence, so a seeded
        # model starts from the same weights as keras-hub's.
        self_attention = FusedAttention(
            num_heads=self.num_heads,
            key_dim=key_dim,
            dropout=self.attention_dropout,
            name="self_attention_layer",
            **self._initializers(),
        )
        self_attention.build(query_shape=inputs_shape, value_shape=inputs_shape)
        self_attention_layer_norm = FusedLayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="self_attention_layer_norm"
        )
        self_attention_layer_norm.build(inputs_shape)
        self_attention_dropout = BitDropout(rate=self.dropout, dtype=self.dtype_policy, name="self_attention_dropout")
        feedforward_layer_norm = FusedLayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="feedforward_layer_norm"
        )
        feedforward_layer_norm.build(inputs_shape)
        feedforward_intermediate_dense = FusedActivationDense(
            self.intermediate_dim,
            activation=self.activation,
            name="feedforward_intermediate_dense",
            **self._initializers(),
        )
        feedforward_intermediate_dense.build(inputs_shape)
        feedforward_output_dense = keras.layers.Dense(
            hidden_dim, name="feedforward_output_dense", **self._initializers()
        )
        feedforward_output_dense.build((*inputs_shape[:-1], self.intermediate_dim))
        feedforward_dropout = BitDropout(rate=self.dropout, dtype=self.dtype_policy, name="feedforward_dropout")
        set_transformer_sublayers(
            self,
            TransformerSublayers(
                self_attention=self_attention,
                self_attention_layer_norm=self_attention_layer_norm,
                self_attention_dropout=self_attention_dropout,
                feedforward_layer_norm=feedforward_layer_norm,
                feedforward_intermediate_dense=feedforward_intermediate_dense,
                feedforward_output_dense=feedforward_output_dense,
                feedforward_dropout=feedforward_dropout,
            ),
        )
        self.built = True

    def _initializers(self):
        return dict(
            kernel_initializer=self.kernel_initializer.clone(),
            bias_initializer=self.bias_initializer.clone(),
            dtype=self.dtype_policy,
        )

    def get_config(self):
        return {**super().get_config(), "attention_dropout": self.attention_dropout}


@keras.saving.register_keras_serializable(package="workbench")
class BertEncoder(keras_hub.models.BertBackbone):
    """A BERT encoder: keras-hub's `BertBackbone` with a configurable activation,
    attention-probability dropout and initializer range.

    The functional graph is `BertBackbone`'s, built here (keras-hub's constructor
    has no way to choose the layers) with the same layer names, weights and
    order, so keras-hub presets load into it and its presets load in keras-hub.

    Args:
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
        dropout, max_sequence_length, num_segments, dtype: as in
            `keras_hub.models.BertBackbone`.
        activation: feed-forward activation in the original's meaning: `"gelu"`
            (tanh approximation, Google checkpoints), `"gelu_exact"` (erf form,
            Hugging Face checkpoints), `"relu"`, `"tanh"` or `"swish"`.
        attention_dropout: dropout on attention probabilities; defaults to
            `dropout` (the original's `attention_probs_dropout_prob`).
        initializer_range: stddev of the truncated normal used for all kernels
            and embeddings of a freshly built model.

    Example:
    ```python
    encoder = BertEncoder.from_config_object(BertConfig.from_size("tiny", vocab_size=100))
    outputs = encoder({"token_ids": ids, "segment_ids": segments, "padding_mask": mask})
    outputs["sequence_output"], outputs["pooled_output"]
    ```
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        max_sequence_length=512,
        num_segments=2,
        activation="gelu",
        attention_dropout=None,
        initializer_range=0.02,
        dtype=None,
        **kwargs,
    ):
        act = activation_function(activation)
        attention_dropout = dropout if attention_dropout is None else attention_dropout

        # === Layers: BertBackbone's, in its order ===
        self.token_embedding = keras.layers.ReversibleEmbedding(
            input_dim=vocabulary_size,
            output_dim=hidden_dim,
            embeddings_initializer=_initializer(initializer_range),
            dtype=dtype,
            name="token_embedding",
        )
        self.position_embedding = keras_hub.layers.PositionEmbedding(
            initializer=_initializer(initializer_range),
            sequence_length=max_sequence_length,
            dtype=dtype,
            name="position_embedding",
        )
        self.segment_embedding = keras.layers.Embedding(
            input_dim=num_segments,
            output_dim=hidden_dim,
            embeddings_initializer=_initializer(initializer_range),
            dtype=dtype,
            name="segment_embedding",
        )
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_layer_norm = FusedLayerNormalization(
            axis=-1, epsilon=1e-12, dtype=dtype, name="embeddings_layer_norm"
        )
        self.embeddings_dropout = BitDropout(dropout, dtype=dtype, name="embeddings_dropout")
        self.transformer_layers = [
            TransformerEncoder(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                activation=act,
                dropout=dropout,
                attention_dropout=attention_dropout,
                layer_norm_epsilon=1e-12,
                kernel_initializer=_initializer(initializer_range),
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.pooled_dense = FusedActivationDense(
            hidden_dim,
            kernel_initializer=_initializer(initializer_range),
            activation="tanh",
            dtype=dtype,
            name="pooled_dense",
        )

        # === Functional model: BertBackbone's ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in ("token_ids", "segment_ids", "padding_mask")
        }
        tokens = self.token_embedding(inputs["token_ids"])
        positions = self.position_embedding(tokens)
        segments = self.segment_embedding(inputs["segment_ids"])
        x = self.embeddings_add((tokens, positions, segments))
        x = self.embeddings_layer_norm(x)
        x = self.embeddings_dropout(x)
        for transformer_layer in self.transformer_layers:
            x = transformer_layer(x, padding_mask=inputs["padding_mask"])
        cls_token_index = 0
        pooled_output = self.pooled_dense(x[:, cls_token_index, :])
        # BertBackbone.__init__ would build its own layers: skip to its base.
        keras_hub.models.Backbone.__init__(
            self,
            inputs=inputs,
            outputs={"sequence_output": x, "pooled_output": pooled_output},
            dtype=dtype,
            **kwargs,
        )

        # === Config: BertBackbone's attributes, then ours ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.cls_token_index = cls_token_index
        self.activation = activation
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range

    def get_config(self):
        config = super().get_config()
        config.update(
            activation=self.activation,
            attention_dropout=self.attention_dropout,
            initializer_range=self.initializer_range,
        )
        return config

    @classmethod
    def from_config_object(cls, config, dtype=None):
        """Build a randomly initialised encoder from a `BertConfig`."""
        return cls(**config.backbone_kwargs(), dtype=dtype)

    def to_config_object(self):
        """The `BertConfig` (original `bert_config.json` fields) of this encoder."""
        return BertConfig(
            vocab_size=self.vocabulary_size,
            hidden_size=self.hidden_dim,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            intermediate_size=self.intermediate_dim,
            hidden_act=self.activation,
            hidden_dropout_prob=self.dropout,
            attention_probs_dropout_prob=self.attention_dropout,
            max_position_embeddings=self.max_sequence_length,
            type_vocab_size=self.num_segments,
            initializer_range=self.initializer_range,
        )

    @classmethod
    def from_keras_hub(cls, backbone, activation=None):
        """Copy a keras-hub `BertBackbone` (e.g. from a preset) into a `BertEncoder`.

        `activation` defaults to the backbone's own: a `BertEncoder`'s (a preset
        we wrote, e.g. from a Hugging Face model with the exact GELU), else
        keras-hub's tanh GELU.
        """
        if activation is None:
            activation = getattr(backbone, "activation", "gelu") if isinstance(backbone, cls) else "gelu"
        if isinstance(backbone, cls) and backbone.activation == activation:
            return backbone
        config = backbone.get_config()
        for key in ("name", "trainable", "dtype"):
            config.pop(key, None)
        config.update(activation=activation)
        encoder = cls(**config, dtype=backbone.dtype_policy)
        encoder.set_weights(backbone.get_weights())
        return encoder


def build_encoder(model, vocab_size=None, dtype=None, **overrides):
    """A `BertEncoder` from a `BertConfig`, a size name, or a keras-hub preset.

    Args:
        model: a `BertConfig`; a size name (`"tiny"`, `"base"`, `"L-4_H-256"`, ...)
            which builds random weights; or a keras-hub preset name or local preset
            directory, which loads its weights.
        vocab_size: vocabulary size for a size name (required there).
        dtype: a dtype policy; defaults to the global mixed-precision policy.
        overrides: `BertConfig` fields that replace the size's defaults.
    """
    if isinstance(model, BertConfig):
        return BertEncoder.from_config_object(model, dtype=dtype)
    try:
        parse_size(model)
    except ValueError:
        pass
    else:
        if vocab_size is None:
            raise ValueError(f"vocab_size is required to build a random {model!r} encoder")
        return BertEncoder.from_config_object(
            BertConfig.from_size(model, vocab_size=vocab_size, **overrides), dtype=dtype
        )
    backbone = keras_hub.models.BertBackbone.from_preset(model, dtype=dtype)
    return BertEncoder.from_keras_hub(backbone)
