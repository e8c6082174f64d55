"""Calling a running backend's HTTP API from a test, over a real socket.

``ask`` is one synchronous request read whole; ``converse`` one asynchronous chat turn read to its end
with a deadline (it fails, never hangs). Both send :func:`tests.support.net.argocd_headers` unless
given headers. The in-process tier has the same calls on ``tests.support.inprocess.Api``.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from .net import argocd_headers
from .sse import Event, events_if_streamed, iter_events


def ask(url: str, question: str = "Why is it Degraded?", headers: dict[str, str] | None = None,
        **body: Any) -> tuple[httpx.Response, list[Event]]:
    """POST /v1/chat; the events when it streamed, else none (read the JSON error)."""
    response = httpx.post(f"{url}/v1/chat", json={"question": question, **body},
                          headers=argocd_headers() if headers is None else headers, timeout=60)
    return response, events_if_streamed(response)


def conversation_of(events: list[Event]) -> str:
    """The handle of a turn that ended normally."""
    assert events and events[-1].name == "end", [e.name for e in events]
    return str(events[-1].data["conversation_id"])


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``{"code", "message"}`` of a JSON error, checking the body has exactly that shape."""
    assert response.headers.get("content-type", "").startswith("application/json"), response.text[:300]
    body = json.loads(response.text)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return dict(body["error"])


@dataclass
class Outcome:
    status: int
    events: list[Event]
    error: dict[str, str] | None  # the JSON error, when the request was refused before the stream
    seconds: float

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.events]

    def failure_code(self) -> str | None:
        """The error code, whether it came as a JSON answer or as the stream's ``error`` event."""
        if self.error is not None:
            return self.error["code"]
        if self.events and self.events[-1].name == "error":
            return str(self.events[-1].data["code"])
        return None


async def converse(url: str, question: str = "Why is it Degraded?", *, deadline_s: float = 60,
                   headers: dict[str, str] | None = None, **body: object) -> Outcome:
    """One chat turn read to its end, failing (not hanging) if it takes longer than ``deadline_s``."""
    started = time.monotonic()
    events: list[Event] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(deadline_s)) as client:
        async with asyncio.timeout(deadline_s):
            async with client.stream("POST", f"{url}/v1/chat", json={"question": question, **body},
                                     headers=argocd_headers() if headers is None else headers) as response:
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    await response.aread()
                    return Outcome(response.status_code, [], response.json()["error"], time.monotonic() - started)
                async for event in iter_events(response):
                    events.append(event)
    return Outcome(response.status_code, events, None, time.monotonic() - started)
