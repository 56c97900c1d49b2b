"""`python -m workbench pretraining-data --runner beam`: the command line users run, on the sample corpus, with
Beam's DirectRunner in multi-process mode, writes the local runner's shards and statistics byte for byte.

These tests need apache-beam (the `beam` extra), which the main environment cannot hold (its protobuf, pillow and
python-dateutil are newer than Beam allows): `make test-beam` runs them in `.venv-beam`, built from
`.ci/requirements-beam.lock`, and CI runs that target. Elsewhere they skip.
"""

import json
import os
import subprocess
import sys

import pytest

from workbench import resources

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIRECT_MULTI_PROCESS = ["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]
# Small instances and two passes: a few thousand instances from the 0.1 MB sample corpus, in seconds.
SETTINGS = ["--max-seq-length", "32", "--max-predictions-per-seq", "5", "--dupe-factor", "2", "--random-seed", "7"]


def pretraining_data(output, runner, *extra, beam_args=()):
    command = [sys.executable, "-m", "workbench", "pretraining-data", "--input", resources.sample_corpus()]
    command += ["--output", str(output), "--vocab", resources.sample_vocab(), *SETTINGS, "--runner", runner, *extra]
    if beam_args:
        command += ["--", *beam_args]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((output / "stats.json").read_text())


def shard_files(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".tfrecord"))


def test_beam_command_writes_the_local_commands_shards(tmp_path):
    """Shards by input size (`--shard-size-mb`); test_pretraining_data.py checks a fixed `--shards` count through
    `run_pipeline` on several input files."""
    pytest.importorskip("apache_beam", reason="apache-beam is not installed: make test-beam")
    local = pretraining_data(tmp_path / "local", "local", "--shard-size-mb", "0.03", "--workers", "1")
    beam = pretraining_data(tmp_path / "beam", "beam", "--shard-size-mb", "0.03", beam_args=DIRECT_MULTI_PROCESS)
    assert beam == local and local["shards"] >= 3 and local["instances"] > 1000
    names = shard_files(tmp_path / "local")
    assert names == shard_files(tmp_path / "beam") and len(names) == local["shards"]
    for name in names:
        assert (tmp_path / "beam" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
