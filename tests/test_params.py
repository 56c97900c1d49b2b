"""Every run's parameters are checked (type, range, choices) before work starts,
with papermill's strings and floats converted only where they mean one thing."""

import dataclasses
import os
import re

import pytest

from workbench.training.params import (
    FinetuneParams,
    ParameterError,
    PretrainParams,
    check_task_options,
    validate_params,
    validate_pretrain_params,
)


def test_unambiguous_papermill_values_are_converted():
    p = validate_params(
        {
            "task": "mrpc",
            "save_model": "false",  # papermill keeps lowercase false a string, which is truthy
            "lowercase": "True",
            "jit_compile": "FALSE",
            "batch_size": 16.0,  # -p batch_size 16.0
            "learning_rate": 1,  # -p learning_rate 1
            "max_seq_length": "none",
            "task_options": None,
        }
    )
    assert p.save_model is False and p.lowercase is True and p.jit_compile is False
    assert p.batch_size == 16 and type(p.batch_size) is int
    assert p.learning_rate == 1.0 and type(p.learning_rate) is float
    assert p.max_seq_length is None
    assert validate_params({"task": "mrpc", "jit_compile": "auto"}).jit_compile == "auto"
    json_options = validate_params({"task": "squad2", "task_options": '{"doc_stride": 64.0}'}).task_options
    assert json_options == {"doc_stride": 64}
    assert validate_params({"task": "xnli", "task_options": {"languages": "en, zh"}}).task_options == {
        "languages": ("en", "zh")
    }


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("batch_size", "8", "'batch_size' must be int or None, got '8' (str)"),  # quoted on purpose: ambiguous
        ("batch_size", 8.5, "'batch_size' must be int or None, got 8.5"),
        ("save_model", 1, "'save_model' must be bool, got 1 (int)"),
        ("save_model", "yes", "'save_model' must be bool, got 'yes'"),
        ("jit_compile", "xla", "'jit_compile': 'xla' is not one of True, False, auto"),
        ("strategy", 1.0, "'strategy' must be str, got 1.0 (float); choices: 'auto', 'tpu'"),
        ("precision", "bf16", "'precision': 'bf16' is not one of auto, float32"),
        ("vocab", 3, "'vocab' must be str or None, got 3 (int); papermill: pass text as -r NAME VALUE"),
        ("task_options", "doc_stride=64", "'task_options' must be dict or None"),
        ("max_seq_length", 2, "'max_seq_length' must be >= 3, got 2"),
        ("seed", -1, "'seed' must be in [0, 4294967295], got -1"),
        ("run_id", "../../etc", "'run_id' must be a plain name (it names the run's folder under results/)"),
        ("seed", 2**40, "'seed' must be in [0, 4294967295]"),
        ("epochs", float("inf"), "'epochs' must be a finite number, got inf"),
        ("learning_rate", float("inf"), "'learning_rate' must be a finite number, got inf"),
        ("warmup_proportion", float("nan"), "'warmup_proportion' must be a finite number, got nan"),
        ("batch_size", -8, "'batch_size' must be >= 1"),
        ("gradient_accumulation", 0, "'gradient_accumulation' must be >= 1"),
        ("max_train_examples", 0, "'max_train_examples' must be >= 1"),
        ("max_eval_examples", 0, "'max_eval_examples' must be >= 1"),
        ("checkpoint_every", 0, "'checkpoint_every' must be >= 1"),
        ("learning_rate", 0.0, "'learning_rate' must be > 0"),
        ("epochs", -1.0, "'epochs' must be > 0"),
        ("warmup_proportion", 1.5, "'warmup_proportion' must be in [0, 1], got 1.5"),
    ],
)
def test_a_bad_finetune_parameter_is_one_message_naming_it(name, value, message):
    with pytest.raises(ParameterError, match=re.escape(message)) as error:
        validate_params({"task": "mrpc", name: value})
    assert "\n" not in str(error.value)


def test_an_infinite_null_threshold_means_never_no_answer():
    p = validate_params({"task": "squad2", "task_options": {"null_score_diff_threshold": float("inf")}})
    assert p.task_options == {"null_score_diff_threshold": float("inf")}
    with pytest.raises(ParameterError, match="'null_score_diff_threshold' .*must be a finite number, got nan"):
        validate_params({"task": "squad2", "task_options": {"null_score_diff_threshold": float("nan")}})


def test_task_options_are_checked_for_the_task():
    assert check_task_options("squad1", {"doc_stride": 64.0, "null_score_diff_threshold": -1}) == {
        "doc_stride": 64,
        "null_score_diff_threshold": -1.0,
    }
    for option in ("doc_stride", "max_query_length", "n_best_size", "max_answer_length"):
        with pytest.raises(ParameterError, match=f"'{option}' \\(a SQuAD option\\) must be >= 1, got 0"):
            validate_params({"task": "squad2", "task_options": {option: 0}})
    with pytest.raises(ParameterError, match=r"Unknown parameter\(s\) \['stride'\] \(options of task 'squad1'\)"):
        validate_params({"task": "squad1", "task_options": {"stride": 64}})
    with pytest.raises(ParameterError, match="task 'mrpc' takes no options, got \\['train_language'\\]"):
        validate_params({"task": "mrpc", "task_options": {"train_language": "zh"}})
    with pytest.raises(ParameterError, match="'train_language' \\(an XNLI option\\): 'klingon' is not one of ar"):
        validate_params({"task": "xnli", "task_options": {"train_language": "klingon"}})
    with pytest.raises(ParameterError, match="'languages' \\(an XNLI option\\): \\['xx'\\] not among"):
        validate_params({"task": "xnli", "task_options": {"languages": ["en", "xx"]}})
    # Options left at None keep the task's own default.
    assert validate_params({"task": "squad1", "task_options": {"doc_stride": None}}).task_options == {}


def test_finetune_params_checks_on_construction_too():
    with pytest.raises(ParameterError, match="unknown task 'mrcp'"):
        FinetuneParams(task="mrcp")
    assert FinetuneParams(task="rte", epochs=2).epochs == 2.0


def test_pretraining_parameters_are_checked():
    p = PretrainParams(corpus="c.txt", whole_word_mask="false", phase2_steps=0.0, masked_lm_prob=0.2)
    assert p.whole_word_mask is False and p.phase2_steps == 0
    for name, value, message in [
        ("whole_word_mask", "maybe", "'whole_word_mask' must be bool"),
        ("masked_lm_prob", 1.0, "'masked_lm_prob' must be < 1"),
        ("short_seq_prob", 1.5, r"'short_seq_prob' must be in \[0, 1\]"),
        ("phase1_steps", 0, "'phase1_steps' must be >= 1"),
        ("phase2_steps", -1, "'phase2_steps' must be >= 0"),
        ("phase1_seq_length", 4, "'phase1_seq_length' must be >= 5"),
        ("batch_size", 0, "'batch_size' must be >= 1"),
        ("dupe_factor", 0, "'dupe_factor' must be >= 1"),
        ("shards", 0, "'shards' must be >= 1"),
        ("seed", -1, r"'seed' must be in \[0, 4294967295\], got -1"),
        ("weight_decay", float("nan"), "'weight_decay' must be a finite number, got nan"),
        ("warmup_steps", -1, "'warmup_steps' must be >= 0"),
        ("strategy", "tpus", "'strategy': 'tpus' is not one of"),
        ("phase1_max_predictions", 126, "'phase1_seq_length' \\(128\\) and 'phase1_max_predictions' \\(126\\)"),
        ("phase2_max_predictions", 510, "'phase2_seq_length' \\(512\\) and 'phase2_max_predictions' \\(510\\)"),
    ]:
        with pytest.raises(ParameterError, match=message):
            PretrainParams(corpus="c.txt", **{name: value})
    # The second phase's lengths are not checked when there is no second phase.
    assert PretrainParams(corpus="c.txt", phase2_steps=0, phase2_max_predictions=510).phase2_steps == 0
    with pytest.raises(ParameterError, match=r"Unknown parameter\(s\) \['whole_word_masks'\]; valid parameters: c"):
        validate_pretrain_params({"corpus": "c.txt", "whole_word_masks": True})
    with pytest.raises(ParameterError, match="'corpus' is required"):
        validate_pretrain_params({})
    assert {f.name for f in dataclasses.fields(PretrainParams)} >= {"corpus", "whole_word_mask", "shards"}


def test_runs_stop_before_any_work_on_a_bad_parameter(tmp_path):
    from workbench.training.finetune import finetune
    from workbench.training.pretrain import pretrain

    with pytest.raises(ParameterError, match="'whole_word_mask' must be bool, got 'maybe'"):
        pretrain(corpus=str(tmp_path / "missing.txt"), whole_word_mask="maybe", output_dir=str(tmp_path / "p"))
    with pytest.raises(ParameterError, match="'doc_stride' \\(a SQuAD option\\) must be >= 1"):
        finetune(task="squad1", task_options={"doc_stride": 0}, output_dir=str(tmp_path / "f"))
    assert not (tmp_path / "p").exists() and not (tmp_path / "f").exists()  # nothing was started


def test_steps_per_execution_is_auto_or_a_divisor_of_checkpoint_every():
    assert validate_params({"task": "mrpc"}).steps_per_execution == "auto"
    assert validate_params({"task": "mrpc", "steps_per_execution": 4.0}).steps_per_execution == 4  # -p ... 4.0
    assert validate_params({"task": "mrpc", "steps_per_execution": "Auto"}).steps_per_execution == "auto"
    assert PretrainParams(corpus="c.txt", steps_per_execution=100).steps_per_execution == 100  # divides 1000
    for value, message in [
        ("fast", "'steps_per_execution' must be an int >= 1 or 'auto', got 'fast'"),
        (0, "'steps_per_execution' must be >= 1, got 0"),
        (2.5, "'steps_per_execution' must be int or str, got 2.5"),
        (3, "'checkpoint_every' (200) must be a multiple of 'steps_per_execution' (3)"),
    ]:
        with pytest.raises(ParameterError, match=re.escape(message)):
            validate_params({"task": "mrpc", "steps_per_execution": value})
    with pytest.raises(ParameterError, match=re.escape("'checkpoint_every' (10) must be a multiple of")):
        PretrainParams(corpus="c.txt", checkpoint_every=10, steps_per_execution=4)


def test_output_locations_must_be_local_paths(tmp_path):
    # A run's checkpoints and history are written with local file operations: a gs:// output_dir would
    # become a local folder named "gs:"; the parameter check says so before anything starts.
    from workbench.training.pretrain import pretrain

    with pytest.raises(ParameterError, match="'output_dir' must be a local path, got 'gs://bucket/run'"):
        FinetuneParams(task="rte", output_dir="gs://bucket/run")
    with pytest.raises(ParameterError, match="'results_csv' must be a local path.*'phase1_data' and 'phase2_data'"):
        PretrainParams(corpus="c.txt", results_csv="gs://bucket/results.csv")
    with pytest.raises(ParameterError, match="'output_dir' must be a local path"):
        pretrain(corpus=str(tmp_path / "c.txt"), output_dir="gs://bucket/run")
    assert not list(tmp_path.iterdir()) and not os.path.exists("gs:")
    # Data may come from a URL (TensorFlow streams the shards).
    assert PretrainParams(phase1_data="gs://bucket/phase1/*.tfrecord", vocab="v.txt", phase2_steps=0).phase2_steps == 0
