"""`python -m workbench download`: the benchmarks from their official addresses.

Each file is downloaded to a temporary name, checked (size and SHA-256, then
archive integrity), extracted into a temporary directory, and only then moved
into `data/<task>/`; a failure at any point leaves nothing half-written and the
files of an earlier download intact. A task whose files are all present is
skipped, so the command is idempotent.

Sizes and SHA-256 checksums published for these files are recorded in
`SOURCES` with where they were published (the `datasets` and TensorFlow
Datasets checksum files); every download is checked against them. For a file
with no published checksum (the labelled GLUE diagnostic set) the SHA-256 of the
first download is recorded in `data/<task>/SOURCES.json` (trust on first use,
said in the log) and later downloads are checked against it.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
import zipfile

from workbench.files import read_json, write_text_atomic
from workbench.tasks.registry import GLUE_FILES, GLUE_TASKS, MNLI_FILES, TASK_NAMES

GLUE = "https://dl.fbaipublicfiles.com/glue/data/"
# Where the published sizes and checksums below come from.
HF_GLUE_ONLY = "huggingface/datasets: datasets/glue/dataset_infos.json"
HF_GLUE = HF_GLUE_ONLY + " (same SHA-256 in tensorflow/datasets url_checksums/glue.txt)"
HF_XNLI = "huggingface/datasets: datasets/xnli/dataset_infos.json"
TFDS_XNLI = HF_XNLI + " (same SHA-256 in tensorflow/datasets url_checksums/xnli.txt)"
TFDS_SQUAD = "tensorflow/datasets: tensorflow_datasets/datasets/squad/checksums.tsv"
HF_SWAG = "huggingface/datasets: datasets/swag/dataset_infos.json"


@dataclasses.dataclass(frozen=True)
class Source:
    """One downloadable file.

    Args:
        url: where it is published.
        files: {name inside the archive (basename) or "" for a plain file: name in data/<task>/}.
        sha256: published checksum, or None to record it on first download.
        size: published size in bytes, or None.
        published: where `sha256` and `size` were published.
        optional: a failed download of this file is reported, not an error
            (the task works without it).

    Example:
    ```python
    Source(GLUE + "RTE.zip", {"train.tsv": "train.tsv"}, sha256="6bf8...", size=697150)
    ```
    """

    url: str
    files: dict
    sha256: str = None
    size: int = None
    published: str = None
    optional: bool = False


def _glue(archive, size, sha256, published=HF_GLUE, task_files=None):
    """A GLUE archive's source: its `task_files` (default: the usual train, dev and test files) taken out of
    it under their own names."""
    files = task_files or GLUE_FILES.values()
    return [Source(GLUE + archive, {f: f for f in files}, sha256, size, published)]


SOURCES = {
    "cola": _glue("CoLA.zip", 376971, "f212fcd832b8f7b435fb991f101abf89f96b933ab400603bf198960dfc32cbff"),
    "sst2": _glue("SST-2.zip", 7439277, "d67e16fb55739c1b32cdce9877596db1c127dc322d93c082281f64057c16deaa"),
    "qqp": _glue(
        "QQP-clean.zip",
        41696084,
        "40e7c862c04eb26ee04b67fd900e76c45c6ba8e6d8fab4f8f1f8072a1a3fbae0",
        HF_GLUE_ONLY,
    ),
    "stsb": _glue("STS-B.zip", 802872, "e60a6393de5a8b5b9bac5020a1554b54e3691f9d600b775bd131e613ac179c85"),
    "mnli": _glue(
        "MNLI.zip",
        312783507,
        "e7c1d896d26ed6caf700110645df426cc2d8ebf02a5ab743d5a5c68ac1c83633",
        task_files=MNLI_FILES.values(),
    ),
    "qnli": _glue("QNLIv2.zip", 10627589, "e634e78627a29adaecd4f955359b22bf5e70f2cbd93b493f2d624138a0c0e5f5"),
    "rte": _glue("RTE.zip", 697150, "6bf86de103ecd335f3441bd43574d23fef87ecc695977a63b82d5efb206556ee"),
    "wnli": _glue("WNLI.zip", 28999, "ae0e8e4d16f4d46d4a0a566ec7ecceccfd3fbfaa4a7a4b4e02848c0f2561ac46"),
    # The diagnostic set is predicted by a model trained on MNLI (`REQUIRES`):
    # AX.tsv is the unlabelled leaderboard file; diagnostic-full.tsv, linked
    # from gluebenchmark.com/diagnostics, carries the labels (no checksum is
    # published for it).
    "ax": [
        Source(
            GLUE + "AX.tsv",
            {"": "diagnostic.tsv"},
            "0e13510b1bb14436ff7e2ee82338f0efb0133ecf2e73507a697dc210db3f05fd",
            222257,
            HF_GLUE,
        ),
        Source(
            "https://www.dropbox.com/s/ju7d95ifb072q9f/diagnostic-full.tsv?dl=1",
            {"": "diagnostic-full.tsv"},
            optional=True,
        ),
    ],
    # MRPC is distributed by Microsoft; GLUE splits its train file into train/dev
    # with a published list of dev ids (see `_convert_mrpc`).
    "mrpc": [
        Source(
            "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt",
            {"": "msr_paraphrase_train.txt"},
            "60a9b09084528f0673eedee2b69cb941920f0b8cd0eeccefc464a98768457f89",
            1047044,
            HF_GLUE,
        ),
        Source(
            "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_test.txt",
            {"": "msr_paraphrase_test.txt"},
            "a04e271090879aaba6423d65b94950c089298587d9c084bf9cd7439bd785f784",
            441275,
            HF_GLUE,
        ),
        Source(
            GLUE + "mrpc_dev_ids.tsv",
            {"": "mrpc_dev_ids.tsv"},
            "971d7767d81b997fd9060ade0ec23c4fc31cbb226a55d1bd4a1bac474eb81dc7",
            6222,
            HF_GLUE,
        ),
    ],
    "xnli": [
        Source(
            "https://dl.fbaipublicfiles.com/XNLI/XNLI-1.0.zip",
            {"xnli.dev.tsv": "xnli.dev.tsv", "xnli.test.tsv": "xnli.test.tsv"},
            "4ba1d5e1afdb7161f0f23c66dc787802ccfa8a25a3ddd3b165a35e50df346ab1",
            17865352,
            TFDS_XNLI,
        ),
        Source(
            "https://dl.fbaipublicfiles.com/XNLI/XNLI-MT-1.0.zip",
            {
                f"multinli.train.{lang}.tsv": f"multinli.train.{lang}.tsv"
                for lang in ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
            },
            "f732517ba2fb1d550e9f3c2aabaef6017c91ee2dcec90e878f138764d224db05",
            466098360,
            HF_XNLI,
        ),
    ],
    "squad1": [
        Source(
            "https://rajpurkar.github.io/SQuAD-explorer/dataset/train-v1.1.json",
            {"": "train-v1.1.json"},
            "3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955",
            30288272,
            TFDS_SQUAD,
        ),
        Source(
            "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json",
            {"": "dev-v1.1.json"},
            "95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9",
            4854279,
            TFDS_SQUAD,
        ),
    ],
    "squad2": [
        Source(
            "https://rajpurkar.github.io/SQuAD-explorer/dataset/train-v2.0.json",
            {"": "train-v2.0.json"},
            "68dcfbb971bd3e96d5b46c7177b16c1a4e7d4bdef19fb204502738552dede002",
            42123633,
            TFDS_SQUAD,
        ),
        Source(
            "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v2.0.json",
            {"": "dev-v2.0.json"},
            "80a5225e94905956a6446d296ca1093975c4d3b3260f1d6c8f68bc2ab77182d8",
            4370528,
            TFDS_SQUAD,
        ),
    ],
    "swag": [
        Source(
            f"https://raw.githubusercontent.com/rowanz/swagaf/master/data/{name}.csv",
            {"": f"{name}.csv"},
            sha256,
            size,
            HF_SWAG,
        )
        for name, size, sha256 in (
            ("train", 28243333, "5748b51126ac255c5a6f26e1ba473b51116d6c822aeb25e63ecba282c9d0e610"),
            ("val", 7893588, "c0497b2cd7f3e6b7df995524b1853f62285d60d110d659b19545ca80b2903234"),
            ("test", 7817885, "a689a1a4e892a65ca625c1f0fcf77bcce004b59ad1caeb134ca5ec080a711cb6"),
        )
    ],
}
# Tasks that read another task's files: AX trains on MNLI's training set.
REQUIRES = {"ax": ("mnli",)}

CONLL_INSTRUCTIONS = """CoNLL-2003 cannot be redistributed (its text is Reuters RCV1, licensed by NIST).
To use it:
  1. request the Reuters Corpus (RCV1) from NIST: https://trec.nist.gov/data/reuters/reuters.html
  2. build the English data with the scripts of https://www.clips.uantwerpen.be/conll2003/ner/
  3. place eng.train, eng.testa and eng.testb in {dir}/
A sample in the same format is in data/samples/conll2003/."""
CONLL_FILES = ("eng.train", "eng.testa", "eng.testb")


class DownloadError(RuntimeError):
    """A download that failed or did not verify; nothing of it was written."""


class ManualDownload(str):
    """What `download("all")` reports for a dataset that only a person can
    fetch (CoNLL-2003): the instructions, not a failure."""


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url, path, timeout=60):
    """Download `url` to `path` (a temporary name) with a progress bar; network
    and disk failures get different messages (the fix differs)."""
    from tqdm.auto import tqdm

    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except (OSError, ValueError) as e:
        raise DownloadError(f"could not download {url}: {e}") from e
    with response:
        total = int(response.headers.get("Content-Length") or 0) or None
        try:
            out = open(path, "wb")
        except OSError as e:
            raise DownloadError(f"could not write {path} while downloading {url}: {e}") from e
        with out, tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(url), leave=False) as bar:
            while True:
                try:
                    block = response.read(1 << 20)
                except OSError as e:
                    raise DownloadError(f"could not download {url}: {e}") from e
                if not block:
                    break
                try:
                    out.write(block)
                    out.flush()
                except OSError as e:
                    raise DownloadError(
                        f"could not write {path} while downloading {url}: {e} (disk full or a file-size limit?); "
                        "nothing was written to the data directory"
                    ) from e
                bar.update(len(block))


def _verify(source, downloaded, recorded, log):
    """Check size and SHA-256 against the published values (or the checksum
    recorded at the first download); return the SHA-256."""
    size = os.path.getsize(downloaded)
    if source.size is not None and size != source.size:
        raise DownloadError(
            f"{source.url}: downloaded {size} bytes but {source.size} are published ({source.published}); "
            "nothing was written"
        )
    digest = _sha256(downloaded)
    expected = source.sha256 or recorded.get(source.url)
    if expected and digest != expected:
        where = source.published if source.sha256 else "recorded at the first download in SOURCES.json"
        raise DownloadError(
            f"{source.url}: checksum mismatch (sha256 {digest}, expected {expected}, {where}); nothing was written"
        )
    if not expected:
        log(f"{source.url}: no published checksum; recorded sha256 {digest} (trust on first use)")
    return digest


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


def expected_files(task, sources=None, optional=False):
    """Files the task's download puts in data/<task>/ (with `optional`: also
    those it can do without)."""
    sources = (sources or SOURCES)[task]
    if task == "mrpc":
        return ["train.tsv", "dev.tsv", "test.tsv"]
    return [name for s in sources if optional or not s.optional for name in s.files.values()]


def _to_fetch(task, table, directory, force):
    """The sources whose files are not there yet (all of them with `force`)."""
    if force:
        return list(table[task])
    present = lambda name: os.path.exists(os.path.join(directory, name))  # noqa: E731
    if task == "mrpc":
        return [] if all(present(f) for f in expected_files(task, table)) else list(table[task])
    return [s for s in table[task] if not all(present(f) for f in s.files.values())]


def download_task(task, data_dir="data", sources=None, force=False, log=print):
    """Download one task into `data_dir/<task>/` (and the tasks it reads, see
    `REQUIRES`); returns the directory.

    Args:
        sources: a replacement for `SOURCES` (tests point it at a local server).
        force: download again even when the files are present.
    """
    if task == "conll2003":
        directory = os.path.join(data_dir, "conll2003")
        if not all(os.path.exists(os.path.join(directory, f)) for f in CONLL_FILES):
            raise DownloadError(CONLL_INSTRUCTIONS.format(dir=directory))
        return directory
    table = sources or SOURCES
    if task not in table:
        raise ValueError(
            f"No download for {task!r}; downloadable: {', '.join(sorted(table))}, conll2003 (instructions), glue, all"
        )
    for required in REQUIRES.get(task, ()):
        log(f"{task}: needs {required}")
        download_task(required, data_dir, sources, force, log)
    directory = os.path.join(data_dir, task)
    fetch = _to_fetch(task, table, directory, force)
    if not fetch:
        log(f"{task}: already in {directory}")
        return directory
    record_path = os.path.join(directory, "SOURCES.json")
    recorded = {}
    if os.path.exists(record_path):
        recorded = read_json(record_path)
        if not isinstance(recorded, dict):
            raise ValueError(f"{record_path}: expected a JSON object {{url: sha256}}, got {type(recorded).__name__}")
    os.makedirs(data_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".tmp-{task}-", dir=data_dir)
    try:
        checksums = {}
        produced = []
        for source in fetch:
            downloaded = os.path.join(staging, ".download")
            log(f"{task}: downloading {source.url}")
            try:
                _fetch(source.url, downloaded)
                checksums[source.url] = _verify(source, downloaded, recorded, log)
                produced += _extract(source, downloaded, staging)
            except DownloadError as e:
                if not source.optional:
                    raise
                log(
                    f"{task}: optional {', '.join(source.files.values())} not downloaded, the task runs without it: {e}"
                )
                checksums.pop(source.url, None)
            finally:
                if os.path.exists(downloaded):
                    os.remove(downloaded)
        if task == "mrpc":
            produced = _convert_mrpc(staging)
        os.makedirs(directory, exist_ok=True)
        for name in produced:
            os.replace(os.path.join(staging, name), os.path.join(directory, name))
        if checksums:
            write_text_atomic(record_path, json.dumps({**recorded, **checksums}, indent=1, sort_keys=True) + "\n")
    except OSError as e:
        raise DownloadError(f"{task}: could not write into {data_dir}: {e}; files already there are unchanged") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"{task}: ready in {directory}")
    return directory


def download(name, data_dir="data", sources=None, force=False, log=print):
    """Download a task, `glue` (all GLUE tasks) or `all`; returns {task:
    directory, `DownloadError`, or (CoNLL-2003 under `all`) `ManualDownload`
    instructions}."""
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
            if task == "conll2003" and name == "all":
                results[task] = ManualDownload(str(e))
                log(f"{task}: not downloadable automatically.\n{e}")
                continue
            results[task] = e
            log(f"{task}: {e}")
    return results
