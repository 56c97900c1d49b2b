"""Install the workbench into the running Python, also on a TPU VM where TensorFlow is `tensorflow-tpu`.

Why a module and not one pip line: on a TPU VM (Colab v5e/v6e, Cloud TPU VMs) TensorFlow is the
`tensorflow-tpu` distribution with `libtpu`, but keras-hub requires `tensorflow-text`, whose own requirement on
the `tensorflow` distribution makes pip install plain TensorFlow beside it (two TensorFlows in one environment;
the second one's import wins and the TPU is gone). pip has no way to say that `tensorflow-tpu` provides
`tensorflow`, so the TPU install takes three steps: `tensorflow-tpu` (which brings `libtpu`), then
`tensorflow-text` and keras-hub without their dependencies, then everything else the workbench needs with
TensorFlow left out. Afterwards it checks that no `tensorflow` distribution got in.

This module uses the standard library only, so it runs before anything is installed:

    python -m workbench.install                # this checkout, editable, with plain TensorFlow
    python -m workbench.install --tpu          # the same on a TPU VM (tensorflow-tpu 2.20 + libtpu)
    python -m workbench.install --tpu --source dist/bert_workbench-0.1.0-py3-none-any.whl
    pip install --no-deps git+URL && python -m workbench.install --tpu --deps-only   # what a notebook does
    python -m workbench.install --constraints .ci/requirements-tpu.lock --tpu --extras test   # CI's exact set

It also writes lock files for environments that cannot share the main lock (`make beam-lock`):

    python -m workbench.install --resolve-lock .ci/requirements-beam.lock --extras test,beam \
        --constraints .ci/requirements.lock --release protobuf,pillow,python-dateutil
"""

import argparse
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tempfile

# The TensorFlow TPU build on the package index (Python 3.12 wheels): 2.20.0 is the newest there is. It asks for
# `libtpu~=0.0.14`, which pip reads as any 0.0.x from 0.0.14 on and resolves to the newest (0.0.52 on
# 2026-11-30); those newer libtpu builds are JAX's and lack TensorFlow's TPU entry points (importing TensorFlow
# aborts with "ConfigureDistributedTpuOp_DoWork not available in this library"). 0.0.14 imports and runs.
TPU_TENSORFLOW = ("tensorflow-tpu>=2.20,<2.21", "libtpu~=0.0.14.0")
TPU_TENSORFLOW_TEXT = "tensorflow-text>=2.20.1,<2.21"
# Distributions that must not be resolved normally on a TPU VM: each pulls in plain `tensorflow`.
NO_DEPS_ON_TPU = ("tensorflow", "tensorflow-text", "keras-hub")


def _name(requirement):
    return re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0]).lower()


def installed_requirements(extras=()):
    """The installed workbench's requirements (with the named extras), from its package metadata: the same for a
    checkout, a wheel or a git URL."""
    importlib.invalidate_caches()
    requirements = []
    for text in importlib.metadata.requires("bert-workbench") or []:
        requirement, _, marker = text.partition(";")
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if extra is None:
            requirements.append(text.strip())  # any environment marker stays for pip to evaluate
        elif extra.group(1) in extras:
            requirements.append(requirement.strip())
    return requirements


def _pip(args, constraints):
    command = [sys.executable, "-m", "pip", "install", *args]
    if constraints:
        command += ["-c", constraints]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def install(source=".", tpu=False, extras=(), constraints=None, editable=None, deps_only=False):
    """Install the workbench from `source` (a checkout folder, a wheel, or anything pip installs, such as
    git+URL) into this Python; `tpu=True` for a TPU VM (see the module docstring). `deps_only`: the workbench
    itself is installed already (`pip install --no-deps SOURCE`, as the notebooks' setup cell does on a TPU VM)."""
    editable = os.path.isdir(source) if editable is None else editable
    spec = source
    if extras:  # pip's spellings: a folder or wheel takes [extras]; a URL needs the project name
        local = os.path.isdir(source) or source.endswith(".whl")
        spec = f"{source}[{','.join(extras)}]" if local else f"bert-workbench[{','.join(extras)}] @ {source}"
    target = ["-e", spec] if editable else [spec]
    if not tpu:
        _pip(installed_requirements(extras) if deps_only else target, constraints)
        return
    if not deps_only:
        _pip(["--no-deps", *target], constraints)
    requirements = installed_requirements(extras)
    _pip(list(TPU_TENSORFLOW), constraints)
    keras_hub = next(r for r in requirements if _name(r) == "keras-hub")
    _pip(["--no-deps", TPU_TENSORFLOW_TEXT, keras_hub], constraints)
    importlib.invalidate_caches()
    # keras-hub's own needs, environment markers kept (pip evaluates them), its extras left out.
    hub_needs = [r for r in importlib.metadata.requires("keras-hub") or [] if "extra ==" not in r]
    rest = [r for r in requirements + hub_needs if _name(r) not in NO_DEPS_ON_TPU]
    _pip(rest, constraints)
    check_tpu_environment()


def check_tpu_environment():
    """Fail when plain `tensorflow` sits beside `tensorflow-tpu` (its import would shadow the TPU build)."""
    installed = {_name(d.metadata["Name"] or "") for d in importlib.metadata.distributions()}
    if "tensorflow-tpu" not in installed:
        raise SystemExit("`tensorflow-tpu` is not installed")
    if "tensorflow" in installed:
        raise SystemExit(
            "Both `tensorflow` and `tensorflow-tpu` are installed; `pip uninstall -y tensorflow` and run "
            "`python -m workbench.install --tpu` again"
        )
    print("TPU environment: tensorflow-tpu", importlib.metadata.version("tensorflow-tpu"), "and no plain tensorflow")


def resolve_lock(output, extras=(), constraints=None, release=(), source="."):
    """Write `output`, a lock file: every distribution pip resolves for the workbench at `source` with `extras`,
    at exact versions, one `name==version` a line. pip resolves it from the package index without installing
    anything (`pip install --dry-run --report`), under `constraints` (another lock) less the names in `release`:
    so the new lock keeps every version of the other one that it can and moves only what it must (the Beam
    environment: protobuf, pillow and python-dateutil, below apache-beam's upper bounds). Returns {name: version}.
    """
    released = {_name(r) for r in release}
    spec = f"{source}[{','.join(extras)}]" if extras else source
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed"]
        command += ["--report", os.path.join(tmp, "report.json")]
        held = {}
        if constraints:
            with open(constraints, encoding="utf-8") as f:
                held = {_name(line): line.strip().split("==")[1] for line in f if "==" in line and line[0] != "#"}
            with open(os.path.join(tmp, "constraints.txt"), "w", encoding="utf-8") as f:
                f.writelines(f"{name}=={version}\n" for name, version in held.items() if name not in released)
            command += ["-c", os.path.join(tmp, "constraints.txt")]
        print("+", " ".join(command + [spec]), flush=True)
        subprocess.run(command + [spec], check=True)
        with open(os.path.join(tmp, "report.json"), encoding="utf-8") as f:
            report = json.load(f)
    pins = {
        item["metadata"]["name"]: item["metadata"]["version"]
        for item in report["install"]
        if _name(item["metadata"]["name"]) != "bert-workbench"
    }
    written_by = ["python -m workbench.install --resolve-lock", output]
    written_by += ["--extras", ",".join(extras)] * bool(extras) + ["--constraints", constraints] * bool(constraints)
    written_by += ["--release", ",".join(release)] * bool(release)
    header = [
        f"# Exact versions of every distribution the workbench [{','.join(extras)}] installs; used as pip constraints.",
        f"# Resolved from the package index by `{' '.join(written_by)}`.",
    ]
    if constraints:
        moved = [f"{n} {held[_name(n)]} -> {v}" for n, v in sorted(pins.items()) if held.get(_name(n), v) != v]
        header.append(f"# Versions that differ from {constraints}: {', '.join(moved) or 'none'}.")
    lines = header + [f"{name}=={pins[name]}" for name in sorted(pins, key=_name)]
    with open(output + ".tmp", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(output + ".tmp", output)  # a failed resolution leaves the old lock as it was
    return pins


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m workbench.install", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=".", help="a checkout folder (default: .), a wheel file or git+URL")
    parser.add_argument("--tpu", action="store_true", help="TPU VM: tensorflow-tpu + libtpu, no plain tensorflow")
    parser.add_argument("--extras", default="", help="comma-separated extras, e.g. test")
    parser.add_argument("--constraints", help="a pip constraints file (CI: .ci/requirements.lock)")
    parser.add_argument("--no-editable", action="store_true", help="install a checkout as a regular package")
    parser.add_argument("--deps-only", action="store_true", help="the workbench is installed (--no-deps) already")
    parser.add_argument("--resolve-lock", metavar="LOCK", help="install nothing: write LOCK, resolved from the index")
    parser.add_argument("--release", default="", help="with --resolve-lock: names not held to --constraints")
    args = parser.parse_args(argv)
    extras = tuple(e for e in args.extras.split(",") if e)
    if args.resolve_lock:
        release = tuple(r for r in args.release.split(",") if r)
        resolve_lock(args.resolve_lock, extras, args.constraints, release, args.source)
        return
    install(args.source, args.tpu, extras, args.constraints, False if args.no_editable else None, args.deps_only)


if __name__ == "__main__":
    main()
