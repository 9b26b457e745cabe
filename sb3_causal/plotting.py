"""Drawing causal graphs: a layered matplotlib picture (:func:`plot_graph`) and Graphviz DOT (:func:`graph_to_dot`).

The picture puts the variables one per row in causal order (top: root causes), with the causal layers (topological
generations) shaded, and draws every edge as an arc that bulges out of the column of variables, so no edge passes
through a label and an arc's height says how far down the order it reaches. Against a true graph, the learned edges
are drawn on the right (correct ones green, extra ones red) and the true edges it misses dashed grey on the left,
with a legend and the F1 / precision / recall / SHD in the title. It needs only matplotlib (works offline, no
Graphviz binary).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

if TYPE_CHECKING:
    from sb3_causal.graph import CausalGraph

__all__ = ["EDGE_STYLES", "causal_rows", "graph_to_dot", "plot_graph"]

#: how each kind of edge is drawn: (colour, line style, legend label)
EDGE_STYLES: dict[str, tuple[str, str, str]] = {
    "edge": ("#1f4e79", "-", "edge"),
    "ok": ("#2e8b3a", "-", "correct"),
    "extra": ("#d1342f", "-", "extra (not in the truth)"),
    "missing": ("#8c8c8c", "--", "missing (in the truth only)"),
}
_NODE_FACE, _NODE_EDGE, _BAND = "#e8f0f8", "#4a6f94", "#f3f3f3"


def causal_rows(graph: CausalGraph, truth: CausalGraph | None = None) -> tuple[list[str], list[int]]:
    """
    The variables in drawing order and the causal layer of each: the topological generations of ``truth`` (when
    given, so that every picture of one env shares its rows) or of ``graph``; within a layer, variables follow the
    mean row of their parents, then their index.

    :param graph: the graph to draw
    :param truth: the true graph, or None
    :return: ``(order, layers)``, ``layers[i]`` the layer of ``order[i]``
    """
    reference = nx.DiGraph()
    source = truth if truth is not None else graph
    reference.add_nodes_from(source.variables)
    reference.add_edges_from(source.edges)
    index = {v: i for i, v in enumerate(graph.variables)}
    row: dict[str, int] = {}
    order: list[str] = []
    layers: list[int] = []
    for layer, generation in enumerate(nx.topological_generations(reference)):

        def key(v: str) -> tuple[float, int]:
            parents = [row[p] for p in reference.predecessors(v)]
            return (sum(parents) / len(parents) if parents else -1.0, index[v])

        for v in sorted(generation, key=key):
            row[v] = len(order)
            order.append(v)
            layers.append(layer)
    return order, layers


def _classified_edges(graph: CausalGraph, truth: CausalGraph | None) -> dict[str, list[tuple[str, str]]]:
    if truth is None:
        return {"edge": graph.edges}
    true, learned = set(truth.edges), set(graph.edges)
    return {
        "ok": [e for e in graph.edges if e in true],
        "extra": [e for e in graph.edges if e not in true],
        "missing": [e for e in truth.edges if e not in learned],
    }


def plot_graph(
    graph: CausalGraph,
    path: str | Path | None = None,
    truth: CausalGraph | None = None,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """
    Draw ``graph`` layered by causal order (see the module doc).

    :param graph: the graph to draw
    :param path: write the picture here (PNG, PDF, SVG: by the suffix); the folder is created
    :param truth: a true graph over the same variables: colour the edges correct / extra / missing
    :param ax: matplotlib axes to draw into (default: a new figure sized to the graph)
    :param title: the title (default: the edge count, or the metrics against ``truth``)
    :return: the matplotlib axes
    """
    try:
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
    except ImportError as exc:  # pragma: no cover - matplotlib is a core dependency
        raise ImportError("drawing a causal graph needs matplotlib: pip install matplotlib") from exc
    if truth is not None and set(truth.variables) != set(graph.variables):
        raise ValueError("the graph and its truth have different variables")
    order, layers = causal_rows(graph, truth)
    y = {v: -float(i) for i, v in enumerate(order)}
    n = len(order)
    longest = max((len(v) for v in order), default=1)
    half_width = 0.5 + 0.075 * longest  # label boxes share one width (data units: a row is 1)
    max_bulge = 0.25 * max(n - 1, 1)  # an arc spanning the whole order bulges this far

    figure = None
    if ax is None:
        if path is None:
            import matplotlib.pyplot as plt

            figure, ax = plt.subplots()
        else:
            figure = Figure()  # no pyplot: no global backend switch, nothing left open
            ax = figure.add_subplot()
        width = 2 * half_width + max_bulge * (2 if truth is not None else 1) + 1.0
        figure.set_size_inches(min(max(4.0, 0.55 * width + 1.5), 16.0), max(3.0, 0.38 * n + 1.5))

    classified = _classified_edges(graph, truth)
    left = half_width + (max_bulge if classified.get("missing") else 0.0) + 0.4  # the left side holds missing edges
    right = half_width + max_bulge + 0.4

    # causal layers: alternate shaded bands
    start = 0
    for i in range(1, n + 1):
        if i == n or layers[i] != layers[start]:
            if layers[start] % 2 == 1:
                ax.add_patch(
                    Rectangle((-left, -i + 0.5), left + right, i - start, facecolor=_BAND, edgecolor="none", zorder=0)
                )
            start = i

    # edges: arcs on the right (the graph's edges) or on the left (missing true edges); extra ones on top
    for kind, edges in classified.items():
        colour, style, _ = EDGE_STYLES[kind]
        side = -1.0 if kind == "missing" else 1.0
        for cause, effect in edges:
            x = side * half_width
            dy = y[effect] - y[cause]
            rad = side * 0.5 * (1.0 if dy > 0 else -1.0) * (1 if abs(dy) > 1 else 0.6)
            ax.add_patch(
                FancyArrowPatch(
                    (x, y[cause]),
                    (x, y[effect]),
                    connectionstyle=f"arc3,rad={rad}",
                    arrowstyle="-|>,head_length=4,head_width=2.2",
                    color=colour,
                    linestyle=style,
                    linewidth={"extra": 1.6, "missing": 0.9}.get(kind, 1.0),
                    alpha=0.95 if kind == "extra" else 0.75,
                    shrinkA=1.0,
                    shrinkB=1.0,
                    zorder={"extra": 2.5, "missing": 1.0}.get(kind, 2.0),
                )
            )

    # variables: equal-width boxes, one per row
    for v in order:
        ax.add_patch(
            FancyBboxPatch(
                (-half_width, y[v] - 0.32),
                2 * half_width,
                0.64,
                boxstyle="round,pad=0,rounding_size=0.2",
                facecolor=_NODE_FACE,
                edgecolor=_NODE_EDGE,
                linewidth=0.8,
                zorder=3,
            )
        )
        ax.text(0.0, y[v], v, ha="center", va="center", fontsize=8, family="monospace", zorder=4)

    ax.set_xlim(-left, right)
    ax.set_ylim(-n + 0.3, 0.9)
    ax.set_aspect("auto")
    ax.set_axis_off()
    handles = [
        Line2D([], [], color=EDGE_STYLES[k][0], linestyle=EDGE_STYLES[k][1], label=f"{EDGE_STYLES[k][2]}: {len(e)}")
        for k, e in classified.items()
    ]
    handles.append(
        Rectangle((0, 0), 1, 1, facecolor=_BAND, edgecolor="#cccccc", label="causal layer (alternate shading)")
    )
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8, frameon=False)
    if title is None:
        if truth is None:
            title = f"{graph.n_edges} edges over {graph.n_variables} variables, in causal order"
        else:
            m = graph.compare(truth)
            title = f"F1 {m.f1:.3f}   precision {m.precision:.3f}   recall {m.recall:.3f}   SHD {m.shd}"
    ax.set_title(title, fontsize=10)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        (figure or ax.figure).savefig(path, dpi=150, bbox_inches="tight")
    return ax


def graph_to_dot(graph: CausalGraph, name: str = "causal_graph", truth: CausalGraph | None = None) -> str:
    """
    Graphviz DOT text of ``graph`` (top to bottom), with ``truth``: correct edges green, extra red, missing dashed.

    :param graph: the graph
    :param name: the DOT graph name
    :param truth: the true graph, or None
    """
    lines = [f"digraph {name} {{", "  rankdir=TB;", '  node [shape=box, style="rounded"];']
    lines += [f'  "{v}";' for v in graph.variables]
    attributes = {"edge": "", "ok": ' [color="green4"]', "extra": ' [color="red3"]'}
    attributes["missing"] = ' [color="gray55", style="dashed"]'
    for kind, edges in _classified_edges(graph, truth).items():
        lines += [f'  "{u}" -> "{v}"{attributes[kind]};' for u, v in edges]
    lines.append("}")
    return "\n".join(lines)
