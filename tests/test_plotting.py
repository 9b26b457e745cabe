"""Drawing causal graphs: causal rows, readable labels, arcs beside the labels, edge classes and legend, DOT."""

from __future__ import annotations

import itertools
from pathlib import Path

import gymnasium as gym
import matplotlib
import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath

import sb3_causal  # noqa: F401  (registers the envs)
from sb3_causal import CausalGraph
from sb3_causal.plotting import EDGE_STYLES, causal_rows, graph_to_dot, plot_graph


@pytest.fixture(scope="module")
def truth() -> CausalGraph:
    return gym.make("FaultAlarmRL-v0").unwrapped.causal_graph


@pytest.fixture(scope="module")
def learned(truth: CausalGraph) -> CausalGraph:
    """The 18-type truth with a fifth of its edges dropped and a few extra (forward and reversed) edges."""
    rng = np.random.default_rng(0)
    edges = [e for e in truth.edges if rng.random() < 0.8]
    order = truth.causal_order()
    extra = [(order[0], order[-1]), (order[3], order[5]), (order[-1], order[-3])]
    extra = [e for e in extra if e not in truth.edges and (e[1], e[0]) not in edges]
    return CausalGraph(truth.variables, edges + extra)


def test_rows_follow_the_causal_layers_of_the_truth(truth: CausalGraph, learned: CausalGraph) -> None:
    order, layers = causal_rows(learned, truth)
    assert sorted(order) == sorted(truth.variables)
    assert layers == sorted(layers)  # layer by layer, top to bottom
    row = {v: i for i, v in enumerate(order)}
    assert all(row[cause] < row[effect] for cause, effect in truth.edges)  # every true edge points down
    assert layers[-1] + 1 == len(list(nx.topological_generations(nx.DiGraph(truth.edges)))) == 13
    own_order, _ = causal_rows(learned)  # without a truth: the graph's own layers
    own_row = {v: i for i, v in enumerate(own_order)}
    assert all(own_row[cause] < own_row[effect] for cause, effect in learned.edges)


def _extents(ax) -> tuple[list, list]:
    """Display extents of the label texts and of their boxes."""
    canvas = FigureCanvasAgg(ax.figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    return [t.get_window_extent(renderer) for t in ax.texts], [b.get_window_extent(renderer) for b in boxes]


def test_the_18_type_picture_is_readable(truth: CausalGraph, learned: CausalGraph, tmp_path: Path) -> None:
    open_figures = plt.get_fignums()
    path = tmp_path / "new" / "folder" / "graph.png"  # folders are created
    ax = learned.plot(path, truth=truth)
    assert path.stat().st_size > 20_000
    assert plt.get_fignums() == open_figures  # nothing left open, no pyplot figure for a file
    labels = [text.get_text() for text in ax.texts]
    assert sorted(labels) == sorted(truth.variables)
    texts, boxes = _extents(ax)
    for a, b in itertools.combinations(boxes, 2):  # no two labels overlap
        assert not a.overlaps(b)
    for text, box in zip(texts, boxes):  # each label fits in its box
        assert box.x0 <= text.x0 and text.x1 <= box.x1 and box.y0 <= text.y0 and text.y1 <= box.y1
    # every edge is drawn once, as an arc beside the labels: learned edges on the right, missing ones on the left
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    missing = [e for e in truth.edges if e not in learned.edges]
    assert len(arrows) == learned.n_edges + len(missing)
    label_boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    left = min(p.get_x() for p in label_boxes)
    right = max(p.get_x() + p.get_width() for p in label_boxes)
    head = 0.2  # an arrow head may reach this far (data units; a label box is 2.6 wide)
    for arrow in arrows:
        path = arrow.get_path()  # data coordinates; CLOSEPOLY vertices carry no position
        x = path.vertices[path.codes != MplPath.CLOSEPOLY, 0]
        if arrow.get_linestyle() == "--":
            assert x.max() <= left + head
        else:
            assert x.min() >= right - head
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    n_ok = sum(e in truth.edges for e in learned.edges)
    assert f"{EDGE_STYLES['ok'][2]}: {n_ok}" in legend
    assert f"{EDGE_STYLES['extra'][2]}: {learned.n_edges - n_ok}" in legend
    assert f"{EDGE_STYLES['missing'][2]}: {len(missing)}" in legend
    assert ax.get_title().startswith(f"F1 {learned.compare(truth).f1:.3f}")


def test_plot_without_truth_into_given_axes(learned: CausalGraph) -> None:
    figure = Figure()
    ax = figure.add_subplot()
    assert plot_graph(learned, ax=ax, title="mine") is ax
    assert ax.get_title() == "mine"
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == learned.n_edges
    assert {matplotlib.colors.to_hex(a.get_edgecolor()) for a in arrows} == {EDGE_STYLES["edge"][0]}


def test_plot_refuses_a_truth_over_other_variables(learned: CausalGraph) -> None:
    with pytest.raises(ValueError, match="different variables"):
        learned.plot(truth=CausalGraph(["a", "b"], [("a", "b")]))


def test_dot_marks_edges_against_the_truth() -> None:
    truth = CausalGraph(["a", "b", "c"], [("a", "b"), ("b", "c")])
    learned = CausalGraph(["a", "b", "c"], [("a", "b"), ("a", "c")])
    dot = learned.to_dot(truth=truth)
    assert dot.startswith("digraph causal_graph {") and dot.endswith("}")
    assert '"a" -> "b" [color="green4"];' in dot
    assert '"a" -> "c" [color="red3"];' in dot
    assert '"b" -> "c" [color="gray55", style="dashed"];' in dot
    assert graph_to_dot(learned).count("->") == 2 and "color" not in graph_to_dot(learned)
