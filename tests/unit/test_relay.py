"""The relay's hot path: token events as bytes, the turn response's sends, pings and disconnects, and
the Agents turn stream through the one SSE reader (providers/sse.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from assistant_backend import stream, wire
from assistant_backend.errors import ErrorCode
from assistant_backend.providers.agents import parse_turn_events
from assistant_backend.providers.base import Completed, Failed, ProviderEvent, TextDelta
from assistant_backend.providers.llamastack import upstream_turn
from assistant_backend.providers.sse import data_batches
from tests.support.sse import parse

TRICKY = [
    "plain",
    "line one\nline two\r\nthree\rfour",
    'quotes " and \\ backslashes',
    "controls \x00 \x07 \x1b \x1f and del \x7f",
    "unicode ünïcode, 漢字, emoji 😀, separators \u2028 \u2029, bom \ufeff",
    "</script><b>not html</b>",
    "",
]


@pytest.mark.parametrize("text", TRICKY)
def test_token_bytes_are_the_wire_models_json(text: str) -> None:
    encoded = stream.token(text)
    assert encoded == b"event: token\r\ndata: " + wire.TokenEvent(text=text).model_dump_json().encode() + b"\r\n\r\n"
    [event] = parse(encoded.decode())
    assert (event.name, event.data) == ("token", {"text": text})


def test_merged_deltas_read_as_the_same_answer() -> None:
    """The panel appends each token's text (extension-ui/src/session.ts): one event carrying
    several deltas renders the same answer as one event per delta."""
    deltas = ["Pod ", "web-1 ", "is ", "OOMKilled:\n", "- raise ", "limits ", "😀"]
    apart = "".join(e.data["text"] for e in parse(b"".join(stream.token(d) for d in deltas).decode()))
    together = "".join(e.data["text"] for e in parse(stream.token("".join(deltas)).decode()))
    assert apart == together == "".join(deltas)


# ---- the turn response, driven through its ASGI interface ----------------------------------------
class Client:
    """An ASGI server's side of one request: records what was sent; ``leave`` makes ``receive``
    answer ``http.disconnect`` (the body was read before the response started)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.left = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


class Resources:
    def __init__(self) -> None:
        self.closed = 0
        self.stack = AsyncExitStack()
        self.stack.callback(self._close)

    def _close(self) -> None:
        self.closed += 1


async def _serve(events: AsyncGenerator[bytes, None], client: Client, resources: Resources, ping: float) -> None:
    response = stream.TurnResponse(events, resources.stack, ping=ping)
    await response({"type": "http", "method": "POST"}, client.receive, client.send)  # type: ignore[arg-type]


async def test_events_go_out_one_send_each_then_the_end_and_everything_is_released() -> None:
    async def events() -> AsyncGenerator[bytes, None]:
        yield stream.token("a")
        yield stream.token("b")

    client, resources = Client(), Resources()
    await _serve(events(), client, resources, ping=30)
    kinds = [(m["type"], m.get("more_body")) for m in client.sent]
    assert kinds == [("http.response.start", None), ("http.response.body", True), ("http.response.body", True),
                     ("http.response.body", False)]
    headers = dict(client.sent[0]["headers"])
    assert headers[b"content-type"].startswith(b"text/event-stream") and b"content-length" not in headers
    assert headers[b"x-accel-buffering"] == b"no" and headers[b"cache-control"] == b"no-cache"
    assert [e.data["text"] for e in parse(client.body.decode())] == ["a", "b"]
    assert resources.closed == 1


async def test_a_quiet_stream_is_pinged_with_comments_and_never_after_its_end() -> None:
    async def events() -> AsyncGenerator[bytes, None]:
        await asyncio.sleep(0.35)
        yield stream.token("late")

    client, resources = Client(), Resources()
    await _serve(events(), client, resources, ping=0.1)
    bodies = [m["body"] for m in client.sent if m["type"] == "http.response.body"]
    assert bodies.count(stream.PING) >= 2
    assert bodies[-1] == b"" and client.sent[-1]["more_body"] is False
    assert [e.data["text"] for e in parse(client.body.decode())] == ["late"]  # comments are not events
    await asyncio.sleep(0.25)  # a ping task left running would send after the end
    assert client.sent[-1]["more_body"] is False and resources.closed == 1


async def test_a_client_that_leaves_cancels_the_waiting_stream_at_once() -> None:
    state: dict[str, Any] = {"cancelled": False, "finished": False}

    async def events() -> AsyncGenerator[bytes, None]:
        try:
            yield stream.token("first")
            await asyncio.sleep(30)  # the model thinking: no send would notice the client left
            yield stream.token("never")
            state["finished"] = True
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise

    client, resources = Client(), Resources()
    serving = asyncio.create_task(_serve(events(), client, resources, ping=30))
    await asyncio.sleep(0.05)
    client.left.set()
    await asyncio.wait_for(serving, timeout=2)
    assert state == {"cancelled": True, "finished": False}
    assert [e.data["text"] for e in parse(client.body.decode())] == ["first"]
    assert resources.closed == 1


async def test_a_failing_stream_raises_its_own_error_and_still_releases() -> None:
    async def events() -> AsyncGenerator[bytes, None]:
        yield stream.token("a")
        raise RuntimeError("bug")

    client, resources = Client(), Resources()
    with pytest.raises(RuntimeError, match="bug"):
        await _serve(events(), client, resources, ping=30)
    assert resources.closed == 1


# ---- Agents turn streams through the shared reader ---------------------------------------------------
async def _chunks(parts: list[bytes]) -> AsyncGenerator[bytes, None]:
    for part in parts:
        yield part


async def _agents(parts: list[bytes]) -> list[ProviderEvent]:
    async def close() -> None:
        return None

    turn = upstream_turn(parse_turn_events(data_batches(_chunks(parts)), {"agent": "a", "session": "s"}), close,
                         "turn stream")
    return [event async for event in turn]


def _step(text: str) -> bytes:
    return b'data: {"event": {"payload": {"event_type": "step_progress", "delta": {"type": "text", "text": "%s"}}}}\n\n' % text.encode()


async def test_agents_stream_skips_comments_and_ends_with_the_turn() -> None:
    done = b'data: {"event": {"payload": {"event_type": "turn_complete", "turn": {}}}}\n\n'
    events = await _agents([b": ping\n\n", _step("a"), b"\n", _step("b") + done])
    assert events == [TextDelta("a"), TextDelta("b"), Completed(state={"agent": "a", "session": "s"})]


async def test_agents_stream_error_line_and_malformed_event_are_failures() -> None:
    failed = await _agents([_step("a"), b'data: {"error": {"message": "boom"}}\n\n'])
    assert failed == [TextDelta("a"), Failed(ErrorCode.LLAMA_STACK_ERROR, "the model failed to answer")]
    malformed = await _agents([b'data: {"event": {}}\n\n'])
    assert malformed == [Failed(ErrorCode.LLAMA_STACK_ERROR, "Llama Stack sent a malformed stream")]
    cut = await _agents([_step("a")])
    assert cut == [TextDelta("a"), Failed(ErrorCode.LLAMA_STACK_ERROR, "the answer ended before it was complete")]
