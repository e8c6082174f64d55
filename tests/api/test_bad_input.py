"""Bad bodies, paths and methods: each gets its status and stable code as a JSON error without
internals, and nothing reaches the context source or the model.

The same table runs against the real backend and a real Llama Stack in ``tests/llamastack``; here it
pins the rules down in milliseconds, with the configured limits small enough to reach.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from assistant_backend.errors import STATUS, ErrorCode
from tests.support.inprocess import Api, running_api
from tests.support.net import SECRET

LIMITS = {"max_body_bytes": 12_000, "max_question_chars": 500, "requests_per_minute": 0}


def body(**fields: object) -> bytes:
    return json.dumps({"question": "Why is it Degraded?", **fields}).encode()


def resource(**changes: object) -> bytes:
    ref = {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "guestbook", "name": "web"}
    return body(resource={**ref, **changes})


@dataclass(frozen=True)
class Case:
    name: str
    code: ErrorCode
    content: bytes | None = body()
    method: str = "POST"
    path: str = "/v1/chat"
    content_type: str | None = "application/json"


CASES = [
    # -- content type and body --------------------------------------------------------------------
    Case("no content type", ErrorCode.UNSUPPORTED_MEDIA_TYPE, content_type=None),
    Case("text/plain", ErrorCode.UNSUPPORTED_MEDIA_TYPE, content_type="text/plain"),
    Case("form encoded", ErrorCode.UNSUPPORTED_MEDIA_TYPE, b"question=why", content_type="application/x-www-form-urlencoded"),
    Case("json lookalike media type", ErrorCode.UNSUPPORTED_MEDIA_TYPE, content_type="application/jsonp"),
    Case("body too large", ErrorCode.BODY_TOO_LARGE, body(question="x" * 13_000)),
    Case("truncated json", ErrorCode.INVALID_REQUEST, b'{"question": "why'),
    Case("json array", ErrorCode.INVALID_REQUEST, b'["why"]'),
    Case("json string", ErrorCode.INVALID_REQUEST, b'"why"'),
    Case("json null", ErrorCode.INVALID_REQUEST, b"null"),
    Case("NaN question", ErrorCode.INVALID_REQUEST, b'{"question": NaN}'),
    Case("invalid utf-8", ErrorCode.INVALID_REQUEST, b'{"question": "\xff\xfe"}'),
    Case("utf-16 with BOM", ErrorCode.INVALID_REQUEST, '{"question": "why"}'.encode("utf-16")),
    Case("lone surrogate escape", ErrorCode.INVALID_REQUEST, b'{"question": "why \\ud800 broken?"}'),
    Case("deeply nested", ErrorCode.INVALID_REQUEST, b'{"question": "q", "resource": ' + b"[" * 1500 + b"]" * 1500 + b"}"),
    Case("empty question", ErrorCode.INVALID_REQUEST, body(question="")),
    Case("blank question", ErrorCode.INVALID_REQUEST, body(question=" \n\t\u3000 ")),
    Case("question not a string", ErrorCode.INVALID_REQUEST, body(question=["why"])),
    Case("missing question", ErrorCode.INVALID_REQUEST, b'{"model": "openai/scripted-model"}'),
    Case("question too long", ErrorCode.QUESTION_TOO_LONG, body(question="y" * 501)),
    Case("unknown field", ErrorCode.INVALID_REQUEST, body(admin=True)),
    Case("cluster smuggled in the body", ErrorCode.INVALID_REQUEST, body(cluster="https://evil.example.com")),
    Case("conversation id too long", ErrorCode.INVALID_REQUEST, body(conversation_id="c" * 9000)),
    # -- the selected resource --------------------------------------------------------------------
    Case("resource name with path traversal", ErrorCode.INVALID_REQUEST, resource(name="../secrets")),
    Case("resource name with slash", ErrorCode.INVALID_REQUEST, resource(name="web/status")),
    Case("resource name with double dot", ErrorCode.INVALID_REQUEST, resource(name="a..b")),
    Case("resource name with trailing newline", ErrorCode.INVALID_REQUEST, resource(name="web\n")),
    Case("resource name with homoglyph", ErrorCode.INVALID_REQUEST, resource(name="w\u0435b")),
    Case("resource name with NUL", ErrorCode.INVALID_REQUEST, resource(name="web\u0000x")),
    Case("resource namespace traversal", ErrorCode.INVALID_REQUEST, resource(namespace="..")),
    Case("resource namespace upper case", ErrorCode.INVALID_REQUEST, resource(namespace="Shop")),
    Case("resource kind lower case", ErrorCode.INVALID_REQUEST, resource(kind="secrets")),
    Case("resource version with path", ErrorCode.INVALID_REQUEST, resource(version="v1/../../api")),
    Case("resource group with a URL", ErrorCode.INVALID_REQUEST, resource(group="evil.com/apis")),
    Case("resource with extra field", ErrorCode.INVALID_REQUEST, resource(cluster="in-cluster")),
    Case("resource as a string", ErrorCode.INVALID_REQUEST, body(resource="/api/v1/secrets")),
    Case("resource without a name", ErrorCode.INVALID_REQUEST, body(resource={"version": "v1", "kind": "Pod"})),
    # -- conversations and models -----------------------------------------------------------------
    Case("forged conversation", ErrorCode.CONVERSATION_NOT_FOUND, body(conversation_id="c1.e30.AAAA")),
    Case("forged conversation read", ErrorCode.CONVERSATION_NOT_FOUND, None, "GET", "/v1/conversations/c1.abc.def"),
    Case("forged conversation delete", ErrorCode.CONVERSATION_NOT_FOUND, None, "DELETE", "/v1/conversations/c1.abc.def"),
    Case("unknown model", ErrorCode.UNKNOWN_MODEL, body(model="openai/gpt-17")),
    Case("model with traversal", ErrorCode.UNKNOWN_MODEL, body(model="openai/../../admin")),
    Case("model with a space", ErrorCode.INVALID_REQUEST, body(model="openai/scripted model")),
    # -- paths and methods ------------------------------------------------------------------------
    Case("GET on chat", ErrorCode.METHOD_NOT_ALLOWED, None, "GET"),
    Case("PUT on a conversation", ErrorCode.METHOD_NOT_ALLOWED, None, "PUT", "/v1/conversations/x"),
    Case("unknown endpoint", ErrorCode.NOT_FOUND, None, "GET", "/v1/admin"),
    Case("traversal in conversation path", ErrorCode.NOT_FOUND, None, "GET", "/v1/conversations/..%2f..%2fmodels"),
]


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with running_api(limits=LIMITS) as running:
        yield running


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_its_status_and_code(api: Api, case: Case) -> None:
    headers = dict(api.headers)
    if case.content_type:
        headers["Content-Type"] = case.content_type
    before_asked, before_opened = len(api.context.asked), len(api.provider.opened)

    response = api.client.request(case.method, case.path, content=case.content, headers=headers)

    assert response.status_code == STATUS[case.code], response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": {"code": case.code.value, "message": response.json()["error"]["message"]}}
    message = response.json()["error"]["message"]
    assert message and "Traceback" not in message and SECRET not in response.text
    assert len(api.provider.opened) == before_opened, "a refused request reached the model"
    if case.code is not ErrorCode.UNKNOWN_MODEL:  # the model is picked after the context is built
        assert len(api.context.asked) == before_asked, "a refused request reached the context source"


def test_405_lists_the_allowed_methods(api: Api) -> None:
    response = api.client.put("/v1/conversations/x", headers=api.headers)
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "DELETE"}


def test_unknown_model_lists_the_models_on_offer(api: Api) -> None:
    response, _ = api.chat(model="openai/gpt-17")
    assert response.status_code == 400
    assert "openai/scripted-model" in response.json()["error"]["message"]


def test_messages_say_which_field_and_why(api: Api) -> None:
    cases = {
        resource(kind="secrets"): "resource.kind: not a Kubernetes kind",
        resource(name="a..b"): "resource.name: not a Kubernetes object name",
        body(question=" "): "question: must not be empty",
        body(admin=True): "admin: unknown field",
        b'{"question": "why \\ud800"}': "question: contains an invalid Unicode escape (lone surrogate)",
    }
    for content, message in cases.items():
        response = api.client.post("/v1/chat", content=content, headers={**api.headers, "Content-Type": "application/json"})
        assert response.json()["error"]["message"] == message


def test_every_code_a_body_can_cause_is_in_the_table() -> None:
    body_codes = {ErrorCode.UNSUPPORTED_MEDIA_TYPE, ErrorCode.BODY_TOO_LARGE, ErrorCode.INVALID_REQUEST,
                  ErrorCode.QUESTION_TOO_LONG, ErrorCode.CONVERSATION_NOT_FOUND, ErrorCode.UNKNOWN_MODEL,
                  ErrorCode.METHOD_NOT_ALLOWED, ErrorCode.NOT_FOUND}
    assert {c.code for c in CASES} == body_codes
    assert len({c.name for c in CASES}) == len(CASES)
