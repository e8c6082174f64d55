"""The seam between the chat path and whatever gathers context for the model.

The chat path calls :meth:`ContextSource.build` once per turn, before the provider. It knows nothing
about Kubernetes: it forwards ``bundle.items`` to the client in the ``context`` SSE event and hands
``bundle.text`` to the provider, which sends it only when ``bundle.fingerprint`` changed since the
conversation last saw it. A source raises :class:`~assistant_backend.errors.ApiError` for requests
it refuses (``application_not_found``, ``project_mismatch``, ``resource_not_in_application``) and
otherwise always returns a bundle, saying in it what it could not read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from ..identity import Caller

if TYPE_CHECKING:  # wire.py imports ResourceRef from here
    from ..wire import Attachment

# Where an item came from: read by the backend, or attached by the panel from Argo CD's API.
Source = Literal["kubernetes", "argocd"]


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """The resource a question is about; ``None`` in its place means the Application itself."""

    version: str
    kind: str
    name: str
    group: str = ""
    namespace: str | None = None

    def __str__(self) -> str:
        api = f"{self.group}/{self.version}" if self.group else self.version
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name} ({api})"


@dataclass(frozen=True, slots=True)
class ContextItem:
    """One piece of context as the user sees it listed in the ``context`` event."""

    kind: str  # e.g. "findings", "application", "status", "events", "logs", "spec", "note"
    ref: str  # which object, e.g. "Pod shop/web-7d9c-x2 (v1)"
    tokens: int
    truncated: bool = False
    redactions: int = 0
    source: Source = "kubernetes"
    detail: str | None = None  # what the user may read of it in the panel (the rendered diff)

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "ref": self.ref,
            "tokens": self.tokens,
            "truncated": self.truncated,
            "redactions": self.redactions,
            "source": self.source,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class ContextBundle:
    """What the model is shown for one turn, and the list the user is shown of it."""

    text: str
    items: tuple[ContextItem, ...]
    budget: int
    notes: tuple[str, ...] = field(default=())  # what could not be read, in plain words
    findings: tuple[str, ...] = field(default=())  # ids of the deterministic findings that fired
    gather_ms: float | None = None  # time spent reading the clusters, when any were read

    @property
    def tokens_total(self) -> int:
        return sum(item.tokens for item in self.items)

    @property
    def fingerprint(self) -> str:
        """Changes exactly when the text does: providers resend context only then."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def event_data(self) -> dict[str, object]:
        return {
            "items": [item.as_dict() for item in self.items],
            "tokens_total": self.tokens_total,
            "budget": self.budget,
        }


class ContextSource(Protocol):
    """Gathers the context for one question. Implementations must never block the event loop.

    ``attachments`` are what the panel read from Argo CD's API under the user's session; each must
    name something in the Application's scope (else ``resource_not_in_application``).
    """

    async def build(
        self,
        caller: Caller,
        resource: ResourceRef | None,
        question: str,
        attachments: Sequence[Attachment] = (),
    ) -> ContextBundle: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class CachedSource(Protocol):
    """A context source that keeps a cache of the control plane (context/control_cache.py): whether
    each kind is served from it now, for /metrics (a cache that never serves costs every question
    one round trip more, silently)."""

    def cache_serving(self) -> Mapping[str, bool]: ...
