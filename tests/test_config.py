import json

import pytest

from workbench.models.config import BERT_SIZES, BertConfig, parse_size


def test_paper_and_small_bert_sizes():
    assert parse_size("tiny") == (2, 128, 2)
    assert parse_size("mini") == (4, 256, 4)
    assert parse_size("small") == (4, 512, 8)
    assert parse_size("medium") == (8, 512, 8)
    assert parse_size("base") == (12, 768, 12)
    assert parse_size("large") == (24, 1024, 16)
    small_berts = [n for n in BERT_SIZES if n.startswith("L-")]
    assert len(small_berts) == 24
    assert parse_size("bert_uncased_L-4_H-256_A-4") == (4, 256, 4)
    assert parse_size("L-10_H-512") == (10, 512, 8)
    config = BertConfig.from_size("base")
    assert (config.intermediate_size, config.vocab_size, config.hidden_act) == (3072, 30522, "gelu")


@pytest.mark.parametrize("name", ["huge", "L-3_H-128", "L-2_H-100", "bert_uncased_L-2_H-128_A-4"])
def test_unknown_size_names_the_valid_ones(name):
    with pytest.raises(ValueError, match="Unknown BERT size.*tiny.*L-<layers>_H-<hidden>"):
        parse_size(name)


def test_json_round_trip_uses_original_field_names(tmp_path):
    config = BertConfig.from_size("mini", vocab_size=1234, hidden_act="gelu_exact")
    path = tmp_path / "bert_config.json"
    config.to_json_file(path)
    values = json.loads(path.read_text())
    assert set(values) == {
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "hidden_act",
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "max_position_embeddings",
        "type_vocab_size",
        "initializer_range",
    }
    assert BertConfig.from_json_file(path) == config
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_config_json_with_missing_or_unknown_fields(tmp_path):
    values = BertConfig.from_size("tiny", vocab_size=10).to_dict()
    del values["intermediate_size"]
    values["num_experts"] = 8
    path = tmp_path / "bert_config.json"
    path.write_text(json.dumps(values))
    with pytest.raises(ValueError) as err:
        BertConfig.from_json_file(path)
    message = str(err.value)
    assert str(path) in message and "intermediate_size" in message and "num_experts" in message


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ValueError, match="hidden_size.*divisible.*num_attention_heads"):
        BertConfig(vocab_size=10, hidden_size=100, num_attention_heads=3)
    with pytest.raises(ValueError, match="hidden_act"):
        BertConfig(vocab_size=10, hidden_act="gelu_fast")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        BertConfig.from_json_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"vocab_size": 3,\n oops}')
    with pytest.raises(ValueError, match="bad.json.*line 2"):
        BertConfig.from_json_file(bad)


def test_parameter_counts_total_and_without_embeddings():
    base = BertConfig.from_size("base")
    assert base.num_parameters() == 109_482_240  # the released BERT-Base encoder (embeddings, 12 layers, pooler)
    embeddings = (30522 + 512 + 2) * 768 + 2 * 768  # three tables and their LayerNorm
    assert base.num_parameters(non_embedding=True) == 109_482_240 - embeddings
    # Against the Keras model itself: every weight of the encoder is counted once.
    from workbench.models.encoder import BertEncoder

    tiny = BertConfig.from_size("tiny", vocab_size=100, max_position_embeddings=64)
    assert BertEncoder.from_config_object(tiny).count_params() == tiny.num_parameters()
