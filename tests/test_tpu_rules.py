"""TPU program rules, checked on CPU: every task's model compiles as one XLA program.

A TPU runs only what XLA compiles: static shapes, no strings, ragged tensors or Python callbacks inside a
step. XLA on the CPU enforces the same rules, so each task's head is compiled here with `jit_compile=True`,
the fused kernels of `workbench.models.fast_layers` included (inside a compiled step they are inlined), and
one training step and one evaluation step run on a batch of the task's own featurized samples. Tasks share
their head's program (GLUE's nine tasks differ only in the number of classes), so one task per kind of head is
compiled (each compile takes 10-100 s on the 2-core machine); every task's batches are checked for static shapes.
"""

import keras
import numpy as np
import pytest
from tiny_runs import SAMPLES, VOCAB, tiny_config

from workbench.models.encoder import BertEncoder
from workbench.models.fast_layers import xla_available
from workbench.models.optimizer import create_optimizer
from workbench.tasks.registry import TASK_NAMES, get_task
from workbench.text.tokenizer import BertTokenizer

BATCH = 4

pytestmark = pytest.mark.skipif(not xla_available(), reason="this TensorFlow build has no XLA JIT for the CPU")


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer(VOCAB, lowercase=True)


def _first_batch(task, tokenizer):
    seq = 128 if task.head == "span" else 32
    features = task.featurize(task.load(SAMPLES, task.train_split), tokenizer, seq, training=True)
    assert len(features) >= BATCH, (task.name, len(features))
    x, y = next(iter(features.dataset(BATCH, with_labels=True, drop_remainder=True)))
    return seq, x, y


@pytest.mark.parametrize("name", TASK_NAMES)
def test_every_task_feeds_static_shapes_without_strings(name, tokenizer):
    # Static shapes: every batch full, as training batches are with drop_remainder; tokenization stays on the host.
    _, x, y = _first_batch(get_task(name), tokenizer)
    for tensor in keras.tree.flatten(x) + keras.tree.flatten(y):
        assert None not in tensor.shape and tensor.dtype.name != "string", (name, tensor)


ONE_TASK_PER_HEAD = list({get_task(name).head: name for name in reversed(TASK_NAMES)}.values())


@pytest.mark.parametrize("name", ONE_TASK_PER_HEAD)
def test_each_kind_of_head_trains_and_evaluates_as_one_xla_program(name, tokenizer):
    task = get_task(name)
    seq, x, y = _first_batch(task, tokenizer)

    keras.utils.set_random_seed(0)
    config = tiny_config(tokenizer.vocabulary_size(), max_position_embeddings=seq)
    model = task.build_model(BertEncoder.from_config_object(config))
    model.compile(optimizer=create_optimizer(1e-3, total_steps=10, warmup_steps=0), loss=task.loss(), jit_compile=True)

    before = [np.array(v) for v in model.trainable_variables]
    train_loss = model.train_on_batch(x, y, return_dict=True)["loss"]
    eval_loss = model.test_on_batch(x, y, return_dict=True)["loss"]
    assert np.isfinite(train_loss) and np.isfinite(eval_loss), (name, train_loss, eval_loss)
    assert any(not np.array_equal(b, np.array(v)) for b, v in zip(before, model.trainable_variables)), name
    assert model.jit_compile is True


def test_one_task_per_kind_of_head_covers_every_head():
    assert {get_task(name).head for name in ONE_TASK_PER_HEAD} == {get_task(name).head for name in TASK_NAMES}
    assert len(ONE_TASK_PER_HEAD) == 5


def test_prediction_batches_are_padded_to_full_size_and_every_example_counts_once(tokenizer):
    from workbench.tasks.registry import padded_batches

    task = get_task("mrpc")
    examples = task.load(SAMPLES, "dev")[:13]  # 13 = 3 batches of 4 and one of 1
    features = task.featurize(examples, tokenizer, 32)
    dataset, valid = padded_batches(features.inputs, BATCH)
    assert all(spec.shape[0] == BATCH for spec in keras.tree.flatten(dataset.element_spec))  # one static shape
    assert valid.tolist() == [True] * 13 + [False] * 3

    keras.utils.set_random_seed(0)
    config = tiny_config(tokenizer.vocabulary_size())
    model = task.build_model(BertEncoder.from_config_object(config))
    model.compile(jit_compile=True)
    predictions = task.predict(model, features, batch_size=BATCH, examples=examples)
    # The reference: each example alone, unpadded.
    logits = np.concatenate(
        [np.asarray(model({k: v[i : i + 1] for k, v in features.inputs.items()}, training=False)) for i in range(13)]
    )
    reference = task.decode(examples, features, logits)
    assert len(predictions) == 13 and list(predictions) == list(reference)
    assert task.score(examples, predictions, "dev") == task.score(examples, reference, "dev")


def test_steps_per_execution_auto_is_one_off_tpus_and_divides_checkpoint_every_on_them():
    from workbench.training.distribution import TPU_STEPS_PER_EXECUTION, auto_steps_per_execution

    class Strategy:
        def __init__(self, device):
            self.workbench_device = device

    assert (
        auto_steps_per_execution("auto", Strategy("cpu"), 200)
        == auto_steps_per_execution("auto", Strategy("gpu"), 7)
        == 1
    )
    assert auto_steps_per_execution("auto", Strategy("tpu"), 1000) == TPU_STEPS_PER_EXECUTION == 100
    assert auto_steps_per_execution("auto", Strategy("tpu"), 200) == 100
    assert (
        auto_steps_per_execution("auto", Strategy("tpu"), 96) == 96
        and auto_steps_per_execution("auto", Strategy("tpu"), 7) == 7
    )
    assert auto_steps_per_execution("auto", Strategy("tpu"), 1001) == 91  # the largest divisor up to 100
    assert auto_steps_per_execution(4, Strategy("tpu"), 1000) == 4
