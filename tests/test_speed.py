import pandas as pd

from workbench.config import BertConfig
from workbench.speed import SPEED_COLUMNS, flops_per_sequence, non_embedding_parameters


def test_flop_formula_against_a_hand_count():
    config = BertConfig(vocab_size=100, hidden_size=4, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8,
                        max_position_embeddings=16, type_vocab_size=2)
    # One layer: Q,K,V,O 4*(4*4+4) = 80; 2 LayerNorms 16; FFN 4*8+8 + 8*4+4 = 76; pooler 4*4+4 = 20.
    assert non_embedding_parameters(config) == 80 + 16 + 76 + 20
    n, seq = 192, 10
    assert flops_per_sequence(config, seq, "train") == 6 * n * seq + 12 * 1 * 4 * seq * seq
    assert flops_per_sequence(config, seq, "predict") == 2 * n * seq + 4 * 1 * 4 * seq * seq
    assert flops_per_sequence(config, seq, "pretrain", predictions=2) == 6 * n * seq + 12 * 4 * seq * seq + 6 * 2 * 4 * (4 + 100)


def test_speed_command_writes_a_well_formed_row(tmp_path):
    from workbench.cli import main

    out = tmp_path / "speed.csv"
    assert main(["speed", "--model", "tiny", "--seq", "16", "--batch", "4", "--steps", "4", "--warmup", "1", "--no-xla",
                 "--output", str(out)]) == 0
    assert main(["speed", "--model", "tiny", "--seq", "16", "--batch", "4", "--steps", "4", "--warmup", "1", "--mode", "pretrain",
                 "--output", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == SPEED_COLUMNS and len(table) == 2
    train, pretrain = table.iloc[0], table.iloc[1]
    assert train["sequences_per_second"] > 0 and 0 < train["mfu"] < 1.5 and train["vs_keras_hub"] > 0
    assert train["tokens_per_second"] == round(train["sequences_per_second"] * 16, 1) or abs(train["tokens_per_second"] - train["sequences_per_second"] * 16) < 1
    assert pretrain["mode"] == "pretrain" and pd.isna(pretrain["vs_keras_hub"]) and bool(pretrain["xla"])
