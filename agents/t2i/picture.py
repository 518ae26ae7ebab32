"""A picture of a belief graph (PNG or SVG): entities, their slots with the top candidate
probabilities, and pinned slots in green — for people who would rather look than read."""

from __future__ import annotations

from pathlib import Path

from tinmen.agents.t2i.belief import BeliefGraph


def draw_belief(belief: BeliefGraph, path: str | Path) -> Path:
    """Write the graph to ``path`` (format from the suffix: .png or .svg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    g = nx.DiGraph()
    labels, colors = {}, {}
    for entity in belief.entities:
        g.add_node(entity.name)
        labels[entity.name] = f"{entity.name}\np={entity.probability:.2f}"
        colors[entity.name] = "#9ecae1"
        for slot in belief.slots_of(entity.name):
            top = sorted(slot.candidates.items(), key=lambda kv: -kv[1])[:2]
            node = slot.key
            g.add_edge(entity.name, node)
            labels[node] = slot.attribute + "\n" + "\n".join(f"{v} {p:.2f}" for v, p in top
                                                            if p > 0)
            colors[node] = "#a1d99b" if slot.pinned else "#fdd0a2"
    pos = nx.spring_layout(g, seed=0, k=1.2)
    fig, ax = plt.subplots(figsize=(8, 6))
    nx.draw_networkx(g, pos, ax=ax, labels=labels, node_size=2200, font_size=7,
                     node_color=[colors[n] for n in g.nodes], arrows=False)
    ax.set_title(f"belief: {belief.prompt[:80]}  (entropy {belief.total_entropy:.2f} nats)",
                 fontsize=9)
    ax.axis("off")
    path = Path(path)
    fig.savefig(path, format=path.suffix.lstrip(".") or "png", bbox_inches="tight")
    plt.close(fig)
    return path
