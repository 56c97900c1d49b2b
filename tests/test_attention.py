import numpy as np
import pytest
from conftest import random_inputs
from numpy_bert import encoder_forward, google_weights_from_keras
from test_backbone import randomize, tiny_config

from workbench.models.attention import attention_maps
from workbench.models.encoder import BertEncoder
from workbench.models.heads import BertClassifier, BertMultipleChoice
from workbench.models.keras_internals import transformer_sublayers


def test_attention_maps_match_numpy_reference(rng):
    encoder = randomize(BertEncoder.from_config_object(tiny_config(hidden_size=64, num_attention_heads=4)), rng)
    inputs = random_inputs(rng)
    maps = attention_maps(encoder, inputs)
    _, _, reference = encoder_forward(google_weights_from_keras(encoder), 2, 4, **inputs)
    assert len(maps) == 2
    for ours, ref in zip(maps, reference):
        assert ours.shape == (2, 4, 12, 12)
        assert np.abs(ours - ref).max() <= 1e-4
        np.testing.assert_allclose(ours.sum(-1), 1.0, atol=1e-5)
    # Padded keys receive no attention.
    assert np.abs(maps[0][1, :, :, -4:]).max() < 1e-6


def test_attention_maps_reuse_the_heads_encoder_weights(rng):
    encoder = randomize(BertEncoder.from_config_object(tiny_config()), rng)
    classifier = BertClassifier(encoder, num_classes=2)
    inputs = random_inputs(rng)
    before = attention_maps(classifier, inputs)
    np.testing.assert_array_equal(before[1], attention_maps(encoder, inputs)[1])
    # Changing the encoder's weights changes the maps: no copy was taken.
    q = transformer_sublayers(encoder.transformer_layers[1]).self_attention.query_dense.kernel
    q.assign(q.numpy() * 3.0)
    assert np.abs(attention_maps(classifier, inputs)[1] - before[1]).max() > 1e-3
    assert len(attention_maps(BertMultipleChoice(encoder), inputs)) == 2


def test_attention_maps_reject_non_bert_models():
    import keras

    with pytest.raises(TypeError, match="not a BERT encoder"):
        attention_maps(keras.Sequential([keras.layers.Dense(2)]), {})


def test_one_forward_gives_hidden_states_with_or_without_attention(rng):
    from workbench.explore.hidden_states import hidden_states
    from workbench.models.attention import layer_outputs

    encoder = randomize(BertEncoder.from_config_object(tiny_config(hidden_size=64, num_attention_heads=4)), rng)
    inputs = random_inputs(rng)
    sequence, _, reference_maps = encoder_forward(google_weights_from_keras(encoder), 2, 4, **inputs)
    states = hidden_states(encoder, inputs)  # traced without attention first, then with it, on one encoder
    with_maps, maps = layer_outputs(BertClassifier(encoder, num_classes=2), inputs, attention=True)
    assert len(states) == 3 and states[0].shape == (2, 12, 64) and states[0].dtype == np.float32
    real = inputs["padding_mask"].astype(bool)
    assert np.abs(states[-1][real] - sequence[real]).max() <= 1e-4
    for ours, theirs in zip(states, with_maps):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert len(maps) == 2 and np.abs(maps[1] - reference_maps[1]).max() <= 1e-4
    assert layer_outputs(encoder, inputs)[1] == []
