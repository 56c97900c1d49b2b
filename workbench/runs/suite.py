"""`python -m workbench run-suite`: execute the fine-tuning notebooks in batch.

One papermill run per task x seed x grid point; each executed notebook is kept
beside its run. A failing run is recorded (an error row in the table, its
executed notebook kept) and the others go on; `--skip-done` leaves out runs
whose run_id already has a successful row. At the end the summary beside the
paper is written and printed, and the report: the results notebook executed on
the suite's table and exported as one offline HTML page (`report.html` beside
the table) that links every run's analysis page.

The `embedded` suite is the main job: all 15 task names on the samples
shipped with the workbench (`data/samples/`, see `workbench.resources`) with a
tiny random-weight model, offline, in minutes on a 2-core CPU; it writes to
`results/embedded/` (not committed).

The notebooks and the paper's results come from `workbench.resources`, so the
suite runs from any directory, in a checkout or a pip install. Relative paths
(the results directory, a `--data-dir`, the notebooks' own relative defaults
such as the feature cache) mean relative to the working directory, which is
also the notebooks' working directory.
"""

import concurrent.futures
import dataclasses
import itertools
import os

from workbench import resources
from workbench.runs import record
from workbench.tasks.registry import GLUE_TASKS, TASK_NAMES

SUITES = {
    "embedded": TASK_NAMES,
    "glue": GLUE_TASKS + ("xnli",),
    "squad": ("squad1", "squad2"),
    "swag": ("swag",),
    "ner": ("conll2003",),
    "all": TASK_NAMES,
}

# Parameters of the embedded suite: a tiny model learned from scratch on the
# samples; enough steps to see the loss fall, few enough to finish in minutes.
# Its vocab and data_dir are the shipped samples (`plan` fills them in).
EMBEDDED = {
    "model": "tiny",
    "download": False,
    "batch_size": 8,
    "learning_rate": 5e-4,
    "epochs": 3.0,
    "max_seq_length": 64,
}
EMBEDDED_SEQ = {"squad1": 128, "squad2": 128}

GRID_TYPES = {
    "learning_rate": float,
    "batch_size": int,
    "epochs": float,
    "max_seq_length": int,
    "warmup_proportion": float,
}


def notebook_for(task):
    """(notebook file, its task parameters) that runs `task`."""
    if task in ("squad1", "squad2"):
        return "finetune_squad.ipynb", {"version": "1.1" if task == "squad1" else "2.0"}
    if task == "swag":
        return "finetune_swag.ipynb", {}
    if task == "conll2003":
        return "finetune_ner.ipynb", {}
    return "finetune_glue.ipynb", {"task": task}


def parse_grid(items):
    """["learning_rate=2e-5,3e-5", "batch_size=16,32"] -> {name: [values]}."""
    grid = {}
    for item in items or []:
        name, _, values = item.partition("=")
        if name not in GRID_TYPES or not values:
            raise ValueError(f"--grid {item!r}: expected NAME=V1,V2,... with NAME in {', '.join(GRID_TYPES)}")
        try:
            grid[name] = [GRID_TYPES[name](v) for v in values.split(",")]
        except ValueError:
            raise ValueError(f"--grid {item!r}: values must be {GRID_TYPES[name].__name__}") from None
    return grid


@dataclasses.dataclass
class Run:
    run_id: str
    task: str
    notebook: str
    output_notebook: str
    parameters: dict


def plan(suite, model=None, seeds=(1,), grid=None, data_dir=None, results_dir=None, extra=None, tasks=None):
    """The runs of a suite (or of `tasks`, a subset of it), in order."""
    if suite not in SUITES:
        raise ValueError(f"Unknown suite {suite!r}; expected one of {', '.join(SUITES)}")
    unknown = [t for t in tasks or () if t not in SUITES[suite]]
    if unknown:
        raise ValueError(f"Task(s) {unknown} are not in suite {suite!r}: {', '.join(SUITES[suite])}")
    embedded = suite == "embedded"
    # Absolute paths in the parameters: they name the same files whatever directory a notebook runs in.
    results_dir = os.path.abspath(results_dir or os.path.join("results", "embedded" if embedded else ""))
    grid = grid or {}
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] or [{}]
    runs = []
    for task, seed, point in itertools.product(tasks or SUITES[suite], seeds, points):
        notebook, task_params = notebook_for(task)
        params = dict(EMBEDDED) if embedded else {"download": True}
        if embedded:
            params["max_seq_length"] = EMBEDDED_SEQ.get(task, params["max_seq_length"])
            params["vocab"] = resources.sample_vocab()
            params["data_dir"] = resources.samples()
        if model:
            params["model"] = model
        if data_dir:
            params["data_dir"] = os.path.abspath(data_dir)
        params.update(extra or {})
        params.update(point)
        params.update(task_params)
        params["seed"] = seed
        prefix = f"{suite}-{task}-{record.model_name(params.get('model', 'default'))}-s{seed}"
        run_id = record.run_id(prefix, {"task": task, **params})
        run_dir = os.path.join(results_dir, "runs", run_id)
        output_notebook = os.path.join(run_dir, notebook)
        params.update(
            run_id=run_id,
            output_dir=run_dir,
            notebook=output_notebook,
            results_csv=os.path.join(results_dir, "finetune.csv"),
        )
        runs.append(Run(run_id, task, notebook, output_notebook, params))
    return runs


def _kernel_name():
    from jupyter_client.kernelspec import KernelSpecManager

    return "workbench" if "workbench" in KernelSpecManager().find_kernel_specs() else "python3"


def execute(run, kernel_name=None, timeout=None):
    """Run one notebook with papermill, in the working directory; on failure
    record an error row. Returns (run, error message or None)."""
    import papermill

    from workbench.runs.tables import append_rows

    os.makedirs(os.path.dirname(run.output_notebook), exist_ok=True)
    try:
        papermill.execute_notebook(
            resources.notebook(run.notebook),
            run.output_notebook,
            parameters=run.parameters,
            kernel_name=kernel_name or _kernel_name(),
            cwd=os.getcwd(),
            progress_bar=False,
            execution_timeout=timeout,
        )
        return run, None
    except Exception as e:  # any failure of the notebook is recorded, and the suite goes on
        message = str(getattr(e, "evalue", "") or e).strip().splitlines()
        message = f"{getattr(e, 'ename', type(e).__name__)}: {message[0] if message else ''}"[:500]
        append_rows(
            run.parameters["results_csv"],
            [
                {
                    "run_id": run.run_id,
                    "finished_at": record.utc_now(),
                    "status": "error",
                    "task": run.task,
                    "model": run.parameters.get("model", ""),
                    "seed": run.parameters["seed"],
                    "notebook": run.output_notebook,
                    "output_dir": run.parameters["output_dir"],
                    "error": message,
                }
            ],
        )
        return run, message


def run_suite(
    suite,
    model=None,
    seeds=(1,),
    grid=None,
    skip_done=False,
    data_dir=None,
    results_dir=None,
    jobs=1,
    extra=None,
    tasks=None,
    log=print,
    report=True,
):
    """Execute a suite; returns the summary DataFrame. With `report`, ends by
    writing `report.html` beside the table (see `write_report`)."""
    from tqdm.auto import tqdm

    from workbench.runs.tables import completed_runs, write_summary

    runs = plan(suite, model, seeds, grid, data_dir, results_dir, extra, tasks)
    from workbench.notebook import check_notebook_parameters

    for run in runs:  # every run's parameters checked before the first one starts
        check_notebook_parameters(run.notebook, run.parameters)
    results_dir = os.path.dirname(runs[0].parameters["results_csv"]) if runs else (results_dir or "results")
    results_csv = os.path.join(results_dir, "finetune.csv")
    if skip_done:
        done = completed_runs(results_csv)
        skipped = [r for r in runs if r.run_id in done]
        runs = [r for r in runs if r.run_id not in done]
        if skipped:
            log(f"skipping {len(skipped)} finished run(s)")
    kernel = _kernel_name()
    failures = []
    with tqdm(total=len(runs), desc=f"suite {suite}", unit="run") as bar:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for run, error in pool.map(lambda r: execute(r, kernel), runs):
                bar.update(1)
                if error:
                    failures.append((run, error))
                    log(f"FAILED {run.run_id}: {error} (notebook: {run.output_notebook})")
    summary = write_summary(results_csv, resources.paper_results(), os.path.join(results_dir, "summary.csv"))
    log(summary.to_string(index=False) if not summary.empty else "no successful runs to summarize")
    log(
        f"\n{len(runs) - len(failures)} run(s) ok, {len(failures)} failed. Tables: {results_csv}, "
        f"{os.path.join(results_dir, 'summary.csv')}; executed notebooks under {os.path.join(results_dir, 'runs')}/"
    )
    if report:
        try:
            log(f"report: {write_report(results_dir, kernel_name=kernel)}")
        except Exception as e:  # the runs and tables stand without the report; say why it is missing
            log(f"report not written: {type(e).__name__}: {str(e).strip().splitlines()[-1:] or ''}")
    summary.attrs["failed_runs"] = [run.run_id for run, _ in failures]  # the CLI exits non-zero for them
    return summary


# ---- the report ----------------------------------------------------------------------------------
# JupyterLab's HTML export without what it fetches from the network (require.js,
# MathJax, Mermaid, the widget manager): the report must open offline.
REPORT_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def embed_plotly(notebook):
    """Replace each plotly output by its HTML, plotly.js embedded in the first
    only: the report then draws every figure offline."""
    import plotly.io

    first = True
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            figure = output.get("data", {}).get(PLOTLY_MIME)
            if figure is None:
                continue
            html = plotly.io.to_html(figure, full_html=False, include_plotlyjs=first, config={"displaylogo": False})
            output["data"] = {"text/html": html}
            first = False
    return notebook


def write_report(results_dir, paper_csv=None, kernel_name=None, path=None):
    """Execute the results notebook on `results_dir/finetune.csv` (beside the
    paper's numbers, by default the shipped ones) and write it as one
    standalone HTML page (default `results_dir/report.html`).

    The executed notebook is kept beside it (`results.ipynb`). Figures are
    rendered with plotly's mimetype renderer and embedded by `embed_plotly`,
    so the page needs no network. Returns the page's path.
    """
    import jinja2
    import nbconvert
    import papermill

    from workbench.files import atomic_path, write_text_atomic

    results_dir = os.path.abspath(results_dir)
    path = path or os.path.join(results_dir, "report.html")
    executed = os.path.join(results_dir, "results.ipynb")
    parameters = {
        "results_csv": os.path.join(results_dir, "finetune.csv"),
        "summary_csv": os.path.join(results_dir, "summary.csv"),
    }
    if paper_csv:  # else the notebook's own default: the paper's numbers shipped with the workbench
        parameters["paper_csv"] = os.path.abspath(paper_csv)
    previous = os.environ.get("PLOTLY_RENDERER")
    os.environ["PLOTLY_RENDERER"] = "plotly_mimetype"  # the kernel inherits it: figures as JSON outputs
    try:
        with atomic_path(executed) as tmp:
            notebook = papermill.execute_notebook(
                resources.notebook("results.ipynb"),
                tmp,
                parameters=parameters,
                kernel_name=kernel_name or _kernel_name(),
                cwd=os.getcwd(),
                progress_bar=False,
            )
    finally:
        if previous is None:
            os.environ.pop("PLOTLY_RENDERER", None)
        else:
            os.environ["PLOTLY_RENDERER"] = previous
    exporter = nbconvert.HTMLExporter(
        extra_loaders=[jinja2.DictLoader({"report.html.j2": REPORT_TEMPLATE})],
        template_file="report.html.j2",
        exclude_input=True,  # a report to read: text, tables and figures, not the code
    )
    body, _ = exporter.from_notebook_node(embed_plotly(notebook), resources={"metadata": {"name": "Suite report"}})
    write_text_atomic(path, body)
    return path
