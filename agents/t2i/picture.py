"""A picture of a belief graph (PNG or SVG): entities with their probability of appearing,
their attribute slots with the top candidates and probabilities (pinned slots in green),
and relations as labelled edges — for people who would rather look than read."""

from __future__ import annotations

from pathlib import Path

from tinmen.agents.t2i.belief import BeliefGraph

ENTITY, OPEN, PINNED = "#9ecae1", "#fdd0a2", "#a1d99b"


def _top(candidates: dict[str, float], k: int = 2) -> str:
    ranked = sorted(candidates.items(), key=lambda kv: -kv[1])[:k]
    return "\n".join(f"{v} {p:.2f}" for v, p in ranked if p > 0)


def draw_belief(belief: BeliefGraph, path: str | Path) -> Path:
    """Write the graph to ``path`` (format from the suffix: .png or .svg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    g = belief.to_networkx()
    labels, colors = {}, []
    for node, data in g.nodes(data=True):
        if data["role"] == "entity":
            labels[node] = f"{node}\n{data['kind']} p={data['probability']:.2f}"
            colors.append(ENTITY)
        else:
            labels[node] = node.split(".", 1)[1] + "\n" + _top(data["candidates"])
            colors.append(PINNED if data["pinned"] else OPEN)
    pos = nx.spring_layout(g.to_undirected(), seed=0, k=1.2)
    fig, ax = plt.subplots(figsize=(8, 6))
    nx.draw_networkx(g, pos, ax=ax, labels=labels, node_size=2200, font_size=7,
                     node_color=colors, arrows=False)
    relation_labels = {(u, v): _top(d["candidates"], 1) for u, v, d in g.edges(data=True)
                       if d["role"] == "relation"}
    nx.draw_networkx_edge_labels(g, pos, edge_labels=relation_labels, ax=ax, font_size=7)
    ax.set_title(f"belief: {belief.prompt[:80]}  (entropy {belief.total_entropy:.2f} nats)",
                 fontsize=9)
    ax.axis("off")
    path = Path(path)
    fig.savefig(path, format=path.suffix.lstrip(".") or "png", bbox_inches="tight")
    plt.close(fig)
    return path
