"""The one plotting helper every report uses: a figure that is always closed and saved.

Reports draw on the axes this yields; the helper owns the backend (Agg: no display needed),
the size, the layout and the file, so every PNG tinmen writes looks alike and no figure is
left open in a long-running process (the viewer).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def figure(path: str | Path, *, rows: int = 1, cols: int = 1, size: tuple[float, float] |
           None = None, title: str = "", **subplots: Any) -> Iterator[Any]:
    """Yield a 2-D array of axes; on exit write ``path`` (PNG, 120 dpi) and close."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = size or (4.2 * cols + 0.8, 3.4 * rows + 0.6)
    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False, **subplots)
    try:
        yield axes
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


def bars_with_intervals(ax: Any, labels: Sequence[str], values: Sequence[float],
                        lows: Sequence[float], highs: Sequence[float], *,
                        ylabel: str = "", color: str = "#4c72b0") -> None:
    """Bars with asymmetric error bars from interval bounds (NaN bounds draw no bar)."""
    import math

    err = [[(v - lo) if not math.isnan(lo) else 0 for v, lo in zip(values, lows)],
           [(hi - v) if not math.isnan(hi) else 0 for v, hi in zip(values, highs)]]
    ax.bar(range(len(values)), values, yerr=err, capsize=3, color=color)
    ax.set_xticks(range(len(values)), labels, rotation=30 if len(labels) > 3 else 0,
                  ha="right" if len(labels) > 3 else "center", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)


def lines_with_bands(ax: Any, x: Sequence[float], series: dict[str, tuple[Sequence[float],
                     Sequence[float], Sequence[float]]], *, xlabel: str = "",
                     ylabel: str = "") -> None:
    """One line per series (mean, low, high), the interval shaded."""
    for name, (mean, low, high) in series.items():
        (line,) = ax.plot(x[:len(mean)], mean, marker="o", label=name)
        ax.fill_between(x[:len(mean)], low, high, alpha=0.2, color=line.get_color())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
