"""Plotly figures for the notebooks: training curves and results beside the paper."""

import plotly.graph_objects as go


def training_curve(history, title="Training loss"):
    """Loss per step (and its running mean) with the learning rate on a second axis."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=history["step"], y=history["loss"], name="loss", mode="lines", opacity=0.4))
    smooth = history["loss"].rolling(max(1, len(history) // 20), min_periods=1).mean()
    fig.add_trace(go.Scatter(x=history["step"], y=smooth, name="loss (running mean)", mode="lines"))
    fig.add_trace(
        go.Scatter(
            x=history["step"],
            y=history["learning_rate"],
            name="learning rate",
            mode="lines",
            yaxis="y2",
            line={"dash": "dot"},
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="step",
        yaxis_title="loss",
        yaxis2={"title": "learning rate", "overlaying": "y", "side": "right"},
        height=360,
    )
    return fig


def results_vs_paper(summary, title="Results beside the paper"):
    """Grouped bars: our mean (with std over seeds) and the paper's number per task."""
    labels = summary["task"] + " " + summary["split"].astype(str) + " " + summary["metric"]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=labels,
            y=summary["mean"],
            name="workbench (mean over seeds)",
            error_y={"type": "data", "array": summary["std"]},
        )
    )
    fig.add_trace(go.Bar(x=labels, y=summary["paper_value"], name="paper"))
    fig.update_layout(title=title, barmode="group", yaxis_title="score (%)", height=420)
    return fig


# ---- comparing runs (results.ipynb) ------------------------------------------------------------
def headline_rows(table):
    """Successful rows of each task's headline metric (the first of `task.metrics`)
    on its dev splits, value in percent; what the run comparisons plot."""
    import pandas as pd

    from workbench.tasks.registry import get_task

    ok = table[(table["status"] == "ok") & table["split"].astype(str).str.startswith("dev")]
    headline = {task: get_task(task).metrics[0] for task in ok["task"].unique()}
    rows = ok[ok["metric"] == ok["task"].map(headline)].copy()
    rows["value"] = pd.to_numeric(rows["value"], errors="coerce") * 100.0
    rows["label"] = rows["task"] + " " + rows["split"].astype(str) + " " + rows["metric"]
    return rows


def seed_spread(table, title="Spread over seeds"):
    """Box and points of the headline dev score per task: one point per run."""
    rows = headline_rows(table)
    fig = go.Figure()
    for (label, model), group in rows.groupby(["label", "model"]):
        fig.add_trace(
            go.Box(
                y=group["value"],
                name=f"{label} ({model})" if rows["model"].nunique() > 1 else label,
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                text="seed " + group["seed"].astype(str) + ", " + group["run_id"].astype(str),
                hovertemplate="%{text}: %{y:.2f}<extra></extra>",
            )
        )
    fig.update_layout(title=title, yaxis_title="dev score (%)", showlegend=False, height=420)
    return fig


def grid_heatmaps(table, summary):
    """One heatmap per task and model whose runs vary hyperparameters: the mean
    headline dev score over seeds at each grid point (the first two varying
    hyperparameters on the axes, others averaged), with the point the paper's
    protocol picks (best mean dev score, as chosen in `summary`) marked."""
    from workbench.runs.tables import GRID_KEYS

    rows = headline_rows(table)
    figures = []
    for (task, model), group in rows.groupby(["task", "model"]):
        group = group[group["split"] == sorted(group["split"].unique())[0]]  # MNLI: dev_matched
        varying = [k for k in GRID_KEYS if group[k].nunique() > 1]
        if not varying:
            continue  # one grid point: nothing to compare
        x_key, y_key = (varying + [None])[:2]
        x_values = sorted(group[x_key].unique())
        y_values = sorted(group[y_key].unique()) if y_key else [""]
        means = group.groupby([k for k in (x_key, y_key) if k])["value"].agg(["mean", "count"])
        z, counts = [], []
        for y in y_values:
            z_row, c_row = [], []
            for x in x_values:
                key = (x, y) if y_key else x
                cell = tuple(means.loc[key]) if key in means.index else (None, 0)
                z_row.append(cell[0])
                c_row.append(int(cell[1]))
            z.append(z_row)
            counts.append(c_row)
        fig = go.Figure(
            go.Heatmap(
                z=z,
                x=[str(v) for v in x_values],
                y=[str(v) for v in y_values],
                customdata=counts,
                colorscale="Viridis",
                texttemplate="%{z:.1f}",
                hovertemplate=f"{x_key}=%{{x}} {y_key or ''}=%{{y}}: %{{z:.2f}} (%{{customdata}} runs)<extra></extra>",
            )
        )
        chosen = summary[(summary["task"] == task) & (summary["model"] == model)]
        if not chosen.empty:
            point = dict(zip(GRID_KEYS, str(chosen["grid_point"].iloc[0]).split(" ")))
            fig.add_trace(
                go.Scatter(
                    x=[point[x_key]],
                    y=[point[y_key] if y_key else ""],
                    mode="markers",
                    marker={"symbol": "star", "size": 18, "color": "#e03131", "line": {"width": 1, "color": "white"}},
                    name="paper protocol: best mean dev",
                )
            )
        fig.update_layout(
            title=f"{task} ({model}): mean {group['metric'].iloc[0]} over seeds per grid point",
            xaxis={"title": x_key, "type": "category"},
            yaxis={"title": y_key or "", "type": "category"},
            height=340,
        )
        figures.append(fig)
    return figures


def training_curves(run_dirs, title="Training loss of several runs", smooth=20):
    """Running-mean loss of several runs overlaid, from each run's history.csv.

    Args:
        run_dirs: {label: run directory} or a list of run directories.
        smooth: the running mean spans 1/smooth of each run's steps.
    """
    import os

    import pandas as pd

    if not isinstance(run_dirs, dict):
        names = [os.path.basename(os.path.normpath(str(d))) for d in run_dirs]
        # Run directories of the same name in different places are told apart by their path.
        run_dirs = {(n if names.count(n) == 1 else str(d)): d for n, d in zip(names, run_dirs)}
    fig = go.Figure()
    for label, run_dir in run_dirs.items():
        path = os.path.join(str(run_dir), "history.csv")
        if not os.path.exists(path):
            continue
        history = pd.read_csv(path)
        loss = history["loss"].rolling(max(1, len(history) // smooth), min_periods=1).mean()
        fig.add_trace(go.Scatter(x=history["step"], y=loss, name=label, mode="lines"))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="loss (running mean)", height=420)
    return fig


def paper_gap(summary, title="Ours minus the paper"):
    """The difference to the paper per task (percentage points), with the spread over seeds."""
    known = summary[summary["paper_value"].notna()]
    labels = known["task"] + " " + known["split"].astype(str) + " " + known["metric"]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=known["difference"],
            error_y={"type": "data", "array": known["std"]},
            marker_color=["#2f9e44" if d >= 0 else "#e03131" for d in known["difference"]],
            text=[f"{d:+.1f}" for d in known["difference"]],
        )
    )
    fig.update_layout(title=title, yaxis_title="difference (points)", height=400)
    return fig
