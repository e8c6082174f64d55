"""The SSE events of ``POST /v1/chat``, one constructor per event of the ``wire.py`` schema.

Every event is ``event: <name>`` plus one JSON ``data:`` line (README, "HTTP API and error codes").
Clients keep the ``conversation_id`` of ``end`` for the next turn: it may differ from the one in
``start`` (a Responses chain moves on).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from . import wire
from .context.base import ContextBundle
from .errors import ErrorCode
from .providers.base import Usage

# Headers that stop intermediaries (nginx, Argo CD's Go reverse proxy, browsers) from buffering.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


def _event(name: wire.EventName, data: BaseModel) -> ServerSentEvent:
    assert isinstance(data, wire.EVENTS[name])
    # Compact UTF-8 JSON: newlines inside strings are escaped, so the data is always one line.
    return ServerSentEvent(event=name, data=data.model_dump_json())


def start(conversation_id: str | None, provider: str, model: str) -> ServerSentEvent:
    return _event("start", wire.StartEvent(conversation_id=conversation_id, provider=provider, model=model))


def context(bundle: ContextBundle, *, sent: bool) -> ServerSentEvent:
    items = [
        wire.ContextItem(
            kind=i.kind,
            ref=i.ref,
            tokens=i.tokens,
            truncated=i.truncated,
            redactions=i.redactions,
            source=i.source,
            detail=i.detail,
        )
        for i in bundle.items
    ]
    return _event(
        "context",
        wire.ContextEvent(
            items=items,
            tokens_total=bundle.tokens_total,
            budget=bundle.budget,
            sent=sent,
            notes=list(bundle.notes),
        ),
    )


def token(text: str) -> ServerSentEvent:
    return _event("token", wire.TokenEvent(text=text))


def end(conversation_id: str, usage: Usage | None, elapsed_ms: int) -> ServerSentEvent:
    wire_usage = (
        wire.Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens) if usage else None
    )
    return _event(
        "end", wire.EndEvent(conversation_id=conversation_id, usage=wire_usage, elapsed_ms=elapsed_ms)
    )


def error(code: ErrorCode, message: str) -> ServerSentEvent:
    return _event("error", wire.ErrorEvent(code=code, message=message))


class TurnResponse(EventSourceResponse):
    """The SSE response of one turn; it releases everything the turn holds, once, however it ends.

    ``resources`` is the turn's exit stack (the upstream connection, the user's stream slot). It is
    closed around the whole ASGI call rather than in the event generator: a generator that never
    started (the client left before the first byte) never runs its ``finally``, and a send that fails
    skips a response's background task. The close is shielded: on client disconnect this runs in a
    cancelled scope, where anyio's level-triggered cancellation would fail every unshielded await and
    leave the Llama Stack connection, and the model call behind it, open.
    """

    def __init__(
        self, events: AsyncIterator[ServerSentEvent], resources: AsyncExitStack, **kwargs: Any
    ) -> None:
        super().__init__(events, headers=STREAM_HEADERS, **kwargs)
        self._resources = resources

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._resources.aclose()
