"""`python -m workbench convert SRC DST --to {keras-preset,google,savedmodel}`.

* keras-preset: a keras-hub preset directory; `keras_hub.models.BertBackbone.from_preset(DST)`
  loads it (with `import workbench` when the activation is not keras-hub's tanh GELU).
* google: the original release layout (`bert_model.ckpt.*`, `bert_config.json`,
  `vocab.txt`), including MLM/NSP or classifier/SQuAD heads when SRC has them.
* savedmodel: a TensorFlow SavedModel of a fine-tuned task model for serving
  (SRC: a run directory with `task_model.keras`, or the .keras file itself),
  with a `serve` signature taking token_ids, segment_ids and padding_mask.
"""

import os

from workbench.checkpoints import GOOGLE_FILES, PRESET_FILES, SAVEDMODEL_FILES

FORMATS = ("keras-preset", "google", "savedmodel")


def _task_model_path(src):
    path = os.path.join(src, "task_model.keras") if os.path.isdir(src) else src
    if not (path.endswith(".keras") and os.path.exists(path)):
        raise ValueError(
            "--to savedmodel needs a fine-tuned task model: a run directory with task_model.keras "
            f"or a .keras file; got {src}"
        )
    return path


def _backend_export_options(model):
    """Under JAX, Keras exports through jax2tf with a separate symbolic size for
    every unknown dimension, and keras-hub's position embedding cannot compare
    such a size with its table ("'c' <= '512' is inconclusive"). Here every input
    shares one batch and one sequence size, bounded by the model's positions.
    Serving needs no gradient, and jax2tf's gradient tracing drops the bound."""
    import keras

    if keras.backend.backend() != "jax":
        return {}
    from workbench.models.attention import find_encoder

    def shape(tensor):
        dims = ["batch" if i == 0 else "seq" if d is None else str(d) for i, d in enumerate(tensor.shape)]
        return f"({', '.join(dims)})"

    return {
        "jax2tf_kwargs": {
            "polymorphic_shapes": [{name: shape(t) for name, t in model.input.items()}],
            "polymorphic_constraints": [f"seq <= {find_encoder(model).max_sequence_length}"],
            "with_gradient": False,
        }
    }


# What an earlier output of each format holds (such a directory may be replaced).
REPLACES = {"keras-preset": PRESET_FILES, "google": GOOGLE_FILES, "savedmodel": SAVEDMODEL_FILES}


def convert(src, dst, to, lowercase=None):
    """Convert a model from any layout `load_pretrained` reads (or a task model) to `to`."""
    if to not in FORMATS:
        raise ValueError(f"Unknown format {to!r}; expected one of {', '.join(FORMATS)}")
    from workbench.files import check_replaceable_directory

    # Before any work: `dst` must be new, empty, or an earlier output of this format.
    check_replaceable_directory(dst, REPLACES[to])
    if to == "savedmodel":
        import keras

        import workbench.models.heads  # noqa: F401  (registers the head classes)
        from workbench.files import atomic_directory
        from workbench.models.fast_layers import plain_layers

        # compile=False: serving needs no optimizer (and a fresh process has not
        # registered the workbench optimizer classes the file names).
        model = keras.models.load_model(_task_model_path(src), compile=False)
        # Plain TensorFlow ops: a serving binary need not have the XLA JIT.
        # Written beside `dst` and renamed: a crash never leaves half a SavedModel.
        with plain_layers(), atomic_directory(dst, REPLACES[to]) as staging:
            model.export(staging, format="tf_saved_model", **_backend_export_options(model))
        return dst
    from workbench.checkpoints.load import apply_head_weights, load_pretrained, save_pretrained

    pretrained = load_pretrained(src, lowercase=lowercase)
    if to == "keras-preset":
        return save_pretrained(pretrained.encoder, pretrained.tokenizer, dst)
    from workbench.checkpoints.google import save_google_release
    from workbench.models.heads import BertClassifier, BertPretrainer, BertSpanExtractor

    model = pretrained.encoder
    heads = pretrained.head_weights
    candidates = []
    if "cls/predictions/output_bias" in heads:
        candidates.append(BertPretrainer(pretrained.encoder))
    if "cls/squad/output_weights" in heads:
        candidates.append(BertSpanExtractor(pretrained.encoder))
    if "output_weights" in heads:
        candidates.append(BertClassifier(pretrained.encoder, num_classes=heads["output_weights"].shape[0]))
    for candidate in candidates:
        if apply_head_weights(candidate, heads):
            model = candidate
            break
    return save_google_release(model, pretrained.tokenizer, dst)
