"""`python -m workbench download`: the benchmarks from their official addresses.

Each file is downloaded to a temporary name, checked (SHA-256, and archive
integrity), extracted into a temporary directory, and only then moved into
`data/<task>/`; a failure at any point leaves nothing half-written. A task whose
files are all present is skipped, so the command is idempotent.

Published checksums are not available for most of these files; for those the
SHA-256 of the first download is recorded in `data/<task>/SOURCES.json` and
every later download (another machine, a re-download) is checked against it.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
import zipfile

from workbench.files import write_text_atomic
from workbench.tasks.registry import GLUE_TASKS, TASK_NAMES

GLUE = "https://dl.fbaipublicfiles.com/glue/data/"


@dataclasses.dataclass(frozen=True)
class Source:
    """One downloadable file.

    Args:
        url: where it is published.
        files: {name inside the archive (basename) or "" for a plain file: name in data/<task>/}.
        sha256: expected checksum, or None to record it on first download.
    """

    url: str
    files: dict
    sha256: str = None


def _glue(archive, task_files):
    return [Source(GLUE + archive, {f: f for f in task_files})]


SOURCES = {
    "cola": _glue("CoLA.zip", ["train.tsv", "dev.tsv", "test.tsv"]),
    "sst2": _glue("SST-2.zip", ["train.tsv", "dev.tsv", "test.tsv"]),
    "qqp": _glue("QQP-clean.zip", ["train.tsv", "dev.tsv", "test.tsv"]),
    "stsb": _glue("STS-B.zip", ["train.tsv", "dev.tsv", "test.tsv"]),
    "mnli": _glue(
        "MNLI.zip", ["train.tsv", "dev_matched.tsv", "dev_mismatched.tsv", "test_matched.tsv", "test_mismatched.tsv"]
    ),
    "qnli": _glue("QNLIv2.zip", ["train.tsv", "dev.tsv", "test.tsv"]),
    "rte": _glue("RTE.zip", ["train.tsv", "dev.tsv", "test.tsv"]),
    "wnli": _glue("WNLI.zip", ["train.tsv", "dev.tsv", "test.tsv"]),
    "ax": [Source(GLUE + "AX.tsv", {"": "diagnostic.tsv"})],
    # MRPC is distributed by Microsoft; GLUE splits its train file into train/dev
    # with a published list of dev ids (see `_convert_mrpc`).
    "mrpc": [
        Source(
            "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt",
            {"": "msr_paraphrase_train.txt"},
        ),
        Source(
            "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_test.txt",
            {"": "msr_paraphrase_test.txt"},
        ),
        Source(GLUE + "mrpc_dev_ids.tsv", {"": "mrpc_dev_ids.tsv"}),
    ],
    "xnli": [
        Source(
            "https://dl.fbaipublicfiles.com/XNLI/XNLI-1.0.zip",
            {"xnli.dev.tsv": "xnli.dev.tsv", "xnli.test.tsv": "xnli.test.tsv"},
        ),
        Source(
            "https://dl.fbaipublicfiles.com/XNLI/XNLI-MT-1.0.zip",
            {
                f"multinli.train.{lang}.tsv": f"multinli.train.{lang}.tsv"
                for lang in ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
            },
        ),
    ],
    "squad1": [
        Source("https://rajpurkar.github.io/SQuAD-explorer/dataset/train-v1.1.json", {"": "train-v1.1.json"}),
        Source("https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json", {"": "dev-v1.1.json"}),
    ],
    "squad2": [
        Source("https://rajpurkar.github.io/SQuAD-explorer/dataset/train-v2.0.json", {"": "train-v2.0.json"}),
        Source("https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v2.0.json", {"": "dev-v2.0.json"}),
    ],
    "swag": [
        Source(f"https://raw.githubusercontent.com/rowanz/swagaf/master/data/{name}.csv", {"": f"{name}.csv"})
        for name in ("train", "val", "test")
    ],
}

CONLL_INSTRUCTIONS = """CoNLL-2003 cannot be redistributed (its text is Reuters RCV1, licensed by NIST).
To use it:
  1. request the Reuters Corpus (RCV1) from NIST: https://trec.nist.gov/data/reuters/reuters.html
  2. build the English data with the scripts of https://www.clips.uantwerpen.be/conll2003/ner/
  3. place eng.train, eng.testa and eng.testb in {dir}/
A sample in the same format is in data/samples/conll2003/."""


class DownloadError(RuntimeError):
    pass


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url, path, timeout=60):
    """Download `url` to `path` (a temporary name) with a progress bar."""
    from tqdm.auto import tqdm

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(path, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(url), leave=False) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
    except OSError as e:
        raise DownloadError(f"could not download {url}: {e}") from e


def _extract(source, downloaded, staging):
    """Put the source's files into `staging`; return their names."""
    if "" in source.files:
        target = os.path.join(staging, source.files[""])
        shutil.copyfile(downloaded, target)
        return [source.files[""]]
    try:
        with zipfile.ZipFile(downloaded) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise DownloadError(f"{source.url}: corrupted archive member {bad}")
            by_name = {}
            for info in archive.infolist():
                by_name.setdefault(os.path.basename(info.filename), info)
            missing = [m for m in source.files if m not in by_name]
            if missing:
                raise DownloadError(f"{source.url}: archive lacks {missing}")
            for member, target in source.files.items():
                with archive.open(by_name[member]) as src, open(os.path.join(staging, target), "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile as e:
        raise DownloadError(f"{source.url}: not a valid zip archive ({e})") from e
    return list(source.files.values())


def _convert_mrpc(staging):
    """GLUE's MRPC files from Microsoft's: train/dev split by the dev ids, test
    with an index column."""
    with open(os.path.join(staging, "mrpc_dev_ids.tsv"), encoding="utf-8") as f:
        dev_ids = {tuple(line.strip().split("\t")) for line in f if line.strip()}
    with open(os.path.join(staging, "msr_paraphrase_train.txt"), encoding="utf-8-sig") as f:
        header, *rows = f.read().splitlines()
    train, dev = [header], [header]
    for row in rows:
        fields = row.split("\t")
        if len(fields) < 5:
            continue
        (dev if (fields[1], fields[2]) in dev_ids else train).append(row)
    with open(os.path.join(staging, "msr_paraphrase_test.txt"), encoding="utf-8-sig") as f:
        _, *rows = f.read().splitlines()
    test = ["index\t#1 ID\t#2 ID\t#1 String\t#2 String"]
    for i, row in enumerate(r for r in rows if len(r.split("\t")) >= 5):
        fields = row.split("\t")
        test.append("\t".join([str(i), fields[1], fields[2], fields[3], fields[4]]))
    for name, lines in (("train.tsv", train), ("dev.tsv", dev), ("test.tsv", test)):
        with open(os.path.join(staging, name), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return ["train.tsv", "dev.tsv", "test.tsv"]


def expected_files(task, sources=None):
    sources = (sources or SOURCES)[task]
    if task == "mrpc":
        return ["train.tsv", "dev.tsv", "test.tsv"]
    return [name for s in sources for name in s.files.values()]


def download_task(task, data_dir="data", sources=None, force=False, log=print):
    """Download one task into `data_dir/<task>/`; returns the directory.

    Args:
        sources: a replacement for `SOURCES` (tests point it at a local server).
        force: download again even when the files are present.
    """
    if task == "conll2003":
        directory = os.path.join(data_dir, "conll2003")
        present = all(os.path.exists(os.path.join(directory, f)) for f in ("eng.train", "eng.testa", "eng.testb"))
        if not present:
            raise DownloadError(CONLL_INSTRUCTIONS.format(dir=directory))
        return directory
    table = sources or SOURCES
    if task not in table:
        raise ValueError(
            f"No download for {task!r}; downloadable: {', '.join(sorted(table))}, conll2003 (instructions), glue, all"
        )
    directory = os.path.join(data_dir, task)
    if not force and all(os.path.exists(os.path.join(directory, f)) for f in expected_files(task, table)):
        log(f"{task}: already in {directory}")
        return directory
    record_path = os.path.join(directory, "SOURCES.json")
    recorded = {}
    if os.path.exists(record_path):
        with open(record_path, encoding="utf-8") as f:
            recorded = json.load(f)
    os.makedirs(data_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".tmp-{task}-", dir=data_dir)
    try:
        checksums = {}
        produced = []
        for source in table[task]:
            downloaded = os.path.join(staging, ".download")
            log(f"{task}: downloading {source.url}")
            _fetch(source.url, downloaded)
            digest = _sha256(downloaded)
            expected = source.sha256 or recorded.get(source.url)
            if expected and digest != expected:
                raise DownloadError(
                    f"{source.url}: checksum mismatch (sha256 {digest}, expected {expected}); nothing was written"
                )
            checksums[source.url] = digest
            produced += _extract(source, downloaded, staging)
            os.remove(downloaded)
        if task == "mrpc":
            produced = _convert_mrpc(staging)
        os.makedirs(directory, exist_ok=True)
        for name in produced:
            os.replace(os.path.join(staging, name), os.path.join(directory, name))
        write_text_atomic(record_path, json.dumps({**recorded, **checksums}, indent=1, sort_keys=True) + "\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"{task}: ready in {directory}")
    return directory


def download(name, data_dir="data", sources=None, force=False, log=print):
    """Download a task, `glue` (all GLUE tasks) or `all`; returns {task: directory or error}."""
    if name == "glue":
        names = list(GLUE_TASKS)
    elif name == "all":
        names = list(TASK_NAMES)
    elif name in TASK_NAMES:
        names = [name]
    else:
        raise ValueError(f"Unknown dataset {name!r}; expected a task ({', '.join(TASK_NAMES)}), glue or all")
    results = {}
    for task in names:
        try:
            results[task] = download_task(task, data_dir, sources, force, log)
        except DownloadError as e:
            results[task] = e
            log(f"{task}: {e}")
    return results
