"""workbench.files: atomic writes that keep what was there and give files their usual modes."""

import os
import stat

import pytest

from workbench.files import atomic_directory, atomic_path, check_replaceable_directory, write_text_atomic


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_written_files_and_directories_get_the_umask_modes(tmp_path, umask_022):
    write_text_atomic(tmp_path / "a.json", "{}\n")
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o644  # mkstemp alone gives 0600
    with atomic_directory(tmp_path / "model") as staging:
        (open(os.path.join(staging, "config.json"), "w")).close()
    assert stat.S_IMODE(os.stat(tmp_path / "model").st_mode) == 0o755  # mkdtemp alone gives 0700


def test_a_directory_of_other_files_is_never_replaced(tmp_path, monkeypatch):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(
        FileExistsError, match=r"precious: not empty and not an earlier output of this kind \(notes.txt\)"
    ):
        with atomic_directory(precious, ("config.json",)):
            pytest.fail("the work must not start")
    assert (precious / "notes.txt").read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["precious"]  # no staging directory left behind
    # A Hugging Face download has a config.json too, but other files: not a keras-hub preset.
    from workbench.checkpoints import PRESET_FILES

    hf = tmp_path / "hf"
    hf.mkdir()
    for name in ("config.json", "pytorch_model.bin", "vocab.txt"):
        (hf / name).write_text("x")
    with pytest.raises(FileExistsError, match=r"hf: not empty .*\(pytorch_model.bin, vocab.txt\)"):
        check_replaceable_directory(hf, PRESET_FILES)
    (hf / "pytorch_model.bin").unlink()
    (hf / "vocab.txt").unlink()
    with pytest.raises(FileExistsError, match=r"\(no metadata.json\)"):  # keras-hub's mark
        check_replaceable_directory(hf, PRESET_FILES)
    os.symlink(precious, tmp_path / "link")
    for link in (str(tmp_path / "link"), str(tmp_path / "link") + "/"):  # a trailing slash follows links
        with pytest.raises(FileExistsError, match="link: is a symbolic link"):
            check_replaceable_directory(link, ("config.json",))
    (tmp_path / "link").unlink()
    # The working directory (".") or a folder above it: refused even when it looks like a model.
    (precious / "config.json").write_text("{}")
    monkeypatch.chdir(precious)
    for path in (".", str(tmp_path)):
        with pytest.raises(FileExistsError, match="is the working directory or holds it"):
            check_replaceable_directory(path, ("config.json",))
    # A file where the directory should go.
    with pytest.raises(FileExistsError, match="notes.txt: exists and is not a directory"):
        check_replaceable_directory(precious / "notes.txt")


def test_an_earlier_output_of_the_same_kind_is_replaced_whole(tmp_path):
    model = tmp_path / "model"
    for version in ("1", "2"):
        with atomic_directory(model, ("config.json",)) as staging:
            with open(os.path.join(staging, "config.json"), "w") as f:
                f.write(version)
    assert os.listdir(model) == ["config.json"] and (model / "config.json").read_text() == "2"
    # An empty directory is free too; a failed write leaves the earlier one.
    with pytest.raises(RuntimeError):
        with atomic_directory(model, ("config.json",)) as staging:
            raise RuntimeError("disk full")
    assert (model / "config.json").read_text() == "2"
    assert sorted(os.listdir(tmp_path)) == ["model"]
    (tmp_path / "empty").mkdir()
    with atomic_directory(tmp_path / "empty") as staging:
        open(os.path.join(staging, "x"), "w").close()
    assert os.listdir(tmp_path / "empty") == ["x"]


def test_an_unwritable_place_is_named_not_the_temporary_file(tmp_path):
    (tmp_path / "c.txt").write_text("a file, not a folder")
    with pytest.raises(OSError, match=r"c.txt/out.csv: cannot write here") as error:
        with atomic_path(tmp_path / "c.txt" / "out.csv"):
            pass
    assert ".tmp" not in str(error.value)
    with pytest.raises(OSError, match=r"c.txt/model: cannot write here"):
        with atomic_directory(tmp_path / "c.txt" / "model"):
            pass


def test_convert_refuses_a_destination_of_other_files_before_reading_anything(tmp_path):
    from workbench.cli import main

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "results.csv").write_text("a,b\n")
    # The source does not even exist: the destination is checked first.
    assert main(["convert", str(tmp_path / "no-model"), str(precious), "--to", "keras-preset"]) == 2
    assert os.listdir(precious) == ["results.csv"]
