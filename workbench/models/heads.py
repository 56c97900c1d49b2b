"""The task heads of the paper, each a Keras model on a `BertEncoder`.

Every head takes the encoder's inputs (`token_ids`, `segment_ids`,
`padding_mask`, int32, shape (batch, seq)) and returns float32 logits, also under
a mixed-precision policy, so losses are computed in full precision. All heads
serialize (`model.save`, `keras.models.load_model`) with the encoder inside.

| head                       | paper task              | outputs                              |
|----------------------------|-------------------------|--------------------------------------|
| `BertPretrainer`           | masked LM + NSP         | mlm_logits (B,P,V), nsp_logits (B,2)  |
| `BertClassifier`           | GLUE, XNLI (STS-B: 1)   | logits (B, num_classes)              |
| `BertSpanExtractor`        | SQuAD v1.1 / v2.0       | start_logits, end_logits (B, T)      |
| `BertMultipleChoice`       | SWAG                    | logits (B, num_choices)              |
| `BertTokenClassifier`      | CoNLL-2003 NER          | logits (B, T, num_labels)            |
"""

import keras
import keras_hub
from keras import ops

from workbench.models.encoder import activation_function


def _initializer(backbone):
    # The original initialises every head with a truncated normal of
    # `initializer_range` (0.02 for all released models).
    return keras.initializers.TruncatedNormal(stddev=getattr(backbone, "initializer_range", 0.02))


def _output_layers(backbone, units, dropout):
    """Dropout, then `units` logits in float32: the original's classifier output layer
    (`run_classifier.create_model`), on the pooled [CLS] output for sentence tasks and on
    every token for tagging (`head_mapping` maps both to the original's `output_weights`)."""
    return (
        keras.layers.Dropout(dropout, name="output_dropout"),
        keras.layers.Dense(units, kernel_initializer=_initializer(backbone), dtype="float32", name="logits"),
    )


def _encoder_inputs():
    return {
        "token_ids": keras.Input(shape=(None,), dtype="int32", name="token_ids"),
        "segment_ids": keras.Input(shape=(None,), dtype="int32", name="segment_ids"),
        "padding_mask": keras.Input(shape=(None,), dtype="int32", name="padding_mask"),
    }


class _BertHead(keras.Model):
    """Shared (de)serialization: the encoder is stored inside the head's config."""

    def get_config(self):
        return {"backbone": keras.layers.serialize(self.backbone), "name": self.name, **self._head_config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="workbench")
class BertPretrainer(_BertHead):
    """Masked LM and next-sentence prediction, as in the original pretraining.

    The masked-LM head transforms the encoder output at the masked positions
    (dense + activation + LayerNorm), multiplies by the *word embedding table*
    (tied decoder) and adds an output bias; NSP is a 2-way dense layer on the
    pooled [CLS] output.

    Args:
        backbone: a `BertEncoder`.

    Example:
    ```python
    model = BertPretrainer(encoder)
    out = model({**encoder_inputs, "mask_positions": positions})  # (B, P) int32
    out["mlm_logits"], out["nsp_logits"]
    ```
    """

    def __init__(self, backbone, **kwargs):
        # === Layers ===
        init = _initializer(backbone)
        self.backbone = backbone
        self.masked_lm_head = keras_hub.layers.MaskedLMHead(
            vocabulary_size=backbone.vocabulary_size,
            token_embedding=backbone.token_embedding,
            intermediate_activation=activation_function(getattr(backbone, "activation", "gelu")),
            layer_norm_epsilon=1e-12,
            kernel_initializer=init,
            # float32: keras-hub's head adds a float32 bias to half-precision
            # logits and fails under mixed precision; the transform and decoder
            # are <1% of pretraining FLOPs, and float32 logits are stabler.
            dtype="float32",
            name="masked_lm_head",
        )
        self.next_sentence_head = keras.layers.Dense(
            2, kernel_initializer=init, dtype="float32", name="next_sentence_head"
        )
        self.mlm_output = keras.layers.Activation("linear", dtype="float32", name="mlm_logits")

        # === Functional graph ===
        inputs = _encoder_inputs()
        inputs["mask_positions"] = keras.Input(shape=(None,), dtype="int32", name="mask_positions")
        encoded = backbone({k: inputs[k] for k in ("token_ids", "segment_ids", "padding_mask")})
        mlm_logits = self.mlm_output(
            self.masked_lm_head(encoded["sequence_output"], mask_positions=inputs["mask_positions"])
        )
        nsp_logits = self.next_sentence_head(encoded["pooled_output"])
        super().__init__(inputs=inputs, outputs={"mlm_logits": mlm_logits, "nsp_logits": nsp_logits}, **kwargs)

        # === Config ===
        self._head_config = {}


@keras.saving.register_keras_serializable(package="workbench")
class BertClassifier(_BertHead):
    """Sentence (pair) classification or regression on the pooled [CLS] output.

    Args:
        backbone: a `BertEncoder`.
        num_classes: number of labels; 1 gives a regression score (STS-B).
        dropout: dropout on the pooled output (0.1 in the original).

    Example:
    ```python
    model = BertClassifier(encoder, num_classes=2)
    logits = model(encoder_inputs)  # (batch, 2)
    ```
    """

    def __init__(self, backbone, num_classes, dropout=0.1, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.output_dropout, self.output_dense = _output_layers(backbone, num_classes, dropout)

        # === Functional graph ===
        inputs = _encoder_inputs()
        pooled = backbone(inputs)["pooled_output"]
        logits = self.output_dense(self.output_dropout(pooled))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.dropout = dropout
        self._head_config = {"num_classes": num_classes, "dropout": dropout}


@keras.saving.register_keras_serializable(package="workbench")
class _Channel(keras.layers.Layer):
    """Selects one channel of the last axis: (..., C) -> (...)."""

    def __init__(self, index, **kwargs):
        super().__init__(**kwargs)
        self.index = index

    def call(self, x):
        return x[..., self.index]

    def compute_output_shape(self, shape):
        return shape[:-1]

    def get_config(self):
        return {**super().get_config(), "index": self.index}


@keras.saving.register_keras_serializable(package="workbench")
class BertSpanExtractor(_BertHead):
    """Answer-span extraction for SQuAD: a start and an end logit per token.

    As in the original `run_squad.py`, one dense layer maps every token to two
    scores. For SQuAD 2.0 "no answer" is the span (0, 0), i.e. the [CLS] token.

    Args:
        backbone: a `BertEncoder`.

    Example:
    ```python
    model = BertSpanExtractor(encoder)
    out = model(encoder_inputs)
    out["start_logits"], out["end_logits"]  # (batch, seq) each
    ```
    """

    def __init__(self, backbone, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.span_dense = keras.layers.Dense(
            2, kernel_initializer=_initializer(backbone), dtype="float32", name="span_logits"
        )

        # === Functional graph ===
        inputs = _encoder_inputs()
        logits = self.span_dense(backbone(inputs)["sequence_output"])
        start_logits = _Channel(0, dtype="float32", name="start_logits")(logits)
        end_logits = _Channel(1, dtype="float32", name="end_logits")(logits)
        super().__init__(inputs=inputs, outputs={"start_logits": start_logits, "end_logits": end_logits}, **kwargs)

        # === Config ===
        self._head_config = {}


@keras.saving.register_keras_serializable(package="workbench")
class _FoldChoices(keras.layers.Layer):
    """(batch, choices, seq) -> (batch * choices, seq)."""

    def call(self, x):
        return ops.reshape(x, (-1, ops.shape(x)[-1]))

    def compute_output_shape(self, shape):
        return (None, shape[-1])


@keras.saving.register_keras_serializable(package="workbench")
class _UnfoldChoices(keras.layers.Layer):
    """(batch * choices, 1) -> (batch, choices)."""

    def __init__(self, num_choices, **kwargs):
        super().__init__(**kwargs)
        self.num_choices = num_choices

    def call(self, x):
        return ops.reshape(x, (-1, self.num_choices))

    def compute_output_shape(self, shape):
        return (None, self.num_choices)

    def get_config(self):
        return {**super().get_config(), "num_choices": self.num_choices}


@keras.saving.register_keras_serializable(package="workbench")
class BertMultipleChoice(_BertHead):
    """Multiple choice (SWAG): every (context, choice) pair is encoded, a single
    vector scores its [CLS] output, and a softmax over the choices picks one.

    Inputs have shape (batch, num_choices, seq).

    Args:
        backbone: a `BertEncoder`.
        num_choices: choices per example (4 for SWAG).
        dropout: dropout on the pooled output.

    Example:
    ```python
    model = BertMultipleChoice(encoder, num_choices=4)
    logits = model(choice_inputs)  # (batch, 4); softmax over axis 1
    ```
    """

    def __init__(self, backbone, num_choices=4, dropout=0.1, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.fold = _FoldChoices(name="fold_choices")
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.choice_dense = keras.layers.Dense(
            1, kernel_initializer=_initializer(backbone), dtype="float32", name="choice_score"
        )
        self.unfold = _UnfoldChoices(num_choices, dtype="float32", name="logits")

        # === Functional graph ===
        inputs = {
            name: keras.Input(shape=(num_choices, None), dtype="int32", name=name)
            for name in ("token_ids", "segment_ids", "padding_mask")
        }
        pooled = backbone({k: self.fold(v) for k, v in inputs.items()})["pooled_output"]
        logits = self.unfold(self.choice_dense(self.output_dropout(pooled)))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.num_choices = num_choices
        self._head_config = {"num_choices": num_choices, "dropout": dropout}


@keras.saving.register_keras_serializable(package="workbench")
class BertTokenClassifier(_BertHead):
    """Token classification (NER): a label distribution for every token.

    Args:
        backbone: a `BertEncoder`.
        num_labels: size of the tag set.
        dropout: dropout on the sequence output.

    Example:
    ```python
    model = BertTokenClassifier(encoder, num_labels=9)
    logits = model(encoder_inputs)  # (batch, seq, 9)
    ```
    """

    def __init__(self, backbone, num_labels, dropout=0.1, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.output_dropout, self.output_dense = _output_layers(backbone, num_labels, dropout)

        # === Functional graph ===
        inputs = _encoder_inputs()
        sequence = backbone(inputs)["sequence_output"]
        logits = self.output_dense(self.output_dropout(sequence))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.num_labels = num_labels
        self._head_config = {"num_labels": num_labels, "dropout": dropout}
