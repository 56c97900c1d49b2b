"""The download command end to end against a local HTTP server on 127.0.0.1."""

import functools
import hashlib
import http.server
import io
import os
import threading
import zipfile

import pytest
from tiny_runs import ROOT, SAMPLES, finetune_params

from workbench.tasks.download import Source, download, download_task
from workbench.tasks.registry import get_task


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def rte_zip():
    buffer = io.BytesIO()
    rows = "index\tsentence1\tsentence2\tlabel\n0\tA cat sleeps.\tA cat rests.\tentailment\n"
    with zipfile.ZipFile(buffer, "w") as z:
        for name in ("train.tsv", "dev.tsv"):
            z.writestr(f"RTE/{name}", rows)
        z.writestr("RTE/test.tsv", "index\tsentence1\tsentence2\n0\tA dog.\tA pet.\n")
    return buffer.getvalue()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_download_verifies_extracts_and_is_idempotent(server, tmp_path):
    root, url = server
    archive = rte_zip()
    (root / "RTE.zip").write_bytes(archive)
    sources = {"rte": [Source(url + "RTE.zip", {f: f for f in ("train.tsv", "dev.tsv", "test.tsv")}, sha(archive))]}
    data = tmp_path / "data"
    download_task("rte", str(data), sources, log=lambda *_: None)
    assert sorted(os.listdir(data / "rte")) == ["SOURCES.json", "dev.tsv", "test.tsv", "train.tsv"]
    assert get_task("rte").load(str(data), "dev")[0].label == "entailment"
    # Idempotent: with the server gone the files are still found, nothing fetched.
    (root / "RTE.zip").unlink()
    messages = []
    download_task("rte", str(data), sources, log=messages.append)
    assert "already" in messages[0]
    assert not [p for p in os.listdir(data) if p.startswith(".tmp")]


def test_corrupted_archive_is_rejected_and_nothing_is_written(server, tmp_path):
    root, url = server
    good = rte_zip()
    (root / "RTE.zip").write_bytes(good[:-40] + b"\0" * 40)
    sources = {"rte": [Source(url + "RTE.zip", {f: f for f in ("train.tsv", "dev.tsv", "test.tsv")}, sha(good))]}
    data = tmp_path / "data"
    results = download("rte", str(data), sources, log=lambda *_: None)
    assert "checksum mismatch" in str(results["rte"])
    assert not (data / "rte").exists()
    assert not [p for p in os.listdir(data) if p.startswith(".tmp")]
    # Without a known checksum the archive's own integrity check still rejects it.
    (root / "RTE.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    sources = {"rte": [Source(url + "RTE.zip", {f: f for f in ("train.tsv", "dev.tsv", "test.tsv")})]}
    assert "not a valid zip" in str(download("rte", str(data), sources, log=lambda *_: None)["rte"])
    assert not (data / "rte").exists()


def test_first_download_records_checksum_and_later_ones_are_checked(server, tmp_path):
    root, url = server
    (root / "dev-v1.1.json").write_text('{"data": []}')
    sources = {"squad1": [Source(url + "dev-v1.1.json", {"": "dev-v1.1.json"})]}
    data = tmp_path / "data"
    download_task("squad1", str(data), sources, log=lambda *_: None)
    assert sha(b'{"data": []}') in (data / "squad1" / "SOURCES.json").read_text()
    (root / "dev-v1.1.json").write_text('{"data": [1]}')  # the file changed upstream
    results = download("squad1", str(data), sources, force=True, log=lambda *_: None)
    assert "checksum mismatch" in str(results["squad1"])
    assert (data / "squad1" / "dev-v1.1.json").read_text() == '{"data": []}'  # old file intact


def test_mrpc_is_converted_to_the_glue_layout(server, tmp_path):
    root, url = server
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    (root / "train.txt").write_text(header + "1\t1\t2\tA cat.\tA cat!\n0\t3\t4\tA dog.\tA car.\n1\t5\t6\tHi.\tHello.\n")
    (root / "test.txt").write_text(header + "1\t7\t8\tRed.\tCrimson.\n")
    (root / "ids.tsv").write_text("3\t4\n")
    sources = {
        "mrpc": [
            Source(url + "train.txt", {"": "msr_paraphrase_train.txt"}),
            Source(url + "test.txt", {"": "msr_paraphrase_test.txt"}),
            Source(url + "ids.tsv", {"": "mrpc_dev_ids.tsv"}),
        ]
    }
    data = tmp_path / "data"
    download_task("mrpc", str(data), sources, log=lambda *_: None)
    task = get_task("mrpc")
    assert [e.text_a for e in task.load(str(data), "train")] == ["A cat.", "Hi."]
    assert [e.text_a for e in task.load(str(data), "dev")] == ["A dog."]
    assert task.load(str(data), "test")[0].guid == "0"


def test_conll_prints_where_to_get_it_and_unknown_names_fail(tmp_path):
    results = download("conll2003", str(tmp_path), log=lambda *_: None)
    assert "eng.train" in str(results["conll2003"]) and "NIST" in str(results["conll2003"])
    with pytest.raises(ValueError, match="Unknown dataset"):
        download("imagenet", str(tmp_path))


MNLI_FILES = ["train.tsv", "dev_matched.tsv", "dev_mismatched.tsv", "test_matched.tsv", "test_mismatched.tsv"]


def mnli_zip():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name in MNLI_FILES:
            z.write(os.path.join(SAMPLES, "mnli", name), f"MNLI/{name}")
    return buffer.getvalue()


def ax_sources(root, url, with_full=True):
    """The real AX/MNLI source layout, served from 127.0.0.1 with the sample files."""
    archive = mnli_zip()
    (root / "MNLI.zip").write_bytes(archive)
    ax = open(os.path.join(SAMPLES, "ax", "diagnostic.tsv"), "rb").read()
    (root / "AX.tsv").write_bytes(ax)
    if with_full:
        (root / "diagnostic-full.tsv").write_bytes(
            open(os.path.join(SAMPLES, "ax", "diagnostic-full.tsv"), "rb").read()
        )
    return {
        "mnli": [Source(url + "MNLI.zip", {f: f for f in MNLI_FILES}, sha(archive), len(archive), "test")],
        "ax": [
            Source(url + "AX.tsv", {"": "diagnostic.tsv"}, sha(ax), len(ax), "test"),
            Source(url + "diagnostic-full.tsv", {"": "diagnostic-full.tsv"}, optional=True),
        ],
    }


def test_ax_downloads_mnli_and_both_diagnostic_files_and_fine_tunes(server, tmp_path):
    from workbench.training.finetune import finetune

    root, url = server
    data = tmp_path / "data"
    messages = []
    download_task("ax", str(data), ax_sources(root, url), log=messages.append)
    assert sorted(os.listdir(data / "mnli")) == sorted(MNLI_FILES + ["SOURCES.json"])
    assert sorted(os.listdir(data / "ax")) == ["SOURCES.json", "diagnostic-full.tsv", "diagnostic.tsv"]
    assert any("diagnostic-full.tsv" in m and "trust on first use" in m for m in messages)
    tiny = finetune_params("learning_rate", data_dir=str(data), batch_size=16, save_model=False)
    result = finetune(task="ax", output_dir=str(tmp_path / "run"), results_csv=str(tmp_path / "ft.csv"), **tiny)
    assert set(result.metrics["dev"]) == {"mcc", "accuracy"}
    assert any(p.endswith("AX.tsv") for p in result.prediction_files)
    # The labelled set is optional: without it AX still trains and writes its leaderboard file.
    (data / "ax" / "diagnostic-full.tsv").unlink()
    result = finetune(task="ax", output_dir=str(tmp_path / "run2"), results_csv=str(tmp_path / "ft.csv"), **tiny)
    assert result.metrics == {} and any(p.endswith("AX.tsv") for p in result.prediction_files)


def test_ax_without_the_labelled_set_downloads_the_rest(server, tmp_path):
    root, url = server
    data = tmp_path / "data"
    messages = []
    results = download("ax", str(data), ax_sources(root, url, with_full=False), log=messages.append)
    assert results["ax"] == str(data / "ax")
    assert sorted(os.listdir(data / "ax")) == ["SOURCES.json", "diagnostic.tsv"]
    assert any("optional diagnostic-full.tsv not downloaded" in m and "404" in m for m in messages)
    task = get_task("ax")
    assert task.optional_splits == ("dev",) and len(task.load(str(data), "test")) == 16
    assert len(task.load(str(data), "train")) == 48  # MNLI's training set


def test_published_sizes_and_checksums_are_recorded_and_checked(server, tmp_path):
    from workbench.tasks.download import SOURCES

    unpublished = [s.url for sources in SOURCES.values() for s in sources if s.sha256 is None]
    assert unpublished == ["https://www.dropbox.com/s/ju7d95ifb072q9f/diagnostic-full.tsv?dl=1"]
    for sources in SOURCES.values():
        for s in sources:
            if s.sha256:
                assert len(s.sha256) == 64 and int(s.sha256, 16) >= 0 and s.size > 0 and s.published
    root, url = server
    (root / "dev-v1.1.json").write_text('{"data": []}')
    body = b'{"data": []}'
    # Right checksum, wrong published size: refused before hashing, nothing written.
    sources = {"squad1": [Source(url + "dev-v1.1.json", {"": "dev-v1.1.json"}, sha(body), len(body) + 1, "test")]}
    results = download("squad1", str(tmp_path / "data"), sources, log=lambda *_: None)
    assert f"downloaded {len(body)} bytes but {len(body) + 1} are published" in str(results["squad1"])
    assert not (tmp_path / "data" / "squad1").exists()
    # A published checksum is not re-recorded as "trust on first use".
    messages = []
    sources = {"squad1": [Source(url + "dev-v1.1.json", {"": "dev-v1.1.json"}, sha(body), len(body), "test")]}
    download_task("squad1", str(tmp_path / "data"), sources, log=messages.append)
    assert not any("trust on first use" in m for m in messages)


def test_download_all_reports_conll_instructions_without_failing(tmp_path):
    """Every downloadable file already present: `download all` fetches nothing,
    prints CoNLL-2003's instructions and exits 0."""
    import subprocess
    import sys

    from workbench.tasks.download import SOURCES, ManualDownload, expected_files

    data = tmp_path / "data"
    for task in SOURCES:
        (data / task).mkdir(parents=True)
        for name in expected_files(task, optional=True):
            (data / task / name).write_text("x\n")
    results = download("all", str(data), log=lambda *_: None)
    assert isinstance(results["conll2003"], ManualDownload) and "NIST" in results["conll2003"]
    assert not [t for t, r in results.items() if isinstance(r, Exception)]
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "download", "all", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "eng.train" in proc.stdout and "rte: already in" in proc.stdout
    # Asked for by name, CoNLL-2003 is still an error: nothing could be done.
    assert isinstance(download("conll2003", str(data), log=lambda *_: None)["conll2003"], Exception)
