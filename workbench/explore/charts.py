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
