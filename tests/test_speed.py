import pandas as pd

from workbench.bench.speed import SPEED_COLUMNS, flops_per_sequence
from workbench.models.config import BertConfig


def test_flop_formula_against_a_hand_count():
    config = BertConfig(
        vocab_size=100,
        hidden_size=4,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        max_position_embeddings=16,
        type_vocab_size=2,
    )
    # One layer: Q,K,V,O 4*(4*4+4) = 80; 2 LayerNorms 16; FFN 4*8+8 + 8*4+4 = 76; pooler 4*4+4 = 20.
    assert config.num_parameters(non_embedding=True) == 80 + 16 + 76 + 20
    n, seq = 192, 10
    assert flops_per_sequence(config, seq, "train") == 6 * n * seq + 12 * 1 * 4 * seq * seq
    assert flops_per_sequence(config, seq, "predict") == 2 * n * seq + 4 * 1 * 4 * seq * seq
    assert flops_per_sequence(
        config, seq, "pretrain", predictions=2
    ) == 6 * n * seq + 12 * 4 * seq * seq + 6 * 2 * 4 * (4 + 100)


def test_speed_command_writes_a_well_formed_row(tmp_path):
    from workbench.cli import main

    out = tmp_path / "speed.csv"
    # Both rows: the tiny model, 4 steps of 4 sequences of 16 tokens after 1 of warm-up, not timed longer.
    tiny = ["speed", "--model", "tiny", "--seq", "16", "--batch", "4", "--steps", "4", "--warmup", "1"]
    tiny += ["--min-seconds", "0", "--output", str(out)]
    assert main([*tiny, "--no-xla", "--profile", str(tmp_path / "trace"), "--ceiling"]) == 0
    assert list((tmp_path / "trace").rglob("*.xplane.pb"))  # a trace TensorBoard's profile plugin opens
    assert main([*tiny, "--mode", "pretrain"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == SPEED_COLUMNS and len(table) == 2
    train, pretrain = table.iloc[0], table.iloc[1]
    assert train["sequences_per_second"] > 0 and 0 < train["mfu"] < 1.5 and train["vs_keras_hub"] > 0
    # The layer matmuls alone run faster than the whole step; pretrain was not asked for them.
    assert train["mfu"] < train["matmul_mfu"] and pd.isna(pretrain["matmul_mfu"])
    assert (
        train["tokens_per_second"] == round(train["sequences_per_second"] * 16, 1)
        or abs(train["tokens_per_second"] - train["sequences_per_second"] * 16) < 1
    )
    assert pretrain["mode"] == "pretrain" and pd.isna(pretrain["vs_keras_hub"])
    assert not train["xla"] and not pretrain["xla"]  # --no-xla, and "auto" (Keras' choice) is off on CPU
    assert train["input_sequences_per_second"] > 0 and pretrain["input_sequences_per_second"] > 0


def test_timing_extends_to_min_seconds_of_warm_steps():
    import time

    import tensorflow as tf

    from workbench.bench.speed import _time_model

    class SleepingModel:  # 10 ms steps, through the same callbacks Keras calls
        def __init__(self):
            self.calls = []

        def fit(self, data, epochs, steps_per_epoch, verbose, callbacks, shuffle):
            self.calls.append((steps_per_epoch, data.cardinality().numpy()))
            for batch in range(steps_per_epoch):
                callbacks[0].on_train_batch_begin(batch)
                time.sleep(0.01)
                callbacks[0].on_train_batch_end(batch)

    model = SleepingModel()
    seconds = _time_model(model, tf.data.Dataset.range(4), "train", steps=4, warmup=1, min_seconds=0.2)
    assert 0.009 < seconds < 0.05
    (first, _), (more, cardinality) = model.calls
    assert first == 4 and 3 + more >= 0.2 / 0.05  # enough extra steps for 0.2 s, even at 50 ms a step
    assert cardinality == tf.data.INFINITE_CARDINALITY  # the 4 batches repeat for the extra steps
    model.calls.clear()
    _time_model(model, tf.data.Dataset.range(4), "train", steps=4, warmup=1, min_seconds=0)
    assert len(model.calls) == 1


def test_streams_run_without_autotune_and_deliver_what_training_reads(tmp_path):
    import numpy as np
    import tensorflow as tf

    from workbench.bench.input import input_throughput, synthetic_features, write_pretraining_records
    from workbench.training.loop import training_stream
    from workbench.training.pretrain import phase_stream

    features = synthetic_features(24, seq=16, vocab_size=50, predictions=3)
    stream = training_stream(features, 4, 10, seed=0)
    assert stream.options().autotune.enabled is False  # no autotuner thread for fit() to wait on
    assert len(list(stream)) == 10
    path = write_pretraining_records(features, str(tmp_path / "shard.tfrecord"))
    batches = list(phase_stream([path], len(features), 16, 3, 4, 7, seed=0))
    assert len(batches) == 7 and tf.data.TFRecordDataset(path).reduce(0, lambda n, _: n + 1).numpy() == 24
    x, y, w = batches[0]
    row = int(np.flatnonzero((features.inputs["token_ids"] == x["token_ids"][0].numpy()).all(1))[0])
    np.testing.assert_array_equal(x["mask_positions"][0], features.meta["mask_positions"][row])
    np.testing.assert_array_equal(y["mlm_logits"][0], features.meta["masked_ids"][row])
    assert y["nsp_logits"][0] == features.labels[row]
    for mode in ("train", "predict", "pretrain"):
        assert input_throughput(mode, features, 4, 12) > 0


def test_fit_return_delay_benchmark_runs():
    from workbench.bench.input import describe_delays, fit_return_delays

    delays = fit_return_delays(autotune=False, runs=1, steps=3)
    assert len(delays) == 1 and 0 <= delays[0] < 60
    assert "over 1 runs" in describe_delays(delays)


def test_max_batch_search_finds_the_boundary():
    from workbench.bench.speed import search_max_batch

    for capacity in (1, 5, 8, 12, 100, 1000, 4096):
        tried = []

        def fits(batch, capacity=capacity, tried=tried):
            tried.append(batch)
            return batch <= capacity

        found = search_max_batch(fits, start=8, limit=4096)
        assert capacity - max(1, found // 8) < found <= capacity, (capacity, found)
        assert len(tried) < 25
    assert search_max_batch(lambda b: False) == 0
    assert search_max_batch(lambda b: True, limit=50) == 50


def test_max_batch_command_writes_a_row(tmp_path):
    import pandas as pd

    from workbench.bench.speed import MAX_BATCH_COLUMNS
    from workbench.cli import main

    out = tmp_path / "max_batch.csv"
    assert (
        main(["max-batch", "--model", "tiny", "--seq", "16", "--start", "2", "--limit", "4", "--output", str(out)]) == 0
    )
    table = pd.read_csv(out)
    assert list(table.columns) == MAX_BATCH_COLUMNS and table["max_batch"].tolist() == [
        4
    ]  # CPU RAM holds 4 x 16 tokens


def test_pretraining_stream_order_depends_on_its_seed_only(tmp_path, monkeypatch):
    """The order is a function of (seed, step): not of TensorFlow's global seed (0 included, which a
    `Dataset.shuffle` with a tensor seed cannot trace), nor of how many iterators were made; each epoch is
    a permutation of all the records, also when an epoch spans several shuffle blocks."""
    import numpy as np
    import tensorflow as tf

    import workbench.training.pretrain as pretrain
    from workbench.bench.input import synthetic_features, write_pretraining_records

    features = synthetic_features(24, seq=16, vocab_size=50, predictions=3)
    path = write_pretraining_records(features, str(tmp_path / "shard.tfrecord"))

    def order(seed, global_seed):
        tf.random.set_seed(global_seed)
        stream = pretrain.phase_stream([path], 24, 16, 3, 4, 12, seed=seed)
        iter(stream)  # an iterator made and dropped (as `fit` under a strategy does) changes nothing
        return np.concatenate([x["token_ids"][:, 1:4].numpy() for x, _, _ in stream])

    first = order(1, 0)
    assert (first == order(1, 7)).all()
    assert not (first == order(2, 0)).all()
    rows = [tuple(r) for r in features.inputs["token_ids"][:, 1:4]]
    for epoch in (first[:24], first[24:]):
        assert sorted(map(tuple, epoch)) == sorted(rows)  # every record once per epoch
    assert not (first[:24] == first[24:]).all()  # each epoch its own order
    monkeypatch.setattr(pretrain, "SHUFFLE_BLOCK", 5)  # blocks of 5 records, the last one short
    blocked = order(1, 0)
    assert sorted(map(tuple, blocked[:24])) == sorted(rows)
