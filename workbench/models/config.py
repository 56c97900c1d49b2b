"""BERT model configuration: the fields of the original `bert_config.json`.

The original release describes every model with a small JSON file; this module
reads and writes that file and knows the named sizes of the paper and of the
24 "small BERTs" (Turc et al., 2019) released with the official code.
"""

import dataclasses
import json
import os
import re

from workbench.files import read_json, write_text_atomic

# Activation names as the *original* code means them. In google-research/bert
# `"gelu"` is the tanh approximation; Hugging Face uses the same word for the
# exact erf form, so loaders translate into these unambiguous names.
ACTIVATIONS = ("gelu", "gelu_exact", "relu", "tanh", "swish")

# (num_hidden_layers, hidden_size, num_attention_heads) by name.
_PAPER_SIZES = {
    "tiny": (2, 128, 2),
    "mini": (4, 256, 4),
    "small": (4, 512, 8),
    "medium": (8, 512, 8),
    "base": (12, 768, 12),
    "large": (24, 1024, 16),
}
_SMALL_BERT_LAYERS = (2, 4, 6, 8, 10, 12)
_SMALL_BERT_HIDDEN = (128, 256, 512, 768)
_SIZE_PATTERN = re.compile(r"^(?:bert_(?:un)?cased_)?L-?(\d+)_H-?(\d+)(?:_A-?(\d+))?$", re.I)


def _all_sizes():
    sizes = dict(_PAPER_SIZES)
    for layers in _SMALL_BERT_LAYERS:
        for hidden in _SMALL_BERT_HIDDEN:
            sizes[f"L-{layers}_H-{hidden}"] = (layers, hidden, hidden // 64)
    return sizes


BERT_SIZES = _all_sizes()


@dataclasses.dataclass
class BertConfig:
    """The hyperparameters of a BERT model, as in the original `bert_config.json`.

    Args:
        vocab_size: number of WordPiece tokens in `vocab.txt`.
        hidden_size: width H of every layer.
        num_hidden_layers: number of Transformer blocks L.
        num_attention_heads: heads A per block; H must be divisible by A.
        intermediate_size: width of the feed-forward inner layer (4H in the paper).
        hidden_act: feed-forward activation in the original's meaning
            (`"gelu"` is the tanh approximation, `"gelu_exact"` the erf form).
        hidden_dropout_prob: dropout on embeddings and every residual branch.
        attention_probs_dropout_prob: dropout on the attention probabilities.
        max_position_embeddings: longest sequence the position table covers.
        type_vocab_size: number of segment (token type) ids.
        initializer_range: stddev of the truncated-normal initializer.

    Example:
    ```python
    config = BertConfig.from_size("tiny", vocab_size=1000)
    config.to_json_file("/tmp/bert_config.json")
    assert BertConfig.from_json_file("/tmp/bert_config.json") == config
    ```
    """

    vocab_size: int
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02

    def __post_init__(self):
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"BertConfig.{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"BertConfig.hidden_size ({self.hidden_size}) must be divisible by "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"BertConfig.hidden_act must be one of {', '.join(ACTIVATIONS)}; got {self.hidden_act!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"BertConfig.{name} must be in [0, 1), got {value!r}")

    # ---- named sizes -------------------------------------------------------
    @classmethod
    def from_size(cls, name, vocab_size=30522, **overrides):
        """A config for a named size: tiny, mini, small, medium, base, large, or
        any small BERT as `L-4_H-256` (also `bert_uncased_L-4_H-256_A-4`)."""
        layers, hidden, heads = parse_size(name)
        fields = dict(
            vocab_size=vocab_size,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=4 * hidden,
        )
        fields.update(overrides)
        return cls(**fields)

    # ---- JSON --------------------------------------------------------------
    @classmethod
    def from_dict(cls, values, source="config"):
        names = [f.name for f in dataclasses.fields(cls)]
        required = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in required if n not in values]
        unknown = [k for k in values if k not in names]
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing fields {missing}")
            if unknown:
                parts.append(f"unknown fields {unknown}")
            raise ValueError(
                f"{source}: not a BERT config ({'; '.join(parts)}). Expected exactly the fields "
                f"of the original bert_config.json: {names}"
            )
        return cls(**{n: values[n] for n in names})

    @classmethod
    def from_json_file(cls, path):
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"BERT config file not found: {path}")
        values = read_json(path)  # an error names the file, line and column
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a JSON object with BERT config fields")
        return cls.from_dict(values, source=path)

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json_string(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path):
        write_text_atomic(path, self.to_json_string())

    # ---- size ----------------------------------------------------------------
    def num_parameters(self, non_embedding=False):
        """Parameters of the encoder: embeddings, layers and pooler (BERT-Base:
        109,482,240, as the original release reports).

        `non_embedding=True` leaves out the three embedding tables and their
        LayerNorm: the count that scales compute (`6 N` FLOPs per token for a
        training step), as in nanoGPT's `get_num_params(non_embedding=True)`.

        Example:
        ```python
        BertConfig.from_size("base").num_parameters()  # 109482240
        ```
        """
        h, i = self.hidden_size, self.intermediate_size
        attention = 4 * (h * h + h)  # query, key, value, output projections
        feed_forward = (h * i + i) + (i * h + h)
        layer = attention + feed_forward + 2 * (2 * h)  # two LayerNorms
        pooler = h * h + h
        count = self.num_hidden_layers * layer + pooler
        if not non_embedding:
            count += (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * h + 2 * h
        return count

    # ---- keras-hub -----------------------------------------------------------
    def backbone_kwargs(self):
        """Arguments for `workbench.BertEncoder` (keras-hub `BertBackbone` names)."""
        return dict(
            vocabulary_size=self.vocab_size,
            num_layers=self.num_hidden_layers,
            num_heads=self.num_attention_heads,
            hidden_dim=self.hidden_size,
            intermediate_dim=self.intermediate_size,
            dropout=self.hidden_dropout_prob,
            attention_dropout=self.attention_probs_dropout_prob,
            max_sequence_length=self.max_position_embeddings,
            num_segments=self.type_vocab_size,
            activation=self.hidden_act,
            initializer_range=self.initializer_range,
        )


def parse_size(name):
    """`(layers, hidden, heads)` for a size name; a clear error for an unknown one."""
    key = str(name).strip()
    if key.lower() in _PAPER_SIZES:
        return _PAPER_SIZES[key.lower()]
    match = _SIZE_PATTERN.match(key)
    if match:
        layers, hidden = int(match.group(1)), int(match.group(2))
        heads = int(match.group(3)) if match.group(3) else hidden // 64
        if layers in _SMALL_BERT_LAYERS and hidden in _SMALL_BERT_HIDDEN and heads == hidden // 64:
            return layers, hidden, heads
    raise ValueError(
        f"Unknown BERT size {name!r}. Expected one of {', '.join(_PAPER_SIZES)} or a small BERT "
        f"'L-<layers>_H-<hidden>' with layers in {_SMALL_BERT_LAYERS} and hidden in {_SMALL_BERT_HIDDEN}"
    )
