"""workbench.install: the TPU install keeps plain TensorFlow out (CI also builds it for real: `make test-tpu`)."""

import importlib.metadata

import pytest

from workbench import install


class Dist:
    def __init__(self, name):
        self.metadata = {"Name": name}


def test_tpu_install_takes_tensorflow_tpu_and_no_dependency_that_pulls_tensorflow(monkeypatch, tmp_path):
    commands = []
    monkeypatch.setattr(install, "_pip", lambda args, constraints: commands.append((list(args), constraints)))
    requirements = {
        "bert-workbench": [
            "tensorflow<2.22,>=2.20",
            "keras<4,>=3.12",
            "keras-hub<0.33,>=0.32",
            "tensorflow-text<2.22,>=2.20.1",
            "pandas<4,>=2.2",
            'pytest<10,>=8; extra == "test"',
        ],
        "keras-hub": ["keras>=3.13", "regex", "tensorflow-text; platform_system != 'Windows'", 'rich; extra == "x"'],
    }
    monkeypatch.setattr(importlib.metadata, "requires", requirements.get)
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: [Dist("tensorflow_tpu"), Dist("keras")])
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.20.0")

    install.install(str(tmp_path), tpu=True, extras=("test",), constraints="lock.txt")

    (first, _), (tpu, _), (no_deps, _), (rest, _) = commands
    assert first == ["--no-deps", "-e", f"{tmp_path}[test]"]  # the workbench itself, nothing it needs
    assert tpu == ["tensorflow-tpu>=2.20,<2.21", "libtpu~=0.0.14.0"]
    assert no_deps == ["--no-deps", "tensorflow-text>=2.20.1,<2.21", "keras-hub<0.33,>=0.32"]
    names = {install._name(r) for r in rest}
    assert {"keras", "pandas", "pytest", "regex"} <= names
    assert not names & {"tensorflow", "tensorflow-text", "keras-hub", "rich"}
    assert all(constraints == "lock.txt" for _, constraints in commands)


def test_the_check_refuses_two_tensorflows(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: [Dist("tensorflow_tpu"), Dist("tensorflow")])
    with pytest.raises(SystemExit, match="Both `tensorflow` and `tensorflow-tpu` are installed"):
        install.check_tpu_environment()
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: [Dist("tensorflow")])
    with pytest.raises(SystemExit, match="`tensorflow-tpu` is not installed"):
        install.check_tpu_environment()


def test_without_tpu_it_is_one_pip_install(monkeypatch, tmp_path):
    commands = []
    monkeypatch.setattr(install, "_pip", lambda args, constraints: commands.append(list(args)))
    install.install("dist/bert_workbench-0.1.0-py3-none-any.whl")
    install.install(str(tmp_path), extras=("test",))
    url = f"git+file://{tmp_path}/bert-workbench.git"  # a clone of one's own copy
    install.install(url, extras=("test",))
    install.install("dist/bert_workbench-0.1.0-py3-none-any.whl", extras=("test",))
    assert commands == [
        ["dist/bert_workbench-0.1.0-py3-none-any.whl"],
        ["-e", f"{tmp_path}[test]"],
        [f"bert-workbench[test] @ {url}"],
        ["dist/bert_workbench-0.1.0-py3-none-any.whl[test]"],
    ]
    commands.clear()
    install.install(str(tmp_path), deps_only=True)  # the workbench is there: only what it needs
    assert commands == [install.installed_requirements()]


def test_the_real_installed_metadata_is_read_with_extras():
    requirements = install.installed_requirements(("test",))
    names = {install._name(r) for r in requirements}
    assert {"tensorflow", "keras-hub", "pytest"} <= names
    assert "pytest" not in {install._name(r) for r in install.installed_requirements()}


def test_resolve_lock_releases_the_named_pins_and_says_what_moved(monkeypatch, tmp_path):
    """The Beam lock's maker (`make beam-lock`), with pip's resolution stood in for: the other lock constrains
    everything but the released names, the header says which versions moved, a failed resolution keeps the old
    lock."""
    import json
    import subprocess

    main = tmp_path / "main.lock"
    main.write_text("# exact versions\nprotobuf==7.36.2\nnumpy==2.4.6\nPillow==13.0.0\n")
    resolved = [("bert-workbench", "0.1.0"), ("numpy", "2.4.6"), ("protobuf", "6.33.6"), ("pillow", "12.3.0")]
    seen = {}

    def pip(command, check):
        seen["command"] = command
        seen["constraints"] = open(command[command.index("-c") + 1]).read()
        report = {"install": [{"metadata": {"name": n, "version": v}} for n, v in resolved + [("apache-beam", "2.77")]]}
        with open(command[command.index("--report") + 1], "w") as f:
            json.dump(report, f)

    monkeypatch.setattr(subprocess, "run", pip)
    beam = tmp_path / "beam.lock"
    install.resolve_lock(str(beam), ("test", "beam"), str(main), ("protobuf", "pillow"), source="/src")
    assert seen["constraints"] == "numpy==2.4.6\n" and seen["command"][-1] == "/src[test,beam]"
    assert {"--dry-run", "--ignore-installed", "--report"} <= set(seen["command"])
    lines = beam.read_text().splitlines()
    assert lines[3:] == ["apache-beam==2.77", "numpy==2.4.6", "pillow==12.3.0", "protobuf==6.33.6"]
    assert lines[2].endswith("main.lock: pillow 13.0.0 -> 12.3.0, protobuf 7.36.2 -> 6.33.6.")

    def fails(command, check):
        raise subprocess.CalledProcessError(1, command)

    monkeypatch.setattr(subprocess, "run", fails)
    with pytest.raises(subprocess.CalledProcessError):
        install.resolve_lock(str(beam), ("test", "beam"), str(main), ("protobuf",))
    assert beam.read_text().splitlines() == lines
