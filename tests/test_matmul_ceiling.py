import math

import pytest

from workbench.bench.matmul_ceiling import layer_products, measure_ceiling, product_flops
from workbench.bench.speed import flops_per_sequence
from workbench.models.config import BertConfig


def small_config():
    return BertConfig.from_size("tiny", vocab_size=100, hidden_size=32, num_attention_heads=4, intermediate_size=64)


@pytest.mark.parametrize("mode, passes", [("train", 6), ("predict", 2)])
def test_the_products_are_the_flop_formulas_matmuls(mode, passes):
    # The MFU formula counts every non-embedding parameter (`passes` N T); the products leave out only the
    # biases, LayerNorms and pooler, which are no layer matmul: the two counts differ by exactly those.
    config, seq, batch = small_config(), 24, 3
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    not_in_products = config.num_parameters(non_embedding=True) - layers * (4 * h * h + 2 * h * i)
    expected = batch * (flops_per_sequence(config, seq, mode) - passes * not_in_products * seq)
    assert product_flops(layer_products(config, seq, batch, mode)) * layers == expected


@pytest.mark.parametrize("mode", ["train", "predict"])
def test_the_ceiling_times_every_product_of_the_step(mode):
    # Every product runs (a wrong operand shape would raise in the matmul) and is timed.
    rate = measure_ceiling(small_config(), seq=16, batch=2, mode=mode, dtype="float32", repeats=2)
    assert math.isfinite(rate) and rate > 0


def test_pretraining_heads_are_no_layer_products():
    with pytest.raises(ValueError, match="mode must be train or predict"):
        layer_products(small_config(), 16, 2, mode="pretrain")
    from workbench.bench.speed import measure

    with pytest.raises(ValueError, match="ceiling: .* not pretrain"):  # before any model is built
        measure("tiny", seq=16, batch=2, mode="pretrain", ceiling=True)
