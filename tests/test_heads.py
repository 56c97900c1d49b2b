import keras
import numpy as np
import pytest
from conftest import random_inputs
from numpy_bert import encoder_forward, google_weights_from_keras, masked_lm_forward, next_sentence_forward
from test_backbone import randomize, tiny_config

from workbench.models.encoder import BertEncoder
from workbench.models.heads import (
    BertClassifier,
    BertMultipleChoice,
    BertPretrainer,
    BertSpanExtractor,
    BertTokenClassifier,
)


@pytest.mark.parametrize("act", ["gelu", "gelu_exact"])
def test_pretraining_heads_match_numpy_reference(rng, act):
    encoder = BertEncoder.from_config_object(tiny_config(hidden_act=act, hidden_size=64, num_attention_heads=4))
    model = randomize(BertPretrainer(encoder), rng)
    inputs = random_inputs(rng)
    positions = np.array([[1, 3, 5], [0, 2, 7]], "int32")
    out = model({**inputs, "mask_positions": positions}, training=False)
    w = google_weights_from_keras(model)
    seq, pooled, _ = encoder_forward(w, 2, 4, **inputs, hidden_act=act)
    assert np.abs(np.asarray(out["mlm_logits"]) - masked_lm_forward(w, seq, positions, hidden_act=act)).max() <= 1e-4
    assert np.abs(np.asarray(out["nsp_logits"]) - next_sentence_forward(w, pooled)).max() <= 1e-4


def test_masked_lm_decoder_is_tied_to_word_embeddings(rng):
    encoder = BertEncoder.from_config_object(tiny_config())
    model = BertPretrainer(encoder)
    embedding_vars = [w for w in model.weights if "token_embedding" in w.path]
    assert len(embedding_vars) == 1  # no separate decoder matrix
    assert not any(
        w.path.startswith("masked_lm_head/") and w.path.endswith("kernel") and w.shape[-1] == 60 for w in model.weights
    )


def head_cases(encoder):
    return [
        (BertClassifier(encoder, num_classes=3), (2, 3)),
        (BertClassifier(encoder, num_classes=1), (2, 1)),
        (BertSpanExtractor(encoder), {"start_logits": (2, 12), "end_logits": (2, 12)}),
        (BertTokenClassifier(encoder, num_labels=9), (2, 12, 9)),
    ]


def test_heads_shapes_and_serialization(tmp_path, rng):
    encoder = BertEncoder.from_config_object(tiny_config())
    inputs = random_inputs(rng)
    for i, (model, shape) in enumerate(head_cases(encoder)):
        out = model(inputs)
        assert keras.tree.map_structure(lambda t: tuple(t.shape), out) == shape
        path = tmp_path / f"head{i}.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        assert type(loaded) is type(model)
        for a, b in zip(keras.tree.flatten(loaded(inputs)), keras.tree.flatten(out)):
            np.testing.assert_array_equal(a, b)


def test_span_head_matches_reference(rng):
    encoder = BertEncoder.from_config_object(tiny_config())
    model = randomize(BertSpanExtractor(encoder), rng)
    inputs = random_inputs(rng)
    out = model(inputs)
    seq, _, _ = encoder_forward(google_weights_from_keras(model), 2, 2, **inputs)
    kernel, bias = model.span_dense.kernel.numpy(), model.span_dense.bias.numpy()
    logits = seq @ kernel + bias
    assert np.abs(np.asarray(out["start_logits"]) - logits[..., 0]).max() <= 1e-4
    assert np.abs(np.asarray(out["end_logits"]) - logits[..., 1]).max() <= 1e-4


def test_multiple_choice_scores_each_choice_independently(rng, tmp_path):
    encoder = BertEncoder.from_config_object(tiny_config())
    model = randomize(BertMultipleChoice(encoder, num_choices=4), rng)
    per_choice = [random_inputs(rng) for _ in range(4)]
    stacked = {k: np.stack([c[k] for c in per_choice], axis=1) for k in per_choice[0]}
    logits = np.asarray(model(stacked, training=False))
    assert logits.shape == (2, 4)
    # Each choice's score = w . pooled(choice) + b, independent of the other choices.
    w, b = model.choice_dense.kernel.numpy()[:, 0], model.choice_dense.bias.numpy()[0]
    for c, inputs in enumerate(per_choice):
        pooled = np.asarray(encoder(inputs)["pooled_output"])
        np.testing.assert_allclose(logits[:, c], pooled @ w + b, atol=1e-5)
    model.save(tmp_path / "mc.keras")
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "mc.keras")(stacked), logits)


def test_heads_under_mixed_precision_return_float32(rng):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        encoder = BertEncoder.from_config_object(tiny_config())
        assert encoder.compute_dtype == "float16"
        inputs = random_inputs(rng)
        for model, _ in head_cases(encoder):
            for t in keras.tree.flatten(model(inputs)):
                assert t.dtype == "float32"
        out = BertPretrainer(encoder)({**inputs, "mask_positions": np.zeros((2, 2), "int32")})
        assert out["mlm_logits"].dtype == "float32" and out["nsp_logits"].dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
