"""The parameters of every run, checked before any work starts.

A run's parameters are a dataclass (`FinetuneParams`, `PretrainParams`, a
task's options); each field carries its type hint and, in its metadata, its
allowed range or choices. Constructing one checks every field, so a bad value
stops the run with one line naming the parameter before data is read or a
model is built, whoever called it: a notebook, the suite runner, the CLI or
Python.

Values arrive from papermill as it parses `-p NAME VALUE`: "True"/"False",
"None", numbers are converted, anything else stays a string. So `-p
whole_word_mask false` arrives as the *string* "false" (truthy!) and `-p version
1.1` as the *float* 1.1. Values that can mean only one thing are converted:

- "true"/"false" (any case) for a bool field;
- a number for a string field with fixed choices when its text is one of them
  (1.1 -> "1.1", 2.0 -> "2.0");
- a whole float for an int field (8.0 -> 8), an int for a float field;
- "none"/"null" for an optional field that takes no strings;
- a JSON object for a dict field, "en,zh" or a list for a tuple field.

Anything else that does not fit, e.g. "8" for an int (papermill would have sent
8, so quoting was deliberate), is an error naming the parameter.

Example:
```python
p = validate_params({"task": "squad2", "task_options": {"doc_stride": 64}, "whole_word_mask": "x"})
# ParameterError: Unknown parameter(s) ['whole_word_mask']; valid parameters: task, model, ...
```
"""

import dataclasses
import json
import math
import os
import types
import typing

from workbench.files import is_url
from workbench.tasks.registry import TASK_NAMES


class ParameterError(ValueError):
    """A parameter is unknown, missing, of the wrong type or out of range.

    The message is one line that names the parameter, so a notebook or the
    suite can show it as it is (a `ValueError`, for callers that catch those).
    """


def param(default=dataclasses.MISSING, *, choices=None, min=None, max=None, above=None, below=None, infinite=False):
    """A dataclass field with its allowed values, checked by `check_fields`.

    Args:
        default: the default (omit for a required field).
        choices: allowed values, or a function returning them (imported on use,
            so that importing the parameters does not import TensorFlow).
        min, max: inclusive bounds; above, below: exclusive bounds.
        infinite: whether +-inf is a meaningful value (NaN never is); floats are
            otherwise finite.
    """
    metadata = {"choices": choices, "min": min, "max": max, "above": above, "below": below, "infinite": infinite}
    return dataclasses.field(default=default, metadata={k: v for k, v in metadata.items() if v is not None})


def check_fields(obj, *, context=""):
    """Convert and check every field of dataclass `obj` in place (see the module
    docstring for the conversions); raise `ParameterError` naming the first bad one.
    `context` follows the name in messages, e.g. " (an option of task 'squad2')"."""
    hints = typing.get_type_hints(type(obj))
    for field in dataclasses.fields(obj):
        value = _convert(field.name, getattr(obj, field.name), hints[field.name], field.metadata, context)
        _check_range(field.name, value, field.metadata, context)
        object.__setattr__(obj, field.name, value)


def parse_params(cls, values, *, context=""):
    """`cls(**values)` with one clear error for an unknown or missing name
    (Python's own would be a TypeError about `__init__`)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ParameterError(f"Unknown parameter(s) {unknown}{context}; valid parameters: {', '.join(fields)}")
    for name, field in fields.items():
        if name not in values and field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ParameterError(f"Parameter {name!r} is required{context}")
    return cls(**values)


def _convert(name, value, hint, metadata, context):
    """`value` as type `hint` (converting only the unambiguous cases), within `choices`."""
    choices = _choices(metadata)
    candidates = [value] if _is_instance(value, hint) else []
    candidates += [c for c in _conversions(value, hint, choices) if c is not value]
    for candidate in candidates:
        if choices is None or candidate is None or candidate in choices:
            return candidate
    if candidates:  # the right type, but not one of the choices
        raise ParameterError(
            f"Parameter {name!r}{context}: {value!r} is not one of {', '.join(str(c) for c in choices)}"
        )
    raise ParameterError(
        f"Parameter {name!r}{context} must be {_type_name(hint)}, got {value!r} ({type(value).__name__})"
        + (f"; choices: {', '.join(repr(c) for c in choices)}" if choices else "")
        + ("; papermill: pass text as -r NAME VALUE" if str in _arms(hint) and isinstance(value, int | float) else "")
    )


def _arms(hint):
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _is_instance(value, hint):
    for arm in _arms(hint):
        arm = typing.get_origin(arm) or arm
        if arm is type(None):
            if value is None:
                return True
        elif arm is float:
            if isinstance(value, float):
                return True
        elif arm is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return True
        elif isinstance(value, arm):
            return True
    return False


def _conversions(value, hint, choices):
    """The values `value` unambiguously stands for, one per arm of `hint` that takes it."""
    arms = [typing.get_origin(a) or a for a in _arms(hint)]
    out = []
    if isinstance(value, str):
        text = value.strip().lower()
        if bool in arms and text in ("true", "false"):
            out.append(text == "true")
        if type(None) in arms and str not in arms and text in ("none", "null"):
            out.append(None)
        if dict in arms:
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                out.append(parsed)
        if tuple in arms and value.strip():
            out.append(tuple(part.strip() for part in value.split(",")))
    elif isinstance(value, bool):
        pass  # True is not the number 1 here
    elif isinstance(value, int | float):
        if float in arms:
            out.append(float(value))
        if int in arms and float(value).is_integer():
            out.append(int(value))
        if str in arms and choices and str(value) in choices:
            out.append(str(value))
    elif isinstance(value, list) and tuple in arms:
        out.append(tuple(value))
    return out


def _choices(metadata):
    choices = metadata.get("choices")
    return tuple(choices()) if callable(choices) else choices


def _check_range(name, value, metadata, context):
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return
    if isinstance(value, float) and not math.isfinite(value) and (math.isnan(value) or not metadata.get("infinite")):
        raise ParameterError(f"Parameter {name!r}{context} must be a finite number, got {value}")
    low, high = metadata.get("min"), metadata.get("max")
    if low is not None and high is not None and not low <= value <= high:
        raise ParameterError(f"Parameter {name!r}{context} must be in [{low}, {high}], got {value}")
    if low is not None and value < low:
        raise ParameterError(f"Parameter {name!r}{context} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ParameterError(f"Parameter {name!r}{context} must be <= {high}, got {value}")
    if metadata.get("above") is not None and not value > metadata["above"]:
        raise ParameterError(f"Parameter {name!r}{context} must be > {metadata['above']}, got {value}")
    if metadata.get("below") is not None and not value < metadata["below"]:
        raise ParameterError(f"Parameter {name!r}{context} must be < {metadata['below']}, got {value}")


def _type_name(hint):
    names = []
    for arm in _arms(hint):
        arm = typing.get_origin(arm) or arm
        names.append("None" if arm is type(None) else arm.__name__)
    return " or ".join(names)


def _strategies():
    from workbench.training.distribution import STRATEGIES

    return STRATEGIES


def _precisions():
    from workbench.training.distribution import PRECISIONS

    return PRECISIONS


def _xnli_languages():
    from workbench.tasks.glue import XNLI_LANGUAGES

    return XNLI_LANGUAGES


def check_steps_per_execution(p):
    """`steps_per_execution` is "auto" or an int >= 1 that divides `checkpoint_every`
    (checkpoints are taken between calls into the compiled step)."""
    value = p.steps_per_execution
    if isinstance(value, str):
        if value.strip().lower() != "auto":
            raise ParameterError(f"Parameter 'steps_per_execution' must be an int >= 1 or 'auto', got {value!r}")
        p.steps_per_execution = "auto"
        return
    if value < 1:
        raise ParameterError(f"Parameter 'steps_per_execution' must be >= 1, got {value}")
    if p.checkpoint_every % value:
        raise ParameterError(
            f"Parameter 'checkpoint_every' ({p.checkpoint_every}) must be a multiple of "
            f"'steps_per_execution' ({value}): checkpoints are taken between calls into the compiled step"
        )


def check_local_outputs(p, reads_urls=None):
    """`run_id` is a plain name, `output_dir` and `results_csv` are local paths. A run writes its checkpoints,
    history, model and result rows with local file operations (atomic renames,
    which gs:// does not have), so a URL would quietly become a local folder named
    `gs:`; the error says so before anything starts. `reads_urls` names the
    parameters that may be URLs (data TensorFlow streams)."""
    run_id = getattr(p, "run_id", None)
    if run_id is not None and (not run_id or run_id in (".", "..") or "/" in run_id or os.sep in run_id):
        raise ParameterError(
            f"Parameter 'run_id' must be a plain name (it names the run's folder under results/), got {run_id!r}"
        )
    for name in ("output_dir", "results_csv"):
        value = getattr(p, name, None)
        if value and is_url(value):
            raise ParameterError(
                f"Parameter '{name}' must be a local path, got {value!r}: the run writes checkpoints, history and "
                f"the model with local file operations. Give a directory on this machine (a Cloud TPU VM's own disk) "
                f"and copy it to the bucket afterwards (`gcloud storage cp -r`)"
                + (f"; {reads_urls} may be gs:// URLs" if reads_urls else "")
            )


# ---- task options ----


@dataclasses.dataclass
class SquadOptions:
    """Options of `squad1` / `squad2` (`workbench.tasks.squad.SquadTask`); None
    keeps the task's default, which its docstring gives (the original's), so
    the defaults live in one place.

    Args:
        doc_stride, max_query_length, n_best_size, max_answer_length: positive ints.
        null_score_diff_threshold: any float (v2.0 only).

    Example:
    ```python
    SquadOptions(doc_stride=64.0).doc_stride  # 64
    ```
    """

    doc_stride: int | None = param(None, min=1)  # tokens between window starts
    max_query_length: int | None = param(None, min=1)  # question tokens kept
    n_best_size: int | None = param(None, min=1)  # candidate starts/ends per window
    max_answer_length: int | None = param(None, min=1)  # longest answer, in tokens
    null_score_diff_threshold: float | None = param(None, infinite=True)  # v2.0: no answer above this; inf: never

    def __post_init__(self):
        check_fields(self, context=" (a SQuAD option)")


@dataclasses.dataclass
class XnliOptions:
    """Options of `xnli` (`workbench.tasks.glue.XnliTask`).

    Args:
        train_language: one of XNLI's 15 languages.
        languages: a non-empty tuple of them ("en,zh" and lists are converted).

    Example:
    ```python
    XnliOptions(languages="en,zh").languages  # ("en", "zh")
    ```
    """

    train_language: str | None = param(None, choices=_xnli_languages)  # MultiNLI training file's language
    languages: tuple | None = None  # languages kept from the dev/test files; None: all 15

    def __post_init__(self):
        check_fields(self, context=" (an XNLI option)")
        if self.languages is not None:
            known = _xnli_languages()
            bad = [lang for lang in self.languages if lang not in known]
            if bad or not self.languages:
                raise ParameterError(
                    f"Parameter 'languages' (an XNLI option): {bad or 'empty'} not among {', '.join(known)}"
                )


# The tasks that take options, and their option dataclass; the others take none.
TASK_OPTIONS = {"squad1": SquadOptions, "squad2": SquadOptions, "xnli": XnliOptions}


def check_task_options(task, options):
    """The task's options checked and converted, as the dict `get_task` takes
    (options left at None are left out, so the task's defaults apply)."""
    if not options:
        return options
    if not isinstance(options, dict):
        raise ParameterError(f"Parameter 'task_options' must be a dict, got {options!r}")
    cls = TASK_OPTIONS.get(task)
    if cls is None:
        raise ParameterError(f"Parameter 'task_options': task {task!r} takes no options, got {sorted(options)}")
    parsed = parse_params(cls, options, context=f" (options of task {task!r})")
    return {name: getattr(parsed, name) for name in options if getattr(parsed, name) is not None}


# ---- fine-tuning ----


@dataclasses.dataclass
class FinetuneParams:
    """Parameters of a fine-tuning run; None means the task's paper default.

    Constructing one checks and converts every field (`ParameterError` names a
    bad one), including the task's `task_options`.

    Example:
    ```python
    p = FinetuneParams(task="squad2", batch_size=8.0, task_options={"doc_stride": 64})
    p.batch_size  # 8
    ```
    """

    task: str  # benchmark name, see `python -m workbench tasks`
    model: str = "tiny"  # size name, keras-hub preset name or local preset directory
    data_dir: str = "data"  # holds <task>/ with the official files
    vocab: str | None = None  # vocab.txt, needed when `model` is a size name (random weights)
    lowercase: bool | None = None  # tokenizer casing; None: the model's own
    max_seq_length: int | None = param(None, min=3)  # tokens per input ([CLS] x [SEP] at least)
    batch_size: int | None = param(None, min=1)  # global batch size
    learning_rate: float | None = param(None, above=0)  # peak learning rate
    epochs: float | None = param(None, above=0)  # passes over the training set (fractions allowed)
    warmup_proportion: float | None = param(None, min=0, max=1)  # share of steps with linear warmup
    seed: int = param(1, min=0, max=2**32 - 1)  # weight init, data order, dropout
    strategy: str = param("auto", choices=_strategies)  # auto, tpu, gpu, mirrored, multi_worker, cpu
    precision: str = param("auto", choices=_precisions)  # auto, float32, mixed_float16, mixed_bfloat16
    gradient_accumulation: int = param(1, min=1)  # batches per optimizer update
    max_train_examples: int | None = param(None, min=1)  # first N training examples only (smoke runs)
    max_eval_examples: int | None = param(None, min=1)  # first N examples of each eval/test split
    output_dir: str | None = None  # default results/runs/<run_id>; reuse it to resume
    results_csv: str = "results/finetune.csv"  # table the run appends to
    checkpoint_every: int = param(200, min=1)  # batches between checkpoints
    run_id: str | None = None  # default: derived from the parameters
    notebook: str = ""  # executed notebook path, recorded in the table
    task_options: dict | None = None  # e.g. {"train_language": "zh"} for xnli, see TASK_OPTIONS
    save_model: bool = True  # write output_dir/model (keras-hub preset of the encoder) and task_model.keras
    jit_compile: bool | str = param("auto", choices=(True, False, "auto"))  # XLA; auto: on for GPUs and TPUs, not CPUs
    feature_cache: str | None = "results/feature_cache"  # featurized training data reused across runs; None: off
    steps_per_execution: int | str = "auto"  # training steps per compiled call; auto: 1 on CPU/GPU, more on TPU

    def __post_init__(self):
        if self.task not in TASK_NAMES:
            raise ParameterError(f"Parameter 'task': unknown task {self.task!r}; valid: {', '.join(TASK_NAMES)}")
        check_fields(self)
        check_steps_per_execution(self)
        check_local_outputs(self)
        self.task_options = check_task_options(self.task, self.task_options)


def validate_params(params):
    """`FinetuneParams` from a dict, with an error naming any unknown, missing,
    ill-typed or out-of-range parameter before anything is loaded or trained."""
    return parse_params(FinetuneParams, params)


# ---- pretraining ----


@dataclasses.dataclass
class PretrainParams:
    """Parameters of a pretraining run (defaults: the paper's recipe).

    Constructing one checks and converts every field, and each phase's data
    options as `PretrainingDataOptions.validate` does.

    Example:
    ```python
    p = PretrainParams(corpus="corpus.txt", whole_word_mask="false", phase2_steps=0)
    p.whole_word_mask  # False
    ```
    """

    corpus: str | None = None  # text file(s)/glob: one sentence per line, blank line between documents
    model: str = "base"  # size name (random init) or a model directory/preset to continue from
    vocab: str | None = None  # vocab.txt; None: learn one of `vocab_size` from the corpus
    vocab_size: int = param(30522, min=1)  # size of a learned vocabulary
    lowercase: bool = True  # uncased model
    phase1_steps: int = param(900_000, min=1)  # steps at phase1_seq_length
    phase2_steps: int = param(100_000, min=0)  # steps at phase2_seq_length (0: one phase only)
    phase1_seq_length: int = param(128, min=5)  # [CLS] A [SEP] B [SEP] needs 5
    phase1_max_predictions: int = param(20, min=1)
    phase2_seq_length: int = param(512, min=5)
    phase2_max_predictions: int = param(80, min=1)
    batch_size: int = param(256, min=1)  # global sequences per step (the paper: 256)
    learning_rate: float = param(1e-4, above=0)
    warmup_steps: int = param(10_000, min=0)  # per phase
    weight_decay: float = param(0.01, min=0)
    gradient_accumulation: int = param(1, min=1)  # batches per update: reach large batches on small memory
    dupe_factor: int = param(10, min=1)
    masked_lm_prob: float = param(0.15, above=0, below=1)
    short_seq_prob: float = param(0.1, min=0, max=1)
    whole_word_mask: bool = False
    data_seed: int = 12345  # data creation
    seed: int = param(1, min=0, max=2**32 - 1)  # initialisation, data order, dropout
    shards: int = param(4, min=1)  # data shards (and processes creating them)
    phase1_data: str | None = None  # shards made earlier (directory or glob, gs:// too) instead of `corpus`
    phase2_data: str | None = None  # the same for phase 2; its stats.json must sit beside the shards
    strategy: str = param("auto", choices=_strategies)
    precision: str = param("auto", choices=_precisions)
    checkpoint_every: int = param(1000, min=1)
    eval_instances: int = param(512, min=1)  # instances scored for the official metrics after each phase
    output_dir: str | None = None  # default results/pretrain_runs/<run_id>; reuse it to resume
    results_csv: str = "results/pretrain.csv"
    run_id: str | None = None
    notebook: str = ""
    steps_per_execution: int | str = "auto"  # training steps per compiled call; auto: 1 on CPU/GPU, more on TPU

    def __post_init__(self):
        check_fields(self)
        check_steps_per_execution(self)
        check_local_outputs(self, reads_urls="'phase1_data' and 'phase2_data' (TFRecord shards)")
        made = [self.phase1_data] + ([self.phase2_data] if self.phase2_steps else [])
        if not all(made) and not self.corpus:
            raise ParameterError("Parameter 'corpus' is required unless phase1_data (and phase2_data) are given")
        if all(made) and not self.corpus and not self.vocab:
            raise ParameterError("Parameter 'vocab' is required when the data is given without a corpus")
        for phase in (1, 2) if self.phase2_steps else (1,):
            options = self.data_options(phase)
            try:
                options.validate()
            except ValueError as e:
                raise ParameterError(
                    f"Parameters 'phase{phase}_seq_length' ({options.max_seq_length}) and "
                    f"'phase{phase}_max_predictions' ({options.max_predictions_per_seq}): {e}"
                ) from None

    def data_options(self, phase, do_lower_case=True):
        """The `PretrainingDataOptions` that make phase `phase`'s data (seeded `data_seed + phase`)."""
        from workbench.training.pretraining_data import PretrainingDataOptions

        return PretrainingDataOptions(
            max_seq_length=getattr(self, f"phase{phase}_seq_length"),
            max_predictions_per_seq=getattr(self, f"phase{phase}_max_predictions"),
            masked_lm_prob=self.masked_lm_prob,
            dupe_factor=self.dupe_factor,
            short_seq_prob=self.short_seq_prob,
            random_seed=self.data_seed + phase,
            do_lower_case=do_lower_case,
            whole_word_mask=self.whole_word_mask,
        )


def validate_pretrain_params(params):
    """`PretrainParams` from a dict; see `validate_params`."""
    return parse_params(PretrainParams, params)


# ---- the other notebooks ----


@dataclasses.dataclass
class ExplorerParams:
    """Parameters of `attention_explorer.ipynb` (its parameters cell gives the defaults).

    Example:
    ```python
    ExplorerParams("tiny", None, "The cat sat.", None, layer=0, head=0, max_seq_length=64, output_dir="out")
    ```
    """

    model: str  # any model the workbench loads
    vocab: str | None  # vocab.txt when `model` is a size name
    sentence_a: str
    sentence_b: str | None  # None: one sentence
    layer: int = param(min=0)  # 0-based layer shown first
    head: int = param(min=0)  # 0-based head shown first
    max_seq_length: int = param(min=3)  # [CLS] a [SEP] at least
    output_dir: str = param()  # HTML export and statistics CSV

    def __post_init__(self):
        check_fields(self)


@dataclasses.dataclass
class ResultsParams:
    """Parameters of `results.ipynb` (its parameters cell gives the defaults).

    Example:
    ```python
    ResultsParams("results/finetune.csv", "data/paper_results.csv", "results/summary.csv")
    ```
    """

    results_csv: str  # the fine-tuning table
    paper_csv: str  # the paper's and the official README's numbers
    summary_csv: str  # written here

    def __post_init__(self):
        check_fields(self)
