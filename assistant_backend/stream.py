"""The SSE events of ``POST /v1/chat``, one constructor per event of the ``wire.py`` schema, and
the response that writes them.

Every event is ``event: <name>`` plus one JSON ``data:`` line (README, "HTTP API and error codes"),
built here as the bytes that go on the wire. Clients keep the ``conversation_id`` of ``end`` for the
next turn: it may differ from the one in ``start`` (a Responses chain moves on).

``token`` is the one event sent per answer chunk, so it skips the pydantic model: orjson writes the
same compact UTF-8 JSON as the ``TokenEvent`` serializer (newlines escaped, so the data is one line),
which tests/unit/test_stream_bytes.py checks. The rare events go through their wire model.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import orjson
from pydantic import BaseModel
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from . import wire
from .context.base import ContextBundle
from .errors import ErrorCode
from .providers.base import Usage

# Headers that stop intermediaries (nginx, Argo CD's Go reverse proxy, browsers) from buffering.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}

_SEP = b"\r\n"
_TOKEN = b"event: token\r\ndata: "
_END = b"\r\n\r\n"
PING = b": ping\r\n\r\n"  # an SSE comment: keeps idle proxies from closing the stream, never an event


def _event(name: wire.EventName, data: BaseModel) -> bytes:
    assert isinstance(data, wire.EVENTS[name])
    return b"event: " + name.encode() + _SEP + b"data: " + data.model_dump_json().encode() + _END


def start(conversation_id: str | None, provider: str, model: str) -> bytes:
    return _event("start", wire.StartEvent(conversation_id=conversation_id, provider=provider, model=model))


def context(bundle: ContextBundle, *, sent: bool) -> bytes:
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


def token(text: str) -> bytes:
    return _TOKEN + orjson.dumps({"text": text}) + _END


def end(conversation_id: str, usage: Usage | None, elapsed_ms: int) -> bytes:
    wire_usage = (
        wire.Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens) if usage else None
    )
    return _event(
        "end", wire.EndEvent(conversation_id=conversation_id, usage=wire_usage, elapsed_ms=elapsed_ms)
    )


def error(code: ErrorCode, message: str) -> bytes:
    return _event("error", wire.ErrorEvent(code=code, message=message))


class TurnResponse(StreamingResponse):
    """The SSE response of one turn; it releases everything the turn holds, once, however it ends.

    Per event it does one ASGI ``send`` of bytes already encoded, nothing else: the relay's cost per
    token is what this path adds (bench/concurrency.py). Beside the stream, one task waits for the
    client's ``http.disconnect`` and cancels the stream at once (the server's ``send`` drops bytes
    for a gone client silently, so a stream waiting for the model would not notice otherwise), and
    one sends a ``: ping`` comment every ``ping`` seconds (``server.heartbeat_s``).

    ``resources`` is the turn's exit stack (the upstream connection, the user's stream slot). It is
    closed around the whole ASGI call rather than in the event generator: a generator that never
    started (the client left before the first byte) never runs its ``finally``. The close is
    shielded: on client disconnect this runs in a cancelled scope, where anyio's level-triggered
    cancellation would fail every unshielded await and leave the Llama Stack connection, and the
    model call behind it, open.
    """

    def __init__(
        self, events: AsyncGenerator[bytes, None], resources: AsyncExitStack, *, ping: float
    ) -> None:
        super().__init__(events, headers=STREAM_HEADERS, media_type="text/event-stream")
        self._events = events
        self._resources = resources
        self._ping_s = ping
        self._ending = anyio.Lock()  # the last message and a ping never cross
        self._ended = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope)
                await send(
                    {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
                )
                group.start_soon(self._ping, send)
                async for chunk in self._events:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                async with self._ending:
                    self._ended = True
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                group.cancel_scope.cancel()
        except BaseExceptionGroup as failures:  # one failure inside the group is raised as itself
            if len(failures.exceptions) == 1:
                raise failures.exceptions[0] from None
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await self._events.aclose()  # its ``finally`` (accounting) runs even if it was suspended
                await self._resources.aclose()

    async def _ping(self, send: Send) -> None:
        while True:
            await anyio.sleep(self._ping_s)
            async with self._ending:
                if self._ended:
                    return
                await send({"type": "http.response.body", "body": PING, "more_body": True})


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
