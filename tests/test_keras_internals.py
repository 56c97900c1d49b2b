import importlib

import keras
import keras_hub
import pytest

from workbench.models import keras_internals
from workbench.models.keras_internals import masked_lm_head_weights, transformer_sublayers


def check():
    # Looked up on the module: the reload test below re-creates its classes.
    keras_internals.check()


def test_installed_versions_pass_the_check():
    check()


def test_sublayers_of_keras_hubs_own_transformer_encoder():
    layer = keras_hub.layers.TransformerEncoder(intermediate_dim=16, num_heads=2)
    layer.build((None, None, 8))
    sublayers = transformer_sublayers(layer)
    assert isinstance(sublayers.self_attention, keras.layers.MultiHeadAttention)
    # Each field is the role keras-hub names the layer by.
    names = {field: sublayer.name for field, sublayer in sublayers._asdict().items()}
    assert names == {field: field for field in names} | {"self_attention": "self_attention_layer"}
    assert sublayers.feedforward_intermediate_dense.units == 16


def test_masked_lm_head_weights_are_its_own():
    embedding = keras.layers.ReversibleEmbedding(30, 8)
    embedding.build((None,))
    head = keras_hub.layers.MaskedLMHead(vocabulary_size=30, token_embedding=embedding, activation=None)
    head.build((None, None, 8), (None, None))
    weights = masked_lm_head_weights(head)
    assert {id(v) for v in weights.values()} == {id(v) for v in head.weights} - {id(embedding.embeddings)}
    assert weights["output_bias"].shape == (30,) and weights["layer_norm_gamma"].shape == (8,)


def test_a_renamed_keras_hub_attribute_fails_at_import_naming_the_versions(monkeypatch):
    # A keras-hub whose TransformerEncoder.call reads a sublayer under another name.
    def call(self, inputs, padding_mask=None, attention_mask=None, training=None, return_attention_scores=False):
        x = self._self_attention(inputs, inputs)  # renamed from _self_attention_layer
        x = self._self_attention_dropout(self._self_attention_layer_norm(x))
        x = self._feedforward_output_dense(self._feedforward_intermediate_dense(self._feedforward_layer_norm(x)))
        return self._feedforward_dropout(x)

    monkeypatch.setattr(keras_hub.layers.TransformerEncoder, "call", call)
    try:
        with pytest.raises(ImportError) as raised:  # KerasInternalsError is an ImportError
            importlib.reload(keras_internals)
    finally:
        monkeypatch.undo()
        importlib.reload(keras_internals)
    assert type(raised.value).__name__ == "KerasInternalsError"
    message = str(raised.value)
    assert "TransformerEncoder.call reads" in message and "missing: ['_self_attention']" in message
    assert "unused: ['_self_attention_layer']" in message
    assert "tested with keras 3.15.1, keras-hub 0.32.0" in message
    assert f"keras {keras.__version__}, keras-hub {keras_hub.__version__}" in message


def test_a_missing_keras_attribute_or_changed_signature_is_named(monkeypatch):
    monkeypatch.delattr(keras.layers.MultiHeadAttention, "_build_attention")
    with pytest.raises(ImportError, match="no longer creates `_dropout_layer`"):
        check()
    monkeypatch.undo()
    monkeypatch.delattr(keras.layers.MultiHeadAttention, "query_dense")
    with pytest.raises(ImportError, match="no public property 'query_dense'"):
        check()
    monkeypatch.undo()

    def init(self, vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim, rope=False, **kwargs):
        pass

    monkeypatch.setattr(keras_hub.models.BertBackbone, "__init__", init)
    with pytest.raises(ImportError, match=r"BertBackbone.__init__ takes .*'rope'"):
        check()


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="checked for TensorFlow's optimizer only")
def test_an_optimizer_that_no_longer_clips_decays_and_updates_in_those_steps_is_named(monkeypatch):
    # WholeUpdateOptimizer replaces these three steps; a Keras that applied
    # gradients another way would clip or decay twice, or not at all.
    def apply_gradients(self, grads, trainable_variables):
        for grad, variable in zip(grads, trainable_variables):
            self.update_step(grad, variable, self.learning_rate)

    monkeypatch.setattr(keras.optimizers.Optimizer, "_backend_apply_gradients", apply_gradients)
    with pytest.raises(
        ImportError, match=r"no longer calls \['_apply_weight_decay', '_backend_update_step', '_clip_gradients'\]"
    ):
        check()
    monkeypatch.undo()
    monkeypatch.setattr(keras.optimizers.Optimizer, "_use_weight_decay", lambda self, variable, step: True)
    with pytest.raises(ImportError, match=r"_use_weight_decay\(variable\) is gone or changed"):
        check()
