"""Every private Keras / keras-hub name workbench relies on, checked when imported.

Workbench builds its BERT from keras-hub's public classes, but two things have
no public form:

* keras-hub's `TransformerEncoder` keeps its sublayers in private attributes
  (`_self_attention_layer`, ..., `_feedforward_dropout`) that its `call` reads
  and that name the weights in every keras-hub preset and `.keras` file.
  `workbench.models.encoder.TransformerEncoder` creates them itself (with the
  fused classes and the configured activation and attention dropout), and the
  Google checkpoint mapping reads them.
* keras-hub's `MaskedLMHead` keeps its transform layers and output bias in
  private attributes; the Google checkpoint mapping reads them.
* Keras' `MultiHeadAttention` keeps the dropout on attention probabilities
  (with its random state) in a private attribute. `FusedAttention` draws its
  16-bit masks from that random state: a model then consumes random numbers
  exactly like keras-hub's, so a seeded model starts from the same weights.
* Keras' optimizer applies gradients in three private steps (clip, decay,
  update), each a pass over all variables or gradients; `BertAdamW` does them
  as one through `WholeUpdateOptimizer`, and reads the decay exclusions through
  `uses_weight_decay`.
* Keras keeps a tensor's mask (from `mask_zero` embeddings) in a private
  tensor attribute; `FusedAttention` must see one to leave such calls to Keras,
  which turns it into a query mask.

Everything else in workbench uses public API. A Keras or keras-hub upgrade that
renames or adds one of these attributes would otherwise load weights into the
wrong place or silently run a different model, so `check()` runs at import and
raises `KerasInternalsError` naming what changed and the versions this module
was tested with.

Example:
```python
from workbench.models.keras_internals import transformer_sublayers

sublayers = transformer_sublayers(encoder.transformer_layers[0])
sublayers.self_attention.query_dense.kernel  # the layer-0 query projection
```
"""

import inspect
from typing import NamedTuple

import keras
import keras_hub

try:
    from keras.src.backend.common.masking import get_keras_mask as _get_keras_mask
except ImportError:  # reported by check()
    _get_keras_mask = None

TESTED_VERSIONS = {"keras": "3.15.1", "keras-hub": "0.32.0"}


class KerasInternalsError(ImportError):
    """A private Keras / keras-hub name workbench relies on is gone or changed."""


class TransformerSublayers(NamedTuple):
    """The sublayers of a keras-hub `TransformerEncoder`, by public names.

    Args:
        self_attention: the `MultiHeadAttention` (`_self_attention_layer`).
        self_attention_layer_norm: LayerNorm after attention + residual.
        self_attention_dropout: dropout on the attention block's output.
        feedforward_layer_norm: LayerNorm after the feed-forward block + residual.
        feedforward_intermediate_dense: the expanding dense layer with the activation.
        feedforward_output_dense: the projecting dense layer.
        feedforward_dropout: dropout on the feed-forward output.

    Example:
    ```python
    transformer_sublayers(layer).feedforward_intermediate_dense.activation
    ```
    """

    self_attention: keras.layers.Layer
    self_attention_layer_norm: keras.layers.Layer
    self_attention_dropout: keras.layers.Layer
    feedforward_layer_norm: keras.layers.Layer
    feedforward_intermediate_dense: keras.layers.Layer
    feedforward_output_dense: keras.layers.Layer
    feedforward_dropout: keras.layers.Layer


# TransformerSublayers field -> keras-hub's attribute. The attribute names are
# also the weight paths inside presets and `.keras` files.
_TRANSFORMER_ATTRIBUTES = {field: "_" + field for field in TransformerSublayers._fields}
_TRANSFORMER_ATTRIBUTES["self_attention"] = "_self_attention_layer"

# MaskedLMHead: the transform dense and LayerNorm, and the output bias.
_MASKED_LM_ATTRIBUTES = ("_intermediate_dense", "_intermediate_layer_norm", "_bias")


def transformer_sublayers(layer):
    """The built sublayers of a keras-hub `TransformerEncoder`."""
    return TransformerSublayers(
        **{field: getattr(layer, attribute) for field, attribute in _TRANSFORMER_ATTRIBUTES.items()}
    )


def set_transformer_sublayers(layer, sublayers):
    """Give a `TransformerEncoder` (inside its `build`) the sublayers its `call`
    runs, under the attribute names keras-hub's own `build` uses, so weights
    keep keras-hub's paths."""
    for field, attribute in _TRANSFORMER_ATTRIBUTES.items():
        setattr(layer, attribute, getattr(sublayers, field))


def masked_lm_head_weights(head):
    """A built keras-hub `MaskedLMHead`'s own weights (the decoder matrix is
    the tied token embedding): {"dense_kernel", "dense_bias", "layer_norm_gamma",
    "layer_norm_beta", "output_bias"}."""
    return {
        "dense_kernel": head._intermediate_dense.kernel,
        "dense_bias": head._intermediate_dense.bias,
        "layer_norm_gamma": head._intermediate_layer_norm.gamma,
        "layer_norm_beta": head._intermediate_layer_norm.beta,
        "output_bias": head._bias,
    }


def attention_dropout_seed_generator(attention):
    """The `SeedGenerator` of a built `MultiHeadAttention`'s attention-probability
    dropout (None when its rate is 0)."""
    return getattr(attention._dropout_layer, "seed_generator", None)


def optimizer_variable_index(optimizer, variable):
    """Where `variable` sits in the optimizer's own list (and so in the slot
    variables an optimizer creates with `add_optimizer_variables`). Keras keys it
    by its private `_var_key`, which also matches a distributed variable's
    components; a dict of our own would not."""
    return optimizer._get_variable_index(variable)


def uses_weight_decay(optimizer, variable):
    """Whether the optimizer decays `variable` (Keras' `exclude_from_weight_decay`
    rules, kept in its private `_use_weight_decay`)."""
    return optimizer.weight_decay is not None and optimizer._use_weight_decay(variable)


class WholeUpdateOptimizer(keras.optimizers.Optimizer):
    """A Keras optimizer that can do clipping, weight decay and the update in one step.

    Keras applies gradients in three private steps, each a pass over every
    variable or gradient: `_clip_gradients` (global norm, then a scaled copy of
    every gradient), `_apply_weight_decay` (a read-modify-write of every
    decayed variable) and `_backend_update_step` (the update). While the
    subclass's `whole_update_applies()` is true, the first two do nothing and
    `whole_update(grads, variables, learning_rate)` receives the unclipped
    gradients and must do all three. Everything around them (loss scaling,
    gradient accumulation, EMA, the iteration counter) stays Keras'.

    Args:
        as `keras.optimizers.Optimizer`.
    """

    def whole_update_applies(self):
        """Whether `whole_update` replaces Keras' three steps (here: never)."""
        return False

    def whole_update(self, grads, variables, learning_rate):
        """Clip, decay and update `variables` (only called while `whole_update_applies()`)."""
        raise NotImplementedError(f"{type(self).__name__} says whole_update_applies() but has no whole_update")

    def _clip_gradients(self, grads):
        return grads if self.whole_update_applies() else super()._clip_gradients(grads)

    def _apply_weight_decay(self, variables):
        if not self.whole_update_applies():
            super()._apply_weight_decay(variables)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if self.whole_update_applies():
            self.whole_update(grads, trainable_variables, learning_rate)
        else:
            super()._backend_update_step(grads, trainable_variables, learning_rate)


def keras_mask(tensor):
    """The Keras mask a layer attached to `tensor` (None for none, or no tensor)."""
    return None if tensor is None else _get_keras_mask(tensor)


# === The import-time check ===


def _private_names(function, nested=False):
    # Attribute (and global) names a function's code reads or writes; `self._x`
    # appears as `_x`. Only our own private names are compared, so the check
    # does not depend on unrelated code in the function. `nested`: those of the
    # functions defined inside it instead.
    code = getattr(function, "__code__", None)
    if code is None:  # gone, or no longer a plain function
        return set()
    codes = [const for const in code.co_consts if inspect.iscode(const)] if nested else [code]
    names = set()
    while codes:
        code = codes.pop()
        names |= {name for name in code.co_names if name.startswith("_") and not name.startswith("__")}
        if nested:
            codes += [const for const in code.co_consts if inspect.iscode(const)]
    return names


def _parameters(function):
    return [name for name in inspect.signature(function).parameters if name != "self"]


def _problems():
    problems = []
    encoder = keras_hub.layers.TransformerEncoder
    ours = set(_TRANSFORMER_ATTRIBUTES.values())
    # keras-hub's call must read exactly the sublayers we create: a new one
    # would be missing from ours; a renamed one would never run.
    read = _private_names(encoder.call)
    if read != ours:
        problems.append(
            "keras_hub.layers.TransformerEncoder.call reads "
            f"{sorted(read)}; workbench creates {sorted(ours)} (missing: {sorted(read - ours) or 'none'}, "
            f"unused: {sorted(ours - read) or 'none'})"
        )
    # keras-hub's build must create them under the same names, or presets written
    # by keras-hub store their weights under paths workbench's layers lack.
    created = _private_names(encoder.build) - {"_build_from_signature"}
    if created != ours:
        problems.append(
            f"keras_hub.layers.TransformerEncoder.build creates {sorted(created)}; workbench expects {sorted(ours)}"
        )
    signatures = [
        (
            "keras_hub.layers.TransformerEncoder.__init__",
            encoder.__init__,
            "intermediate_dim num_heads dropout activation layer_norm_epsilon kernel_initializer bias_initializer "
            "normalize_first kwargs",
        ),
        (
            "keras_hub.layers.TransformerEncoder.call",
            encoder.call,
            "inputs padding_mask attention_mask training return_attention_scores",
        ),
        # BertEncoder builds BertBackbone's graph itself: a new argument means
        # keras-hub's BERT changed and ours would not follow.
        (
            "keras_hub.models.BertBackbone.__init__",
            keras_hub.models.BertBackbone.__init__,
            "vocabulary_size num_layers num_heads hidden_dim intermediate_dim dropout max_sequence_length "
            "num_segments dtype kwargs",
        ),
        # FusedAttention overrides call with this signature.
        (
            "keras.layers.MultiHeadAttention.call",
            keras.layers.MultiHeadAttention.call,
            "query value key query_mask value_mask key_mask attention_mask return_attention_scores training "
            "use_causal_mask",
        ),
    ]
    for name, function, parameters in signatures:
        found = _parameters(function)
        if found != parameters.split():
            problems.append(f"{name} takes {found}; workbench expects {parameters.split()}")
    missing = set(_MASKED_LM_ATTRIBUTES) - _private_names(keras_hub.layers.MaskedLMHead.build)
    if missing:
        problems.append(f"keras_hub.layers.MaskedLMHead.build no longer creates {sorted(missing)}")
    if "_dropout_layer" not in _private_names(getattr(keras.layers.MultiHeadAttention, "_build_attention", None)):
        problems.append("keras.layers.MultiHeadAttention._build_attention no longer creates `_dropout_layer`")
    if _get_keras_mask is None:
        problems.append("keras.src.backend.common.masking.get_keras_mask is gone")
    elif _parameters(_get_keras_mask) != ["x"]:
        problems.append(f"keras.src.backend.common.masking.get_keras_mask takes {_parameters(_get_keras_mask)}")
    index = getattr(keras.optimizers.Optimizer, "_get_variable_index", None)
    if index is None or _parameters(index) != ["variable"]:
        problems.append("keras.optimizers.Optimizer._get_variable_index(variable) is gone or changed")
    optimizer = keras.optimizers.Optimizer
    # Both branches: without and with gradient accumulation (a nested function).
    # Only TensorFlow's optimizer matters: the one-kernel update is TensorFlow's
    # (JAX's `_backend_apply_gradients` is its own, and runs Keras' steps).
    apply_gradients = getattr(optimizer, "_backend_apply_gradients", None)
    hooks = {"_clip_gradients", "_apply_weight_decay", "_backend_update_step"}
    for where, steps in (
        ("", _private_names(apply_gradients)),
        (" with gradient accumulation", _private_names(apply_gradients, nested=True)),
    ):
        if keras.backend.backend() == "tensorflow" and not hooks <= steps:
            problems.append(
                f"keras.optimizers.Optimizer._backend_apply_gradients{where} no longer calls "
                f"{sorted(hooks - steps)} (WholeUpdateOptimizer overrides them)"
            )
    for name, parameters in (
        ("_clip_gradients", ["grads"]),
        ("_apply_weight_decay", ["variables"]),
        ("_backend_update_step", ["grads", "trainable_variables", "learning_rate"]),
        ("_use_weight_decay", ["variable"]),
    ):
        method = getattr(optimizer, name, None)
        if method is None or _parameters(method) != parameters:
            problems.append(f"keras.optimizers.Optimizer.{name}({', '.join(parameters)}) is gone or changed")
    for name in ("query_dense", "key_dense", "value_dense", "output_dense", "key_dim", "dropout"):
        if not isinstance(getattr(keras.layers.MultiHeadAttention, name, None), property):
            problems.append(f"keras.layers.MultiHeadAttention has no public property {name!r}")
    return problems


def check():
    """Raise `KerasInternalsError` if the installed Keras / keras-hub differ from
    what this module relies on (runs once at import)."""
    problems = _problems()
    if problems:
        raise KerasInternalsError(
            "workbench relies on Keras / keras-hub internals that changed in the installed versions "
            f"(keras {keras.__version__}, keras-hub {keras_hub.__version__}; tested with keras "
            f"{TESTED_VERSIONS['keras']}, keras-hub {TESTED_VERSIONS['keras-hub']}):\n- "
            + "\n- ".join(problems)
            + "\nInstall the tested versions, or update workbench/models/keras_internals.py "
            "(see docs/architecture.md, 'Keras internals')."
        )


check()
