"""What the notebooks call: setup, and their parameters read into the run's dataclass.

Every notebook has the same three steps at the top:

1. a setup cell that installs the workbench when it does not import yet and then
   calls `setup()` (working directory, environment, logging, a precision note);
2. the `parameters` cell: plain assignments, one per parameter, which papermill
   overrides by injecting a cell after it;
3. one call that reads those variables into the run's parameter dataclass,
   e.g. `params, download = finetune_params(globals())`.

Why read the notebook's variables instead of passing keyword arguments by hand:
a hand-written call passes only the names someone remembered, so a papermill
value for any other field was silently dropped, and papermill itself only
*warns* about a name the parameters cell does not have. Here every field of the
dataclass can be set, a name that is no parameter stops the notebook with an
error naming it, and each value is checked and converted by the dataclass
(`workbench.training.params`: `-p whole_word_mask false` is the bool False,
`-p version 1.1` the string "1.1").

The notebook's parameter variables are its global names that start with a
lowercase letter and hold a plain value (str, int, float, bool, None, list,
tuple, dict): what a parameters cell and papermill assign, and any name that
is a field of the run's dataclass whatever it holds. Modules, functions,
results and `_private` or `UPPERCASE` names are not parameters, so give a
scratch variable a leading underscore.

Example:
```python
import workbench.notebook as wbn

wbn.setup()
task = "mrpc"
batch_size = 16
params, download = wbn.finetune_params(globals())
```
"""

import dataclasses
import logging
import os
import sys

from workbench.tasks.registry import GLUE_TASKS
from workbench.training.params import (
    TASK_OPTIONS,
    FinetuneParams,
    ParameterError,
    SquadOptions,
    XnliOptions,
    check_fields,
    param,
    parse_params,
)

# Name prefixes for task options in a notebook that runs several tasks
# (`xnli_train_language` in finetune_glue.ipynb); the task's own notebook may
# use the bare option name (`doc_stride` in finetune_squad.ipynb).
OPTION_PREFIXES = {"squad": SquadOptions, "xnli": XnliOptions}
SQUAD_VERSIONS = {"1.1": "squad1", "2.0": "squad2"}
# The tasks each fine-tuning notebook runs (the notebook passes its entry to `finetune_params`).
NOTEBOOK_TASKS = {
    "finetune_glue": (*GLUE_TASKS, "xnli"),
    "finetune_squad": tuple(SQUAD_VERSIONS.values()),
    "finetune_swag": ("swag",),
    "finetune_ner": ("conll2003",),
}
PLAIN_TYPES = (str, int, float, bool, type(None), list, tuple, dict)


def setup(root_marker="bert-workbench"):
    """Everything a notebook needs after the install, in one call.

    - Runs from the checkout's root when the notebook sits in its `notebooks/`
      folder, so the relative paths in the parameters (`data/`, `results/`)
      resolve the same under JupyterLab, papermill and the suite.
    - Importing `workbench` set TensorFlow's environment before TensorFlow is
      imported (oneDNN on, Keras on TensorFlow, fewer C++ log lines); this
      module is part of it, so the side effect has happened when this runs.
    - Shows the workbench's log messages (checkpoint conversions) in the notebook.
    - Shows a bad parameter as one line naming it, not a traceback.
    - Prints what `precision="auto"` will pick here, since that depends on the
      machine (bfloat16 on CPUs with AVX512-BF16 or AMX).

    Args:
        root_marker: the project name `pyproject.toml` must name for a folder to
            count as the checkout.
    """
    parent = os.path.dirname(os.getcwd())
    if os.path.basename(os.getcwd()) == "notebooks" and _names_project(parent, root_marker):
        os.chdir(parent)
    log = logging.getLogger("workbench")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    _short_parameter_errors()
    print(precision_note())


def _short_parameter_errors():
    """In IPython, show a `ParameterError` as its one-line message: the stack
    below the notebook's call says nothing the message does not (the cell still
    fails, so papermill and the suite still see the error)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc(
            (ParameterError,),
            lambda self, etype, value, tb, tb_offset=None: self.showtraceback((etype, value, tb), exception_only=True),
        )


def precision_note():
    """One line: what `precision="auto"` picks on this machine, and why."""
    import tensorflow as tf

    from workbench.training.distribution import auto_precision, cpu_supports_bfloat16

    gpus = len(tf.config.list_physical_devices("GPU"))
    if gpus:
        here = f"{auto_precision('gpu')} ({gpus} GPU(s))"
    else:
        native = "with" if cpu_supports_bfloat16() else "without"
        here = f"{auto_precision('cpu')} (CPU {native} native bfloat16: AVX512-BF16 or AMX)"
    return (
        f"precision='auto' picks {here} here; "
        f"{auto_precision('tpu')} on a TPU, {auto_precision('gpu')} on a GPU. Working directory: {os.getcwd()}"
    )


def _names_project(folder, name):
    try:
        with open(os.path.join(folder, "pyproject.toml"), encoding="utf-8") as f:
            return f'name = "{name}"' in f.read()
    except OSError:
        return False


def parameters(namespace, names=()):
    """The notebook's parameter variables in `namespace` (its `globals()`): see
    the module docstring for which names count. A name in `names` (the run's
    fields) counts whatever it holds, so `model = some_object` is an error
    instead of being skipped in favour of the default."""
    return {
        name: value
        for name, value in namespace.items()
        if name in names or (name[:1].islower() and type(value) in PLAIN_TYPES)
    }


def notebook_params(cls, namespace):
    """`cls` (a parameter dataclass) from the notebook's variables; an unknown
    name, a missing required one or a bad value raises `ParameterError` naming it.

    Example:
    ```python
    params = notebook_params(PretrainParams, globals())
    result = pretrain(**dataclasses.asdict(params))
    ```
    """
    names = {f.name for f in dataclasses.fields(cls)}
    return parse_params(cls, parameters(namespace, names), context=" (notebook variable)")


@dataclasses.dataclass
class FinetuneNotebook:
    """The fine-tuning notebooks' own switches, beside `FinetuneParams` and the task options.

    Args:
        download: fetch the task's data from its official address when missing.
        version: SQuAD notebook: "1.1" runs `squad1`, "2.0" runs `squad2`.
    """

    download: bool = True
    version: str | None = param(None, choices=tuple(SQUAD_VERSIONS))

    def __post_init__(self):
        check_fields(self)


def finetune_params(namespace, tasks=None):
    """(`FinetuneParams`, download switch) from a fine-tuning notebook's variables.

    A variable is a `FinetuneParams` field, a `FinetuneNotebook` switch, or a
    task option: the bare option name for the run's task (`doc_stride`), or
    prefixed with its family (`xnli_train_language`, `squad_doc_stride`); a
    prefixed option of another task is checked and left unused, so one notebook
    can hold the options of all its tasks. Anything else is an error.

    Args:
        namespace: the notebook's `globals()`.
        tasks: the tasks this notebook runs; with one, `task` may be left out.

    Example:
    ```python
    params, download = finetune_params({"version": 2.0, "doc_stride": 64, "model": "tiny"})
    params.task, params.task_options  # ("squad2", {"doc_stride": 64})
    ```
    """
    run_fields = {f.name for f in dataclasses.fields(FinetuneParams)}
    own_fields = {f.name for f in dataclasses.fields(FinetuneNotebook)}
    values = parameters(namespace, run_fields | own_fields)
    own = FinetuneNotebook(**{k: values.pop(k) for k in own_fields & set(values)})

    task = values.get("task")
    if own.version is not None:
        if task is not None and task != SQUAD_VERSIONS[own.version]:
            raise ParameterError(f"Parameters 'task' ({task!r}) and 'version' ({own.version!r}) disagree")
        task = SQUAD_VERSIONS[own.version]
    if task is None and tasks and len(tasks) == 1:
        task = tasks[0]
    if task is None:
        runs = f"; this notebook runs {', '.join(tasks)}" if tasks else ""
        raise ParameterError(f"Parameter 'task' is required{runs}")
    if tasks and task not in tasks:
        raise ParameterError(f"Parameter 'task': this notebook runs {', '.join(tasks)}, not {task!r}")
    values["task"] = task

    run = {k: v for k, v in values.items() if k in run_fields}
    own_options = TASK_OPTIONS.get(task)
    options, unused = dict(run.get("task_options") or {}), {}
    unknown = []
    for name in sorted(set(values) - run_fields):
        cls, option = _option_of(name, own_options)
        if cls is None:
            unknown.append(name)
        elif cls is own_options:
            options[option] = values[name]
        else:
            unused.setdefault(cls, {})[option] = values[name]
    if unknown:
        valid = sorted(run_fields | own_fields) + [
            f"{prefix}_<{' | '.join(f.name for f in dataclasses.fields(cls))}>"
            for prefix, cls in OPTION_PREFIXES.items()
        ]
        raise ParameterError(f"Unknown parameter(s) {unknown} (notebook variables); valid: {', '.join(valid)}")
    for cls, given in unused.items():  # other tasks' options: checked all the same
        cls(**given)
    if options:
        run["task_options"] = options
    return FinetuneParams(**run), own.download


def _option_of(name, own_options):
    """(options class, option name) that notebook variable `name` sets, or (None, None)."""
    if own_options is not None and name in {f.name for f in dataclasses.fields(own_options)}:
        return own_options, name
    prefix, _, option = name.partition("_")
    cls = OPTION_PREFIXES.get(prefix)
    if cls is not None and option in {f.name for f in dataclasses.fields(cls)}:
        return cls, option
    return None, None


def check_notebook_parameters(notebook, parameters):
    """Check the parameters a batch run will inject into fine-tuning `notebook`
    (its file name) the way the notebook will, so a suite can refuse a bad grid
    before its first run instead of failing in every notebook. Returns the
    `FinetuneParams`; raises `ParameterError` naming the parameter and notebook."""
    name = os.path.splitext(os.path.basename(notebook))[0]
    if name not in NOTEBOOK_TASKS:
        raise ValueError(f"{notebook}: not a fine-tuning notebook ({', '.join(NOTEBOOK_TASKS)})")
    try:
        return finetune_params(parameters, tasks=NOTEBOOK_TASKS[name])[0]
    except ParameterError as e:
        raise ParameterError(f"{notebook}: {e}") from None
