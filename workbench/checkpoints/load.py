"""Turn a `model` argument into an encoder and its tokenizer.

Every place that takes a `model` (notebooks, the suite runner, the Python API)
goes through `load_pretrained`, which accepts:

* a size name (`"tiny"`, `"base"`, `"L-4_H-256"`, ...): random weights, with the
  vocabulary given by `vocab`;
* an original Google release directory (`bert_model.ckpt.*`, `bert_config.json`,
  `vocab.txt`): every released variant, recognised by its variable shapes;
  the TF Model Garden TF2 (object-based) releases with the same file names too;
* a Hugging Face BERT directory (`config.json` + `model.safetensors` or
  `pytorch_model.bin`) or an `hf://owner/name` handle;
* a keras-hub preset name (`"bert_base_en_uncased"`; downloads from Kaggle) or a
  local keras-hub preset directory, including the `model/` directory a
  workbench fine-tuning or pretraining run writes.

Heads found in Google and Hugging Face checkpoints (masked LM + NSP, a
classifier, SQuAD) come back as `head_weights` under the original names;
`apply_head_weights` puts them on a matching workbench head.
"""

import contextlib
import dataclasses
import os

import keras_hub
import numpy as np

from workbench.models.config import parse_size
from workbench.models.encoder import BertEncoder, build_encoder
from workbench.text.tokenizer import BertTokenizer


@dataclasses.dataclass
class Pretrained:
    encoder: BertEncoder
    tokenizer: BertTokenizer
    init: str  # what the weights are: "random" or the source they came from
    head_weights: dict = dataclasses.field(default_factory=dict)  # {original name: array}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read (truncated, corrupted, wrong format)."""


@contextlib.contextmanager
def reading_checkpoint(model):
    """Turn a reader's low-level error (TensorFlow's DataLossError, h5py's
    OSError, a safetensors or pickle error) into one message naming the model
    directory. Our own `ValueError`s already say what is wrong and pass as they are.
    """
    try:
        yield
    except ValueError:
        raise
    except Exception as e:
        detail = (str(e).strip().splitlines() or [""])[0][:300]
        raise CheckpointError(
            f"{model}: could not read the checkpoint ({type(e).__name__}: {detail}). A file may be truncated or "
            "corrupted (an interrupted download or copy): download or copy it again"
        ) from e


def is_size_name(model):
    try:
        parse_size(model)
        return True
    except ValueError:
        return False


def load_pretrained(model, vocab=None, lowercase=None, dtype=None):
    """The encoder and tokenizer for `model` (see the module docstring).

    Args:
        model: size name, keras-hub preset name, or local preset directory.
        vocab: `vocab.txt` for a size name (required there); ignored otherwise.
        lowercase: override the tokenizer's casing (default: the source's; True
            for a size name).
        dtype: dtype policy for the encoder.
    """
    model = os.fspath(model)
    if is_size_name(model):
        if vocab is None:
            raise ValueError(f"model={model!r} is a size name (random weights): pass vocab=<path to vocab.txt>")
        tokenizer = BertTokenizer(vocab, lowercase=True if lowercase is None else lowercase)
        encoder = build_encoder(model, vocab_size=tokenizer.vocabulary_size(), dtype=dtype)
        return Pretrained(encoder, tokenizer, "random")
    if model.startswith("hf://"):
        from workbench.checkpoints.huggingface import resolve_handle

        model = resolve_handle(model)
    if os.path.isdir(model):
        from workbench.checkpoints.google import is_google_release, load_google_release
        from workbench.checkpoints.huggingface import is_hf_directory, load_hf_directory

        if is_google_release(model):
            with reading_checkpoint(model):
                encoder, tokenizer, heads = load_google_release(model, lowercase, dtype)
            return Pretrained(encoder, tokenizer, f"google:{model}", heads)
        if is_hf_directory(model):
            with reading_checkpoint(model):
                encoder, tokenizer, heads = load_hf_directory(model, lowercase, dtype)
            return Pretrained(encoder, tokenizer, f"huggingface:{model}", heads)
        if not os.path.exists(os.path.join(model, "config.json")):
            raise ValueError(
                f"{model}: not a model directory this workbench reads. Accepted layouts: an original Google BERT "
                "release or TF Model Garden TF2 BERT checkpoint (bert_model.ckpt.index/.data-*, bert_config.json, "
                "vocab.txt); a Hugging Face BERT "
                f"(config.json with model.safetensors or pytorch_model.bin, vocab.txt); a keras-hub preset "
                f"(config.json, model.weights.h5, assets/tokenizer/vocabulary.txt), e.g. the model/ folder of a "
                f"workbench run. Or a size name (tiny, mini, small, medium, base, large, L-<n>_H-<n>) or preset name"
            )
    elif "://" not in model and (os.sep in model or model.startswith(".")):
        raise FileNotFoundError(f"model directory not found: {model}")
    # A directory, a preset name or a handle (kaggle://, hf://): keras-hub loads it.
    with reading_checkpoint(model) if os.path.isdir(model) else contextlib.nullcontext():
        encoder = build_encoder(model, dtype=dtype)
        source = keras_hub.models.BertTokenizer.from_preset(model)
    source_case = source.do_lower_case if isinstance(source, BertTokenizer) else source.lowercase
    tokenizer = BertTokenizer(source.get_vocabulary(), lowercase=source_case if lowercase is None else lowercase)
    if tokenizer.vocabulary_size() != encoder.vocabulary_size:
        raise ValueError(
            f"{model}: vocabulary has {tokenizer.vocabulary_size()} tokens "
            f"but the embedding table has {encoder.vocabulary_size} rows"
        )
    return Pretrained(encoder, tokenizer, str(model))


def apply_head_weights(model, head_weights):
    """Load checkpoint head weights onto a workbench head when the checkpoint
    has that head with matching shapes; returns whether it did."""
    from workbench.checkpoints.google import assign, head_mapping

    mapping = head_mapping(model)
    if not mapping or not all(name in head_weights for name, *_ in mapping):
        return False
    if any(
        tuple(np.shape(head_weights[name])) != tuple(to_google(var.numpy()).shape)
        for name, var, _, to_google in mapping
    ):
        return False  # e.g. a classifier with another number of labels
    assign(mapping, head_weights, "checkpoint heads")
    return True


def save_pretrained(encoder, tokenizer, directory):
    """Write a keras-hub preset directory (config, weights, vocabulary) that
    `load_pretrained` and `keras_hub.models.BertBackbone.from_preset` read."""
    from workbench.checkpoints import PRESET_FILES
    from workbench.files import atomic_directory, check_replaceable_directory

    check_replaceable_directory(directory, PRESET_FILES)
    try:
        with atomic_directory(directory, PRESET_FILES) as staging:
            encoder.save_to_preset(staging)
            tokenizer.save_to_preset(staging)
    except (OSError, RuntimeError) as e:  # disk full, a file-size limit (h5py raises either)
        detail = (str(e).strip().splitlines() or [""])[0][:300]
        raise OSError(
            f"{directory}: could not write the model ({type(e).__name__}: {detail}); "
            "an earlier model there is unchanged"
        ) from e
    return directory
