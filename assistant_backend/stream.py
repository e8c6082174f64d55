"""The SSE event schema of ``POST /v1/chat`` (README, "HTTP API and error codes"), one constructor per event.

Every event is ``event: <name>`` plus one JSON ``data:`` line. Clients keep the ``conversation_id``
of ``end`` for the next turn: it may differ from the one in ``start`` (a Responses chain moves on).
"""

from __future__ import annotations

import json
from typing import Any

from sse_starlette import ServerSentEvent

from .errors import ErrorCode
from .providers.base import Usage

# Headers that stop intermediaries (nginx, Argo CD's Go reverse proxy, browsers) from buffering.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


def _event(name: str, data: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(event=name, data=json.dumps(data, separators=(",", ":"), ensure_ascii=False))


def start(conversation_id: str | None, provider: str, model: str) -> ServerSentEvent:
    return _event("start", {"conversation_id": conversation_id, "provider": provider, "model": model})


def context(data: dict[str, Any]) -> ServerSentEvent:
    return _event("context", data)


def token(text: str) -> ServerSentEvent:
    return _event("token", {"text": text})


def end(conversation_id: str, usage: Usage | None, elapsed_ms: int) -> ServerSentEvent:
    return _event(
        "end",
        {
            "conversation_id": conversation_id,
            "usage": usage.as_dict() if usage else None,
            "elapsed_ms": elapsed_ms,
        },
    )


def error(code: ErrorCode, message: str) -> ServerSentEvent:
    return _event("error", {"code": code.value, "message": message})


def heartbeat() -> ServerSentEvent:
    return ServerSentEvent(comment="ping")
