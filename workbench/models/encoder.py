"""The BERT encoder: keras-hub's `BertBackbone` plus what the original has and it lacks.

keras-hub hard-codes the tanh approximation of GELU and one dropout rate. The
original `bert_config.json` names the activation and has a separate dropout for
attention probabilities, and Hugging Face checkpoints were trained with the exact
erf GELU. `BertEncoder` is a `BertBackbone` (same layers, weights and variable
names, so every keras-hub tool works on it) that honours those fields, and runs
its projections, LayerNorms, GELUs, attention softmax and dropouts through the
faster classes of `workbench.models.fast_layers` (same variables and math).
"""

import keras
import keras_hub

from workbench.models.config import ACTIVATIONS, BertConfig, parse_size
from workbench.models.fast_layers import use_fast_layers


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


@keras.saving.register_keras_serializable(package="workbench")
class BertEncoder(keras_hub.models.BertBackbone):
    """A BERT encoder: keras-hub's `BertBackbone` with a configurable activation,
    attention-probability dropout and initializer range.

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
        # === Layers and functional graph: keras-hub's ===
        super().__init__(
            vocabulary_size=vocabulary_size,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            max_sequence_length=max_sequence_length,
            num_segments=num_segments,
            dtype=dtype,
            **kwargs,
        )
        # === What the original adds ===
        # A functional model re-runs each layer's `call` on every invocation, so
        # swapping the activation and dropout rate on the built sublayers changes
        # the computation without rebuilding the graph.
        act = activation_function(activation)
        attention_dropout = dropout if attention_dropout is None else attention_dropout
        for layer in self.transformer_layers:
            layer.activation = act
            layer._feedforward_intermediate_dense.activation = act
            layer._self_attention_layer._dropout = attention_dropout
            probs_dropout = layer._self_attention_layer._dropout_layer
            probs_dropout.rate = attention_dropout
            if attention_dropout > 0 and not hasattr(probs_dropout, "seed_generator"):
                # Keras gives a Dropout built with rate 0 no random state; without
                # one, hidden dropout 0 with attention dropout > 0 failed to train.
                probs_dropout._tracker.unlock()
                probs_dropout.seed_generator = keras.random.SeedGenerator(name=f"{probs_dropout.name}_seed")
                probs_dropout._lock_state()
        use_fast_layers(self)
        if initializer_range != 0.02:
            init = keras.initializers.TruncatedNormal(stddev=initializer_range)
            for weight in self.weights:
                if weight.path.endswith(("kernel", "embeddings")):
                    weight.assign(init(weight.shape, dtype=weight.dtype))

        # === Config ===
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
    def from_keras_hub(cls, backbone, activation="gelu"):
        """Copy a keras-hub `BertBackbone` (e.g. from a preset) into a `BertEncoder`."""
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
