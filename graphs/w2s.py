"""The weak-to-strong supervisor (Burns et al. 2023; Yang et al., ICLR 2025) as a graph.

``split`` → ``train_weak`` → ``weak_labels`` → [``train_intermediate``] → ``train_student``
→ ``train_strong`` → ``evaluate``.

* *split* builds the task for the session's data seed (the synthetic task, or the generated
  requests with frozen-LM features of every rung) and, where the task plants them, records
  the Bayes-optimal predictions of each rung (models ``oracle_weak`` / ``oracle_strong``).
* *train_weak* fits the weak rung on the ground-truth half (model ``weak``) and labels the
  other half with soft labels.
* *weak_labels* records one belief per supervised example (P(harmful) and confidence) and,
  with a filter, one decision per example: keep or drop the label.
* *train_intermediate* (bootstrapping) relabels the kept half with an intermediate rung
  (two-fold cross-fit; model ``intermediate``).
* *train_student* fits the strong student without conflict (``w2s``) and, when a conflict
  is set, under it as well (``w2s_conflict``) — same data, labels and initialisation, so the
  conflict tax is a within-session comparison.
* *train_strong* fits the strong ceiling on ground truth (``strong_ceiling``) of the
  *second* half — the examples the student learns with weak labels — as Burns et al.'s
  ``train_weak_to_strong.py`` does, so the weak model and the ceiling never share a training
  example (``ceiling_half="gt"`` puts it on the weak model's half instead).
* *evaluate* records the accuracies and PGR as metrics.

Every model's test-set predictions go to the ``prediction`` table under stable example ids
(and the two ground-truth models' predictions on the half each trained on, split
``train``, so the record shows which examples trained which); the metrics of
``tinmen.graphs.w2s_report`` are SQL over them.

What is recorded and what re-runs: the text task's features are the frozen LM's hidden
states, one recorded ``hidden_states`` call per model per node that needs them (the array
is a content-addressed ``.npy`` artifact, so every node and every session of a data seed
stores it once, and the pool's memo computes it once). A replay serves them from the record
with no weights. The data draw and the probes (small torch heads on those features) are
pure functions of the data seed, the options and the recorded features, seeded from the
data seed: they re-run on replay and give the same numbers bit for bit (CPU torch,
single-threaded or not, is deterministic for these dense ops).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

import numpy as np
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer
from pydantic import BaseModel, ConfigDict, Field, model_validator
from tinmen.agents.w2s.pipeline import (
    CONFLICT_ALPHA,
    PipelineConfig,
    accuracy,
    ceiling,
    confidence,
    cross_fit_labels,
    keep_mask,
    pgr,
    train_student,
)
from tinmen.agents.w2s.synthetic import SyntheticConfig, make_synthetic, rung_groups
from tinmen.agents.w2s.task import TaskData
from tinmen.agents.w2s.text import parse_rung
from tinmen.agents.w2s.textdata import sample_requests
from tinmen.agents.w2s.train import TrainConfig
from tinmen.graphs.runtime import AgentDef, Context, RunMode, recorded
from tinmen.models.client import derive_seed

from tinmen.errors import ConfigError

TEXT_SIZES = {"n_gt": 180, "n_w2s": 180, "n_test": 200, "n_help": 90}
TEXT_TRAIN = {"hidden": 0, "epochs": 30, "lr": 3e-3, "batch_size": 16}


class Options(BaseModel):
    """Options of one weak-to-strong session (``--set KEY=VALUE``); checked as a whole
    pipeline configuration before a session starts."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    task: Literal["synthetic", "text"] = Field("synthetic", description="The synthetic "
                                               "ladder, or text requests read by an LM.")
    weak: str = Field("1", description="The weak supervisor's rung.")
    strong: str = Field("8", description="The strong student's rung.")
    intermediate: str | None = Field(None, description="Bootstrap through this rung.")
    loss: Literal["xent", "logconf"] = Field("xent", description="The student's loss: "
                                             "xent (naive) or logconf (auxiliary confidence).")
    conflict: Literal["none", "implicit", "explicit"] = Field(
        "none", description="Conflicting objective (Yang et al.).")
    conflict_alpha: float = Field(CONFLICT_ALPHA, ge=0, description="Explicit-conflict "
                                  "weight (Yang et al.'s reward_alpha, 0.5).")
    ceiling_half: Literal["w2s", "gt"] = Field(
        "w2s", description="Ground-truth half the strong ceiling trains on: w2s = the second "
        "half, the student's examples (Burns et al.'s train_weak_to_strong.py); gt = the weak "
        "model's half (the earlier default, as in their train_simple.py).")
    filter: float | None = Field(None, ge=0.5, le=1.0, description="Keep weak labels with "
                                 "confidence ≥ this.")
    synthetic: dict[str, Any] = Field(default_factory=dict, description="SyntheticConfig "
                                      "fields.")
    text: dict[str, Any] = Field(default_factory=dict, description="Text split sizes: " +
                                 ", ".join(TEXT_SIZES) + ".")
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig fields.")
    feature_batch: int = Field(16, ge=1, le=4096, description="Texts per LM forward pass.")
    ladder: list[str] = Field(default_factory=list, description="Every rung of the study: "
                              "the text task asks each model for all their layers at once, "
                              "so conditions of a data seed share one forward pass.")

    @model_validator(mode="after")
    def _a_pipeline(self) -> Options:
        pipeline_config(self.model_dump())
        check_rungs(self.task, [*self.ladder, *(r for r in (self.weak, self.intermediate,
                                                              self.strong) if r)],
                    self.model_dump())
        return self


class Inputs(BaseModel):
    """What one w2s session is run on."""

    model_config = ConfigDict(extra="forbid")

    data_seed: int = Field(0, ge=0, description="Seeds the data draw and every probe's "
                           "training; sessions sharing it share data and ceilings.")


def _merge(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    return {**(old or {}), **(new or {})}


class State(TypedDict, total=False):
    data_seed: int
    bootstrap: bool  # relabel through the intermediate rung
    weak_labels: list[float]  # the weak model's P(harmful) on the supervised half
    keep: list[bool]  # which of them the supervisor keeps
    labels: list[float]  # what the student learns from (weak, or intermediate's)
    test: Annotated[dict[str, list[float]], _merge]  # test-set P(harmful) per model
    summary: dict[str, Any]


def config_of(ctx: Context) -> PipelineConfig:
    return pipeline_config(ctx.options)


def pipeline_config(options: dict[str, Any]) -> PipelineConfig:
    """The run's configuration from (resolved) session options; a user error if invalid."""
    train = dict(TEXT_TRAIN if options["task"] == "text" else {}, **options["train"])
    try:
        return PipelineConfig(weak=str(options["weak"]), strong=str(options["strong"]),
                              intermediate=options["intermediate"], loss=options["loss"],
                              conflict=options["conflict"],
                              conflict_alpha=options["conflict_alpha"],
                              filter=options["filter"], train=TrainConfig(**train))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"w2s options: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    """One line from a pydantic validation error (field: message) or a plain ValueError."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc).splitlines()[0]


def check_rungs(task: str, rungs: list[str], options: dict[str, Any]) -> None:
    """Fail before anything runs on a rung or a text option the task cannot build."""
    unknown = set(options.get("text", {})) - set(TEXT_SIZES)
    if unknown:
        raise ConfigError(f"text options are split sizes {', '.join(TEXT_SIZES)}; "
                          f"not {', '.join(sorted(unknown))}")
    for rung in rungs:
        try:
            if task == "synthetic":
                rung_groups(rung, SyntheticConfig(**options.get("synthetic", {})).groups)
            else:
                parse_rung(rung)
        except ValueError as exc:
            raise ConfigError(f"w2s options: {_reason(exc)}") from exc


def _rungs(config: PipelineConfig) -> list[str]:
    return [r for r in (config.weak, config.intermediate, config.strong) if r is not None]


# --------------------------------------------------------------------------- tasks
def load_task(ctx: Context, data_seed: int, views: tuple[str | None, ...] = ()) -> TaskData:
    """The task of this data seed with the feature views of rungs ``views``.

    Nothing is kept between nodes: the synthetic task is rebuilt (pure, ~35 ms at its
    default sizes), the text task's requests are re-drawn (pure) and its views are asked of
    the models (recorded; the pool memo answers repeats).
    """
    rungs = list(dict.fromkeys([*ctx.options["ladder"], *_rungs(config_of(ctx))]))
    if ctx.options["task"] == "synthetic":
        try:
            return make_synthetic(SyntheticConfig(**ctx.options["synthetic"]), data_seed, rungs)
        except ValueError as exc:
            raise ConfigError(f"w2s synthetic task: {_reason(exc)}") from exc
    return _text_task(ctx, data_seed, rungs, {v for v in views if v is not None})


def _text_task(ctx: Context, data_seed: int, rungs: list[str], wanted: set[str]) -> TaskData:
    sizes = {**TEXT_SIZES, **ctx.options["text"]}
    texts, y, split, helpful, ids = sample_requests(data_seed, **sizes)
    views: dict[str, np.ndarray] = {}
    for spec_text, members in _rungs_by_model(rungs).items():
        needed = [(name, layer) for name, layer in members if name in wanted]
        if not needed:
            continue
        # every layer of this model in the study, so each request is the same one
        layers = sorted({layer for _, layer in members}, key=lambda v: -1 if v is None else v)
        states = ctx.models.hidden_states(_role(ctx, spec_text), texts, layers,
                                          batch_size=ctx.options["feature_batch"])
        for name, layer in needed:
            views[name] = states[layer]
    return TaskData(ids=ids, y=y, split=split, views=views, help_label=helpful, texts=texts)


def _rungs_by_model(rungs: list[str]) -> dict[str | None, list[tuple[str, int | None]]]:
    grouped: dict[str | None, list[tuple[str, int | None]]] = {}
    for text in rungs:
        rung = parse_rung(text)  # checked by Options
        grouped.setdefault(rung.spec, []).append((text, rung.layer))
    return grouped


def _role(ctx: Context, spec_text: str | None) -> str:
    """The role a rung's model is called under: ``lm``, or ``rung:SPEC`` for a rung that
    names its own model (bound here, so every call records that spec; a replay takes the
    spec from the record and never resolves SPEC)."""
    if spec_text is None:
        if "lm" not in ctx.models.bindings:
            raise ConfigError("the text ladder needs a language model: pass --model lm=SPEC "
                              "(default smollm2)")
        return "lm"
    role = f"rung:{spec_text}"
    if ctx.mode is not RunMode.REPLAY and role not in ctx.models.bindings:
        from tinmen.models.registry import resolve_spec

        ctx.models.rebind(role, resolve_spec(spec_text))
    return role


# --------------------------------------------------------------------------- helpers
def _seed(state: State, *parts: object) -> int:
    """Training seeds derive from the data seed, so conditions sharing data share ceilings."""
    return derive_seed(state["data_seed"], *parts) % (2**31)


def _record(ctx: Context, task: TaskData, model: str, p1: np.ndarray,
            split: str = "test") -> None:
    """Per-example predictions of ``model`` on ``split`` (a task split; a ground-truth
    model's training half is recorded as split ``train``)."""
    y = task.labels(split)
    for example_id, p, label in zip(task.ids_of(split), p1, y):
        ctx.recorder.prediction(model, example_id, label=float(label),
                                predicted=float(p > 0.5), probability=round(float(p), 6),
                                split="test" if split == "test" else "train")


def _train(config: PipelineConfig, seed: int) -> TrainConfig:
    return config.train.model_copy(update={"seed": seed})


# --------------------------------------------------------------------------- nodes
def split(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    task = load_task(ctx, state["data_seed"])
    config = config_of(ctx)
    for name in ("gt", "w2s", "test", "help"):
        ctx.recorder.metric(f"n_{name}", task.count(name))
    if task.oracle:
        test = task.index("test")
        for role, rung in (("weak", config.weak), ("strong", config.strong),
                           ("intermediate", config.intermediate)):
            if rung is not None:
                _record(ctx, task, f"oracle_{role}", task.oracle[rung][test].astype(float))
    return {}


def train_weak(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    config = config_of(ctx)
    task = load_task(ctx, state["data_seed"], (config.weak,))
    model = ceiling(task, config.weak, _train(config, _seed(state, "ceiling", config.weak)))
    test = model.proba(task.view(config.weak, "test"))
    _record(ctx, task, "weak", test)
    _record(ctx, task, "weak", model.proba(task.view(config.weak, "gt")), split="gt")
    labels = model.proba(task.view(config.weak, "w2s"))
    return {"weak_labels": labels.round(6).tolist(), "test": {"weak": test.tolist()}}


def weak_labels(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    config = config_of(ctx)
    task = load_task(ctx, state["data_seed"])
    p1 = np.asarray(state["weak_labels"])
    keep = keep_mask(p1, config.filter)
    for example_id, p, c, kept in zip(task.ids_of("w2s"), p1, confidence(p1), keep):
        subject = ctx.recorder.belief(
            f"weak_label/{example_id}", {"p_harmful": float(p), "confidence": float(c)},
            distribution={"harmful": float(p), "harmless": 1.0 - float(p)}, agent="weak")
        if config.filter is not None:
            ctx.recorder.decision(
                "keep_weak_label", options=[{"option": "keep", "score": float(c) - config.filter},
                                            {"option": "drop", "score": config.filter - float(c)}],
                chosen="keep" if kept else "drop", uncertainty=1.0 - float(c),
                rationale=f"confidence {c:.3f} vs threshold {config.filter}",
                based_on=[subject], agent="supervisor")
    ctx.recorder.metric("kept_share", float(keep.mean()))
    return {"keep": keep.tolist(), "labels": state["weak_labels"]}


def train_intermediate(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    config = config_of(ctx)
    task = load_task(ctx, state["data_seed"], (config.intermediate,))
    keep = np.asarray(state["keep"])
    rung = config.intermediate
    train = _train(config, _seed(state, "intermediate", rung)).model_copy(
        update={"loss": config.loss})
    relabels, test = cross_fit_labels(task.view(rung, "w2s")[keep],
                                      np.asarray(state["weak_labels"])[keep], train,
                                      task.view(rung, "test"))
    _record(ctx, task, "intermediate", test)
    labels = np.asarray(state["weak_labels"], dtype=np.float64)
    labels[keep] = relabels
    return {"labels": labels.round(6).tolist(), "test": {"intermediate": test.tolist()}}


def train_student_node(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    config = config_of(ctx)
    task = load_task(ctx, state["data_seed"], (config.strong,))
    seeded = config.model_copy(update={"train": _train(config, _seed(state, "student"))})
    labels, keep = np.asarray(state["labels"]), np.asarray(state["keep"])
    x_test = task.view(config.strong, "test")
    out: dict[str, list[float]] = {}
    for name, conflict in (("w2s", "none"), ("w2s_conflict", config.conflict)):
        if name == "w2s_conflict" and conflict == "none":
            continue
        p1 = train_student(task, seeded, labels, keep, conflict).proba(x_test)
        _record(ctx, task, name, p1)
        out[name] = p1.tolist()
    return {"test": out}


def train_strong(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    config = config_of(ctx)
    task = load_task(ctx, state["data_seed"], (config.strong,))
    half = ctx.options["ceiling_half"]
    model = ceiling(task, config.strong, _train(config, _seed(state, "ceiling", config.strong)),
                    half=half)
    test = model.proba(task.view(config.strong, "test"))
    _record(ctx, task, "strong_ceiling", test)
    _record(ctx, task, "strong_ceiling", model.proba(task.view(config.strong, half)),
            split=half)
    return {"test": {"strong_ceiling": test.tolist()}}


def evaluate(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    task = load_task(ctx, state["data_seed"])
    y = task.labels("test")
    acc = {m: accuracy(np.asarray(p), y) for m, p in state["test"].items()}
    for model, value in acc.items():
        ctx.recorder.metric(f"accuracy/{model}", value)
    gap = pgr(acc["weak"], acc["w2s"], acc["strong_ceiling"])
    if gap is not None:
        ctx.recorder.metric("pgr", gap)
    return {"summary": {"accuracy": acc, "pgr": gap}}


def route(state: State) -> Literal["train_intermediate", "train_student"]:
    return "train_intermediate" if state.get("bootstrap") else "train_student"


def build(checkpointer: Checkpointer) -> object:
    g = StateGraph(State, context_schema=Context)
    for name, fn in (("split", split), ("train_weak", train_weak), ("weak_labels", weak_labels),
                     ("train_intermediate", train_intermediate),
                     ("train_student", train_student_node), ("train_strong", train_strong),
                     ("evaluate", evaluate)):
        g.add_node(name, recorded(name, fn, agent="w2s"))
    g.add_edge(START, "split")
    g.add_edge("split", "train_weak")
    g.add_edge("train_weak", "weak_labels")
    g.add_conditional_edges("weak_labels", route)
    g.add_edge("train_intermediate", "train_student")
    g.add_edge("train_student", "train_strong")
    g.add_edge("train_strong", "evaluate")
    g.add_edge("evaluate", END)
    return g.compile(checkpointer=checkpointer)


def _initial(inputs: dict[str, Any], options: dict[str, Any]) -> State:
    return {"data_seed": int(inputs["data_seed"]), "bootstrap": bool(options["intermediate"]),
            "test": {}}


AGENT = AgentDef(
    name="w2s", build=build, roles={"lm": ""}, initial_state=_initial, options=Options,
    inputs=Inputs, rep_inputs=lambda inputs, rep: {**inputs, "data_seed": rep},
    report="tinmen.graphs.w2s_report:report",
    output=lambda s: dict(s.get("summary") or {}),
    description="weak-to-strong: weak ceiling → weak labels → student → strong ceiling; "
                "PGR, knowledge regions, deception under conflict")


# --------------------------------------------------------------------------- studies
DEFAULT_LADDER = {"synthetic": ["1", "4", "8"], "text": ["2", "8", "30"]}


def check_ladder(task: str, ladder: list[str], options: dict[str, Any]) -> None:
    """Fail before anything runs on a ladder the task cannot build."""
    if len(ladder) < 2:
        raise ConfigError("--ladder needs at least two rungs (weak,strong)")
    check_rungs(task, ladder, options)


def conditions(task: str, ladder: list[str], losses: list[str], conflicts: list[str],
               bootstrap: bool, filter: float | None) -> list[Any]:
    """Every weak–strong pair of the ladder × loss × conflict; bootstrapping adds the chain
    first → middle → last for each loss × conflict."""
    from tinmen.graphs.study import Condition

    chains: list[tuple[str, str | None, str]] = [
        (ladder[i], None, ladder[j]) for i in range(len(ladder))
        for j in range(i + 1, len(ladder))]
    if bootstrap:
        if len(ladder) != 3:
            raise ConfigError("--bootstrap needs a three-rung ladder weak,intermediate,strong")
        chains.append((ladder[0], ladder[1], ladder[2]))
    out = []
    for (weak, mid, strong), loss, conflict in (
            (c, lo, co) for c in chains for lo in losses for co in conflicts):
        path = ">".join(r for r in (weak, mid, strong) if r is not None)
        suffix = f"|filter={filter}" if filter is not None else ""
        out.append(Condition(key=f"{task}:{path}|{loss}|{conflict}{suffix}", params={
            "task": task, "weak": weak, "intermediate": mid, "strong": strong, "loss": loss,
            "conflict": conflict, "filter": filter}))
    return out


def study_plan(task: str, ladder: list[str], losses: list[str], conflicts: list[str], *,
               bootstrap: bool, filter: float | None, seeds: int, options: dict[str, Any],
               bindings: dict[str, Any], seed: int = 0) -> Any:
    """The study ``tinmen w2s run`` runs: one session per condition × data seed."""
    from tinmen.graphs.study import StudyPlan

    check_ladder(task, ladder, options)
    conds = conditions(task, ladder, losses, conflicts, bootstrap, filter)
    config = {"task": task, "ladder": ladder, "losses": losses, "conflicts": conflicts,
              "bootstrap": bootstrap, "filter": filter, "options": options}
    return StudyPlan(graph=AGENT, name=f"w2s-{task}", conditions=conds, reps=seeds,
                     inputs_for=lambda cond, rep: {"data_seed": rep},
                     bindings_for=lambda cond: bindings,
                     options_for=lambda cond: {**options, **cond.params, "ladder": ladder},
                     seed=seed, config=config)
