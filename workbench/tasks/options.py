"""Checking the options a task is built with (`get_task(name, **options)`).

Most tasks take none; their `make_task` calls `reject_options`, so that a
misspelled or misplaced option (e.g. `train_language` for MNLI instead of XNLI)
fails with the same message everywhere instead of being ignored.
"""


def reject_options(task, options):
    """Raise `ValueError` naming `options` if there are any: `task` takes none.

    Example:
    ```python
    reject_options("swag", {})  # fine
    reject_options("swag", {"train_language": "zh"})  # ValueError: Task 'swag' takes no options, ...
    ```
    """
    if options:
        raise ValueError(f"Task {task!r} takes no options, got {sorted(options)}")
