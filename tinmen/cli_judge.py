"""``tinmen judge``: the self-rewarding loop (Yuan et al.; SCIR), its report and rankings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tinmen.cli import (
    DbOpt,
    ExecutorOpt,
    JsonOpt,
    ModelOpt,
    emit_json,
    open_store,
    out,
    quiet_transformers,
)
from tinmen.errors import ConfigError

app = typer.Typer(help="The self-rewarding judge: the model judges its own candidates, DPO on "
                  "the pairs, internal-reward consistency (SCIR), Bayesian ranking.",
                  no_args_is_help=True)

RUN_KEYS = ("t", "win_rate_vs_prev", "judge_oracle_accuracy", "spearman",
            "inconsistency_rate", "pairs_kept")


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def _options(given: dict[str, Any], sets: list[str] | None, quick: bool = False
             ) -> dict[str, Any]:
    """The ``--quick`` sizes, then CLI flags, then ``--set KEY=VALUE`` overrides; the agent's
    options model checks the result."""
    from tinmen.graphs.definition import parse_sets
    from tinmen.graphs.judge import QUICK

    return {**(QUICK if quick else {}), **{k: v for k, v in given.items() if v is not None},
            **parse_sets(sets)}


@app.command()
def run(variant: Annotated[list[str] | None, typer.Option(
            help="srlm (plain self-rewarding) or scir; repeat for both.")] = None,
        iterations: Annotated[int | None, typer.Option(
            help="Self-rewarding iterations (default 3).", min=1)] = None,
        prompts: Annotated[int | None, typer.Option(
            help="Prompts per iteration (default 384).", min=1)] = None,
        candidates: Annotated[int | None, typer.Option(
            help="Candidates per prompt (default 4).", min=2)] = None,
        judge_samples: Annotated[int | None, typer.Option(
            help="Sampled verdicts averaged per candidate (default 3).", min=1)] = None,
        beta: Annotated[float | None, typer.Option(help="DPO β (default 0.1).")] = None,
        judge_prompt: Annotated[str | None, typer.Option(
            help="compact (the score right away; default) or paper (Yuan et al.: a short "
            "justification, then Score: N, parsed from the text).")] = None,
        quick: Annotated[bool, typer.Option(
            "--quick", help="A first try in under a minute: 1 iteration, 16 prompts, a "
            "200-step seed SFT, 20 evaluation prompts (flags and --set still win).")] = False,
        seeds: Annotated[int, typer.Option(help="Sessions per variant (different seed "
                                           "models).", min=1)] = 1,
        model: ModelOpt = None,
        set_: Annotated[list[str] | None, typer.Option(
            "--set", help="KEY=VALUE graph option, repeatable, e.g. nll_weight=1 (DPO + NLL), "
            "selection=oracle (perfect-judge ablation), ift_examples=0, sft_steps=400; "
            "docs/judge.md lists them.")] = None,
        workers: Annotated[int, typer.Option(help="Sessions in parallel.", min=1)] = 1,
        executor: ExecutorOpt = "threads",
        seed: int = 0,
        resume: Annotated[int | None, typer.Option(help="Finish this study id.")] = None,
        db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Run the loop (one session per variant × seed); print the per-iteration metrics."""
    from tinmen.graphs.judge import AGENT, study_plan
    from tinmen.graphs.judge_report import iterations as per_iteration
    from tinmen.graphs.study import run_study
    from tinmen.models.pool import ModelPool
    from tinmen.models.registry import parse_bindings

    quiet_transformers()
    variants = variant or ["srlm"]
    options = _options({"iterations": iterations, "prompts": prompts, "candidates": candidates,
                        "judge_samples": judge_samples, "beta": beta,
                        "judge_prompt": judge_prompt}, set_, quick=quick)
    plan = study_plan(variants, seeds, options, parse_bindings(model, AGENT.roles), seed=seed)
    plan.validate()  # before the store is opened
    store = open_store(db)
    outcome = run_study(store, plan, pool=ModelPool(), workers=workers, study_id=resume,
                        executor=executor, progress=not as_json)
    rows = per_iteration(store, outcome.study_id)
    if as_json:
        extra = ("variant",) if len(variants) > 1 else ()
        return emit_json({"iterations": [{k: r[k] for k in extra + RUN_KEYS} for r in rows],
                          "study_id": outcome.study_id})
    _print_iterations(rows)
    out.print(f"study {outcome.study_id}: {outcome.ran} sessions run, {outcome.skipped} already "
              f"done. Report: tinmen judge report {outcome.study_id}")


def _print_iterations(rows: list[dict[str, Any]]) -> None:
    """The per-iteration table (short headers so it fits 80 columns)."""
    cols = {"oracle": "oracle_mean", "win": "win_rate_vs_prev",
            "j.acc": "judge_oracle_accuracy", "own": "own_judge_accuracy",
            "rho": "spearman", "incons": "inconsistency_rate", "kept": "pairs_kept",
            "prec": "pair_precision"}
    table = Table("variant", "t", *cols, caption="oracle: mean oracle score of greedy answers; "
                  "win: vs t-1; j.acc: judge on the fixed graded set; own: judge ordering its "
                  "own candidates; prec: kept pairs the oracle agrees with")
    for r in rows:
        table.add_row(r["variant"], str(r["t"]), *(_fmt(r[k]) for k in cols.values()))
    out.print(table)


@app.command()
def report(study_id: Annotated[int, typer.Argument(metavar="STUDY", help="Study id.")],
           out_dir: Annotated[Path, typer.Option("--out", help="Folder for the plot.")] =
           Path("."),
           db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Plot the per-iteration curves (PNG) and compare SCIR with plain self-rewarding; the
    same report as ``tinmen report STUDY``."""
    from tinmen.graphs.report import report as make_report

    result = make_report(open_store(db, create=False), study_id, out_dir, expect="judge")
    if as_json:
        return emit_json(result)
    _print_iterations(result["iterations"])
    compared = result["comparison"]
    if compared["reps"]:
        for metric, c in compared.items():
            if isinstance(c, dict) and c["diff"] is not None:
                sd = _fmt(c["diff_sd"])
                out.print(f"SCIR − SRLM {metric} at t={compared['t']}: {c['diff']:+.3f} "
                          f"(SD {sd} over {len(c['diffs'])} seeds)")
    out.print(f"plot: {result['plots'][0]}\ntable: {result['table']}")


@app.command()
def rank(study: Annotated[int, typer.Option("--study", help="Study id.")],
         method: Annotated[str, typer.Option(help="svi (default) or nuts.")] = "svi",
         level: Annotated[float, typer.Option(help="Credible level.", min=0.5, max=0.999)] = 0.9,
         steps: Annotated[int, typer.Option(help="SVI steps / NUTS warm-up.", min=10)] = 600,
         db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Posterior ranks (Simplex model) of every checkpoint, with credible intervals."""
    from tinmen.agents.judge.ranking import bayes_rank, bootstrap_rank, ranks_of

    if method not in ("svi", "nuts"):
        raise ConfigError(f"--method must be svi or nuts, not '{method}'")
    data = _rank_data(open_store(db, create=False), study)
    names = data["candidates"]
    bayes = bayes_rank(data["counts"], names, level=level, method=method, steps=steps)
    boot = bootstrap_rank(data["counts"], names, level=level)
    import numpy as np

    truth = ranks_of(np.array(data["oracle_mean"]))
    result = [{"candidate": b.candidate, "mean_rank": b.mean_rank, "lo": b.lo, "hi": b.hi,
               "p_best": b.p_best, "mean_score": b.mean_score, "true_rank": int(t),
               "oracle_mean": o, "bootstrap": {"mean_rank": n.mean_rank, "lo": n.lo,
                                               "hi": n.hi}}
              for b, n, t, o in zip(bayes, boot, truth, data["oracle_mean"])]
    coverage = {name: float(np.mean([r.covers(int(t)) for r, t in zip(ranked, truth)]))
                for name, ranked in (("bayes", bayes), ("bootstrap", boot))}
    if as_json:
        return emit_json({"study_id": study, "judges": data["judges"], "level": level,
                          "method": method, "candidates": result, "coverage": coverage})
    _print_ranks(result, level)
    out.print(f"judges: {', '.join(data['judges'])}; coverage of the oracle ranking — "
              f"Bayes {coverage['bayes']:.2f}, bootstrap {coverage['bootstrap']:.2f}")


def _rank_data(store: Any, study: int) -> dict[str, Any]:
    from tinmen.graphs.judge_report import rank_inputs
    from tinmen.graphs.report import check_study_agent

    check_study_agent(store, study, "judge")
    data = rank_inputs(store, study)
    if not data["candidates"]:
        raise ConfigError(f"study {study} has no audited answers to rank; run it with "
                          "`tinmen judge run` (audit_items > 0)")
    return data


def _print_ranks(rows: list[dict[str, Any]], level: float) -> None:
    table = Table()
    table.add_column("candidate", no_wrap=True)
    for header in ("mean rank", f"{level:.0%} interval", "P(best)", "E\\[score]", "oracle rank",
                   "bootstrap interval"):
        table.add_column(header)
    for r in sorted(rows, key=lambda r: r["mean_rank"]):
        b = r["bootstrap"]
        table.add_row(r["candidate"], f"{r['mean_rank']:.2f}", f"[{r['lo']}, {r['hi']}]",
                      f"{r['p_best']:.2f}", f"{r['mean_score']:.2f}", str(r["true_rank"]),
                      f"[{b['lo']}, {b['hi']}]")
    out.print(table)


@app.command()
def coverage(replicates: Annotated[int, typer.Option(help="Synthetic benchmarks.", min=1)] = 20,
             candidates: Annotated[int, typer.Option(help="Candidates per benchmark.",
                                                     min=2)] = 6,
             items: Annotated[int, typer.Option(help="Items per candidate.", min=1)] = 40,
             level: Annotated[float, typer.Option(help="Interval level.", min=0.5,
                                                  max=0.999)] = 0.9,
             steps: Annotated[int, typer.Option(help="SVI steps.", min=10)] = 600,
             seed: int = 0, as_json: JsonOpt = False) -> None:
    """How often Bayesian and bootstrap intervals cover a known true ranking (noisy judges)."""
    from rich.progress import track

    from tinmen.agents.judge.synthetic import replicate, summarise_runs

    runs = [replicate(seed + i, candidates=candidates, items=items, level=level, steps=steps)
            for i in track(range(replicates), description="benchmarks", disable=as_json)]
    summary = summarise_runs(runs, level=level, candidates=candidates, items=items)
    if as_json:
        return emit_json(summary)
    table = Table("method", "coverage", "joint coverage", "mean width", "Spearman ρ")
    for name in ("bayes", "bootstrap"):
        s = summary[name]
        table.add_row(name, f"{s['coverage']:.3f}", f"{s['joint']:.3f}", f"{s['width']:.2f}",
                      f"{s['spearman']:.3f}")
    out.print(table)
