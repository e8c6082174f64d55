"""Provider stream parsing, fed with event sequences captured from real Llama Stack servers.

The captures in ``data/`` were recorded from llama-stack 0.3.5 and 0.7.3 (``*-0.3.5-*``, ``*-0.7.3-*``);
``agents-0.2-shape.sse`` is built from the verified 0.2.x facts in docs/upstream-facts.md (Llama Stack) (empty first delta, tool-call
arguments as an object). They are replayed over loopback HTTP so the real SDK and httpx parse them.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from assistant_backend.config import LlamaStackConfig
from assistant_backend.errors import ErrorCode
from assistant_backend.providers.agents import AgentsProvider, tool_call_arguments
from assistant_backend.providers.base import Completed, Failed, ProviderEvent, TextDelta, TurnRequest
from assistant_backend.providers.llamastack import LlamaStack, Version
from assistant_backend.providers.responses import (
    InstructionsPlan,
    ResponsesProvider,
    instructions_digest,
    instructions_plan,
    parse_events,
    turns_from_items,
)
from assistant_backend.providers.sse import MalformedStream, data_batches
from tests.support.replay import Canned, ReplayServer

DATA = Path(__file__).parent / "data"
SSE = "text/event-stream"


def _request(state: dict[str, object] | None = None) -> TurnRequest:
    return TurnRequest(model="openai/scripted-model", question="Why?", instructions="be brief", context="ctx",
                       state=state, temperature=0.2, max_tokens=100)


async def _collect(turn: object) -> list[ProviderEvent]:
    events = [event async for event in turn]  # type: ignore[attr-defined]
    await turn.aclose()  # type: ignore[attr-defined]
    return events


def _version(v: str) -> Canned:
    return Canned(json.dumps({"version": v}).encode())


async def _responses_turn(version: str, stream: bytes, state: dict[str, object] | None = None
                          ) -> tuple[list[ProviderEvent], dict[str, object]]:
    """Replay a captured Responses stream to the real provider; return its events and what it sent."""
    routes = {("GET", "/v1/version"): _version(version), ("POST", "/v1/responses"): Canned(stream, content_type=SSE)}
    with ReplayServer(routes) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            provider = ResponsesProvider(LlamaStack(http), LlamaStackConfig(url=server.url))
            events = await _collect(await provider.open_turn(_request(state)))
            await provider.aclose()
        return events, json.loads(server.requests[-1][2])


@pytest.mark.parametrize("version", ["0.3.5", "0.7.3"])
async def test_responses_stream_yields_deltas_then_completed_with_usage(version: str) -> None:
    stream = (DATA / f"responses-{version}-stream.sse").read_bytes()
    events, sent = await _responses_turn(version, stream, {"responses": ["resp_earlier"]})

    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Scripted answer about: Why OutOfSync?. Check the events and the image tag."
    done = events[-1]
    assert isinstance(done, Completed)
    assert done.state["responses"][0] == "resp_earlier" and done.state["responses"][1].startswith("resp")
    assert done.usage is not None and done.usage.output_tokens == 12
    # what went upstream: instructions every turn, the chain continued, context marked
    assert sent["instructions"] == "be brief" and sent["previous_response_id"] == "resp_earlier"
    assert sent["input"][0]["content"].startswith("<argocd-context>") and sent["input"][1]["content"] == "Why?"


@pytest.mark.parametrize("version", ["0.3.5", "0.7.3"])
async def test_responses_stream_failure_inside_the_stream_is_a_failed_event(version: str) -> None:
    events, _ = await _responses_turn(version, (DATA / f"responses-{version}-unknown-model.sse").read_bytes())
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert events[0].code is ErrorCode.LLAMA_STACK_ERROR


async def test_responses_stream_cut_short_is_a_failed_event() -> None:
    full = (DATA / "responses-0.7.3-stream.sse").read_bytes()
    truncated = full[: full.index(b"response.output_text.delta") + 200].rsplit(b"\n\n", 1)[0] + b"\n\n"
    events, _ = await _responses_turn("0.7.3", truncated)
    assert isinstance(events[-1], Failed) and not any(isinstance(e, Completed) for e in events)


@pytest.mark.parametrize(
    ("capture", "version", "expected_text"),
    [
        ("agents-0.3.5-turn.sse", "0.3.5", "Scripted answer about: Why is the pod crashing?. Check the events and the image tag."),
        ("agents-0.2-shape.sse", "0.2.12", "The pod is OOMKilled."),
    ],
)
async def test_agents_turn_stream(capture: str, version: str, expected_text: str) -> None:
    base = "/v1alpha/agents" if version.startswith("0.3") else "/v1/agents"
    routes = {
        ("GET", "/v1/version"): _version(version),
        ("POST", base): Canned(b'{"agent_id": "a1"}'),
        ("POST", f"{base}/a1/session"): Canned(b'{"session_id": "s1"}'),
        ("POST", f"{base}/a1/session/s1/turn"): Canned((DATA / capture).read_bytes(), content_type=SSE),
    }
    with ReplayServer(routes) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            provider = AgentsProvider(LlamaStack(http), http)
            events = await _collect(await provider.open_turn(_request()))
            # a second conversation reuses the agent: one POST to create it in total
            await _collect(await provider.open_turn(_request()))
        creates = [r for r in server.requests if r[:2] == ("POST", base)]
        turn_body = json.loads(next(r[2] for r in server.requests if r[1].endswith("/turn")))

    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert all(d.text for d in deltas), "empty deltas (0.2.x sends one first) are dropped"
    assert "".join(d.text for d in deltas) == expected_text
    assert events[-1] == Completed(state={"agent": "a1", "session": "s1"}, usage=None)
    assert len(creates) == 1
    assert turn_body["stream"] is True and turn_body["messages"][-1] == {"role": "user", "content": "Why?"}


async def test_agents_refuse_llama_stack_0_4_and_later() -> None:
    with ReplayServer({("GET", "/v1/version"): _version("0.7.3")}) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            with pytest.raises(Exception, match=r"needs Llama Stack 0\.2\.x or 0\.3\.x"):
                await AgentsProvider(LlamaStack(http), http).probe()


def test_tool_call_arguments_accept_both_shapes() -> None:
    assert tool_call_arguments({"arguments": {"pod": "a"}}) == {"pod": "a"}  # 0.2.x
    assert tool_call_arguments({"arguments": '{"pod": "a"}'}) == {"pod": "a"}  # 0.3.x
    assert tool_call_arguments({"arguments": ""}) == {}
    assert tool_call_arguments({"arguments": "{not json"}) == {"_raw": "{not json"}


@pytest.mark.parametrize("version", ["0.3.5", "0.7.3"])
def test_turns_from_captured_input_items_skip_context(version: str) -> None:
    items = json.loads((DATA / f"responses-{version}-input-items.json").read_text())["data"]
    turns = turns_from_items(items)
    assert [t.question for t in turns] == ["Why OutOfSync?", "And now?"]
    assert turns[0].answer.startswith("Scripted answer about: Why OutOfSync?")
    assert turns[1].answer == ""  # the last answer lives in the response itself, not in its input items


async def test_responses_provider_keeps_reading_until_llama_stack_has_stored_the_response() -> None:
    """Llama Stack stores a response after sending ``response.completed``, inside the stream (0.3.x);
    a client that closes at ``completed`` races that write or cancels it, and the follow-up fails."""
    import asyncio

    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    from tests.support.threaded import ThreadedServer

    captured = (DATA / "responses-0.3.5-stream.sse").read_bytes()
    state = {"stored": False}

    async def responses(request: object) -> StreamingResponse:
        async def body():  # type: ignore[no-untyped-def]
            yield captured  # every event, response.completed last
            await asyncio.sleep(0.3)  # the store write, after the terminal event
            state["stored"] = True

        return StreamingResponse(body(), media_type=SSE)

    async def version(request: object) -> StreamingResponse:
        return StreamingResponse(iter([b'{"version": "0.3.5"}']), media_type="application/json")

    app = Starlette(routes=[Route("/v1/version", version), Route("/v1/responses", responses, methods=["POST"])])
    with ThreadedServer(app, name="storing-llama-stack") as server:
        url = server.url
        async with httpx.AsyncClient(base_url=url) as http:
            provider = ResponsesProvider(LlamaStack(http), LlamaStackConfig(url=url))
            turn = await provider.open_turn(_request())
            seen = []
            async for event in turn:
                seen.append(event)
                if isinstance(event, Completed):
                    assert state["stored"], "Completed was reported before Llama Stack finished storing"
            await turn.aclose()
            assert isinstance(seen[-1], Completed), seen[-3:]
            await provider.aclose()


async def _chunks(parts: list[bytes]):  # type: ignore[no-untyped-def]
    for part in parts:
        yield part


async def _batches(parts: list[bytes]) -> list[list[object]]:
    return [batch async for batch in data_batches(_chunks(parts))]


@pytest.mark.parametrize("capture", ["responses-0.3.5-stream.sse", "responses-0.7.3-stream.sse",
                                     "agents-0.3.5-turn.sse", "responses-0.7.3-unknown-model.sse"])
@pytest.mark.parametrize("size", [1, 7, 64, 1000])
async def test_raw_sse_reader_decodes_captures_the_same_however_the_bytes_arrive(capture: str, size: int) -> None:
    raw = (DATA / capture).read_bytes()
    expected = [json.loads(block[6:]) for block in raw.split(b"\n\n") if block.startswith(b"data: ")]
    parts = [raw[i:i + size] for i in range(0, len(raw), size)]
    decoded = [event for batch in await _batches(parts) for event in batch]
    assert decoded == expected
    # CRLF line ends (allowed by SSE) read the same
    crlf = raw.replace(b"\n", b"\r\n")
    assert [e for b in await _batches([crlf[i:i + size] for i in range(0, len(crlf), size)]) for e in b] == expected


async def test_raw_sse_reader_skips_comments_joins_multiline_data_and_rejects_non_json() -> None:
    assert await _batches([b': ping\n\ndata: {"a":\ndata: 1}\n\n']) == [[{"a": 1}]]
    assert await _batches([b'data: {"a": 1}\n\ndata: {"cut": tr']) == [[{"a": 1}]]  # cut off: not an event
    with pytest.raises(MalformedStream):
        await _batches([b"data: {not json\n\n"])


@pytest.mark.parametrize("version", ["0.3.5", "0.7.3"])
async def test_responses_deltas_already_waiting_are_one_event(version: str) -> None:
    """Every delta of a captured stream that arrives in one read becomes one TextDelta; delivered one
    event per read, each delta is its own (nothing waits for more)."""
    raw = (DATA / f"responses-{version}-stream.sse").read_bytes()
    deltas = raw.count(b"response.output_text.delta")
    together = [e async for e in parse_events(data_batches(_chunks([raw])), [], {})]
    assert [type(e) for e in together] == [TextDelta, Completed]
    blocks = [block + b"\n\n" for block in raw.split(b"\n\n") if block]
    apart = [e async for e in parse_events(data_batches(_chunks(blocks)), [], {})]
    assert sum(isinstance(e, TextDelta) for e in apart) == deltas
    assert "".join(e.text for e in apart if isinstance(e, TextDelta)) == together[0].text  # type: ignore[union-attr]


async def test_agents_deltas_already_waiting_are_one_event() -> None:
    base = "/v1alpha/agents"
    routes = {
        ("GET", "/v1/version"): _version("0.3.5"),
        ("POST", base): Canned(b'{"agent_id": "a1"}'),
        ("POST", f"{base}/a1/session"): Canned(b'{"session_id": "s1"}'),
        ("POST", f"{base}/a1/session/s1/turn"): Canned((DATA / "agents-0.3.5-turn.sse").read_bytes(), content_type=SSE),
    }
    with ReplayServer(routes) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            events = await _collect(await AgentsProvider(LlamaStack(http), http).open_turn(_request()))
    # the canned body is small enough to arrive in one read: one delta, then the end
    assert [type(e) for e in events] == [TextDelta, Completed]


def test_instructions_go_into_the_carried_history_once_where_llama_stack_carries_them() -> None:
    v035, v073, v02 = Version.parse("0.3.5"), Version.parse("0.7.3"), Version.parse("0.2.12")
    digest = instructions_digest("be brief")
    for version in (v035, v073):
        first = instructions_plan(version, "be brief", None)
        assert (first.as_item, first.as_field, first.digest) == (True, False, digest)
        state = {"responses": ["r1"], "instructions": digest}
        assert instructions_plan(version, "be brief", state) == InstructionsPlan(False, False, digest)
        # changed instructions, or a conversation from before: the field, every turn
        assert instructions_plan(version, "be long", state) == InstructionsPlan(False, True, digest)
        assert instructions_plan(version, "be brief", {"responses": ["r1"]}) == InstructionsPlan(False, True, None)
    assert instructions_plan(v02, "be brief", None) == InstructionsPlan(False, True, None)  # unverified there


async def test_responses_first_turn_sends_instructions_as_a_developer_item_and_keeps_their_digest() -> None:
    events, sent = await _responses_turn("0.7.3", (DATA / "responses-0.7.3-stream.sse").read_bytes())
    assert "instructions" not in sent
    assert sent["input"][0] == {"role": "developer", "content": "be brief"}
    assert [m["role"] for m in sent["input"]] == ["developer", "user", "user"]
    done = events[-1]
    assert isinstance(done, Completed) and done.state["instructions"] == instructions_digest("be brief")
    follow_up = _request(dict(done.state))
    routes = {("GET", "/v1/version"): _version("0.7.3"),
              ("POST", "/v1/responses"): Canned((DATA / "responses-0.7.3-stream.sse").read_bytes(), content_type=SSE)}
    with ReplayServer(routes) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            provider = ResponsesProvider(LlamaStack(http), LlamaStackConfig(url=server.url))
            await _collect(await provider.open_turn(follow_up))
            await provider.aclose()
        body = json.loads(server.requests[-1][2])
    assert "instructions" not in body and [m["role"] for m in body["input"]] == ["user", "user"]
