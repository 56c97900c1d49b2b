"""The one training loop: per-step losses, non-finite losses, resuming."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from workbench.training.loop import ResumableTraining, TrainingDiverged, build_training_state


def linear_model(learning_rate):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse")
    build_training_state(model, np.zeros((1, 3), "float32"))
    return model


def training(model, tmp_path, steps, every):
    return ResumableTraining(
        model, steps, str(tmp_path / "checkpoints"), str(tmp_path / "history.csv"), every, description="test"
    )


def test_each_steps_loss_is_recorded_exactly_against_a_float64_reference(tmp_path):
    # Losses around 1e6 over 400 steps: Keras' float32 running mean, taken
    # apart again, would be off by about n * ulp(mean) (here ~1e-5 relative).
    steps, batch = 400, 4
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps * batch, 3)).astype("float32")
    y = (1000 * rng.normal(size=(steps * batch, 1)) * rng.uniform(0.5, 2.0, (steps * batch, 1))).astype("float32")
    model = linear_model(0.0)  # fixed weights: each batch's loss is known in advance
    outcome = training(model, tmp_path, steps, every=1000).fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch))
    w = model.get_weights()[0].astype(np.float64)
    reference = (((x.astype(np.float64) @ w - y) ** 2).reshape(steps, batch).mean(axis=1)).astype(np.float64)
    recorded = outcome.history["loss"].to_numpy()
    assert list(outcome.history["step"]) == list(range(1, steps + 1))
    np.testing.assert_allclose(recorded, reference, rtol=2e-6)
    np.testing.assert_allclose(pd.read_csv(tmp_path / "history.csv")["loss"], recorded, rtol=0)
    # The same check fails for per-step losses rebuilt from a float32 running mean.
    total, means = np.float32(0), []
    for n, loss in enumerate(reference.astype(np.float32), 1):
        total = np.float32(total + np.float32(loss * batch))
        means.append(np.float32(total / np.float32(n * batch)))
    rebuilt = [means[0]] + [n * means[n - 1] - (n - 1) * means[n - 2] for n in range(2, steps + 1)]
    assert np.max(np.abs(np.array(rebuilt) - reference) / reference) > 2e-6


@pytest.mark.parametrize("bad_step", [7, 6])
def test_a_non_finite_loss_stops_at_its_step_and_saves_nothing_after_the_last_good_checkpoint(tmp_path, bad_step):
    steps, batch = 12, 2
    x = np.ones((steps * batch, 3), "float32")
    x[(bad_step - 1) * batch] = np.nan  # one example of batch `bad_step`
    y = np.ones((steps * batch, 1), "float32")
    model = linear_model(0.01)
    run = training(model, tmp_path, steps, every=3)
    with pytest.raises(TrainingDiverged, match=f"loss nan at step {bad_step}: training stopped") as error:
        run.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch))
    good = 3 * ((bad_step - 1) // 3)  # the last multiple of 3 before the bad step (6 -> 3: step 6 is not saved)
    assert (
        error.value.checkpoint == str(tmp_path / "checkpoints" / f"step-{good}") and error.value.checkpoint_step == good
    )
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == f"step-{good}"
    assert not any(p.name.startswith(f"step-{s}") for p in (tmp_path / "checkpoints").iterdir() for s in (9, 12))
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["step"].max() == bad_step and np.isnan(history["loss"].iloc[-1])
    assert np.isfinite(history["loss"].iloc[:-1]).all()
    # The last good checkpoint holds finite weights, and a rerun resumes from it.
    again = training(linear_model(0.01), tmp_path, steps, every=3)
    assert again.start_step == good and np.isfinite(again.model.get_weights()[0]).all()
    assert len(pd.read_csv(tmp_path / "history.csv")) == good


def test_a_resumed_run_trains_only_the_remaining_steps(tmp_path):
    steps, batch = 8, 2
    rng = np.random.default_rng(1)
    data = tf.data.Dataset.from_tensor_slices(
        (rng.normal(size=(steps * batch, 3)).astype("float32"), rng.normal(size=(steps * batch, 1)).astype("float32"))
    ).batch(batch)
    straight = training(linear_model(0.1), tmp_path / "a", steps, every=4).fit(data)
    first = training(linear_model(0.1), tmp_path / "b", 4, every=4)
    first.fit(data.take(4))
    resumed = training(linear_model(0.1), tmp_path / "b", steps, every=4)
    assert resumed.start_step == 4
    outcome = resumed.fit(data)
    assert outcome.trained_steps == 4 and outcome.start_step == 4
    np.testing.assert_allclose(outcome.history["loss"], straight.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(resumed.model.get_weights()[0], straight_weights(tmp_path / "a"), rtol=1e-6)


def straight_weights(directory):
    model = linear_model(0.1)
    training(model, directory, 8, every=4)  # restores the final checkpoint
    return model.get_weights()[0]


def test_a_stream_shorter_than_the_run_is_an_error_not_a_final_checkpoint(tmp_path):
    data = tf.data.Dataset.from_tensor_slices((np.ones((6, 3), "float32"), np.ones((6, 1), "float32"))).batch(2)
    run = training(linear_model(0.1), tmp_path, 5, every=2)
    with pytest.raises(RuntimeError, match="the training data ended after step 3 of 5"):
        with pytest.warns(UserWarning, match="ran out of data"):  # all Keras itself does
            run.fit(data)
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step-2"


def bert_optimizer_model():
    from workbench.models.optimizer import create_optimizer

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)])
    # Clipping at 1.0 binds here (targets of 10), and updates come every 2 batches.
    model.compile(optimizer=create_optimizer(0.05, 5, 1, gradient_accumulation_steps=2), loss="mse")
    build_training_state(model, np.zeros((1, 3), "float32"))
    return model


def regression_data(steps, batch=4, seed=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(steps * batch, 3)).astype("float32")
    y = (10 * rng.normal(size=(steps * batch, 1))).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def test_several_steps_per_execution_record_the_same_per_step_losses_rates_and_checkpoints(tmp_path):
    steps = 10  # not a multiple of 4: the last call runs 2 steps
    one = ResumableTraining(bert_optimizer_model(), steps, str(tmp_path / "a/c"), str(tmp_path / "a/h.csv"), 4)
    four = ResumableTraining(
        bert_optimizer_model(), steps, str(tmp_path / "b/c"), str(tmp_path / "b/h.csv"), 4, steps_per_execution=4
    )
    first, second = one.fit(regression_data(steps)), four.fit(regression_data(steps))
    assert list(second.history["step"]) == list(range(1, steps + 1))
    np.testing.assert_allclose(second.history["loss"], first.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(second.history["learning_rate"], first.history["learning_rate"], rtol=1e-6)
    for a, b in zip(one.model.get_weights(), four.model.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)
    assert (tmp_path / "b/c/latest").read_text().strip() == "step-10" and (tmp_path / "b/c/step-8").is_dir()

    # Resumed from a checkpoint that is no multiple of 4 (step 2): calls end on multiples of 4 again.
    part = ResumableTraining(bert_optimizer_model(), 2, str(tmp_path / "c/c"), str(tmp_path / "c/h.csv"), 2)
    part.fit(regression_data(steps))
    rest = ResumableTraining(
        bert_optimizer_model(), steps, str(tmp_path / "c/c"), str(tmp_path / "c/h.csv"), 4, steps_per_execution=4
    )
    assert rest.start_step == 2
    np.testing.assert_allclose(rest.fit(regression_data(steps)).history["loss"], first.history["loss"], rtol=1e-6)


def test_a_non_finite_loss_inside_a_call_of_several_steps_stops_at_its_step(tmp_path):
    steps, batch, bad_step = 12, 2, 7
    x = np.ones((steps * batch, 3), "float32")
    x[(bad_step - 1) * batch] = np.nan
    data = tf.data.Dataset.from_tensor_slices((x, np.ones((steps * batch, 1), "float32"))).batch(batch)
    run = ResumableTraining(
        linear_model(0.01), steps, str(tmp_path / "c"), str(tmp_path / "h.csv"), 4, steps_per_execution=4
    )
    with pytest.raises(TrainingDiverged, match=f"loss nan at step {bad_step}: training stopped") as error:
        run.fit(data)  # the call ran steps 5-8; step 7 is reported, step 8 is not recorded
    assert error.value.checkpoint_step == 4 and (tmp_path / "c" / "latest").read_text().strip() == "step-4"
    history = pd.read_csv(tmp_path / "h.csv")
    assert history["step"].max() == bad_step and np.isnan(history["loss"].iloc[-1])


def test_checkpoint_every_must_be_a_multiple_of_steps_per_execution(tmp_path):
    with pytest.raises(ValueError, match=r"'checkpoint_every' \(6\) must be a multiple of 'steps_per_execution' \(4\)"):
        ResumableTraining(linear_model(0.1), 12, str(tmp_path / "c"), str(tmp_path / "h.csv"), 6, steps_per_execution=4)
    assert not (tmp_path / "c").exists() and not (tmp_path / "h.csv").exists()


def test_loss_history_resumes_past_a_torn_last_line(tmp_path):
    from workbench.training.loop import LossHistory

    path = tmp_path / "history.csv"
    path.write_text("step,loss,learning_rate\n1.0,0.9,0.1\n2.0,0.8,0.1\n3.0,0.7,0.1\n4")  # killed mid-write
    history = LossHistory(str(path), start_step=2)  # resumed from the checkpoint of step 2
    assert list(history.frame()["step"]) == [1.0, 2.0]
    assert path.read_text().splitlines()[1:] == ["1.0,0.9,0.1", "2.0,0.8,0.1"]
    path.write_text("step,loss,learning_rate\n1.0,0.9,0.1\n2.0,oops,0.1\n3.0,0.7,0.1\n")
    with pytest.raises(ValueError, match="history.csv, line 3: not a step,loss,learning_rate row"):
        LossHistory(str(path), start_step=3)
