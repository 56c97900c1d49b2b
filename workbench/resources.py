"""The files the workbench ships: the paper's results, the benchmark samples, the sample corpus, the notebooks.

Why one module: the defaults of the notebooks, the suite and the command line are these files, and they live in
one of two places. In a checkout (and an editable install) they are `data/` and `notebooks/` at the repository
root, where the product's layout keeps them; in an installed wheel they are package data, `workbench/_data/` and
`workbench/_notebooks/` (`pyproject.toml` maps the two folders there). Everything that needs one asks here, so a
pip-installed workbench runs every notebook and the suite from any directory, and a checkout runs them from its
own files.

Only defaults come from here: a path a user gives stays relative to the working directory.

Example:
```python
from workbench import resources

resources.paper_results()  # .../data/paper_results.csv (checkout) or .../workbench/_data/paper_results.csv
resources.samples("mrpc")  # the official-format MRPC sample
resources.notebook("results.ipynb")
```
"""

import importlib.resources
import os
import pathlib

PROJECT = "bert-workbench"
# Folder at the repository root -> package-data folder inside `workbench` (pyproject.toml's package-dir).
SHIPPED = {"data": "_data", "notebooks": "_notebooks"}


def _package_dir():
    package = importlib.resources.files("workbench")
    if not isinstance(package, pathlib.Path):  # e.g. a zip import: papermill and TensorFlow need real files
        raise FileNotFoundError(f"workbench is imported from {package}, not a folder; install it with pip")
    return package


def _is_checkout(folder):
    """A folder whose pyproject.toml names this project."""
    try:
        return f'name = "{PROJECT}"' in (folder / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return False


def shipped_dir(kind):
    """The folder holding the shipped `kind` ("data" or "notebooks"): the wheel's package data when present,
    else the checkout's own folder at the repository root."""
    package = _package_dir()
    installed = package / SHIPPED[kind]
    if installed.is_dir():
        return installed
    if _is_checkout(package.parent) and (package.parent / kind).is_dir():
        return package.parent / kind
    raise FileNotFoundError(
        f"The workbench's {kind} files are missing: neither {installed} (an installed wheel) nor "
        f"{package.parent / kind} (a checkout) exists. Reinstall bert-workbench (pip install --force-reinstall)."
    )


def _path(kind, parts):
    path = shipped_dir(kind).joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"{path}: not among the files shipped with the workbench")
    return str(path)


def data_file(*parts):
    """Absolute path of a shipped data file or folder, e.g. `data_file("samples", "vocab.txt")`."""
    return _path("data", parts)


def paper_results():
    """The paper's and the official README's numbers (`data/paper_results.csv`): the results table's default."""
    return data_file("paper_results.csv")


def samples(*parts):
    """The official-format samples of every benchmark (`data/samples`), or a file or folder inside it."""
    return data_file("samples", *parts)


def sample_vocab():
    """The WordPiece vocabulary learned from the samples: the default where a size-name model needs one."""
    return samples("vocab.txt")


def sample_corpus():
    """The sample pretraining corpus: a sentence per line, a blank line between documents."""
    return samples("pretraining", "corpus.txt")


def notebook_names():
    """The shipped notebooks' file names, sorted."""
    return sorted(p.name for p in shipped_dir("notebooks").iterdir() if p.suffix == ".ipynb")


def notebook(name):
    """Absolute path of a shipped notebook (`name` with or without `.ipynb`); an unknown name is an error that
    lists the notebooks."""
    name = name if name.endswith(".ipynb") else f"{name}.ipynb"
    if name not in notebook_names():
        raise FileNotFoundError(
            f"No notebook {name!r} ships with the workbench; there are {', '.join(notebook_names())}"
        )
    return _path("notebooks", (name,))


def copy_notebooks(destination, overwrite=False):
    """Copy the shipped notebooks into `destination` (created if missing), to open them in Jupyter outside a
    checkout. A notebook already there is kept (it may hold your edits) unless `overwrite`; nothing is written
    when any would be refused. Returns the paths written."""
    from workbench.files import write_text_atomic

    targets = [(notebook(name), os.path.join(destination, name)) for name in notebook_names()]
    existing = [target for _, target in targets if os.path.exists(target)]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)}: already there (pass overwrite to replace them)")
    os.makedirs(destination, exist_ok=True)
    for source, target in targets:
        write_text_atomic(target, pathlib.Path(source).read_text(encoding="utf-8"))
    return [target for _, target in targets]
