"""Malformed inputs of every kind (data files, vocabularies, configs,
checkpoints, results tables, notebook parameters): each is a clear error that
names the file and line, or the parameter, raised through the public entry
point, never a bare `UnicodeDecodeError`, `KeyError` or reader traceback.
Counted in docs/faults.md."""

import json
import os
import re

import numpy as np
import pytest

from workbench.checkpoints.load import load_pretrained
from workbench.tasks.registry import get_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "data", "samples")
VOCAB = os.path.join(SAMPLES, "vocab.txt")
LATIN1 = "Caf\xe9 au lait".encode("latin-1")  # not UTF-8
RAW = (UnicodeDecodeError, KeyError, IndexError, TypeError, AttributeError, json.JSONDecodeError)


def write(root, relative, content):
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def load(task, split, **options):
    return lambda root: get_task(task, **options).load(root, split)


RTE_HEADER = "index\tsentence1\tsentence2\tlabel\n"
MNLI_ROW = "0\t1\t2\tfiction\t-\t-\t-\t-\tA cat.\tA pet.\t{label}\n"
XNLI_HEADER = "\t".join(["language", "gold_label"] + [f"c{i}" for i in range(17)]) + "\n"
SWAG_HEADER = "video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,ending3,label\n"

SQUAD_QA = {"id": "q1", "question": "Where?", "answers": [{"text": "Paris", "answer_start": 15}]}


def squad_json(qa=None, paragraph=None, article=None, version="1.1"):
    """A SQuAD file of two articles, the second's one paragraph with two questions:
    the second question, the paragraph or the second article updated with `qa`,
    `paragraph` or `article` (so a location reads data[1].paragraphs[0].qas[1])."""
    qas = [SQUAD_QA, {**SQUAD_QA, "id": "q2", **(qa or {})}]
    second = {"title": "t", "paragraphs": [{"context": "Alice lives in Paris.", "qas": qas, **(paragraph or {})}]}
    first = {"title": "s", "paragraphs": [{"context": "Alice lives in Paris.", "qas": [SQUAD_QA]}]}
    return json.dumps({"version": version, "data": [first, article if article is not None else second]})


SQUAD_AT = r"data\[1\]\.paragraphs\[0\]"
SQUAD_QA_AT = SQUAD_AT + r"\.qas\[1\]"
SQUAD_ANSWERS = r"'answers' must be a list of objects with \"text\" and \"answer_start\""


def stsb_row(score):
    return "\t".join(["0"] * 7 + ["a", "b", score]) + "\n"


# (id, {relative path: content}, entry point taking the data root, message pattern)
DATA_CASES = [
    (
        "tsv-too-few-fields",
        {"rte/dev.tsv": RTE_HEADER + "0\ta\tb\tentailment\n1\tonly two\n"},
        load("rte", "dev"),
        r"rte/dev\.tsv, line 3: expected at least 4 tab-separated fields, found 2",
    ),
    (
        "tsv-unknown-label",
        {"rte/dev.tsv": RTE_HEADER + "0\ta\tb\tmaybe\n"},
        load("rte", "dev"),
        r"rte/dev\.tsv, line 2: label 'maybe' is not one of",
    ),
    (
        "tsv-score-not-a-number",
        {"stsb/dev.tsv": "h\n" + "\t".join(["0"] * 7 + ["a", "b", "high"]) + "\n"},
        load("stsb", "dev"),
        r"stsb/dev\.tsv, line 2: score 'high' is not a number",
    ),
    *(
        (
            f"tsv-score-{name}",
            {f"stsb/{split}.tsv": "h\n" + stsb_row("3.8") + stsb_row(score)},
            load("stsb", split),
            rf"stsb/{split}\.tsv, line 3: score '{score}' is not a number in \[0, 5\]",
        )
        for name, split, score in (
            ("nan", "train", "nan"),
            ("inf", "dev", "inf"),
            ("minus-inf", "train", "-inf"),
            ("too-high", "dev", "17"),
            ("negative", "train", "-0.5"),
        )
    ),
    (
        "tsv-not-utf8",
        {"sst2/train.tsv": b"sentence\tlabel\nfine\t1\n" + LATIN1 + b"\t0\n"},
        load("sst2", "train"),
        r"sst2/train\.tsv, line 3, column 4: not valid UTF-8",
    ),
    ("tsv-empty-train", {"rte/train.tsv": ""}, load("rte", "train"), r"rte/train\.tsv: no train examples"),
    (
        "tsv-header-only-train",
        {"rte/train.tsv": RTE_HEADER},
        load("rte", "train"),
        r"rte/train\.tsv: no train examples",
    ),
    (
        "tsv-qqp-every-row-broken",
        {"qqp/train.tsv": "id\tqid1\tqid2\tq1\tq2\tis_duplicate\n1\t2\t3\tonly\n"},
        load("qqp", "train"),
        r"qqp/train\.tsv: no train examples .*every row skipped",
    ),
    (
        "tsv-cola-no-header-short-row",
        {"cola/dev.tsv": "src\t1\n"},
        load("cola", "dev"),
        r"cola/dev\.tsv, line 1: expected at least 4",
    ),
    (
        "tsv-mnli-bad-label",
        {"mnli/dev_matched.tsv": "h\n" + MNLI_ROW.format(label="yes")},
        load("mnli", "dev_matched"),
        r"mnli/dev_matched\.tsv, line 2: label 'yes'",
    ),
    (
        "tsv-xnli-short-row",
        {"xnli/xnli.dev.tsv": XNLI_HEADER + "de\tneutral\tx\n"},
        load("xnli", "dev"),
        r"xnli/xnli\.dev\.tsv, line 2: expected at least 8",
    ),
    (
        "tsv-xnli-bad-label",
        {"xnli/xnli.dev.tsv": XNLI_HEADER + "de\tunsure" + "\tx" * 17 + "\n"},
        load("xnli", "dev"),
        r"xnli/xnli\.dev\.tsv, line 2: label 'unsure'",
    ),
    (
        "tsv-ax-train-missing",
        {"ax/diagnostic.tsv": "index\tsentence1\tsentence2\n0\ta\tb\n"},
        load("ax", "train"),
        r"ax: expected .*mnli/train\.tsv.*python -m workbench download ax",
    ),
    ("tsv-file-missing", {}, load("mrpc", "dev"), r"mrpc/dev\.tsv.*python -m workbench download mrpc"),
    (
        "conll-three-columns",
        {"conll2003/eng.testa": "EU NNP I-NP I-ORG\nrejects VBZ I-VP\n"},
        load("conll2003", "dev"),
        r"eng\.testa, line 2: expected 4 columns",
    ),
    (
        "conll-unknown-tag",
        {"conll2003/eng.testb": "EU NNP I-NP B-FOO\n"},
        load("conll2003", "test"),
        r"eng\.testb, line 1: unknown NER tag 'B-FOO'",
    ),
    (
        "conll-not-utf8",
        {"conll2003/eng.train": b"-DOCSTART- -X- O O\n\n" + LATIN1.split()[0] + b" NNP I-NP O\n"},
        load("conll2003", "train"),
        r"eng\.train, line 3, column 4: not valid UTF-8",
    ),
    (
        "conll-no-sentences",
        {"conll2003/eng.train": "-DOCSTART- -X- O O\n\n"},
        load("conll2003", "train"),
        r"eng\.train: no train examples",
    ),
    (
        "swag-missing-columns",
        {"swag/val.csv": "sent1,sent2,label\na,b,0\n"},
        load("swag", "dev"),
        r"val\.csv: missing columns \['ending0'",
    ),
    (
        "swag-bad-label",
        {"swag/val.csv": SWAG_HEADER + "v,1,s,a,b,gold,e0,e1,e2,e3,7\n"},
        load("swag", "dev"),
        r"val\.csv, line 2: label '7' is not 0-3",
    ),
    (
        "swag-wrong-field-count",
        {"swag/train.csv": SWAG_HEADER + "v,1,s,a,b\n"},
        load("swag", "train"),
        r"train\.csv, line 2: 5 fields, header has 11",
    ),
    (
        "swag-not-utf8",
        {"swag/train.csv": SWAG_HEADER.encode() + b"v,1,s," + LATIN1 + b",b,g,e,e,e,e,0\n"},
        load("swag", "train"),
        r"train\.csv, line 2, column 10: not valid UTF-8",
    ),
    (
        "json-invalid",
        {"squad1/dev-v1.1.json": '{"data": [\n{"title": }]}'},
        load("squad1", "dev"),
        r"dev-v1\.1\.json, line 2, column 11: invalid JSON",
    ),
    (
        "json-not-squad",
        {"squad2/dev-v2.0.json": "[1, 2]"},
        load("squad2", "dev"),
        r"dev-v2\.0\.json: expected a SQuAD file with a top-level 'data' list",
    ),
    (
        "json-data-not-objects",
        {"squad1/dev-v1.1.json": squad_json(article="oops")},
        load("squad1", "dev"),
        r"dev-v1\.1\.json: data\[1\] must be an object with a 'paragraphs' list, got \"oops\"",
    ),
    (
        "json-paragraphs-not-a-list",
        {"squad1/dev-v1.1.json": squad_json(article={"title": "t", "paragraphs": {"context": "c"}})},
        load("squad1", "dev"),
        r"dev-v1\.1\.json: data\[1\]: 'paragraphs' must be a list, got an object",
    ),
    (
        "json-paragraph-not-an-object",
        {"squad1/train-v1.1.json": squad_json(article={"title": "t", "paragraphs": ["Alice lives in Paris."]})},
        load("squad1", "train"),
        r"train-v1\.1\.json: data\[1\]\.paragraphs\[0\] must be an object with 'context' and 'qas'",
    ),
    (
        "json-context-null",
        {"squad1/dev-v1.1.json": squad_json(paragraph={"context": None})},
        load("squad1", "dev"),
        rf"dev-v1\.1\.json: {SQUAD_AT}: 'context' must be a string, got null",
    ),
    (
        "json-qas-null",
        {"squad2/dev-v2.0.json": squad_json(paragraph={"qas": None}, version="v2.0")},
        load("squad2", "dev"),
        rf"dev-v2\.0\.json: {SQUAD_AT}: 'qas' must be a list, got null",
    ),
    (
        "json-question-not-an-object",
        {"squad1/dev-v1.1.json": squad_json(paragraph={"qas": [SQUAD_QA, "Where?"]})},
        load("squad1", "dev"),
        rf"dev-v1\.1\.json: {SQUAD_QA_AT} must be an object with 'id' and 'question', got \"Where\?\"",
    ),
    (
        "json-id-null",
        {"squad1/dev-v1.1.json": squad_json(qa={"id": None})},
        load("squad1", "dev"),
        rf"dev-v1\.1\.json: {SQUAD_QA_AT}: 'id' must be a string, got null",
    ),
    (
        "json-question-null",
        {"squad1/train-v1.1.json": squad_json(qa={"question": None})},
        load("squad1", "train"),
        rf"train-v1\.1\.json: {SQUAD_QA_AT}: 'question' must be a string, got null",
    ),
    (
        "json-answers-strings",
        {"squad1/dev-v1.1.json": squad_json(qa={"answers": ["the mat"]})},
        load("squad1", "dev"),
        rf"dev-v1\.1\.json: {SQUAD_QA_AT}: {SQUAD_ANSWERS}, got \"the mat\" at answers\[0\]",
    ),
    (
        "json-answers-null-v2",
        {"squad2/dev-v2.0.json": squad_json(qa={"answers": None}, version="v2.0")},
        load("squad2", "dev"),
        rf"dev-v2\.0\.json: {SQUAD_QA_AT}: {SQUAD_ANSWERS}, got null",
    ),
    (
        "json-answers-null-impossible-v2",
        {"squad2/train-v2.0.json": squad_json(qa={"answers": None, "is_impossible": True}, version="v2.0")},
        load("squad2", "train"),
        rf"train-v2\.0\.json: {SQUAD_QA_AT}: {SQUAD_ANSWERS}, got null",
    ),
    (
        "json-answer-text-a-number",
        {"squad1/train-v1.1.json": squad_json(qa={"answers": [{"text": 5, "answer_start": 15}]})},
        load("squad1", "train"),
        rf"train-v1\.1\.json: {SQUAD_QA_AT}\.answers\[0\]: 'text' must be a string, got 5",
    ),
    (
        "json-second-answer-without-text",
        {"squad2/dev-v2.0.json": squad_json(qa={"answers": [SQUAD_QA["answers"][0], {"answer_start": 15}]})},
        load("squad2", "dev"),
        rf"dev-v2\.0\.json: {SQUAD_QA_AT}\.answers\[1\]: 'text' must be a string, got no 'text'",
    ),
    (
        "json-is-impossible-a-string",
        {"squad2/dev-v2.0.json": squad_json(qa={"is_impossible": "false"}, version="v2.0")},
        load("squad2", "dev"),
        rf"dev-v2\.0\.json: {SQUAD_QA_AT}: 'is_impossible' must be true or false, got \"false\"",
    ),
    pytest.param(
        "json-not-utf8",
        {"squad1/train-v1.1.json": b'{"data": [{"title": "' + LATIN1 + b'"}]}'},
        load("squad1", "train"),
        r"train-v1\.1\.json, line 1.*UTF-8",
    ),
]


def _params(cases):
    """pytest params from (id, *values) tuples or `pytest.param(id, *values, marks=...)`."""
    out = []
    for c in cases:
        if hasattr(c, "marks"):  # a pytest.param (itself a tuple)
            out.append(pytest.param(*c.values[1:], id=c.values[0], marks=c.marks))
        else:
            out.append(pytest.param(*c[1:], id=c[0]))
    return out


def assert_clear(error, message):
    assert not isinstance(error, RAW), f"raw {type(error).__name__}: {error}"
    assert re.search(message, str(error).replace(os.sep, "/")), str(error)


@pytest.mark.parametrize("files, entry, message", _params(DATA_CASES))
def test_malformed_data_file(tmp_path, files, entry, message):
    for relative, content in files.items():
        write(tmp_path, relative, content)
    with pytest.raises(Exception) as excinfo:
        entry(str(tmp_path))
    assert_clear(excinfo.value, message)


def test_squad_structure_checks_leave_valid_and_counted_answers_alone(tmp_path):
    """What the structure checks accept: integer ids, is_impossible false, a
    missing or non-integer answer_start (counted as not found, docs/differences.md),
    v2.0 impossible questions with no answers."""
    qa = {"id": 7, "is_impossible": False, "answers": [{"text": "Paris", "answer_start": "15"}]}
    write(tmp_path, "squad1/dev-v1.1.json", squad_json(qa=qa))
    task = get_task("squad1")
    examples = task.load(str(tmp_path), "dev")
    assert [e.qid for e in examples] == ["q1", "q1", 7]
    assert task.unfound_answers["dev"] == [7]
    impossible = {"is_impossible": True, "answers": [], "plausible_answers": [{"text": "Alice", "answer_start": 0}]}
    write(tmp_path, "squad2/train-v2.0.json", squad_json(qa=impossible, version="v2.0"))
    examples = get_task("squad2").load(str(tmp_path), "train")
    assert [(e.is_impossible, e.answers) for e in examples][-1] == (True, [])


def test_stsb_scores_at_the_ends_of_the_range_and_unscored_test_files_load(tmp_path):
    write(tmp_path, "stsb/train.tsv", "h\n" + stsb_row("0") + stsb_row("5.000") + stsb_row("2.5"))
    write(tmp_path, "stsb/test.tsv", "index\tg\tf\ty\ti\ts\tt\ts1\ts2\n0\tg\tf\ty\ti\ts\tt\ta\tb\n")
    task = get_task("stsb")
    assert [e.label for e in task.load(str(tmp_path), "train")] == [0.0, 5.0, 2.5]
    assert [(e.text_a, e.label) for e in task.load(str(tmp_path), "test")] == [("a", None)]


# ---- corpus, vocabularies, results tables, download records, parameters ------------------------------
def corpus(root):
    from workbench.training.pretraining_data import create_pretraining_data

    return lambda path: create_pretraining_data(path, os.path.join(root, "out"), VOCAB, log=lambda *_: None)


def tokenizer(path):
    from workbench.text.tokenizer import BertTokenizer

    return BertTokenizer(path)


def results(path):
    from workbench.runs.tables import completed_runs

    return completed_runs(path)


def sources_record(path):
    from workbench.tasks.download import Source, download_task

    root = os.path.dirname(os.path.dirname(path))
    return download_task("squad1", root, {"squad1": [Source("http://127.0.0.1:9/none", {"": "dev-v1.1.json"})]})


FILE_CASES = [
    ("corpus-missing", None, corpus, r"corpus file not found: .*nope\.txt"),
    ("corpus-empty", "", corpus, r"{file}"),
    pytest.param(
        "corpus-not-utf8",
        b"A first sentence.\n" + LATIN1 + b"\n\nAnother one.\nAnd more.\n",
        corpus,
        r"{file}, line 2.*UTF-8",
    ),
    ("vocab-missing", None, lambda root: tokenizer, r"Vocabulary file not found: .*nope\.txt"),
    ("vocab-empty", "", lambda root: tokenizer, r"{file}: missing special token"),
    ("vocab-without-specials", "the\ncat\n", lambda root: tokenizer, r"{file}: missing special token.*\[UNK\]"),
    pytest.param(
        "vocab-not-utf8",
        b"[PAD]\n[UNK]\n" + LATIN1 + b"\n",
        lambda root: tokenizer,
        r"{file}, line 3.*UTF-8",
    ),
    (
        "results-missing-column",
        "run_id,task\na,mrpc\n",
        lambda root: results,
        r"{file}: results table lacks column\(s\) \['finished_at'",
    ),
    ("results-not-csv", b'run_id,status\n"a,ok\n', lambda root: results, r"{file}: not a readable results table"),
    (
        "download-record-invalid-json",
        '{"http://127.0.0.1:1/": ',
        lambda root: sources_record,
        r"{file}, line 1, column 25: invalid JSON",
    ),
]


@pytest.mark.parametrize("content, entry, message", _params(FILE_CASES))
def test_malformed_input_file(tmp_path, content, entry, message):
    """`content` None: the file does not exist."""
    call = entry(str(tmp_path))
    name = "SOURCES.json" if call is sources_record else "input.txt"
    path = tmp_path / "squad1" / name if call is sources_record else tmp_path / name
    if content is None:
        path = tmp_path / "nope.txt"
    else:
        write(tmp_path, os.path.relpath(path, tmp_path), content)
    with pytest.raises(Exception) as excinfo:
        call(str(path))
    assert_clear(excinfo.value, message.replace("{file}", re.escape(name)))


PARAMETER_CASES = [
    ({"task": "mrpc", "batchsize": 8}, r"Unknown parameter\(s\) \['batchsize'\]"),
    ({"task": "mrpc", "batch_size": "8"}, r"Parameter 'batch_size' must be int or None, got '8'"),
    ({"task": "mrcp"}, r"Parameter 'task': unknown task 'mrcp'"),
    ({"task": "mrpc", "learning_rate": -1.0}, r"Parameter 'learning_rate' must be > 0"),
    ({"task": "mrpc", "warmup_proportion": 2.0}, r"Parameter 'warmup_proportion' must be in \[0, 1\]"),
]


@pytest.mark.parametrize("params, message", PARAMETER_CASES, ids=[m.split("'")[1] for _, m in PARAMETER_CASES])
def test_malformed_notebook_parameters(params, message):
    from workbench.training.finetune import validate_params

    with pytest.raises(ValueError) as excinfo:
        validate_params(params)
    assert_clear(excinfo.value, message)


# ---- configs and checkpoints -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A Google release, a Hugging Face directory and a keras-hub preset, all valid."""
    from test_checkpoints import google_weights, write_google_release, write_hf_directory

    from workbench.checkpoints.load import save_pretrained

    root = tmp_path_factory.mktemp("checkpoints")
    weights = google_weights(np.random.default_rng(0))
    google = write_google_release(root / "google", weights)
    hf = write_hf_directory(root / "hf", weights)
    pretrained = load_pretrained("tiny", vocab=VOCAB)
    preset = save_pretrained(pretrained.encoder, pretrained.tokenizer, str(root / "preset"))
    return {"google": str(google), "hf": str(hf), "preset": str(preset)}


def _copy(checkpoints, kind, tmp_path):
    import shutil

    return shutil.copytree(checkpoints[kind], tmp_path / kind)


def _truncate(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


CHECKPOINT_CASES = [
    (
        "google-truncated-weights",
        "google",
        lambda d: _truncate(next(d.glob("bert_model.ckpt.data-*"))),
        r"google: could not read the checkpoint \(.*\)\. A file may be truncated",
    ),
    (
        "hf-truncated-safetensors",
        "hf",
        lambda d: _truncate(d / "model.safetensors"),
        r"hf: could not read the checkpoint .*truncated",
    ),
    (
        "preset-truncated-weights",
        "preset",
        lambda d: _truncate(d / "model.weights.h5"),
        r"preset: could not read the checkpoint .*truncated",
    ),
    (
        "hf-config-invalid-json",
        "hf",
        lambda d: (d / "config.json").write_text('{"vocab_size": 60,'),
        r"hf/config\.json, line 1, column 19: invalid JSON",
    ),
    (
        "hf-config-missing-key",
        "hf",
        lambda d: (d / "config.json").write_text('{"vocab_size": 60}'),
        r"hf/config\.json lacks \['hidden_size'",
    ),
    (
        "hf-unknown-activation",
        "hf",
        lambda d: (d / "config.json").write_text(
            json.dumps(dict(json.loads((d / "config.json").read_text()), hidden_act="swiglu"))
        ),
        r"hf: unsupported hidden_act 'swiglu'",
    ),
    (
        "google-vocab-too-short",
        "google",
        lambda d: (d / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"),
        r"vocab\.txt has 5 tokens but .* rows",
    ),
    pytest.param(
        "google-config-invalid-json",
        "google",
        lambda d: (d / "bert_config.json").write_text("{"),
        r"bert_config\.json, line 1",
    ),
    (
        "not-a-model-directory",
        "hf",
        lambda d: [p.unlink() for p in d.iterdir()] and (d / "weights.bin").write_text("?"),
        r"hf: not a model directory this workbench reads",
    ),
]


@pytest.mark.parametrize("kind, damage, message", _params(CHECKPOINT_CASES))
def test_malformed_configs_and_checkpoints(checkpoints, tmp_path, kind, damage, message):
    directory = _copy(checkpoints, kind, tmp_path)
    damage(directory)
    with pytest.raises(Exception) as excinfo:
        load_pretrained(str(directory))
    assert_clear(excinfo.value, message)


def test_there_are_at_least_thirty_cases():
    assert len(DATA_CASES) + len(FILE_CASES) + len(PARAMETER_CASES) + len(CHECKPOINT_CASES) >= 30


def test_an_hf_repository_without_safetensors_is_not_handed_to_keras_hub(tmp_path, monkeypatch):
    """Only `pytorch_model.bin`: that file is downloaded (and read with torch,
    or a clear error without it); no weights at all: an error listing what the
    repository holds. Before, both fell through to the keras-hub preset loader."""
    import huggingface_hub.constants
    from test_checkpoints import config as bert_config
    from test_checkpoints import serve_fake_hub

    config = json.dumps(dict(bert_config(), model_type="bert")).encode()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    for repo, files, message in (
        ("someone/old-bert", {"config.json": config, "pytorch_model.bin": b"pickle"}, r"pytorch_model\.bin: reading"),
        ("someone/no-weights", {"config.json": config, "README.md": b"hi"}, r"hf://someone/no-weights: the repository"),
    ):
        server, requested = serve_fake_hub(files, repo)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        try:
            with pytest.raises(Exception) as excinfo:
                load_pretrained(f"hf://{repo}")
        finally:
            server.shutdown()
        try:
            import torch  # noqa: F401

            if "pytorch_model.bin" in files:
                continue  # with torch the pickle is read (and this fake one is rejected by torch)
        except ImportError:
            pass
        assert_clear(excinfo.value, message)
