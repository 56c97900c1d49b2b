"""The download command end to end against a local HTTP server on 127.0.0.1."""

import functools
import hashlib
import http.server
import io
import os
import threading
import zipfile

import pytest

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
