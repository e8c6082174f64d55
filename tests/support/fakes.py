"""Second implementations of the backend's two seams, for the in-process API tier (``tests/api``).

:class:`FakeProvider` is a :class:`~assistant_backend.providers.base.Provider` that answers from a
script and remembers every turn (what "reached the model"); :class:`FakeContext` is a
:class:`~assistant_backend.context.base.ContextSource` that records what it was asked and refuses
what a test tells it to. Both keep real semantics where the chat path depends on them: the state a
turn completes with identifies the conversation, and a follow-up must bring it back.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant_backend.context.attachments import check_listed
from assistant_backend.context.base import ContextBundle, ContextItem, ResourceRef
from assistant_backend.context.scope import Permissions, ScopeRules, Tracking
from assistant_backend.errors import ApiError, ErrorCode
from assistant_backend.identity import Caller
from assistant_backend.providers.base import (
    Completed,
    Failed,
    ProviderEvent,
    ServerInfo,
    State,
    TextDelta,
    Turn,
    TurnRequest,
    UpstreamTurn,
    Usage,
)
from assistant_backend.wire import Attachment

MODELS = ("openai/scripted-model", "openai/other-model")


@dataclass
class FakeProvider:
    name: str = "responses"
    models: list[str] = field(default_factory=lambda: list(MODELS))
    version: str = "0.7.3"
    answer: tuple[str, ...] = ("It is ", "Degraded ", "because the image does not exist.")
    # What the next turns do instead of answering: a Failed event, a stream that just stops, or an
    # ApiError from open_turn (Llama Stack refused before streaming).
    fail_with: Failed | None = None
    cut_short: bool = False
    refuse_with: ApiError | None = None
    down: ApiError | None = None  # probe() raises it
    opened: list[TurnRequest] = field(default_factory=list)
    closed: int = 0  # upstream turns whose connection was released
    probes: int = 0
    forgotten: list[State] = field(default_factory=list)
    _conversations: dict[str, list[Turn]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    async def probe(self) -> ServerInfo:
        self.probes += 1
        if self.down is not None:
            raise self.down
        return ServerInfo(self.version)

    async def list_models(self) -> list[str]:
        if self.down is not None:
            raise self.down
        return list(self.models)

    async def open_turn(self, request: TurnRequest) -> UpstreamTurn:
        if self.refuse_with is not None:
            raise self.refuse_with
        self.opened.append(request)
        conversation = str(request.state["conversation"]) if request.state else f"conv-{next(self._ids)}"
        return UpstreamTurn(self._events(request, conversation), self._close)

    async def _events(self, request: TurnRequest, conversation: str) -> AsyncGenerator[ProviderEvent, None]:
        for piece in self.answer:
            yield TextDelta(piece)
        if self.fail_with is not None:
            yield self.fail_with
            return
        if self.cut_short:
            return
        turns = self._conversations.setdefault(conversation, [])
        turns.append(Turn(request.question, "".join(self.answer)))
        yield Completed({"conversation": conversation, "turns": len(turns)}, Usage(11, 7))

    async def _close(self) -> None:
        self.closed += 1

    async def turns(self, state: State) -> list[Turn]:
        return list(self._conversations.get(str(state.get("conversation")), []))

    async def forget(self, state: State) -> None:
        self.forgotten.append(state)
        self._conversations.pop(str(state.get("conversation")), None)

    async def exists(self, state: State) -> bool:
        return str(state.get("conversation")) in self._conversations

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class Asked:
    caller: Caller
    resource: ResourceRef | None
    question: str
    attachments: tuple[Attachment, ...] = ()


@dataclass
class FakeContext:
    text: str = "Application argocd/guestbook is Degraded."
    refuse: dict[str, ApiError] = field(default_factory=dict)  # by resource name, or "" for the app
    asked: list[Asked] = field(default_factory=list)
    # When set, attachments are checked against this Application by the engine's own rules
    # (context/attachments.py); without an AppProject only its destination namespace is permitted.
    app: dict[str, Any] | None = None

    async def build(
        self,
        caller: Caller,
        resource: ResourceRef | None,
        question: str,
        attachments: Sequence[Attachment] = (),
    ) -> ContextBundle:
        self.asked.append(Asked(caller, resource, question, tuple(attachments)))
        refusal = self.refuse.get(resource.name if resource else "")
        if refusal is not None:
            raise refusal
        if self.app is not None:
            rules = ScopeRules(
                self.app,
                Permissions.from_project(None, self.app),
                Tracking.for_application(caller.app_namespace, caller.app_name, "argocd", None),
            )
            check_listed(rules, attachments, caller.application)
        subject = str(resource) if resource else f"Application {caller.application}"
        items = (ContextItem("status", subject, 9), ContextItem("logs", subject, 4, truncated=True, redactions=2))
        return ContextBundle(self.text, items, budget=1000, notes=("events could not be read",))

    async def aclose(self) -> None:
        return None


def not_in_application(name: str) -> ApiError:
    return ApiError(ErrorCode.RESOURCE_NOT_IN_APPLICATION, f"{name} is not part of the Application")
