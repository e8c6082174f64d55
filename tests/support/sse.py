"""Reading SSE the way a browser's EventSource parser does, for assertions in tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    name: str
    data: dict[str, Any]


@dataclass
class Decoder:
    """Feed lines one at a time; a blank line completes an event. Comments (heartbeats) are counted."""

    comments: int = 0
    _name: str = "message"
    _data: list[str] = field(default_factory=list)

    def feed(self, raw: str) -> Event | None:
        line = raw.rstrip("\r")
        if line.startswith(":"):
            self.comments += 1
        elif line.startswith("event:"):
            self._name = line[6:].strip()
        elif line.startswith("data:"):
            self._data.append(line[5:].lstrip(" "))
        elif not line and self._data:
            event = Event(self._name, json.loads("\n".join(self._data)))
            self._name, self._data = "message", []
            return event
        return None


def parse_lines(lines: Iterable[str]) -> list[Event]:
    decoder = Decoder()
    events = [event for line in [*lines, ""] if (event := decoder.feed(line)) is not None]
    return events


def parse(text: str) -> list[Event]:
    return parse_lines(text.split("\n"))


async def iter_events(response: httpx.Response, decoder: Decoder | None = None) -> AsyncIterator[Event]:
    decoder = decoder or Decoder()
    async for line in response.aiter_lines():
        event = decoder.feed(line)
        if event is not None:
            yield event


def answer_text(events: list[Event]) -> str:
    return "".join(e.data["text"] for e in events if e.name == "token")


def names(events: list[Event]) -> list[str]:
    return [e.name for e in events]
