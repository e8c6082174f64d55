"""Bad input, table-driven, against the real backend: each case gets its status and stable code,
and nothing reaches the model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.support.backend import SECRET, BackendProcess, backend_config
from tests.support.llamastack import LlamaStackServer
from tests.support.model_server import ScriptedModel
from tests.support.net import argocd_headers

pytestmark = pytest.mark.llamastack

GOOD_HEADERS = {**argocd_headers(), "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def backend_process(llama_stack_073: LlamaStackServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    config = backend_config(llama_stack_073.url, limits={"max_body_bytes": 4096, "max_question_chars": 500})
    with BackendProcess(config, tmp_path_factory.mktemp("bad-input")) as process:
        yield process


@pytest.fixture(scope="module")
def backend(backend_process: BackendProcess) -> str:
    return backend_process.url


@pytest.fixture(scope="module")
def alices_conversation(backend: str) -> str:
    response = httpx.post(f"{backend}/v1/chat", json={"question": "Hello?"}, headers=GOOD_HEADERS, timeout=60)
    end = [line for line in response.text.splitlines() if line.startswith("data:") and "conversation_id" in line][-1]
    import json

    return str(json.loads(end[5:])["conversation_id"])


@dataclass
class Case:
    name: str
    status: int
    code: str
    method: str = "POST"
    path: str = "/v1/chat"
    body: bytes | None = b'{"question": "Why?"}'
    headers: dict[str, str | None] = field(default_factory=dict)  # None removes a header


CASES = [
    Case("no secret", 401, "unauthenticated", headers={"Authorization": None}),
    Case("wrong secret", 401, "unauthenticated", headers={"Authorization": "Bearer guess"}),
    Case("secret in another header", 401, "unauthenticated",
         headers={"Authorization": None, "X-Secret": SECRET}),
    Case("no application header", 400, "missing_header", headers={"Argocd-Application-Name": None}),
    Case("no project header", 400, "missing_header", headers={"Argocd-Project-Name": None}),
    Case("no user header", 400, "missing_header", headers={"Argocd-Username": None}),
    Case("application without namespace", 400, "bad_application_header", headers={"Argocd-Application-Name": "guestbook"}),
    Case("application with slash", 400, "bad_application_header", headers={"Argocd-Application-Name": "argocd/guestbook"}),
    Case("application with path traversal", 400, "bad_application_header",
         headers={"Argocd-Application-Name": "argocd:..%2fsecrets"}),
    Case("bad project", 400, "bad_header", headers={"Argocd-Project-Name": "default project"}),
    Case("body too large", 413, "body_too_large", body=b'{"question": "' + b"x" * 5000 + b'"}'),
    Case("not json", 422, "invalid_request", body=b"question=why"),
    Case("truncated json", 422, "invalid_request", body=b'{"question": "why'),
    Case("json array", 422, "invalid_request", body=b'["why"]'),
    Case("invalid utf-8", 422, "invalid_request", body=b'{"question": "\xff\xfe"}'),
    Case("deeply nested", 422, "invalid_request", body=b'{"question": "q", "resource": ' + b"[" * 1500 + b"]" * 1500 + b"}"),
    Case("empty question", 422, "invalid_request", body=b'{"question": ""}'),
    Case("missing question", 422, "invalid_request", body=b'{"model": "openai/scripted-model"}'),
    Case("question too long", 422, "question_too_long", body=b'{"question": "' + b"y" * 501 + b'"}'),
    Case("unknown field", 422, "invalid_request", body=b'{"question": "q", "admin": true}'),
    Case("wrong content type", 415, "unsupported_media_type", headers={"Content-Type": "text/plain"}),
    Case("unknown conversation", 404, "conversation_not_found", body=b'{"question": "q", "conversation_id": "c1.abc.def"}'),
    Case("unknown conversation read", 404, "conversation_not_found", method="GET", path="/v1/conversations/c1.abc.def", body=None),
    Case("unknown model", 400, "unknown_model", body=b'{"question": "q", "model": "openai/nope"}'),
    Case("unknown endpoint", 404, "not_found", path="/v1/admin", body=None, method="GET"),
    Case("wrong method", 405, "method_not_allowed", method="GET", body=None),
]


def send(backend: str, case: Case) -> httpx.Response:
    headers = {k: v for k, v in {**GOOD_HEADERS, **case.headers}.items() if v is not None}
    return httpx.request(case.method, f"{backend}{case.path}", content=case.body, headers=headers, timeout=30)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_its_status_and_code(backend: str, model: ScriptedModel, case: Case) -> None:
    response = send(backend, case)
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == case.code
    assert error["message"] and "Traceback" not in error["message"] and SECRET not in response.text
    assert model.completions() == [], "nothing may reach the model"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_other_users_conversation_is_404(backend: str, alices_conversation: str, method: str) -> None:
    headers = {**GOOD_HEADERS, "Argocd-Username": "bob"}
    response = httpx.request(method, f"{backend}/v1/conversations/{alices_conversation}", headers=headers)
    assert response.status_code == 404 and response.json()["error"]["code"] == "conversation_not_found"


def test_continuing_other_users_conversation_is_404(backend: str, alices_conversation: str, model: ScriptedModel) -> None:
    headers = {**GOOD_HEADERS, "Argocd-Username": "bob"}
    response = httpx.post(f"{backend}/v1/chat", json={"question": "q", "conversation_id": alices_conversation},
                          headers=headers)
    assert response.status_code == 404 and response.json()["error"]["code"] == "conversation_not_found"
    assert model.completions() == []


def test_logs_are_json_with_request_ids_and_never_hold_the_secret(backend_process: BackendProcess) -> None:
    for case in CASES[:3]:
        send(backend_process.url, case)
    response = httpx.get(f"{backend_process.url}/v1/models", headers={**GOOD_HEADERS, "X-Request-Id": "trace-42"})
    assert response.headers["x-request-id"] == "trace-42"
    import json

    lines = [json.loads(line) for line in backend_process.log().splitlines() if line.startswith("{")]
    requests = [entry for entry in lines if entry.get("logger") == "assistant_backend.app" and "status" in entry]
    assert requests and all(entry.get("request_id") for entry in requests)
    assert any(entry["request_id"] == "trace-42" for entry in requests)
    assert SECRET not in backend_process.log() and "guess" not in backend_process.log()
