"""An interactive attention explorer for any model the workbench loads.

    explorer = explore_attention("bert_base_en_uncased", "The cat sat on the mat.", "It was tired.")
    explorer.widget          # in JupyterLab or Colab
    explorer.export_html("attention.html"); explorer.export_statistics("stats.csv")

Attention is computed once per input (`workbench.attention_maps`, the model's
own layers) and cached; moving the layer slider or choosing heads only replaces
the data of existing plotly `FigureWidget` traces. Everything works offline:
plotly's JavaScript ships with the Python package, and the HTML export embeds it.
"""

import html
import os

import numpy as np

from workbench.explore.head_stats import STATISTICS, head_statistics, merge_words, statistics_table

GRID_CELLS = 32  # model-view thumbnails are pooled to at most this many rows/columns
LINKS_PER_TOKEN = 3  # the lines view draws each token's strongest links, per head
HEAD_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def _pool(matrix, size):
    """Average-pool a (T, T) map to at most (size, size) for thumbnails."""
    t = matrix.shape[0]
    if t <= size:
        return matrix
    edges = np.linspace(0, t, size + 1).astype(int)
    return np.array(
        [[matrix[a:b, c:d].mean() for c, d in zip(edges[:-1], edges[1:])] for a, b in zip(edges[:-1], edges[1:])]
    )


class AttentionExplorer:
    """Head view, model view, per-head statistics and word-level attention.

    Args:
        model: a workbench encoder or head (anything with a BERT encoder).
        tokenizer: its `workbench.BertTokenizer` (None gives a clear message).
        sentence_a, sentence_b: the input (sentence B optional).
        layer, head: what the head view shows first (0-based).
        max_seq_length: longer inputs are truncated, with a notice.

    Example:
    ```python
    explorer = AttentionExplorer(encoder, tokenizer, "The cat sat.", "It slept.")
    explorer.set_layer(3); explorer.set_heads([0, 5])
    ```
    """

    def __init__(self, model, tokenizer, sentence_a="", sentence_b="", layer=0, head=0, max_seq_length=128):
        import ipywidgets as w
        import plotly.graph_objects as go

        from workbench.models.attention import find_encoder

        self.model = model
        self.tokenizer = tokenizer
        self.encoder = find_encoder(model)
        self.num_layers, self.num_heads = self.encoder.num_layers, self.encoder.num_heads
        self.max_seq_length = min(max_seq_length, self.encoder.max_sequence_length)
        self._cache = {}
        self.tokens, self.maps = [], None

        # === Controls ===
        self.text_a = w.Text(
            value=sentence_a, description="Sentence A", continuous_update=False, layout=w.Layout(width="95%")
        )
        self.text_b = w.Text(
            value=sentence_b or "", description="Sentence B", continuous_update=False, layout=w.Layout(width="95%")
        )
        self.layer_slider = w.IntSlider(
            value=1, min=1, max=self.num_layers, description="Layer", continuous_update=True
        )
        self.head_select = w.SelectMultiple(
            options=[(f"head {h + 1}", h) for h in range(self.num_heads)],
            value=(0,),
            description="Heads",
            rows=min(6, self.num_heads),
        )
        self.words_box = w.Checkbox(value=False, description="merge ## pieces into words")
        self.statistic = w.Dropdown(options=STATISTICS, value="entropy", description="Statistic")
        self.message = w.HTML()

        # === Figures ===
        self.head_view = go.FigureWidget(
            go.Heatmap(
                z=[[0]], colorscale="Blues", zmin=0, zmax=1, hovertemplate="%{y} → %{x}: %{z:.3f}<extra></extra>"
            )
        )
        self.head_view.update_layout(
            title="Head view",
            height=520,
            width=620,
            yaxis={"autorange": "reversed"},
            xaxis={"title": "attended to"},
            margin={"l": 90, "b": 90},
        )
        # Lines view: tokens on the left attend to tokens on the right, one colour per head.
        self.lines_view = go.FigureWidget(
            [
                go.Scatter(
                    x=[],
                    y=[],
                    mode="lines",
                    name=f"head {h + 1}",
                    hoverinfo="name",
                    line={"color": HEAD_COLOURS[h % len(HEAD_COLOURS)], "width": 1.5},
                    opacity=0.6,
                    visible=False,
                )
                for h in range(self.num_heads)
            ]
            + [
                go.Scatter(x=[], y=[], mode="text", textposition="middle left", showlegend=False, hoverinfo="skip"),
                go.Scatter(x=[], y=[], mode="text", textposition="middle right", showlegend=False, hoverinfo="skip"),
            ]
        )
        self.lines_view.update_layout(
            title="Lines view: strongest links, colour per head",
            height=520,
            width=480,
            xaxis={"visible": False, "range": [-0.6, 1.6]},
            yaxis={"visible": False, "autorange": "reversed"},
        )
        self.model_view = go.FigureWidget()
        self.stats_view = go.FigureWidget(go.Heatmap(z=[[0]], colorscale="Viridis"))
        self.stats_view.update_layout(
            title="Per-head statistic", height=360, xaxis={"title": "head"}, yaxis={"title": "layer"}
        )
        self.head_view.data[0].on_click(self._highlight_row)

        self.widget = w.VBox(
            [
                self.text_a,
                self.text_b,
                w.HBox([self.layer_slider, self.head_select, self.words_box]),
                self.message,
                w.HBox([self.head_view, self.lines_view]),
                self.model_view,
                w.HBox([self.statistic]),
                self.stats_view,
            ]
        )
        for control in (self.text_a, self.text_b):
            control.observe(lambda _: self.update_input(), names="value")
        self.layer_slider.observe(lambda _: self._draw_head_view(), names="value")
        self.head_select.observe(lambda _: self._draw_head_view(), names="value")
        self.words_box.observe(lambda _: self._redraw(), names="value")
        self.statistic.observe(lambda _: self._draw_stats(), names="value")
        self.update_input()
        self.set_layer(layer)
        self.set_heads([head])

    # ---- input ----
    def _say(self, text, level="info"):
        colour = {"info": "#555", "warning": "#a60", "error": "#b00"}[level]
        self.message.value = f'<span style="color:{colour}">{html.escape(text)}</span>' if text else ""

    def update_input(self):
        """Tokenize the sentences and compute (or fetch) the attention maps."""
        a, b = self.text_a.value.strip(), self.text_b.value.strip()
        if self.tokenizer is None:
            self._say(
                "This model has no tokenizer: load it with a vocabulary "
                "(vocab=... or a model directory with vocab.txt).",
                "error",
            )
            return
        if not a:
            self._say("Type a sentence A to see its attention.", "warning")
            return
        key = (a, b)
        if key not in self._cache:
            from workbench.models.attention import attention_maps
            from workbench.text.inputs import encode_pairs

            ids_a = self.tokenizer.encode_with_offsets(a)[0]
            ids_b = self.tokenizer.encode_with_offsets(b)[0] if b else []
            needed = len(ids_a) + len(ids_b) + (3 if b else 2)
            length = min(needed, self.max_seq_length)
            inputs = encode_pairs(self.tokenizer, [a], [b] if b else None, length)
            maps = np.stack([m[0] for m in attention_maps(self.model, inputs)])  # (layers, heads, T, T)
            vocab = self.tokenizer.get_vocabulary()
            tokens = [vocab[i] for i in inputs["token_ids"][0]]
            self._cache[key] = (tokens, maps, needed > self.max_seq_length, needed)
        self.tokens, self.maps, truncated, needed = self._cache[key]
        self._say(
            f"The input has {needed} tokens; only the first {self.max_seq_length} are shown (the model's maximum)."
            if truncated
            else "",
            "warning",
        )
        self._redraw()

    # ---- views ----
    def _current(self):
        if self.words_box.value:
            return merge_words(self.maps, self.tokens)
        return self.maps, self.tokens

    def _redraw(self):
        if self.maps is None:
            return
        self._draw_head_view()
        self._draw_model_view()
        self._draw_stats()

    def _draw_head_view(self):
        if self.maps is None:
            return
        maps, labels = self._current()
        layer = self.layer_slider.value - 1
        heads = list(self.head_select.value) or [0]
        z = maps[layer, heads].mean(0)
        labels = [f"{i}:{t}" for i, t in enumerate(labels)]  # unique axis labels for repeated tokens
        seps = [i for i, t in enumerate(self._current()[1]) if t == "[SEP]"]
        with self.head_view.batch_update():
            trace = self.head_view.data[0]
            trace.z, trace.x, trace.y = z, labels, labels
            heads_text = ", ".join(str(h + 1) for h in heads)
            self.head_view.layout.title = f"Layer {layer + 1}, head{'s' if len(heads) > 1 else ''} {heads_text}" + (
                " (mean)" if len(heads) > 1 else ""
            )
            # The segment boundary: a line after the first [SEP], across the map along each axis.
            self.head_view.layout.shapes = [
                {
                    "type": "line",
                    f"{at}0": s + 0.5,
                    f"{at}1": s + 0.5,
                    f"{across}0": -0.5,
                    f"{across}1": len(labels) - 0.5,
                    "line": {"color": "red", "dash": "dot"},
                }
                for at, across in (("x", "y"), ("y", "x"))
                for s in seps[:1]
            ]

        self._draw_lines(maps, labels, layer, heads)

    def _draw_lines(self, maps, labels, layer, heads):
        n = len(labels)
        with self.lines_view.batch_update():
            for h, trace in enumerate(self.lines_view.data[: self.num_heads]):
                if h not in heads:
                    trace.visible = False
                    continue
                xs, ys = [], []
                weights = maps[layer, h]
                for i in range(n):
                    for j in np.argsort(-weights[i])[:LINKS_PER_TOKEN]:
                        xs += [0, 1, None]
                        ys += [i, int(j), None]
                trace.x, trace.y, trace.visible = xs, ys, True
            left, right = self.lines_view.data[self.num_heads], self.lines_view.data[self.num_heads + 1]
            left.x, left.y, left.text = [0] * n, list(range(n)), labels
            right.x, right.y, right.text = [1] * n, list(range(n)), labels

    def _highlight_row(self, trace, points, state):
        if not points.point_inds:
            return
        row = points.point_inds[0][0] if isinstance(points.point_inds[0], (list, tuple)) else points.point_inds[0]
        n = len(self.head_view.data[0].y)
        shapes = [s for s in self.head_view.layout.shapes if s.line.color != "orange"]
        shapes.append(
            dict(type="rect", x0=-0.5, x1=n - 0.5, y0=row - 0.5, y1=row + 0.5, line={"color": "orange", "width": 2})
        )
        self.head_view.layout.shapes = shapes

    def _draw_model_view(self):
        from plotly.subplots import make_subplots

        maps, _ = self._current()
        grid = make_subplots(
            rows=self.num_layers, cols=self.num_heads, horizontal_spacing=0.005, vertical_spacing=0.005
        )
        for layer in range(self.num_layers):
            for head in range(self.num_heads):
                grid.add_heatmap(
                    z=_pool(maps[layer, head], GRID_CELLS),
                    showscale=False,
                    colorscale="Blues",
                    zmin=0,
                    name=f"layer {layer + 1} head {head + 1}",
                    hoverinfo="name",
                    row=layer + 1,
                    col=head + 1,
                )
        grid.update_xaxes(visible=False)
        grid.update_yaxes(visible=False, autorange="reversed")
        grid.update_layout(
            title="Model view: layers (rows) x heads (columns); click one to open it above",
            height=max(300, 60 * self.num_layers),
            margin={"l": 10, "r": 10, "t": 40, "b": 10},
        )
        with self.model_view.batch_update():
            self.model_view.data = []
            self.model_view.add_traces(grid.data)
            self.model_view.layout = grid.layout
        for index, trace in enumerate(self.model_view.data):
            trace.on_click(lambda *_, i=index: self._open(i // self.num_heads, i % self.num_heads))

    def _open(self, layer, head):
        self.set_layer(layer)
        self.set_heads([head])

    def statistics(self):
        maps, tokens = self._current()
        return head_statistics(maps, tokens)

    def _draw_stats(self):
        values = self.statistics()[self.statistic.value]
        with self.stats_view.batch_update():
            trace = self.stats_view.data[0]
            trace.z = values
            trace.x = [f"h{h + 1}" for h in range(self.num_heads)]
            trace.y = [f"L{layer + 1}" for layer in range(self.num_layers)]
            self.stats_view.layout.title = f"{self.statistic.value} per head (mean over tokens)"

    # ---- programmatic control ----
    def set_layer(self, layer):
        """Show `layer` (0-based); out of range gives a message, not an exception."""
        if not 0 <= layer < self.num_layers:
            self._say(f"Layer {layer} is out of range: this model has layers 0-{self.num_layers - 1}.", "error")
            return False
        self.layer_slider.value = layer + 1
        return True

    def set_heads(self, heads):
        bad = [h for h in heads if not 0 <= h < self.num_heads]
        if bad:
            self._say(f"Head(s) {bad} out of range: this model has heads 0-{self.num_heads - 1}.", "error")
            return False
        self.head_select.value = tuple(heads)
        return True

    # ---- export ----
    def export_html(self, path):
        """A standalone HTML page (plotly.js embedded, no CDN) with all three views."""
        import plotly.graph_objects as go

        from workbench.files import write_text_atomic

        if self.maps is None:
            raise ValueError("nothing to export: no input has been explored yet")
        parts = []
        for i, fig in enumerate((self.head_view, self.model_view, self.stats_view)):
            parts.append(go.Figure(fig).to_html(full_html=False, include_plotlyjs=(i == 0)))
        tokens = html.escape(" ".join(self.tokens))
        page = (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Attention</title></head><body>"
            f"<h1>Attention explorer</h1><p><b>Tokens:</b> {tokens}</p>{''.join(parts)}</body></html>"
        )
        write_text_atomic(path, page)
        return path

    def export_statistics(self, path):
        from workbench.files import atomic_path

        maps, tokens = self._current()
        with atomic_path(path) as tmp:
            statistics_table(maps, tokens).to_csv(tmp, index=False)
        return path


def explore_attention(
    model, sentence_a="", sentence_b="", layer=0, head=0, vocab=None, lowercase=None, max_seq_length=128
):
    """An `AttentionExplorer` for any `model` the workbench loads (size name with
    vocab, preset, Google/HF/keras-hub directory, a run's model/ folder)."""
    from workbench.checkpoints.load import load_pretrained

    try:
        pretrained = load_pretrained(os.fspath(model), vocab=vocab, lowercase=lowercase)
        encoder, tokenizer = pretrained.encoder, pretrained.tokenizer
    except (ValueError, FileNotFoundError):
        # A preset directory with weights but no tokenizer: show the model's
        # structure and say what is missing in the widget.
        from workbench.models.encoder import build_encoder

        if not os.path.isdir(os.fspath(model)):
            raise
        encoder, tokenizer = build_encoder(os.fspath(model)), None
    return AttentionExplorer(encoder, tokenizer, sentence_a, sentence_b, layer, head, max_seq_length)
