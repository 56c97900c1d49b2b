"""Writing files so that a crash or a bad input never leaves half of one behind.

Everything the workbench writes (configs, vocabularies, result tables, checkpoints
exports, downloads) goes through a temporary file in the same directory and an
atomic rename.
"""

import contextlib
import os
import tempfile
import threading


def is_url(path):
    """A path with a scheme (gs://, s3://, ram://, file://): written through
    TensorFlow's file systems, never with local file operations (no atomic
    rename there); anything else is a local path."""
    return "://" in os.fspath(path)


_UMASK_LOCK = threading.Lock()


def _umask():
    """The process umask: from /proc where there is one (reading it elsewhere
    means setting it, which another thread could see; done under a lock)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` on success,
    delete it on any error. The file gets the mode a plain `open` would give it
    (0666 less the umask), not `mkstemp`'s private 0600.

    Example:
    ```python
    with atomic_path("out/table.csv") as tmp:
        frame.to_csv(tmp)
    ```
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(path))
    except OSError as e:
        raise OSError(e.errno, f"{path}: cannot write here ({e.strerror})") from None
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
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


# Files a desktop or Jupyter leaves in any folder it shows: no reason to refuse one.
JUNK = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".ipynb_checkpoints"})


def check_replaceable_directory(path, replaces=()):
    """Raise unless `path` is free, an empty directory, or an earlier output of
    the same kind: a directory holding only names in `replaces` (what such an
    output consists of), including the first one (its mark, e.g. keras-hub's
    `metadata.json`). A directory with anything else (a Hugging Face download
    also has a `config.json`, a user's notes), the working directory or one
    above it is never replaced. Desktop and Jupyter litter (`JUNK`) is allowed
    beside the format's names and goes with the directory."""
    path = os.fspath(path).rstrip(os.sep) or os.sep  # "link/" would follow the link
    if not os.path.lexists(path):
        return
    if os.path.islink(path):
        raise FileExistsError(f"{path}: is a symbolic link; give the directory it points to, or a new one")
    if not os.path.isdir(path):
        raise FileExistsError(f"{path}: exists and is not a directory; choose another output directory")
    target = os.path.realpath(path).rstrip(os.sep) + os.sep
    if (os.path.realpath(os.getcwd()) + os.sep).startswith(target):
        raise FileExistsError(f"{path}: is the working directory or holds it; write into a new directory")
    entries = sorted(os.listdir(path))
    if not entries:
        return
    others = [name for name in entries if name not in replaces and name not in JUNK]
    if others or replaces[0] not in entries:
        what = f"{', '.join(others[:5])}{' ...' if len(others) > 5 else ''}" if others else f"no {replaces[0]}"
        raise FileExistsError(
            f"{path}: not empty and not an earlier output of this kind ({what}); nothing was written: "
            "remove it or choose a new directory"
        )


@contextlib.contextmanager
def atomic_directory(path, replaces=()):
    """Yield a temporary directory beside `path`; on success it takes the place
    of `path`, on any error it is deleted.

    An existing directory at `path` is replaced only when it is empty or an
    earlier output of the same kind, holding only names in `replaces` (see
    `check_replaceable_directory`); anything else is refused before the work
    starts. The old directory is renamed aside first
    and removed only after the new one is in place, so a crash leaves one of
    the two complete. The directory gets 0777 less the umask.
    """
    import shutil

    path = os.fspath(path).rstrip(os.sep) or os.sep
    check_replaceable_directory(path, replaces)
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".tmp-", suffix="-" + os.path.basename(path), dir=parent)
    except OSError as e:
        raise OSError(e.errno, f"{path}: cannot write here ({e.strerror})") from None
    try:
        os.chmod(staging, 0o777 & ~_umask())
        yield staging
        check_replaceable_directory(path, replaces)  # nothing else appeared there meanwhile
        if not os.path.exists(path):
            os.replace(staging, path)
        else:
            aside = staging + ".old"
            os.replace(path, aside)
            try:
                os.replace(staging, path)
            except OSError:
                os.replace(aside, path)
                raise
            shutil.rmtree(aside, ignore_errors=True)
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


def first_undecodable_line(path, encoding="utf-8"):
    """The 1-based number of the first line of `path` that is not `encoding`
    text (found again after a streaming decoder failed: it knows only a
    position in its current chunk); "?" when every line decodes."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                return number
    return "?"
