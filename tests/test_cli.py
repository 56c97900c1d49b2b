import subprocess
import sys

from workbench.cli import main
from workbench.models.config import BertConfig


def test_help_lists_the_commands():
    out = subprocess.run(
        [sys.executable, "-m", "workbench", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("sizes", "build-vocab", "tokenize"):
        assert command in out


def test_parameter_count_of_bert_base_matches_the_release():
    # BERT-Base uncased has 109,482,240 encoder parameters (embeddings, 12 layers, pooler).
    assert BertConfig.from_size("base").num_parameters() == 109_482_240


def test_sizes_and_tokenize_and_build_vocab(tmp_path, toy_vocab, capsys):
    assert main(["sizes"]) == 0
    assert "L-12_H-768" in capsys.readouterr().out
    assert main(["tokenize", "--vocab", str(toy_vocab), "Hello, Café!"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[1] for line in lines] == ["hello", ",", "cafe", "!"]
    assert lines[2].split("\t")[-1] == "Café"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox\njumps over the lazy dog\n" * 10)
    assert main(["build-vocab", "--input", str(corpus), "--output", str(tmp_path / "v.txt"), "--size", "60"]) == 0
    assert (tmp_path / "v.txt").read_text().splitlines()[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["tokenize", "--vocab", str(tmp_path / "none.txt"), "x"]) == 2
    assert "none.txt" in capsys.readouterr().err
