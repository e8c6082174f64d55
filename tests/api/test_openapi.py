"""The OpenAPI document (``GET /v1/openapi.json``) and the panel's types generated from it.

What the backend really sends is valid against the document's schemas (every event of a stream,
every JSON answer, errors); the document lists every error code; and ``extension-ui/src/wire.ts``
is exactly what ``openapi-typescript`` makes of the document today (regenerate with
``make wire-types``).
"""

from __future__ import annotations

import difflib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from assistant_backend.errors import ErrorCode
from assistant_backend.providers.base import Failed
from tests.support.inprocess import Api, running_api
from tests.support.net import argocd_headers

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "extension-ui"
WIRE_TS = UI / "src" / "wire.ts"
DOC = "urn:argocd-assistant:openapi"


def document(api: Api) -> dict[str, Any]:
    response = api.client.get("/v1/openapi.json", headers={"Authorization": api.headers["Authorization"]})
    assert response.status_code == 200
    return dict(response.json())


def validator(doc: dict[str, Any], schema: str) -> Draft202012Validator:
    """Validates against one of the document's schemas, its $refs resolved inside the document."""
    registry: Registry[Any] = Registry().with_resource(DOC, DRAFT202012.create_resource(doc))
    return Draft202012Validator({"$ref": f"{DOC}#/components/schemas/{schema}"}, registry=registry)


def test_the_document_needs_only_the_secret(api: Api) -> None:
    assert api.client.get("/v1/openapi.json").status_code == 401
    doc = document(api)
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {"/v1/chat", "/v1/conversations/{conversation_id}", "/v1/models"}


def test_every_error_code_is_documented_on_some_path(api: Api) -> None:
    doc = document(api)
    described = " ".join(
        answer["description"]
        for path in doc["paths"].values()
        for operation in path.values()
        for answer in operation["responses"].values()
    )
    # Every code is in the schema's enum; every code a /v1 path can answer is in its responses.
    assert doc["components"]["schemas"]["ErrorCode"]["enum"] == [c.value for c in ErrorCode]
    # not_ready: /readyz, which is not part of /v1; method_not_allowed: for methods no operation has.
    elsewhere = {ErrorCode.NOT_READY, ErrorCode.METHOD_NOT_ALLOWED}
    undocumented = {c.value for c in ErrorCode if c not in elsewhere and c.value not in described}
    assert undocumented == set()


def test_the_configured_question_limit_is_in_the_document() -> None:
    with running_api(limits={"max_question_chars": 321}) as api:
        question = document(api)["components"]["schemas"]["ChatRequest"]["properties"]["question"]
        assert question["maxLength"] == 321


def test_every_event_of_a_real_stream_matches_its_schema(api: Api) -> None:
    doc = document(api)
    streams = [api.chat()[1]]
    handle = streams[0][-1].data["conversation_id"]
    streams.append(api.chat("And?", conversation_id=handle)[1])
    api.provider.fail_with = Failed(ErrorCode.LLAMA_STACK_ERROR, "boom")
    streams.append(api.chat()[1])
    seen = set()
    for events in streams:
        for event in events:
            schema = {"start": "StartEvent", "context": "ContextEvent", "token": "TokenEvent",
                      "end": "EndEvent", "error": "ErrorEvent"}[event.name]
            validator(doc, schema).validate(event.data)
            validator(doc, "ChatEvent").validate({"event": event.name, "data": json.dumps(event.data)})
            seen.add(event.name)
    assert seen == {"start", "context", "token", "end", "error"}


def test_json_answers_match_their_schemas(api: Api) -> None:
    doc = document(api)
    handle = api.converse("Why?")
    validator(doc, "Models").validate(api.client.get("/v1/models", headers=api.headers).json())
    validator(doc, "Conversation").validate(api.client.get(f"/v1/conversations/{handle}", headers=api.headers).json())
    for response in (
        api.client.get("/v1/models", headers=argocd_headers(secret=None)),
        api.client.post("/v1/chat", content=b"[]", headers={**api.headers, "Content-Type": "application/json"}),
        api.client.get("/v1/nothing"),
    ):
        validator(doc, "ErrorResponse").validate(response.json())


def test_the_schema_refuses_what_the_backend_refuses(api: Api) -> None:
    """Spot checks that the published patterns are the ones that validate (same constants)."""
    doc = document(api)
    chat = validator(doc, "ChatRequest")
    ok = {"question": "Why?", "resource": {"version": "v1", "kind": "Pod", "name": "web", "namespace": ""}}
    chat.validate(ok)
    for bad in (
        {"question": " \t"},
        {"question": "q", "resource": {"version": "v1", "kind": "Pod", "name": "a..b"}},
        {"question": "q", "resource": {"version": "v1", "kind": "pod", "name": "web"}},
        {"question": "q", "model": "a b"},
        {"question": "q", "surprise": 1},
    ):
        assert not chat.is_valid(bad), bad
        response = api.client.post("/v1/chat", json=bad, headers=api.headers)
        assert response.status_code == 422, bad


def test_the_panels_types_are_generated_from_this_document(api: Api, tmp_path: Path) -> None:
    generator = UI / "node_modules" / ".bin" / "openapi-typescript"
    assert generator.exists(), "extension-ui's npm packages are missing: run `make ui` (npm ci) first"
    source = tmp_path / "openapi.json"
    source.write_text(json.dumps(document(api), indent=2))
    generated = tmp_path / "wire.ts"
    run = subprocess.run(["npm", "run", "--silent", "wire-types", "--", str(source), "-o", str(generated)],
                         cwd=UI, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    want, have = generated.read_text(), WIRE_TS.read_text()
    diff = "".join(difflib.unified_diff(have.splitlines(True), want.splitlines(True), "wire.ts (checked in)",
                                        "wire.ts (from the schema)", n=1))
    assert not diff, f"extension-ui/src/wire.ts drifted from the schema; run `make wire-types`:\n{diff}"


@pytest.mark.parametrize("name", ["StartEvent", "ContextEvent", "EndEvent", "Conversation", "Models"])
def test_answers_list_every_field_as_required(api: Api, name: str) -> None:
    schema = document(api)["components"]["schemas"][name]
    assert set(schema["required"]) == set(schema["properties"]) and schema["additionalProperties"] is False
