import keras
import numpy as np
import pytest
from conftest import random_inputs
from numpy_bert import encoder_forward, google_weights_from_keras

from workbench.models.config import BertConfig
from workbench.models.encoder import BertEncoder, build_encoder
from workbench.models.keras_internals import transformer_sublayers


def randomize(model, rng, scale=0.2):
    """Non-trivial weights: biases non-zero, LayerNorm gains away from 1."""
    for w in model.weights:
        values = rng.normal(0.0, scale, size=w.shape)
        if w.path.endswith("gamma"):
            values += 1.0
        w.assign(values.astype(w.dtype))
    return model


def tiny_config(**overrides):
    fields = dict(vocab_size=60, max_position_embeddings=16)
    fields.update(overrides)
    return BertConfig.from_size("tiny", **fields)


@pytest.mark.parametrize("act", ["gelu", "gelu_exact"])
def test_encoder_matches_numpy_reference(rng, act):
    config = tiny_config(
        hidden_act=act, num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=96
    )
    encoder = randomize(BertEncoder.from_config_object(config), rng)
    inputs = random_inputs(rng)
    out = encoder(inputs, training=False)
    seq, pooled, _ = encoder_forward(google_weights_from_keras(encoder), 2, 4, **inputs, hidden_act=act)
    valid = inputs["padding_mask"].astype(bool)
    assert np.abs(np.asarray(out["sequence_output"]) - seq)[valid].max() <= 1e-4
    assert np.abs(np.asarray(out["pooled_output"]) - pooled).max() <= 1e-4


def test_gelu_forms_differ_as_documented(rng):
    # keras-hub always uses the tanh form; a Hugging Face model (exact GELU) run
    # that way is measurably off. Our encoder closes this gap with `activation`.
    config = tiny_config()
    encoder = randomize(BertEncoder.from_config_object(config), rng, scale=0.5)
    inputs = random_inputs(rng)
    exact_ref, _, _ = encoder_forward(google_weights_from_keras(encoder), 2, 2, **inputs, hidden_act="gelu_exact")
    tanh_out = np.asarray(encoder(inputs)["sequence_output"])
    exact = BertEncoder.from_keras_hub(encoder, activation="gelu_exact")
    exact_out = np.asarray(exact(inputs)["sequence_output"])
    valid = inputs["padding_mask"].astype(bool)
    assert np.abs(tanh_out - exact_ref)[valid].max() > 1e-4
    assert np.abs(exact_out - exact_ref)[valid].max() <= 1e-4


def test_encoder_is_a_keras_hub_backbone_and_round_trips(tmp_path, rng):
    import keras_hub

    encoder = BertEncoder.from_config_object(tiny_config(hidden_act="gelu_exact", attention_probs_dropout_prob=0.3))
    assert isinstance(encoder, keras_hub.models.BertBackbone)
    attention = transformer_sublayers(encoder.transformer_layers[0]).self_attention
    assert attention.dropout == 0.3 and encoder.transformer_layers[0].dropout == 0.1
    assert encoder.to_config_object() == tiny_config(hidden_act="gelu_exact", attention_probs_dropout_prob=0.3)
    path = tmp_path / "encoder.keras"
    encoder.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, BertEncoder) and loaded.activation == "gelu_exact"
    inputs = random_inputs(rng)
    np.testing.assert_array_equal(loaded(inputs)["pooled_output"], encoder(inputs)["pooled_output"])


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_encoder_has_keras_hubs_layers_weights_and_random_draws(dropout):
    # Same variable paths, shapes and creation order as keras-hub's BertBackbone:
    # with the same seed both start from identical weights, so presets, weight
    # files and `set_weights` map one to one.
    import keras_hub

    sizes = dict(vocabulary_size=60, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64)
    keras.utils.set_random_seed(5)
    hub = keras_hub.models.BertBackbone(**sizes, max_sequence_length=16, dropout=dropout)
    keras.utils.set_random_seed(5)
    ours = BertEncoder(**sizes, max_sequence_length=16, dropout=dropout)
    assert [(w.path, w.shape) for w in ours.weights] == [(w.path, w.shape) for w in hub.weights]
    for a, b in zip(ours.get_weights(), hub.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert ours.get_config() == {
        **hub.get_config(),
        "name": ours.name,
        "activation": "gelu",
        "attention_dropout": dropout,
        "initializer_range": 0.02,
    }


def test_keras_hub_preset_directory_loads(tmp_path, rng):
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=60, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=16
    )
    randomize(backbone, rng)
    backbone.save_to_preset(str(tmp_path / "preset"))
    encoder = build_encoder(str(tmp_path / "preset"))
    assert isinstance(encoder, BertEncoder)
    inputs = random_inputs(rng)
    np.testing.assert_allclose(encoder(inputs)["pooled_output"], backbone(inputs)["pooled_output"], atol=1e-6)


def test_our_preset_keeps_its_activation(tmp_path, rng):
    # build_encoder once re-read a gelu_exact preset (a converted Hugging Face
    # model) with keras-hub's tanh GELU: outputs off by ~1e-3, silently.
    encoder = randomize(BertEncoder.from_config_object(tiny_config(hidden_act="gelu_exact")), rng, scale=0.5)
    encoder.save_to_preset(str(tmp_path / "preset"))
    loaded = build_encoder(str(tmp_path / "preset"))
    assert loaded.activation == "gelu_exact"
    inputs = random_inputs(rng)
    np.testing.assert_array_equal(loaded(inputs)["sequence_output"], encoder(inputs)["sequence_output"])


def test_initializer_range_is_honoured():
    wide = BertEncoder.from_config_object(tiny_config(initializer_range=0.5))
    assert 0.2 < np.std(wide.token_embedding.embeddings.numpy()) < 0.5
    narrow = BertEncoder.from_config_object(tiny_config())
    assert np.std(narrow.token_embedding.embeddings.numpy()) < 0.03


def test_build_encoder_errors():
    with pytest.raises(ValueError, match="vocab_size is required"):
        build_encoder("tiny")
    with pytest.raises(ValueError, match="Unknown activation"):
        BertEncoder(
            vocabulary_size=10, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=8, activation="gelu_fast"
        )


def test_attention_dropout_alone_trains_and_round_trips(tmp_path, rng):
    # keras-hub builds the attention-probability Dropout with the hidden rate;
    # at hidden dropout 0 Keras gave it no random state and training failed.
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.5)
    encoder = BertEncoder.from_config_object(config)
    inputs = random_inputs(rng)
    inference = np.asarray(encoder(inputs, training=False)["sequence_output"])
    assert not np.allclose(np.asarray(encoder(inputs, training=True)["sequence_output"]), inference, atol=1e-3)
    model = keras.Model(encoder.input, encoder.output["sequence_output"])
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(restored(inputs, training=False)), inference, atol=1e-5)
