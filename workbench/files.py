"""Writing files so that a crash or a bad input never leaves half of one behind.

Everything the workbench writes (configs, vocabularies, result tables, checkpoints
exports, downloads) goes through a temporary file in the same directory and an
atomic rename.
"""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` on success,
    delete it on any error.

    Example:
    ```python
    with atomic_path("out/table.csv") as tmp:
        frame.to_csv(tmp)
    ```
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(path))
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path, text):
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


@contextlib.contextmanager
def atomic_directory(path):
    """Yield a temporary directory beside `path`; on success it replaces `path`
    (an existing directory there is removed), on any error it is deleted."""
    import shutil

    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tmp-", suffix="-" + os.path.basename(path), dir=parent)
    try:
        yield staging
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
