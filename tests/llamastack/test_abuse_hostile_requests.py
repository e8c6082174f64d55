"""A table of hostile requests against the real backend: each gets its status and stable code, the
error never echoes internals, and nothing reaches the model that should not.

Requests that are *accepted* (forged groups, a contradicting ``Argocd-Target-Cluster-*``, a long
foreign ``X-Request-Id``) must stream a normal answer in which the forged value never reaches the
model: the backend takes identity only from the trusted headers and the destination never from
headers. (Their effect on Kubernetes reads is covered with the real apiserver in the kube tests.)
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from tests.support.backend import SECRET, BackendProcess
from tests.support.client import ask, conversation_of, error_of
from tests.support.model_server import ScriptedModel
from tests.support.net import argocd_headers
from tests.support.sse import events_if_streamed

pytestmark = [pytest.mark.llamastack]

Header = tuple[str | bytes, str | bytes]
Q = b'{"question": "Why is it Degraded?"}'


def body(**fields: object) -> bytes:
    return json.dumps({"question": "Why is it Degraded?", **fields}).encode()


def resource(**changes: object) -> bytes:
    ref = {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "guestbook", "name": "web"}
    return body(resource={**ref, **changes})


@dataclass
class Case:
    name: str
    status: int
    code: str | None  # None: accepted, the answer streams
    body: bytes | None = Q
    method: str = "POST"
    path: str = "/v1/chat"
    drop: tuple[str, ...] = ()  # headers removed from the valid set
    set: dict[str, str | bytes] = field(default_factory=dict)  # replaced (or added once)
    add: tuple[Header, ...] = ()  # appended, so a header can appear twice
    content_type: str | None = "application/json"
    never_seen: str | None = None  # must not appear in anything the model was shown
    # Builds the body from a conversation of alice's on argocd:guestbook (for stolen-handle cases).
    with_conversation: Callable[[str], bytes] | None = None


def _flip(handle: str) -> str:
    version, payload, signature = handle.split(".")
    return f"{version}.{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


def _repayload(handle: str) -> str:
    """Same signature, payload re-encoded with another owner: the HMAC must notice."""
    version, payload, signature = handle.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["o"] = "AAAAAAAAAAAAAAAA"
    forged = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{version}.{forged}.{signature}"


APP = "Argocd-Application-Name"
PROJECT = "Argocd-Project-Name"
USER = "Argocd-Username"

CASES = [
    # -- the shared secret ------------------------------------------------------------------------
    Case("no secret", 401, "unauthenticated", drop=("Authorization",)),
    Case("wrong secret", 401, "unauthenticated", set={"Authorization": "Bearer guessed"}),
    Case("secret in other case", 401, "unauthenticated", set={"Authorization": SECRET.lower()}),
    Case("secret prefix only", 401, "unauthenticated", set={"Authorization": SECRET[:-3]}),
    Case("secret with extra suffix", 401, "unauthenticated", set={"Authorization": SECRET + "x"}),
    Case("secret sent twice", 401, "unauthenticated", add=(("Authorization", SECRET),)),
    Case("wrong then right secret", 401, "unauthenticated", drop=("Authorization",),
         add=(("Authorization", "Bearer guessed"), ("Authorization", SECRET))),
    Case("secret as a cookie", 401, "unauthenticated", drop=("Authorization",),
         set={"Cookie": f"argocd.token={SECRET}"}),
    # -- identity headers -------------------------------------------------------------------------
    Case("no application header", 400, "missing_header", drop=(APP,)),
    Case("empty application header", 400, "missing_header", set={APP: ""}),
    Case("application header duplicated", 400, "bad_header", add=((APP, "team-a:shop"),)),
    Case("application without namespace", 400, "bad_application_header", set={APP: "guestbook"}),
    Case("application with path traversal", 400, "bad_application_header", set={APP: "argocd:../kube-system"}),
    Case("application with slash", 400, "bad_application_header", set={APP: "argocd:guest/book"}),
    Case("application with encoded slash", 400, "bad_application_header", set={APP: "argocd:guest%2Fbook"}),
    Case("application with extra colon", 400, "bad_application_header", set={APP: "argocd:guestbook:x"}),
    Case("application in upper case", 400, "bad_application_header", set={APP: "ArgoCD:Guestbook"}),
    Case("application with cyrillic homoglyph", 400, "bad_application_header",
         set={APP: "argocd:gu\u0435stbook".encode()}),
    Case("application with fullwidth colon", 400, "bad_application_header",
         set={APP: "argocd\uff1aguestbook".encode()}),
    Case("application namespace too long", 400, "bad_application_header", set={APP: "a" * 64 + ":guestbook"}),
    Case("no project header", 400, "missing_header", drop=(PROJECT,)),
    Case("project duplicated", 400, "bad_header", add=((PROJECT, "team-a"),)),
    Case("project with path separator", 400, "bad_header", set={PROJECT: "default/../admin"}),
    Case("no user header", 400, "missing_header", drop=(USER,)),
    Case("user header duplicated", 400, "bad_header", add=((USER, "admin"),)),
    Case("user id duplicated", 400, "bad_header", add=(("Argocd-User-Id", "a"), ("Argocd-User-Id", "b"))),
    # Identities are opaque text: LDAP DNs hold commas and spaces (Dex with idAttr: DN).
    Case("user with a comma", 200, None, set={USER: "cn=alice,ou=People"}),
    Case("user with a space", 200, None, set={USER: "Alice Liddell"}),
    # Invisible and line-breaking characters would forge what a log line shows.
    Case("user with zero-width space", 400, "bad_header", set={USER: "al\u200bice".encode()}),
    Case("user with a right-to-left override", 400, "bad_header", set={USER: "alice\u202eadmin".encode()}),
    Case("user with a line separator", 400, "bad_header", set={USER: "alice\u2028admin".encode()}),
    # (C0 controls such as ESC or NUL never get this far: the HTTP server refuses the request line.)
    Case("user id without a username", 200, None, drop=(USER,), set={"Argocd-User-Id": "3f2504e0-4f89-11d3"}),
    Case("control-plane namespace with slash", 400, "bad_header", set={"Argocd-Namespace": "argocd/x"}),
    # Accepted, but the forged value is never trusted nor shown to the model.
    Case("forged groups", 200, None, set={"Argocd-User-Groups": "system:masters,role:admin"},
         never_seen="system:masters"),
    Case("target cluster URL contradicting the application", 200, None,
         set={"Argocd-Target-Cluster-URL": "https://evil.example.com:6443"}, never_seen="evil.example.com"),
    Case("target cluster name contradicting the application", 200, None,
         set={"Argocd-Target-Cluster-Name": "evil-cluster"}, never_seen="evil-cluster"),
    Case("forged X-Forwarded-For and a huge request id", 200, None,
         set={"X-Forwarded-For": "10.0.0.1", "X-Request-Id": "r" * 2000}, never_seen="10.0.0.1"),
    # -- content type and body --------------------------------------------------------------------
    Case("no content type", 415, "unsupported_media_type", content_type=None),
    Case("text/plain", 415, "unsupported_media_type", content_type="text/plain"),
    Case("form encoded", 415, "unsupported_media_type", content_type="application/x-www-form-urlencoded",
         body=b"question=why"),
    Case("multipart", 415, "unsupported_media_type", content_type="multipart/form-data; boundary=x"),
    Case("json lookalike media type", 415, "unsupported_media_type", content_type="application/jsonp"),
    Case("body too large (declared)", 413, "body_too_large", body=body(question="x" * 70_000)),
    Case("invalid json", 422, "invalid_request", body=b'{"question": "why"'),
    Case("json array", 422, "invalid_request", body=b'[{"question": "why"}]'),
    Case("json string", 422, "invalid_request", body=b'"why"'),
    Case("json null", 422, "invalid_request", body=b"null"),
    Case("NaN question", 422, "invalid_request", body=b'{"question": NaN}'),
    Case("invalid utf-8", 422, "invalid_request", body=b'{"question": "why \xc3\x28"}'),
    Case("utf-16 with BOM", 422, "invalid_request", body='{"question": "why"}'.encode("utf-16")),
    Case("lone surrogate escape", 422, "invalid_request", body=b'{"question": "why \\ud800 broken?"}'),
    Case("deeply nested arrays", 422, "invalid_request", body=b"[" * 30_000 + b"]" * 30_000),
    Case("deeply nested field", 422, "invalid_request",
         body=b'{"question": "q", "resource": ' + b'{"a": ' * 5_000 + b"1" + b"}" * 5_000 + b"}"),
    Case("empty question", 422, "invalid_request", body=body(question="")),
    Case("blank question", 422, "invalid_request", body=body(question=" \n\t\u3000 ")),
    Case("question not a string", 422, "invalid_request", body=body(question=["why"])),
    Case("no question", 422, "invalid_request", body=b'{"resource": null}'),
    Case("huge question", 422, "question_too_long", body=body(question="why " * 4_001)),
    Case("unknown field", 422, "invalid_request", body=body(admin=True)),
    Case("cluster smuggled in the body", 422, "invalid_request", body=body(cluster="https://evil.example.com")),
    # -- the selected resource --------------------------------------------------------------------
    Case("resource name with path traversal", 422, "invalid_request", body=resource(name="../secrets")),
    Case("resource name with slash", 422, "invalid_request", body=resource(name="web/status")),
    Case("resource name with dots only", 422, "invalid_request", body=resource(name="a..b")),
    Case("resource name with trailing newline", 422, "invalid_request", body=resource(name="web\n")),
    Case("resource name with homoglyph", 422, "invalid_request", body=resource(name="w\u0435b")),
    Case("resource name with NUL", 422, "invalid_request", body=resource(name="web\u0000x")),
    Case("resource name percent-encoded", 422, "invalid_request", body=resource(name="%2e%2e%2fsecrets")),
    Case("resource namespace traversal", 422, "invalid_request", body=resource(namespace="..")),
    Case("resource kind lower case", 422, "invalid_request", body=resource(kind="secrets")),
    Case("resource version with path", 422, "invalid_request", body=resource(version="v1/../../api")),
    Case("resource group with a URL", 422, "invalid_request", body=resource(group="evil.com/apis")),
    Case("resource with extra field", 422, "invalid_request", body=resource(cluster="in-cluster")),
    Case("resource as a string", 422, "invalid_request", body=body(resource="/api/v1/secrets")),
    # -- conversations ----------------------------------------------------------------------------
    Case("forged conversation id", 404, "conversation_not_found", body=body(conversation_id="c1.e30.AAAA")),
    Case("conversation id too long", 422, "invalid_request", body=body(conversation_id="c" * 9_000)),
    Case("other user's conversation", 404, "conversation_not_found", set={USER: "mallory"},
         with_conversation=lambda handle: body(conversation_id=handle)),
    Case("conversation of another application", 404, "conversation_not_found",
         set={APP: "team-a:shop", PROJECT: "team-a"}, with_conversation=lambda handle: body(conversation_id=handle)),
    Case("conversation with a tampered signature", 404, "conversation_not_found",
         with_conversation=lambda handle: body(conversation_id=_flip(handle))),
    Case("conversation with a re-owned payload", 404, "conversation_not_found",
         with_conversation=lambda handle: body(conversation_id=_repayload(handle))),
    Case("user id beats a spoofed user name", 404, "conversation_not_found",
         set={"Argocd-User-Id": "mallory-id"}, with_conversation=lambda handle: body(conversation_id=handle)),
    # -- models, paths and methods ----------------------------------------------------------------
    Case("unknown model", 400, "unknown_model", body=body(model="openai/gpt-17")),
    Case("model with traversal", 400, "unknown_model", body=body(model="openai/../../admin")),
    Case("model with a space", 422, "invalid_request", body=body(model="openai/scripted model")),
    Case("GET on chat", 405, "method_not_allowed", method="GET", body=None),
    Case("traversal in conversation path", 404, "not_found", method="GET",
         path="/v1/conversations/..%2f..%2fmodels", body=None),
    Case("unknown endpoint", 404, "not_found", method="GET", path="/v1/admin", body=None),
]


@pytest.fixture(scope="module")
def alices_conversation(abuse_backend: BackendProcess) -> str:
    _, events = ask(abuse_backend.url, "Remember this?")
    return conversation_of(events)


def _headers(case: Case) -> list[Header]:
    values: dict[str, str | bytes] = {k: v for k, v in argocd_headers().items() if k not in case.drop}
    values.update(case.set)
    headers: list[Header] = list(values.items())
    if case.content_type is not None:
        headers.append(("Content-Type", case.content_type))
    headers.extend(case.add)
    return headers


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_request(abuse_backend: BackendProcess, model: ScriptedModel, case: Case,
                         request: pytest.FixtureRequest) -> None:
    content = case.body
    if case.with_conversation is not None:
        content = case.with_conversation(request.getfixturevalue("alices_conversation"))
        model.reset()
    response = httpx.request(case.method, abuse_backend.url + case.path, headers=_headers(case),
                             content=content, timeout=60)

    assert response.status_code == case.status, response.text[:500]
    assert "x-request-id" in response.headers and len(response.headers["x-request-id"]) <= 64
    if case.code is None:
        events = events_if_streamed(response)
        assert events and events[-1].name == "end", [e.name for e in events]
        if case.never_seen:
            seen = "\n".join(r.text() for r in model.completions())
            assert seen and case.never_seen not in seen
        return
    error = error_of(response)
    assert error["code"] == case.code
    assert "Traceback" not in error["message"] and SECRET not in response.text
    assert model.completions() == [], "a refused request reached the model"


def test_table_is_large_enough() -> None:
    refused = [c for c in CASES if c.code is not None]
    assert len(CASES) >= 40 and len(refused) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


def _raw_request(url: str, head: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(head)
    return sock


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def _head(content_length: int | None) -> bytes:
    lines = [b"POST /v1/chat HTTP/1.1", b"Host: backend", b"Content-Type: application/json"]
    lines += [f"{k}: {v}".encode() for k, v in argocd_headers().items()]
    lines.append(f"Content-Length: {content_length}".encode() if content_length is not None
                 else b"Transfer-Encoding: chunked")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def test_slowloris_body_is_cut_with_408(abuse_backend: BackendProcess, model: ScriptedModel) -> None:
    """A body trickling in a byte at a time is cut after limits.body_read_timeout_s (2 s here)."""
    payload = Q
    sock = _raw_request(abuse_backend.url, _head(len(payload)))
    started = time.monotonic()
    answer = b""
    try:
        for byte in payload[:-1]:
            sock.sendall(bytes([byte]))
            time.sleep(0.25)
            if time.monotonic() - started > 20:
                break
        answer = _read_response(sock)
    except (BrokenPipeError, ConnectionResetError):
        answer = _read_response(sock)
    finally:
        sock.close()
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    assert json.loads(rest[: _length(answer)])["error"]["code"] == "request_timeout"
    assert model.completions() == []


def test_chunked_body_over_the_limit_is_413(abuse_backend: BackendProcess, model: ScriptedModel) -> None:
    """No Content-Length to refuse up front: the size is enforced while the body is read."""
    sock = _raw_request(abuse_backend.url, _head(None))
    chunk = b"x" * 16_384
    answer = b""
    try:
        sock.sendall(b'20\r\n{"question": "' + b"x" * 18 + b'\r\n')
        for _ in range(8):
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        sock.sendall(b'2\r\n"}\r\n0\r\n\r\n')
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        answer = _read_response(sock)
    finally:
        sock.close()
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert json.loads(rest[: _length(answer)])["error"]["code"] == "body_too_large"
    assert model.completions() == []


def test_accepted_requests_still_answer_after_the_table(abuse_backend: BackendProcess) -> None:
    """The backend is healthy after all of the above: no wedged worker, no leaked stream."""
    response, events = ask(abuse_backend.url, "Still fine?", headers=argocd_headers())
    assert response.status_code == 200 and events[-1].name == "end"
    metrics = httpx.get(f"{abuse_backend.url}/metrics").text
    active = [line for line in metrics.splitlines() if line.startswith("assistant_active_streams ")]
    assert active == ["assistant_active_streams 0.0"], active
