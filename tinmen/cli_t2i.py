"""`tinmen t2i`: the proactive clarifying text-to-image agent (run, eval) and the demo."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from PIL import Image
from rich.tree import Tree

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

app = typer.Typer(help="The proactive clarifying text-to-image agent (Hahn et al., 2025). "
                  "Roles: parser, questioner (default smollm2), user (for --user llm or "
                  "llm-free), "
                  "t2i (default shapes-renderer), scorer (optional image-text scorer), embedder "
                  "(optional: -m embedder=minilm matches synonyms in fact coverage).",
                  no_args_is_help=True)

POLICY_HELP = ("attribute (open question on the most uncertain important slot) | binary "
               "(yes/no on one candidate) | random / random-binary (baselines: a random slot, "
               "open or yes/no) | belief-llm-template (alias belief-llm: the LLM rewords the "
               "graph's question) | ag3 (the paper's belief-based LLM agent: the LLM reads the "
               "belief and the dialogue and writes the question) | llm-only (no graph)")
# values are checked by the agent's options model (graphs/t2i.py Options): one message,
# naming the option, for the CLI, `tinmen run t2i --set` and the library alike
PolicyOpt = Annotated[str, typer.Option(help=POLICY_HELP)]
TurnsOpt = Annotated[int, typer.Option("--max-turns", help="Question budget (0-100).")]


def belief_tree(belief_json: dict[str, Any]) -> Tree:
    from tinmen.agents.t2i.belief import BeliefGraph

    belief = BeliefGraph.from_json(belief_json)
    tree = Tree(f"[bold]belief[/] (entropy {belief.total_entropy:.2f} nats)")
    for entity in belief.entities:
        node = tree.add(f"[cyan]{entity.name}[/] ({entity.kind}, p={entity.probability:.2f})")
        for slot in belief.slots_of(entity.name):
            top = sorted(slot.candidates.items(), key=lambda kv: -kv[1])[:3]
            shown = ", ".join(f"{v} {p:.2f}" for v, p in top if p > 0)
            node.add(f"{slot.attribute}: {shown}{' [green]pinned[/]' if slot.pinned else ''}")
    return tree


def save_image(store: Any, sha: str | None, name: str) -> Path | None:
    from tinmen.api import artifact_bytes
    from tinmen.config import out_dir

    if not sha:
        return None
    path = out_dir() / f"{name}.png"
    path.write_bytes(artifact_bytes(store, sha))
    with Image.open(path) as image:  # tiny model pictures: also an enlarged copy to look at
        if max(image.size) < 128:
            factor = 256 // max(image.size)
            size = (image.width * factor, image.height * factor)
            image.resize(size, Image.Resampling.NEAREST).save(
                path.with_name(f"{name}-x{factor}.png"))
    return path


def save_picture(belief_json: dict[str, Any], name: str) -> Path:
    from tinmen.agents.t2i.belief import BeliefGraph
    from tinmen.agents.t2i.picture import draw_belief
    from tinmen.config import out_dir

    return draw_belief(BeliefGraph.from_json(belief_json), out_dir() / f"{name}-belief.png")


def _terminal_answer(payload: dict[str, Any]) -> str | None:
    if payload.get("error"):
        out.print(f"[red]{payload['error']}[/] — try again")
    else:
        out.print(belief_tree(payload["belief"]))
    options = " / ".join(payload.get("options") or [])
    out.print(f"[bold]{payload['question']}[/] [dim]({options}; or an edit: set E.A=V, "
              "drop E, add E)[/]")
    line = sys.stdin.readline()
    return line.strip() or None if line else None


@app.command()
def run(prompt: Annotated[str, typer.Option(help="What you want an image of.")],
        policy: PolicyOpt = "attribute", max_turns: TurnsOpt = 5, model: ModelOpt = None,
        db: DbOpt = None, seed: int = 0,
        vocabulary: Annotated[str, typer.Option(
            help="shapes: the shapes world and a list of everyday objects; open: any span "
            "of the prompt the parser proposes.")] = "shapes") -> None:
    """Interactive: the agent asks, you answer (or edit its belief graph) in the terminal."""
    from tinmen.cli_run import step_printer
    from tinmen.graphs.session import checkpointer_for, run_session
    from tinmen.graphs.t2i import AGENT
    from tinmen.models.pool import ModelPool
    from tinmen.models.registry import parse_bindings

    store = open_store(db)
    result = run_session(store, AGENT, {"short": prompt}, parse_bindings(model, AGENT.roles),
                         pool=ModelPool(), seed=seed, answer=_terminal_answer,
                         checkpointer=checkpointer_for(store), on_step=step_printer(True),
                         options={"policy": policy, "user": "human", "max_turns": max_turns,
                                  "vocabulary": vocabulary})
    if result.status == "interrupted":
        out.print(f"paused; continue with: tinmen resume {result.session_id[:12]}")
        return
    out.print(belief_tree(result.output["belief"]))
    out.print(f"final prompt: {result.output['final_prompt']}")
    name = f"t2i-{result.session_id[:12]}"
    image = save_image(store, result.output.get("image"), name)
    picture = save_picture(result.output["belief"], name)
    out.print(f"image: {image}  belief graph: {picture}\nsession: {result.session_id[:12]} "
              f"in {store.url}")


@app.command("eval")
def eval_cmd(items: Annotated[Path | None, typer.Option(
                 help="JSONL of {id, short, long, scene?}; default: the built-in synthetic "
                 "benchmark")] = None,
             synthetic: Annotated[int, typer.Option(help="How many synthetic scenes when no "
                                                    "--items.", min=1, max=10_000)] = 20,
             resume: Annotated[int | None, typer.Option(
                 help="Finish an interrupted eval study with this id (same items, policies "
                 "and options): only the sessions it lacks are run.", min=1)] = None,
             policy: Annotated[list[str] | None, typer.Option(
                 help="Repeatable: the policies compared on the same items (one study). "
                 + POLICY_HELP + ". Default: attribute.")] = None,
             user: Annotated[list[str] | None, typer.Option(
                 help="Repeatable, compared in one study: oracle | llm (picks an offered "
                 "option) | llm-free (the paper's user: answers in free text, read back by the "
                 "parser) | stochastic. Default: oracle.")] = None,
             stop_rule: Annotated[list[str] | None, typer.Option(
                 "--stop-rule", help="Repeatable, compared in one study: settled (every "
                 "important candidate p ≤ 0.1 or ≥ 0.9) | reference (every attribute's top "
                 "candidate ≥ 0.7). Default: settled.")] = None,
             max_turns: TurnsOpt = 5, model: ModelOpt = None, db: DbOpt = None,
             seed: int = 0,
             workers: Annotated[int, typer.Option(help="Sessions in parallel.", min=1)] = 1,
             executor: ExecutorOpt = "threads",
             images: Annotated[str, typer.Option(
                 help="end: draw the final belief only; each: draw (and, with -m scorer=SPEC, "
                 "score against the description) every turn")] = "end",
             designbench: Annotated[Path | None, typer.Option(
                 help="DesignBench's prompts_and_classes.json (Hahn et al.): its 30 prompts "
                 "as items, without ground-truth scenes, so fact coverage and belief NLL are "
                 "reported as skipped; use --user llm (the LLM holds the long description). "
                 "Instead of --items.")] = None,
             limit: Annotated[int | None, typer.Option(
                 help="Only the first N items (of --designbench, --items or the synthetic "
                 "set).", min=1)] = None,
             vocabulary: Annotated[str | None, typer.Option(
                 help="shapes: entities from the shapes world and a list of everyday objects; "
                 "open: any span of the prompt the parser proposes. Default: open with "
                 "--designbench, else shapes.")] = None,
             as_json: JsonOpt = False) -> None:
    """Evaluate over items with a simulated user; per-turn coverage vs single-turn.
    Progress is shown on stderr; `tinmen report STUDY` draws the per-turn plot."""
    from tinmen.graphs.t2i import AGENT
    from tinmen.graphs.t2i_eval import evaluate_items
    from tinmen.models.registry import parse_bindings

    quiet_transformers()
    chosen = _chosen_items(items, designbench, synthetic, seed, limit)
    users = user or ["oracle"]
    llm_user = any(u in ("llm", "llm-free") for u in users)
    bindings = parse_bindings(model, dict(AGENT.roles, user="smollm2" if llm_user else ""))
    store = open_store(db, create=resume is None)  # a resume needs the study's store
    summary = evaluate_items(store, chosen, bindings, policy=policy or ["attribute"],
                             user=users, stop_rule=stop_rule or ["settled"],
                             max_turns=max_turns, seed=seed, progress=True,
                             workers=workers, images=images, executor=executor,
                             study_id=resume,
                             vocabulary=vocabulary or ("open" if designbench else "shapes"))
    if as_json:
        return emit_json(summary)
    for one in summary.get("by_policy", {"": summary}).values():
        _print_summary(one)


def _chosen_items(items: Path | None, designbench: Path | None, synthetic: int, seed: int,
                  limit: int | None) -> list[Any]:
    """The eval's items, read before any store is opened (a bad file writes nothing)."""
    from tinmen.agents.t2i.designbench import load_designbench
    from tinmen.agents.t2i.scenes import load_items, synthetic_items
    from tinmen.errors import ConfigError

    if items and designbench:
        raise ConfigError("--items and --designbench both name the items; pass one of them")
    if designbench:
        return load_designbench(designbench, limit)
    chosen = load_items(items) if items else synthetic_items(synthetic, seed=seed)
    return chosen[:limit] if limit else chosen


def _print_summary(summary: dict[str, Any]) -> None:
    for row in summary["turns"]:
        shown = [f"{label} {row[key]:.3f}" for key, label in (
            ("fact_coverage_argmax", "coverage (argmax)"),
            ("fact_coverage", "coverage (strict p>0.5)"), ("belief_nll", "belief NLL"),
            ("image_text_alignment", "image-text alignment"),
            ("belief_entropy_weighted", "weighted entropy"),
            ("answer_changed_belief", "answers that changed the belief")) if key in row]
        out.print(f"{summary['policy']} turn {row['turn']}: " + "  ".join(shown))
    if summary.get("skipped"):
        out.print(f"skipped (no ground-truth scene): {', '.join(summary['skipped'])}")
    reach = summary["questions_to_coverage"]
    mean = "—" if reach["mean"] is None else f"{reach['mean']:.2f}"
    argmax = (summary.get("questions_to_coverage_argmax") or {}).get("mean")
    headline = "—" if argmax is None else f"{argmax:.2f}"
    out.print(f"study {summary['study_id']}: {summary['items']} items, policy "
              f"{summary['policy']}; mean questions to {reach['target']:.0%} coverage: "
              f"argmax {headline}, strict {mean}"
              f"  (report: tinmen report {summary['study_id']})")


DEMO_MODELS = ["t2i=shapes-diffusion", "scorer=shapes-clip"]


def run_demo(db: str | None = None, as_json: bool = False) -> None:
    """The README's main job: the agent clarifies one built-in scene with a simulated user.

    SmolLM2 parses and words the questions; every turn the shapes world's diffusion model
    draws the belief and its CLIP model scores the picture against the hidden description.
    """
    from tinmen.agents.t2i.scenes import synthetic_items
    from tinmen.cli_run import step_printer
    from tinmen.graphs.session import checkpointer_for, run_session
    from tinmen.graphs.t2i import AGENT
    from tinmen.models.pool import ModelPool
    from tinmen.models.registry import parse_bindings

    quiet_transformers()
    item = synthetic_items(6, seed=7)[5]
    store = open_store(db)
    bindings = parse_bindings(DEMO_MODELS, AGENT.roles)
    if not as_json:
        out.print(f"[bold]user's prompt:[/] {item.short}\n[dim]hidden intent (simulated user):"
                  f" {item.long}[/]\nparser and questions: packaged SmolLM2-135M on CPU; "
                  "pictures: shapes-diffusion, scored by shapes-clip …")
    result = run_session(store, AGENT, item.model_dump(mode="json"), bindings,
                         pool=ModelPool(), seed=0, checkpointer=checkpointer_for(store),
                         on_step=step_printer(True),
                         options={"policy": "belief-llm-template", "user": "oracle",
                                  "max_turns": 5,
                                  "images": "each"})
    turns = result.output["turns"]
    name = f"t2i-demo-{result.session_id[:12]}"
    image = save_image(store, result.output.get("image"), name)
    picture = save_picture(result.output["belief"], name)
    summary = {"session_id": result.session_id, "db": store.url, "image": str(image),
               "belief_picture": str(picture),
               "single_turn_coverage": turns[0]["fact_coverage"],
               "final_coverage": turns[-1]["fact_coverage"],
               "single_turn_alignment": turns[0].get("image_text_alignment"),
               "final_alignment": turns[-1].get("image_text_alignment"),
               "questions": result.output["questions"],
               "final_prompt": result.output["final_prompt"]}
    if as_json:
        return emit_json(summary)
    for q, t in zip(result.output["questions"], turns[1:]):
        out.print(f"  asked: {q}  → coverage {t['fact_coverage']:.2f}")
    out.print(belief_tree(result.output["belief"]))
    out.print(f"fact coverage: single-turn {summary['single_turn_coverage']:.2f} → "
              f"{summary['final_coverage']:.2f} after {len(summary['questions'])} questions")
    if summary["final_alignment"] is not None:
        out.print(f"CLIPScore of the picture vs the hidden description: single-turn "
                  f"{summary['single_turn_alignment']:.3f} → {summary['final_alignment']:.3f}")
    out.print(f"final prompt: {summary['final_prompt']}\nimage: {image}   belief graph: "
              f"{picture}\nstore: {store.url}\n"
              f"inspect: tinmen show {result.session_id[:12]}    replay: tinmen replay "
              f"{result.session_id[:12]}")


@app.command()
def demo(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Same as `tinmen demo`."""
    run_demo(db, as_json)
