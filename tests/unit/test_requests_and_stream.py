"""Chat request validation and the SSE event encoding."""

from __future__ import annotations

import json

import pytest

from assistant_backend import stream
from assistant_backend.context.base import ContextBundle, ContextItem
from assistant_backend.errors import ApiError, ErrorCode
from assistant_backend.providers.base import Usage
from assistant_backend.requests import parse_chat
from tests.support.sse import parse


def chat(**body: object) -> object:
    return parse_chat(body, max_question_chars=100)


def test_valid_request_with_resource() -> None:
    request = chat(question="Why?", resource={"group": "apps", "version": "v1", "kind": "Deployment",
                                              "namespace": "shop", "name": "web"})
    assert request.resource is not None and str(request.resource.ref()) == "Deployment shop/web (apps/v1)"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"question": ""}, ErrorCode.INVALID_REQUEST),
        ({"question": "   \n"}, ErrorCode.INVALID_REQUEST),
        ({}, ErrorCode.INVALID_REQUEST),
        ({"question": 42}, ErrorCode.INVALID_REQUEST),
        ({"question": "x" * 101}, ErrorCode.QUESTION_TOO_LONG),
        ({"question": "q", "surprise": 1}, ErrorCode.INVALID_REQUEST),
        ({"question": "q", "model": "../etc/passwd"}, ErrorCode.INVALID_REQUEST),
        ({"question": "q", "resource": {"version": "v1", "kind": "Pod", "name": "../x"}}, ErrorCode.INVALID_REQUEST),
        ({"question": "q", "resource": {"version": "v1", "kind": "Pod", "name": "a/b"}}, ErrorCode.INVALID_REQUEST),
        ({"question": "q", "resource": {"version": "v1", "kind": "Pod", "name": "web", "namespace": "A"}},
         ErrorCode.INVALID_REQUEST),
        ({"question": "q", "resource": {"version": "1", "kind": "Pod", "name": "web"}}, ErrorCode.INVALID_REQUEST),
        ({"question": "q", "resource": {"version": "v1", "kind": "pod;rm", "name": "web"}}, ErrorCode.INVALID_REQUEST),
        ({"question": "q", "resource": {"version": "v1", "kind": "Pod", "name": "w\u00e9b"}}, ErrorCode.INVALID_REQUEST),
    ],
)
def test_bad_requests(body: dict[str, object], code: ErrorCode) -> None:
    with pytest.raises(ApiError) as raised:
        parse_chat(body, max_question_chars=100)
    assert raised.value.code is code
    assert raised.value.message and "Traceback" not in raised.value.message


def test_not_an_object() -> None:
    with pytest.raises(ApiError) as raised:
        parse_chat(["question"], max_question_chars=100)
    assert raised.value.code is ErrorCode.INVALID_REQUEST


def _wire(event: bytes) -> str:
    return event.decode()


def test_sse_events_are_named_json_and_round_trip() -> None:
    wire = "".join(_wire(e) for e in [
        stream.start(None, "responses", "m"),
        stream.context(ContextBundle("text", (ContextItem("logs", "Pod a/b (v1)", 7, truncated=True),), 10,
                                     notes=("no events",)), sent=False),
        stream.token("line one\nline two: ünïcode"),
        stream.end("c1.x.y", Usage(3, 4), 12),
        stream.error(ErrorCode.LLAMA_STACK_TIMEOUT, "slow"),
    ])
    events = parse(wire)
    assert [e.name for e in events] == ["start", "context", "token", "end", "error"]
    assert events[2].data == {"text": "line one\nline two: ünïcode"}
    assert events[3].data == {"conversation_id": "c1.x.y", "usage": {"input_tokens": 3, "output_tokens": 4},
                              "elapsed_ms": 12}
    assert events[4].data == {"code": "llama_stack_timeout", "message": "slow"}
    assert events[0].data == {"conversation_id": None, "provider": "responses", "model": "m"}
    assert events[1].data == {"items": [{"kind": "logs", "ref": "Pod a/b (v1)", "tokens": 7, "truncated": True,
                                         "redactions": 0, "source": "kubernetes", "detail": None}], "tokens_total": 7, "budget": 10, "sent": False,
                              "notes": ["no events"]}
    for line in wire.splitlines():  # one data line per event: newlines in text are JSON-escaped
        if line.startswith("data:"):
            json.loads(line[5:])
