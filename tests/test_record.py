"""Run ids, UTC timestamps and the stored parameters of a run directory."""

import datetime
import json
import os
import time

import pytest

from workbench.runs.record import PARAMETERS_FILE, claim_run_dir, model_name, release_run_dir, run_id, utc_now


def test_timestamps_are_utc_whatever_the_local_time_zone(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        stamp = utc_now()
    finally:
        monkeypatch.undo()
        time.tzset()
    parsed = datetime.datetime.fromisoformat(stamp)
    assert stamp.endswith("+00:00") and parsed.utcoffset() == datetime.timedelta(0)
    assert abs((datetime.datetime.now(datetime.UTC) - parsed).total_seconds()) < 60


def test_run_ids_hash_the_parameters_that_matter():
    a = run_id(
        "mrpc-tiny-s1", {"task": "mrpc", "seed": 1, "learning_rate": 2e-5, "output_dir": "x"}, ignore=("output_dir",)
    )
    assert a.startswith("mrpc-tiny-s1-") and len(a.split("-")[-1]) == 8
    same = run_id(
        "mrpc-tiny-s1", {"output_dir": "y", "learning_rate": 2e-5, "seed": 1, "task": "mrpc"}, ignore=("output_dir",)
    )
    assert same == a  # key order and ignored parameters do not matter
    assert run_id("mrpc-tiny-s1", {"task": "mrpc", "seed": 1, "learning_rate": 3e-5}) != a
    assert model_name("/runs/pretrain-x/model/") == "model" and model_name("base") == "base"


def test_a_run_dir_refuses_other_parameters_and_allows_bookkeeping_ones(tmp_path):
    run = tmp_path / "run"
    params = {"task": "mrpc", "learning_rate": 1, "layers": (1, 2), "checkpoint_every": 10}
    claim_run_dir(str(run), params, ignore=("checkpoint_every",))
    assert json.loads((run / PARAMETERS_FILE).read_text()) == {**params, "layers": [1, 2]}
    claim_run_dir(str(run), {**params, "learning_rate": 1.0}, ignore=("checkpoint_every",))  # 1 == 1.0
    claim_run_dir(str(run), {**params, "checkpoint_every": 5}, ignore=("checkpoint_every",))
    assert json.loads((run / PARAMETERS_FILE).read_text())["checkpoint_every"] == 5
    with pytest.raises(ValueError) as error:
        claim_run_dir(str(run), {**params, "learning_rate": 2, "seed": 3}, ignore=("checkpoint_every",))
    message = str(error.value)
    assert (
        "learning_rate: 1 in the stored run, 2 now" in message and "seed: '(unset)' in the stored run, 3 now" in message
    )
    assert "Parameters that may differ: checkpoint_every" in message and str(run) in message
    assert json.loads((run / PARAMETERS_FILE).read_text())["learning_rate"] == 1  # unchanged
    # A run that stopped before writing anything else gives the folder back; one that began keeps it.
    release_run_dir(str(run))
    claim_run_dir(str(run), {**params, "learning_rate": 3}, ignore=("checkpoint_every",))
    (run / "history.csv").write_text("step,loss\n")
    release_run_dir(str(run))
    assert json.loads((run / PARAMETERS_FILE).read_text())["learning_rate"] == 3
    (run / PARAMETERS_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=f"{run / PARAMETERS_FILE}: unreadable run parameters"):
        claim_run_dir(str(run), params)


def test_a_run_that_fails_its_input_checks_gives_its_folder_back(tmp_path):
    from tiny_runs import finetune_params

    from workbench.training.finetune import finetune

    out = tmp_path / "run"
    typo = str(tmp_path / "vocab-typo.txt")
    with pytest.raises(FileNotFoundError, match="vocab-typo.txt"):
        finetune(**finetune_params(task="rte", output_dir=str(out), results_csv=str(tmp_path / "t.csv"), vocab=typo))
    assert not (out / PARAMETERS_FILE).exists()  # the corrected rerun is not refused for its other vocab


def test_a_pretraining_run_stopped_by_a_bad_length_gives_its_folder_back(tmp_path):
    from tiny_runs import pretrain_params

    from workbench.training.pretrain import pretrain

    out = tmp_path / "run"
    args = dict(output_dir=str(out), results_csv=str(tmp_path / "p.csv"), vocab_size=200, phase1_steps=1)
    # No vocab: one is learned into output_dir before the lengths meet the model's 512 positions.
    with pytest.raises(ValueError, match="'phase2_seq_length': 1024 exceeds the model's 512 positions"):
        pretrain(**pretrain_params("vocab", phase2_seq_length=1024, phase2_steps=1, **args))
    assert not out.exists() or os.listdir(out) == []


def test_an_output_folder_that_would_be_refused_at_the_end_is_refused_first(tmp_path):
    from tiny_runs import finetune_params

    from workbench.training.finetune import finetune

    out = tmp_path / "run"
    (out / "model").mkdir(parents=True)
    (out / "model" / "notes.txt").write_text("mine")
    (out / "model" / ".DS_Store").write_text("")  # litter alone would not stop it
    with pytest.raises(FileExistsError, match=r"model: not empty .*\(notes.txt\)"):
        finetune(**finetune_params(task="rte", output_dir=str(out), results_csv=str(tmp_path / "t.csv")))
    assert not (out / "history.csv").exists()  # before any training
