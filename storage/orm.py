"""The analysis store: typed SQLAlchemy 2 ORM rows.

One row type per table of DESIGN.md. Text that repeats (prompts, model outputs) is stored
once in ``content`` by sha256; images and other blobs once in ``artifact``. LangGraph's own
checkpoint tables live beside these and are joined by ``session.thread_id`` /
``step.checkpoint_id``.
"""

from __future__ import annotations

import enum
import os
import socket
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class RunMode(enum.StrEnum):
    """How a session's model calls are served (stored as ``session.mode``)."""

    LIVE = "live"  # every call goes to the pool
    REPLAY = "replay"  # every call comes from the record; running out is a divergence
    FORK = "fork"  # the record up to a step, then the pool with changed models
    RESUME = "resume"  # the stored part from the record, then the pool (after a pause)


class Status(enum.StrEnum):
    """A session's or a study's state (stored as ``status``)."""

    RUNNING = "running"
    INTERRUPTED = "interrupted"  # paused for human input; ``tinmen resume`` continues it
    COMPLETED = "completed"
    FAILED = "failed"
    ABANDONED = "abandoned"  # left running by a process that died (``tinmen db check --repair``)


def utcnow() -> datetime:
    return datetime.now(UTC)


def owner_pid() -> int:
    return os.getpid()


def owner_host() -> str:
    return socket.gethostname()


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, Any: JSON}


class Content(Base):
    """Deduplicated text (prompts, requests, outputs), keyed by sha256."""

    __tablename__ = "content"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(Text)


class Artifact(Base):
    """Content-addressed binary artifacts (PNG images, plots, blobs)."""

    __tablename__ = "artifact"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    mime: Mapped[str] = mapped_column(String(64), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Study(Base):
    __tablename__ = "study"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    graph: Mapped[str] = mapped_column(String(100))
    graph_ref: Mapped[str | None] = mapped_column(String(500))  # how to import the agent
    graph_version: Mapped[str | None] = mapped_column(String(40))
    seed: Mapped[int] = mapped_column(BigInteger, default=0)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default=Status.RUNNING.value)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # the process that wrote the row: `tinmen db check` finds 'running' rows it outlived
    pid: Mapped[int | None] = mapped_column(Integer, default=owner_pid)
    host: Mapped[str | None] = mapped_column(String(255), default=owner_host)
    conditions: Mapped[list[Condition]] = relationship(back_populates="study")


class TrialClaim(Base):
    """The process running (or that ran) one grid point of a study: the key is unique, so
    two processes resuming one study never run the same (condition, rep) twice."""

    __tablename__ = "trial_claim"
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"),
                                          primary_key=True)
    condition_id: Mapped[int] = mapped_column(ForeignKey("condition.id", ondelete="CASCADE"),
                                              primary_key=True)
    rep: Mapped[int] = mapped_column(Integer, primary_key=True)
    pid: Mapped[int | None] = mapped_column(Integer, default=owner_pid)
    host: Mapped[str | None] = mapped_column(String(255), default=owner_host)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Condition(Base):
    __tablename__ = "condition"
    __table_args__ = (UniqueConstraint("study_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(300))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    study: Mapped[Study] = relationship(back_populates="conditions")


class Session(Base):
    """One run of a graph: live, an exact replay, or a fork of another session."""

    __tablename__ = "session"
    __table_args__ = (Index("ix_session_study", "study_id", "condition_id", "rep"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    graph: Mapped[str] = mapped_column(String(100))
    graph_ref: Mapped[str | None] = mapped_column(String(500))  # how to import the agent
    graph_version: Mapped[str | None] = mapped_column(String(40))
    mode: Mapped[str] = mapped_column(String(10), default=RunMode.LIVE.value)
    status: Mapped[str] = mapped_column(String(20), default=Status.RUNNING.value)
    study_id: Mapped[int | None] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"))
    condition_id: Mapped[int | None] = mapped_column(
        ForeignKey("condition.id", ondelete="CASCADE"))
    rep: Mapped[int | None] = mapped_column(Integer)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("session.id"))
    fork_step: Mapped[int | None] = mapped_column(Integer)
    thread_id: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(BigInteger)
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    bindings: Mapped[dict[str, Any]] = mapped_column(default=dict)  # role -> spec json
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pid: Mapped[int | None] = mapped_column(Integer, default=owner_pid)  # see Study.pid
    host: Mapped[str | None] = mapped_column(String(255), default=owner_host)
    agents: Mapped[list[Agent]] = relationship(cascade="all, delete-orphan")
    steps: Mapped[list[Step]] = relationship(cascade="all, delete-orphan",
                                             order_by="Step.index")


class Agent(Base):
    __tablename__ = "agent"
    __table_args__ = (UniqueConstraint("session_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    seed: Mapped[int] = mapped_column(BigInteger)
    roles: Mapped[list[Any]] = mapped_column(default=list)


class Step(Base):
    """One graph node execution, in order."""

    __tablename__ = "step"
    __table_args__ = (UniqueConstraint("session_id", "index"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(100))
    agent: Mapped[str | None] = mapped_column(String(100))
    checkpoint_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    calls: Mapped[list[ModelCall]] = relationship(cascade="all, delete-orphan",
                                                  order_by="ModelCall.id")
    beliefs: Mapped[list[Belief]] = relationship(cascade="all, delete-orphan",
                                                 order_by="Belief.id")
    decisions: Mapped[list[Decision]] = relationship(cascade="all, delete-orphan",
                                                     order_by="Decision.id")


class ModelCall(Base):
    __tablename__ = "model_call"
    __table_args__ = (UniqueConstraint("session_id", "role", "call_index"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    step_id: Mapped[int | None] = mapped_column(ForeignKey("step.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(100))
    call_index: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(30))
    model: Mapped[str] = mapped_column(String(300))
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int] = mapped_column(BigInteger)
    request_hash: Mapped[str] = mapped_column(String(64))
    request_sha: Mapped[str] = mapped_column(ForeignKey("content.sha256"))
    output_sha: Mapped[str] = mapped_column(ForeignKey("content.sha256"))
    token_logprobs: Mapped[list[Any] | None] = mapped_column(JSON)
    nll: Mapped[float | None] = mapped_column(Float)
    # generate calls: the signals of models/uncertainty.py (recomputable from the output)
    uncertainty: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)
    queue_wait_s: Mapped[float] = mapped_column(Float, default=0.0)
    batch_size: Mapped[int] = mapped_column(Integer, default=1)
    device: Mapped[str] = mapped_column(String(30), default="cpu")
    seq: Mapped[int | None] = mapped_column(Integer)  # order across tables in a session
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Belief(Base):
    __tablename__ = "belief"
    __table_args__ = (Index("ix_belief_subject", "subject"),
                      Index("ix_belief_session_subject", "session_id", "subject"))
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    step_id: Mapped[int | None] = mapped_column(ForeignKey("step.id", ondelete="CASCADE"))
    agent: Mapped[str | None] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(300))
    value: Mapped[Any] = mapped_column(JSON)
    distribution: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    entropy: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(20), default="model")  # model|user_edit|rule
    seq: Mapped[int | None] = mapped_column(Integer)  # order across tables in a session


class Decision(Base):
    __tablename__ = "decision"
    __table_args__ = (Index("ix_decision_session_kind", "session_id", "kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    step_id: Mapped[int | None] = mapped_column(ForeignKey("step.id", ondelete="CASCADE"))
    agent: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(100))
    options: Mapped[list[Any]] = mapped_column(default=list)  # [{"option", "score"}]
    chosen: Mapped[Any] = mapped_column(JSON)
    uncertainty: Mapped[float | None] = mapped_column(Float)
    # of the option distribution (models/uncertainty.py option_probs), set by the recorder
    entropy: Mapped[float | None] = mapped_column(Float)
    margin: Mapped[float | None] = mapped_column(Float)
    rationale: Mapped[str | None] = mapped_column(Text)
    based_on: Mapped[list[Any]] = mapped_column(default=list)  # belief subjects
    seq: Mapped[int | None] = mapped_column(Integer)  # order across tables in a session


class HumanInput(Base):
    __tablename__ = "human_input"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    step_index: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30))  # answer | edit | ...
    prompt: Mapped[Any] = mapped_column(JSON)
    response: Mapped[Any] = mapped_column(JSON)
    seq: Mapped[int | None] = mapped_column(Integer)  # order across tables in a session
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Metric(Base):
    __tablename__ = "metric"
    __table_args__ = (Index("ix_metric_session_name", "session_id", "name"),
                      Index("ix_metric_study_name", "study_id", "name"))
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str | None] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    study_id: Mapped[int | None] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"))
    step_index: Mapped[int | None] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    turn: Mapped[int | None] = mapped_column(Integer)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Prediction(Base):
    """Per-example output of a trained or prompted model (joins across runs)."""

    __tablename__ = "prediction"
    __table_args__ = (Index("ix_prediction_session_model", "session_id", "model"),
                      Index("ix_prediction_example", "example_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(100))
    split: Mapped[str] = mapped_column(String(30), default="test")
    example_id: Mapped[str] = mapped_column(String(100))
    label: Mapped[float | None] = mapped_column(Float)
    predicted: Mapped[float | None] = mapped_column(Float)
    probability: Mapped[float | None] = mapped_column(Float)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
