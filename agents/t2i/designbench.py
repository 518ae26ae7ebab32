"""DesignBench (Hahn et al., 2025) as eval items, and the measures that need no ground truth.

DesignBench ships 30 photos with a short prompt (what the user types) and a long description
(what the simulated user holds) but no structured scene, so fact coverage and belief NLL
cannot be computed. What can be measured honestly from the belief alone:

* belief entropy per turn, total and importance-weighted (:func:`weighted_entropy`);
* questions asked;
* whether an answer changed the belief (:func:`belief_change`): some distribution — an
  attribute slot, a relation, or an entity's presence — moved by more than
  :data:`CHANGE_EPSILON` in total variation between the parse before the answer and the
  parse after it, or a slot, relation or entity appeared or disappeared.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from tinmen.agents.t2i.belief import BeliefGraph, entropy
from tinmen.agents.t2i.facts import PRESENT
from tinmen.agents.t2i.scenes import Item

from tinmen.errors import ConfigError

CHANGE_EPSILON = 0.05  # total variation a distribution must move by to count as changed
FIELDS = ("short_description", "long_description")


def load_designbench(path: str | Path, limit: int | None = None) -> list[Item]:
    """DesignBench's ``prompts_and_classes.json`` (``{"0": {"index", "short_description",
    "long_description", "link"}, ...}``) as items without a scene, in index order."""
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read DesignBench file {path}: {exc.strerror}; pass the "
                          "path of prompts_and_classes.json") from exc
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(f"{path} is not a DesignBench JSON file ({type(exc).__name__}); "
                          "expected prompts_and_classes.json") from None
    if not isinstance(data, Mapping) or not data:
        raise ConfigError(f"{path} is not a DesignBench file: expected a JSON object of "
                          '{"0": {"short_description", "long_description"}, ...}')
    items = [_item(path, key, row) for key, row in data.items()]
    items.sort(key=lambda it: _order(it.id))
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, not {limit}")
    return items[:limit] if limit is not None else items


def _item(path: str | Path, key: str, row: Any) -> Item:
    if not isinstance(row, Mapping) or not all(
            isinstance(row.get(f), str) and row[f].strip() for f in FIELDS):
        raise ConfigError(f"{path}: DesignBench item '{key}' needs non-empty "
                          "'short_description' and 'long_description' strings")
    index = row.get("index", key)
    return Item(id=f"designbench-{index}", short=" ".join(row["short_description"].split()),
                long=row["long_description"].strip())


def _order(item_id: str) -> tuple[int, str]:
    tail = item_id.rpartition("-")[2]
    return (int(tail), "") if tail.isdigit() else (1 << 30, tail)


# --------------------------------------------------------------------------- measures
def weighted_entropy(belief: BeliefGraph) -> float:
    """Entropy (nats) of every uncertain quantity, each weighted by its importance: a slot
    by entity importance × attribute importance × P(entity), presence by the entity's
    importance, a relation by its own — what the attribute policy ranks questions by."""
    total = sum(s.weight * s.entropy for s in belief.slots)
    total += sum(e.importance * entropy((e.probability, 1 - e.probability))
                 for e in belief.entities)
    return total + sum(r.importance * r.entropy for r in belief.relations)


def distributions(belief: BeliefGraph) -> dict[str, dict[str, float]]:
    """Every distribution of the graph by key: "cake.color", "cake.present", "cake|table"."""
    out = {s.key: dict(s.candidates) for s in belief.slots}
    out.update({f"{e.name}.{PRESENT}": {"yes": e.probability, "no": 1 - e.probability}
                for e in belief.entities})
    out.update({r.key: dict(r.candidates) for r in belief.relations})
    return out


def total_variation(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """½ Σ |p − q| over the union of values (a missing value has probability 0)."""
    return 0.5 * sum(abs(p.get(v, 0.0) - q.get(v, 0.0)) for v in set(p) | set(q))


class BeliefChange(BaseModel):
    """How one answer moved the belief (the parse before it against the parse after)."""

    model_config = ConfigDict(frozen=True)
    changed: bool
    max_tv: float  # the largest total-variation move of any distribution both graphs hold
    moved: tuple[str, ...] = ()  # keys that moved by more than epsilon
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def changed_beyond(self, key: str) -> bool:
        """Whether anything other than ``key`` (the slot asked about) changed."""
        return any(k != key for k in self.moved + self.added + self.removed)


def belief_change(before: BeliefGraph, after: BeliefGraph,
                  epsilon: float = CHANGE_EPSILON) -> BeliefChange:
    """Changed = some distribution moved by > ``epsilon`` in total variation, or a slot,
    relation or entity appeared or disappeared."""
    old, new = distributions(before), distributions(after)
    shared = [k for k in old if k in new]
    moves = {k: total_variation(old[k], new[k]) for k in shared}
    moved = tuple(k for k in shared if moves[k] > epsilon)
    added = tuple(k for k in new if k not in old)
    removed = tuple(k for k in old if k not in new)
    return BeliefChange(changed=bool(moved or added or removed),
                        max_tv=max(moves.values(), default=0.0), moved=moved, added=added,
                        removed=removed)
