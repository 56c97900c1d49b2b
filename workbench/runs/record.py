"""What identifies a run and when it ended: run ids, UTC timestamps and the run's
stored parameters.

Every result table (fine-tuning, pretraining, the suite's error rows, speed)
takes its `run_id` and `finished_at` from here, so ids hash the same way and
all timestamps are UTC in one format whatever the machine's time zone.

A run directory holds `parameters.json`, written before any work starts.
Reusing the directory with parameters that change the results is an error
naming them: resuming is only exact when the run goes on as it began.
"""

import datetime
import hashlib
import json
import os

PARAMETERS_FILE = "parameters.json"


def utc_now():
    """The current time as ISO 8601 UTC with seconds, e.g. `2026-11-30T09:40:02+00:00`."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def model_name(model):
    """A readable model name for run ids: a size name, preset name or the last
    component of a model directory."""
    return os.path.basename(os.path.normpath(str(model)))


def _normalized(parameters, ignore=()):
    """`parameters` without `ignore`, as JSON would store them (tuples become
    lists, anything else not JSON becomes its `str`)."""
    kept = {k: v for k, v in parameters.items() if k not in ignore}
    return json.loads(json.dumps(kept, sort_keys=True, default=str))


def run_id(prefix, parameters, ignore=()):
    """`<prefix>-<8 hex digits>`: the digits hash `parameters` (less `ignore`),
    so the same parameters give the same id (and a rerun finds its directory),
    and the prefix keeps ids readable.

    Example:
    ```python
    run_id("mrpc-tiny-s1", {"task": "mrpc", "seed": 1})  # 'mrpc-tiny-s1-5d0f3c1a'
    ```
    """
    key = json.dumps(_normalized(parameters, ignore), sort_keys=True)
    return f"{prefix}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def claim_run_dir(output_dir, parameters, ignore=()):
    """Create `output_dir` for a run with `parameters`, or check that the run
    already in it had the same ones.

    The parameters are stored (atomically) in `output_dir/parameters.json`.
    If that file exists and any parameter outside `ignore` differs (the
    parameters that cannot change the results: where results go, checkpoint
    frequency, ...), a `ValueError` names each difference before anything is
    loaded, trained or overwritten. Values compare as JSON stores them, so
    `1` and `1.0` are the same learning rate. A run that stops before it wrote
    anything else gives the folder back with `release_run_dir`.
    """
    from workbench.files import write_text_atomic

    path = os.path.join(output_dir, PARAMETERS_FILE)
    current = _normalized(parameters)
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                stored = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(
                f"{path}: unreadable run parameters ({e}); delete the file or use another output_dir"
            ) from None
        if not isinstance(stored, dict):
            raise ValueError(f"{path}: expected a JSON object of run parameters")
        differences = [
            f"{name}: {stored.get(name, '(unset)')!r} in the stored run, {current.get(name, '(unset)')!r} now"
            for name in sorted(set(stored) | set(current))
            if name not in ignore and stored.get(name) != current.get(name)
        ]
        if differences:
            raise ValueError(
                f"output_dir {output_dir!r} holds a run with other parameters ({'; '.join(differences)}). "
                "A run resumes only with the parameters it began with: use another output_dir, or delete "
                f"{output_dir!r} to start over. Parameters that may differ: {', '.join(sorted(ignore))}"
            )
        if stored == current:
            return path
    os.makedirs(output_dir, exist_ok=True)
    write_text_atomic(path, json.dumps(current, indent=1, sort_keys=True) + "\n")
    return path


def release_run_dir(output_dir, also=()):
    """Undo `claim_run_dir` for a run that stopped before it wrote anything but
    its parameters and the files named in `also` (made again by a rerun, e.g. a
    learned vocab.txt): its data, vocabulary or model failed to load, and the
    corrected rerun, with other parameters, must not be refused. A folder
    holding anything more (a run that trained) keeps its parameters."""
    try:
        entries = set(os.listdir(output_dir))
        if PARAMETERS_FILE in entries and entries <= {PARAMETERS_FILE, *also}:
            for name in entries:
                os.remove(os.path.join(output_dir, name))
    except OSError:
        pass  # the original error is the one to report
