"""LangGraph checkpointers that never run code named by the data they load.

LangGraph's default serializer rebuilds any ``(module, name, args)`` it finds in a
checkpoint blob by importing ``module`` and calling ``name(args)`` — so whoever can write to
the store's checkpoint tables can make ``tinmen resume`` call ``os.system``. tinmen's graph
states are plain JSON-like dicts, so every checkpointer tinmen creates uses
:class:`StrictSerializer`: the builtin and LangGraph types of LangGraph's own safe list plus
the types registered here, and nothing else. A blob naming anything else (or stored as a
pickle) is refused with a one-line :class:`~tinmen.errors.StoreError` before any of it is
rebuilt, instead of being called — or, as LangGraph's strict mode does, silently replaced
by its raw arguments.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import ormsgpack
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde import jsonplus
from langgraph.checkpoint.serde._msgpack import SAFE_MSGPACK_METHODS, SAFE_MSGPACK_TYPES

from tinmen.errors import StoreError

# ext codes whose payload names a callable: (module, name, ...) / (module, name, arg, method)
_CONSTRUCTORS = {jsonplus.EXT_CONSTRUCTOR_SINGLE_ARG, jsonplus.EXT_CONSTRUCTOR_POS_ARGS,
                 jsonplus.EXT_CONSTRUCTOR_KW_ARGS, jsonplus.EXT_PYDANTIC_V1,
                 jsonplus.EXT_PYDANTIC_V2}
_DATA_ONLY = {jsonplus.EXT_NUMPY_ARRAY, jsonplus.EXT_DELTA_SNAPSHOT}
_PLAIN_TYPES = {"null", "bytes", "bytearray", "msgpack"}

_extra_types: set[tuple[str, str]] = set()


def allow_state_types(*classes: type) -> None:
    """Let checkpoints hold instances of ``classes`` (an agent whose state carries its own
    pydantic models or dataclasses registers them once, at import)."""
    for cls in classes:
        if not isinstance(cls, type):
            raise TypeError(f"allow_state_types takes classes, not {cls!r}")
        _extra_types.add((cls.__module__, cls.__qualname__))


def _project_types() -> set[tuple[str, str]]:
    """The types tinmen itself may put in a graph state."""
    from tinmen.storage.orm import RunMode, Status

    return {(c.__module__, c.__qualname__) for c in (RunMode, Status)}


def allowed_types() -> frozenset[tuple[str, ...]]:
    return frozenset(SAFE_MSGPACK_TYPES | _project_types() | _extra_types)


class StrictSerializer(jsonplus.JsonPlusSerializer):
    """JsonPlusSerializer limited to :func:`allowed_types`; see the module docstring."""

    def __init__(self) -> None:
        super().__init__(pickle_fallback=False, allowed_msgpack_modules=allowed_types())

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        kind, blob = data
        if kind not in _PLAIN_TYPES:
            raise _refused(f"a value stored as '{kind}'")
        if kind == "msgpack":
            _check_names(blob, allowed_types())
        return super().loads_typed(data)


def _check_names(blob: bytes, allowed: frozenset[tuple[str, ...]]) -> None:
    """Walk every ext value of ``blob`` (nested ones too) without rebuilding any, and refuse
    the blob if one names a callable outside ``allowed``. ormsgpack turns an exception in the
    hook into a bare ValueError, so the hook collects what it saw and we raise afterwards."""
    refused: list[str] = []

    def visit(code: int, payload: bytes) -> None:
        if code in _DATA_ONLY:
            _unpack(payload, visit)
            return
        if code not in _CONSTRUCTORS and code != jsonplus.EXT_METHOD_SINGLE_ARG:
            refused.append(f"an unknown value kind {code}")
            return
        fields = _unpack(payload, visit)
        if not isinstance(fields, (list, tuple)) or len(fields) < 3:
            refused.append("a malformed value")
            return
        module, name = str(fields[0]), str(fields[1])
        if code == jsonplus.EXT_METHOD_SINGLE_ARG:
            method = str(fields[3]) if len(fields) > 3 else ""
            if (module, name, method) not in SAFE_MSGPACK_METHODS:
                refused.append(f"{module}.{name}.{method}")
        elif (module, name) not in allowed:
            refused.append(f"{module}.{name}")

    try:
        _unpack(blob, visit)
    except (ValueError, TypeError) as exc:
        if not refused:
            raise StoreError("a checkpoint in the store cannot be decoded "
                             f"({exc}); the checkpoint tables are damaged: run "
                             "`tinmen db check`") from exc
    if refused:
        raise _refused(refused[0])


def _unpack(data: bytes, hook: Any) -> Any:
    return ormsgpack.unpackb(data, ext_hook=hook, option=ormsgpack.OPT_NON_STR_KEYS)


def _refused(what: str) -> StoreError:
    return StoreError(f"a checkpoint in the store holds {what}, which tinmen never loads "
                      "(it would run code named by the data): the checkpoint tables were "
                      "changed outside tinmen; restore the store from a backup or discard "
                      "that session")


def sqlite_checkpointer(path: str, *, timeout_s: float) -> Any:
    """LangGraph's SQLite saver on ``path`` with the strict serializer."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(path, check_same_thread=False, timeout=timeout_s)
    return SqliteSaver(conn, serde=StrictSerializer())


def postgres_checkpointer(conn: Any) -> Any:
    """LangGraph's PostgreSQL saver on an open psycopg connection, strict serializer."""
    from langgraph.checkpoint.postgres import PostgresSaver

    saver = PostgresSaver(conn, serde=StrictSerializer())
    saver.setup()
    return saver


def memory_checkpointer() -> InMemorySaver:
    """An in-memory saver with the strict serializer (same rules as the stored ones)."""
    return InMemorySaver(serde=StrictSerializer())
