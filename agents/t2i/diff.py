"""What changed between two versions of a belief graph: entities added or removed, and every
distribution (attribute, relation, probability of appearing) that moved."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # belief.py re-exports this module; importing it here would be a cycle
    from tinmen.agents.t2i.belief import BeliefGraph

EPS = 1e-9


class Change(BaseModel):
    """One distribution that differs; ``before``/``after`` is None where it did not exist."""

    model_config = ConfigDict(frozen=True)
    key: str  # "circle.color", "circle.present" or "circle|square"
    before: dict[str, float] | None = None
    after: dict[str, float] | None = None
    pinned: bool = False

    @property
    def line(self) -> str:
        def top(d: dict[str, float]) -> str:
            value = max(d, key=lambda v: d[v])
            return f"{value} ({d[value]:.2f})"

        if self.before is None and self.after is not None:
            return f"+ {self.key} = {top(self.after)}"
        if self.after is None and self.before is not None:
            return f"- {self.key}"
        assert self.before is not None and self.after is not None
        return (f"~ {self.key}: {top(self.before)} -> {top(self.after)}"
                f"{' pinned' if self.pinned else ''}")


class BeliefDiff(BaseModel):
    model_config = ConfigDict(frozen=True)
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[Change, ...] = ()
    prompt: tuple[str, str] | None = None

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.prompt)

    def lines(self) -> list[str]:
        out = [f"+ entity {n}" for n in self.added] + [f"- entity {n}" for n in self.removed]
        out += [c.line for c in self.changed]
        if self.prompt:
            out.append(f"~ prompt: {self.prompt[0]!r} -> {self.prompt[1]!r}")
        return out


def distributions(belief: BeliefGraph) -> dict[str, tuple[dict[str, float], bool]]:
    """Every distribution in the graph by key, with its pinned flag."""
    out: dict[str, tuple[dict[str, float], bool]] = {}
    for e in belief.entities:
        out[f"{e.name}.present"] = ({"yes": e.probability, "no": 1 - e.probability}, e.pinned)
        for a in e.attributes:
            out[f"{e.name}.{a.name}"] = (dict(a.candidates), a.pinned)
    for r in belief.relations:
        out[r.key] = (dict(r.candidates), r.pinned)
    return out


def _moved(a: dict[str, float], b: dict[str, float]) -> bool:
    return set(a) != set(b) or any(abs(a[k] - b[k]) > EPS for k in a)


def diff(old: BeliefGraph, new: BeliefGraph) -> BeliefDiff:
    """Changes from ``old`` to ``new`` (entities of a removed entity are not re-listed)."""
    old_names = [e.name for e in old.entities]
    new_names = [e.name for e in new.entities]
    added = tuple(n for n in new_names if n not in old_names)
    removed = tuple(n for n in old_names if n not in new_names)
    before, after = distributions(old), distributions(new)
    gone = {f"{n}." for n in removed}
    changes = []
    for key in list(before) + [k for k in after if k not in before]:
        b, a = before.get(key), after.get(key)
        if b is None and a is not None and key.split(".")[0] in added:
            continue  # part of an added entity
        if a is None and any(key.startswith(g) for g in gone):
            continue  # part of a removed entity
        if a is None or b is None or _moved(b[0], a[0]) or b[1] != a[1]:
            changes.append(Change(key=key, before=b[0] if b else None,
                                  after=a[0] if a else None, pinned=bool(a and a[1])))
    prompt = (old.prompt, new.prompt) if old.prompt != new.prompt else None
    return BeliefDiff(added=added, removed=removed, changed=tuple(changes), prompt=prompt)
