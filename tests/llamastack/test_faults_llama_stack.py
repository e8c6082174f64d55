"""Llama Stack (and the model behind it) failing in every way we can make a real one fail.

Each fault must give the client a clear, stable code, as a JSON error before the stream or an
``error`` event inside it, within a bounded time: never a hang, never a silent close, never a 500.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.backend import UNLIMITED, BackendProcess, backend_config
from tests.support.client import converse
from tests.support.llamastack import Combo, LlamaStackServer
from tests.support.model_server import Reply, ScriptedModel
from tests.support.net import argocd_headers
from tests.support.server import Server
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.llamastack, pytest.mark.faults]

UPSTREAM_CODES = {"llama_stack_unavailable", "llama_stack_error", "llama_stack_timeout"}


def readyz(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=15)


@pytest.fixture
def own_llama_stack(model: ScriptedModel, tmp_path: Path) -> Iterator[LlamaStackServer]:
    """A Llama Stack 0.7.3 of this test's own (created, not started), which the test may kill."""
    server = LlamaStackServer("0.7.3", model.url, tmp_path / "llama-stack")
    yield server
    server.stop()


async def test_not_up_at_start_then_ready_when_it_comes_up(
    own_llama_stack: LlamaStackServer, start_backend: Callable[..., BackendProcess], model: ScriptedModel
) -> None:
    backend = start_backend(backend_config(own_llama_stack.url, limits=UNLIMITED))
    assert httpx.get(f"{backend.url}/healthz").status_code == 200, "liveness must not depend on Llama Stack"
    not_ready = readyz(backend.url)
    assert not_ready.status_code == 503
    assert not_ready.json()["error"]["code"] == "not_ready" and not_ready.json()["error"]["message"]

    refused = await converse(backend.url, deadline_s=30)
    assert refused.status == 503 and refused.failure_code() == "llama_stack_unavailable", refused
    assert model.completions() == []

    own_llama_stack.start()
    wait_for(lambda: readyz(backend.url).status_code == 200, "/readyz to turn 200", 30, interval=0.2)
    answered = await converse(backend.url, deadline_s=60)
    assert answered.status == 200 and answered.names[-1] == "end", answered.names


async def test_restarted_llama_stack_keeps_the_conversation(
    own_llama_stack: LlamaStackServer, start_backend: Callable[..., BackendProcess], model: ScriptedModel
) -> None:
    """Killed (SIGKILL) between turns and started again on its state: the next turn fails fast and
    clearly while it is down, and the conversation carries on once it is back."""
    own_llama_stack.start()
    backend = start_backend(backend_config(own_llama_stack.url, limits=UNLIMITED))
    model.script(Reply(text="The probe path /healthz returns 500."))
    first = await converse(backend.url, "Why does the pod restart?")
    handle = first.events[-1].data["conversation_id"]

    own_llama_stack.kill()
    down = await converse(backend.url, "And now?", deadline_s=30, conversation_id=handle)
    assert down.failure_code() == "llama_stack_unavailable", down
    assert down.seconds < 30
    wait_for(lambda: readyz(backend.url).status_code == 503, "/readyz to turn 503", 15, interval=0.2)

    own_llama_stack.start()
    wait_for(lambda: readyz(backend.url).status_code == 200, "/readyz to turn 200 again", 30, interval=0.2)
    second = await converse(backend.url, "How do I fix it?", conversation_id=handle)
    assert second.names[-1] == "end", second.names
    seen = model.completions()[-1].text()
    assert "Why does the pod restart?" in seen and "The probe path /healthz returns 500." in seen


async def test_killed_before_the_first_token(
    own_llama_stack: LlamaStackServer, start_backend: Callable[..., BackendProcess], model: ScriptedModel
) -> None:
    own_llama_stack.start()
    backend = start_backend(backend_config(own_llama_stack.url, limits=UNLIMITED))
    model.script(Reply(text="never sent", first_token_delay_s=30))
    killer = threading.Timer(1.5, own_llama_stack.kill)
    killer.start()
    try:
        outcome = await converse(backend.url, deadline_s=30)
    finally:
        killer.join()
    assert outcome.failure_code() in {"llama_stack_unavailable", "llama_stack_error"}, outcome
    assert "end" not in outcome.names and "token" not in outcome.names


@pytest.mark.parametrize("reply", [Reply(hang=True), Reply(text="late", first_token_delay_s=20)],
                         ids=["model hangs", "first token too late"])
async def test_slow_beyond_the_timeout(combo: Combo, start_backend: Callable[..., BackendProcess],
                                       model: ScriptedModel, reply: Reply) -> None:
    """llama_stack.timeout_s bounds every wait: 504 before the stream, or an error event in it; and the
    abandoned model call is cancelled, not left running."""
    backend = start_backend(backend_config(combo.llama_stack.url, combo.provider, limits=UNLIMITED,
                                           llama_stack={"timeout_s": 2}))
    model.script(reply)
    outcome = await converse(backend.url, deadline_s=30)
    assert outcome.failure_code() == "llama_stack_timeout", outcome
    if outcome.error is not None:
        assert outcome.status == 504
    assert "end" not in outcome.names
    assert model.wait_for(lambda rs: bool(rs) and rs[-1].finished is not None, timeout_s=15), (
        "the model call outlived the request"
    )


@pytest.mark.parametrize(
    ("reply", "codes"),
    [
        (Reply(status=500), {"llama_stack_error"}),
        (Reply(status=429), {"llama_stack_error"}),
        (Reply(status=401), {"llama_stack_error"}),
        (Reply(garbage=True), {"llama_stack_error"}),
        (Reply(text=" ".join(f"w{i}" for i in range(50)), die_after_tokens=5), {"llama_stack_error", "llama_stack_unavailable"}),
    ],
    ids=["model 500", "model 429", "model 401", "model garbage", "model drops mid-answer"],
)
async def test_model_failures_reach_the_client_as_clear_errors(
    combo: Combo, start_backend: Callable[..., BackendProcess], model: ScriptedModel, reply: Reply, codes: set[str]
) -> None:
    backend = start_backend(backend_config(combo.llama_stack.url, combo.provider, limits=UNLIMITED))
    model.set_default(reply)  # every attempt: Llama Stack's own client retries 429 and 5xx
    outcome = await converse(backend.url, deadline_s=60)
    model.set_default(Reply())
    assert outcome.failure_code() in codes, outcome
    assert outcome.status != 500 and "end" not in outcome.names
    if outcome.error is not None:
        assert outcome.status in {502, 503, 504}
    # The backend is fine afterwards.
    assert (await converse(backend.url, deadline_s=60)).names[-1] == "end"


class GarbageServer(Server):
    """Something that is not Llama Stack listening where Llama Stack should be: it answers every
    connection with bytes that are not HTTP, or with HTML, then closes."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.sock = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def start(self) -> GarbageServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(self.payload)
                except OSError:
                    pass


@pytest.mark.parametrize(
    "payload",
    [b"\x00\xffSSH-2.0-OpenSSH garbage\r\n\r\n",
     b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 21\r\n\r\n<html>login</html>\r\n",
     b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\noops!"],
    ids=["not http", "html page", "http 500"],
)
async def test_something_else_where_llama_stack_should_be(
    start_backend: Callable[..., BackendProcess], payload: bytes
) -> None:
    with GarbageServer(payload) as server:
        backend = start_backend(backend_config(server.url, limits=UNLIMITED))
        ready = readyz(backend.url)
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "not_ready"
        outcome = await converse(backend.url, deadline_s=30)
        assert outcome.status in {502, 503} and outcome.failure_code() in UPSTREAM_CODES, outcome
        models = httpx.get(f"{backend.url}/v1/models", headers=argocd_headers(), timeout=30)
        assert models.status_code in {502, 503} and models.json()["error"]["code"] in UPSTREAM_CODES
        assert "Traceback" not in backend.log()
