import os
import sys

# Before TensorFlow loads: quiet logs; two logical CPUs are set up per test where needed.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import workbench  # noqa: E402,F401  (sets TF_ENABLE_ONEDNN_OPTS before TensorFlow loads)

TOY_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "dog",
    "a",
    "hello",
    "world",
    "un",
    "##aff",
    "##able",
    "cafe",
    "naive",
    "resume",
    "!",
    ",",
    ".",
    "?",
    "'",
    "-",
    "(",
    ")",
    "$",
    "^",
    "`",
    "中",
    "国",
    "人",
    "x",
    "##x",
    "##s",
    "run",
    "##ning",
    "i",
    "##stanbul",
    "σ",
    "ς",
    "οδος",
    "Hello",
    "World",
    "The",
    "Cafe",
    "Café",
    "é",
    "##é",
    "e",
    "##e",
    "é",
    "ß",
    "ss",
    "strasse",
    "straße",
    "12",
    "##3",
]


# Test tiers, in one place. `make test` runs everything (what CI calls); `make test-fast` skips the tiers
# below that take minutes on the 2-core machine; `make test-tpu` runs `core` under the TPU install;
# `make test-jax` runs `backend_agnostic` with KERAS_BACKEND=jax.
# Keys are test files, or "file::test" for single tests.
TIERS = {
    "browser": ["test_browser.py"],
    "notebook": [
        "test_suite.py::test_suite_runs_notebooks_records_failures_and_skips_done",
        "test_suite.py::test_glue_notebook_runs_xnli_with_its_options",
        "test_pretraining.py::test_pretrain_notebook_runs_under_papermill",
        "test_notebook.py",
        "test_package_data.py::test_the_wheel_runs_the_suite_and_the_paper_table_from_any_directory",
    ],
    "slow": [
        "test_distribution.py::test_mirrored_over_two_logical_cpus_matches_default_strategy",
        "test_finetune.py::test_a_killed_run_resumes_to_the_same_result",
        "test_pretraining.py::test_pretraining_learns_resumes_and_feeds_fine_tuning",
        "test_speed.py::test_speed_command_writes_a_well_formed_row",
        "test_speed.py::test_fit_return_delay_benchmark_runs",
        "test_speed.py::test_max_batch_command_writes_a_row",
        "test_faults.py",
        "test_analysis.py",  # eight tiny fine-tuning runs shared by the views
        "test_tpu_rules.py::test_each_kind_of_head_trains_and_evaluates_as_one_xla_program",
        "test_pretraining.py::test_deterministic_for_a_seed_whatever_the_workers",
        "test_download.py::test_ax_downloads_mnli_and_both_diagnostic_files_and_fine_tunes",
        "test_pretraining_data.py::test_beam_runner_writes_the_local_runners_shards",
        "test_beam.py",
        "test_multi_worker.py",  # two worker processes, killed and resumed
        "test_package_data.py::test_the_wheel_runs_the_suite_and_the_paper_table_from_any_directory",
        "test_device_report.py::test_the_report_runs_under_jax_without_tensorflow",
    ],
    # The core of the model and both run types: encoder/heads parity with the NumPy reference, the
    # optimizer, a short fine-tune and a pretraining run. CI runs these again under the TPU install.
    "core": [
        "test_backbone.py",
        "test_heads.py",
        "test_optimization.py",
        "test_finetune.py::test_a_run_writes_rows_predictions_history_and_a_loadable_model",
        "test_pretraining.py::test_pretraining_learns_resumes_and_feeds_fine_tuning",
    ],
    # Tests that hold under either Keras backend; `make test-jax` runs them with KERAS_BACKEND=jax, beside
    # test_jax_backend.py (a short fine-tune with exact resume, a pretraining run, speed without TensorFlow).
    "backend_agnostic": [
        "test_backbone.py",
        "test_heads.py",
        "test_optimization.py",
        "test_attention.py",
        "test_matmul_ceiling.py",
        "test_checkpoints.py::test_google_release_matches_reference",
        "test_checkpoints.py::test_round_trips_are_bit_identical",
        "test_checkpoints.py::test_savedmodel_export_serves_the_task_model",
        "test_attention_explorer.py::test_explorer_views_follow_the_controls",
        "test_jax_backend.py",
    ],
}


def pytest_configure(config):
    for tier, meaning in (
        ("browser", "opens pages in headless Chromium (Debian's chromium, `make browser-deps`)"),
        ("notebook", "executes notebooks through papermill"),
        ("slow", "takes tens of seconds or more on the 2-core machine"),
        ("core", "model parity, optimizer, a fine-tune and a pretraining run: also run under the TPU install"),
        ("backend_agnostic", "holds under the TensorFlow and the JAX backend: `make test-jax` runs it under JAX"),
    ):
        config.addinivalue_line("markers", f"{tier}: {meaning}")


def pytest_collection_modifyitems(config, items):
    for item in items:
        file = os.path.basename(str(item.path))
        for tier, keys in TIERS.items():
            if file in keys or f"{file}::{item.originalname}" in keys:
                item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def toy_vocab(tmp_path_factory):
    vocab = list(dict.fromkeys(TOY_VOCAB))
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def random_inputs(rng, batch=2, seq=12, vocab_size=60, pad_last=4):
    """Encoder inputs with padding in the second example and two segments."""
    token_ids = rng.integers(5, vocab_size, size=(batch, seq)).astype("int32")
    segment_ids = np.zeros((batch, seq), "int32")
    segment_ids[:, seq // 2 :] = 1
    padding_mask = np.ones((batch, seq), "int32")
    padding_mask[1, seq - pad_last :] = 0
    token_ids[padding_mask == 0] = 0
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}


@pytest.fixture(autouse=True)
def float32_policy_after_each_test():
    """Tests that set a mixed-precision policy must not change later tests' numerics."""
    yield
    import keras

    keras.mixed_precision.set_global_policy("float32")
