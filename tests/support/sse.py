"""Reading the backend's SSE in tests, with httpx-sse (the WHATWG parsing rules, comments dropped)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
from httpx_sse import EventSource


@dataclass(frozen=True)
class Event:
    name: str
    data: dict[str, Any]


def _event(name: str, data: str) -> Event:
    return Event(name, json.loads(data))


def events_of(response: httpx.Response) -> Iterator[Event]:
    """The events of a response read (or being read) synchronously; stops where the stream does."""
    for sse in EventSource(response).iter_sse():
        yield _event(sse.event, sse.data)


def events_if_streamed(response: httpx.Response | httpx2.Response) -> list[Event]:
    """The events of a response read whole, or none when it is not a stream (a JSON error).

    Starlette's TestClient answers with httpx2 responses, the loopback clients with httpx ones."""
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        return []
    return parse(response.text)


def parse(text: str) -> list[Event]:
    """The events in a complete stream's text."""
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=text.encode())
    return list(events_of(response))


async def iter_events(response: httpx.Response) -> AsyncIterator[Event]:
    async for sse in EventSource(response).aiter_sse():
        yield _event(sse.event, sse.data)


def answer_text(events: Iterable[Event]) -> str:
    return "".join(e.data["text"] for e in events if e.name == "token")


def names(events: Iterable[Event]) -> list[str]:
    return [e.name for e in events]
