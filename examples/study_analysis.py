"""A small study over a grid, then its analysis with the DataFrame API and a plot.

The minimal agent (``minimal_agent.py`` beside this file) runs over a grid of its
``ask_above`` threshold × three requests × 3 repetitions; then ``tinmen.analysis`` gives the
decisions as a pandas DataFrame, we compute how often the agent asked back per condition,
and plot it with tinmen's plotting helper. The same study from the command line::

    tinmen study run minimal_agent.py:AGENT --grid grid.toml -m agent=scripted:echo
    tinmen report STUDY          # generic per-condition report (table + plot)
    tinmen export STUDY out/     # every table as parquet

Run::  python study_analysis.py --db runs.db [--model smollm2] [--out plots/]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

GRID = """
name = "ask-back threshold"
reps = 3
[axes]
ask_above = [0.6, 1.0, 1.2]
[[conditions]]
key = "praise"
inputs = { request = "I love this, thank you!" }
[[conditions]]
key = "complaint"
inputs = { request = "This broke after one day." }
[[conditions]]
key = "vague"
inputs = { request = "Hmm, well." }
"""


def main() -> None:
    from statsmodels.stats.proportion import proportion_confint
    from tinmen.graphs.grid import Grid, plan_from_grid
    from tinmen.graphs.plotting import bars_with_intervals, figure

    from tinmen import Store, analysis, load_agent, run_study

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("TINMEN_DB"))
    parser.add_argument("--model", default="scripted:echo", help="spec of the 'agent' role")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the plot")
    args = parser.parse_args()

    here = Path(__file__).resolve().parent
    ref = f"{here / 'minimal_agent.py'}:AGENT"  # sessions store this to import it again
    grid = Grid.model_validate(__import__("tomllib").loads(GRID))
    plan = plan_from_grid(load_agent(ref), ref, grid, [f"agent={args.model}"])
    store = Store.open(args.db)
    outcome = run_study(store, plan, progress=False)
    print(f"study {outcome.study_id}: {outcome.ran} sessions")

    # the analysis API: one DataFrame per table, rows already labelled by condition
    decisions = analysis.decisions(store, study=outcome.study_id, kind="answer_or_ask")
    asked = (decisions.assign(asked=decisions["chosen"] == "ask")
             .groupby("condition")["asked"].agg(["sum", "count"]).reset_index())
    asked["share"] = asked["sum"] / asked["count"]
    asked["low"], asked["high"] = proportion_confint(asked["sum"], asked["count"],
                                                     method="wilson")
    print(asked.to_string(index=False))

    png = args.out / f"study-{outcome.study_id}-asked.png"
    with figure(png, title="share of sessions that asked back (95% Wilson)") as axes:
        bars_with_intervals(axes[0][0], list(asked["condition"]), list(asked["share"]),
                            list(asked["low"]), list(asked["high"]), ylabel="asked")
    print("plot:", png)


if __name__ == "__main__":
    main()
