"""Writing files so that a crash or a bad input never leaves half of one behind.

Everything the workbench writes (configs, vocabularies, result tables, checkpoints
exports, downloads) goes through a temporary file in the same directory and an
atomic rename.
"""

import contextlib
import os
import tempfile


def is_url(path):
    """A path with a scheme (gs://, s3://, ram://, file://): written through
    TensorFlow's file systems, never with local file operations (no atomic
    rename there); anything else is a local path."""
    return "://" in os.fspath(path)


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


def read_text(path, encoding="utf-8"):
    """The text of a data file, with an error naming the file, line and byte
    when it is not valid `encoding` (a Latin-1 or UTF-16 export of a TSV would
    otherwise surface as a bare `UnicodeDecodeError` from deep inside a reader).

    A UTF-8 byte-order mark, as spreadsheet programs write it, is dropped.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ValueError(
            f"{path}, line {line}, column {column}: not valid {encoding.upper()} text "
            f"(byte 0x{data[e.start]:02x}); save the file as {encoding.upper()}"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def append_atomically(path, data):
    """Append `data` (bytes) to `path` with one `os.write` loop; if the write
    fails part-way (disk full, file-size limit), the file is cut back to its
    previous length, so no torn record is left behind. Callers hold a lock."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def read_json(path):
    """A JSON file's content, with an error naming the file, line and column
    when it is not valid JSON or not UTF-8."""
    import json

    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise ValueError(f"{os.fspath(path)}, line {e.lineno}, column {e.colno}: invalid JSON ({e.msg})") from None
