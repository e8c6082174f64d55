"""A real backend (responses provider, Llama Stack 0.7.3, the scripted model) for hostile requests.

One backend per module: the tables send dozens of requests, and starting a backend per case would
only slow them down. The per-user rate limit is off here unless a test turns it on (its own module).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.backend import SECRET, BackendProcess, backend_config
from tests.support.llamastack import LlamaStackServer
from tests.support.sse import Event, parse

IDENTITY = {
    "Authorization": SECRET,
    "Argocd-Application-Name": "argocd:guestbook",
    "Argocd-Project-Name": "default",
    "Argocd-Username": "alice",
    "Argocd-Namespace": "argocd",
}


def identity(**changes: str) -> dict[str, str]:
    return {**IDENTITY, **changes}


def events_of(response: httpx.Response) -> list[Event]:
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        return []
    return parse(response.text)


def ask(url: str, question: str = "Why is it Degraded?", headers: dict[str, str] | None = None,
        **body: Any) -> tuple[httpx.Response, list[Event]]:
    response = httpx.post(f"{url}/v1/chat", json={"question": question, **body},
                          headers=headers or IDENTITY, timeout=60)
    return response, events_of(response)


def conversation_of(events: list[Event]) -> str:
    assert events and events[-1].name == "end", [e.name for e in events]
    return str(events[-1].data["conversation_id"])


def start_backend_for(llama_stack: LlamaStackServer, workdir: Any, **sections: Any) -> BackendProcess:
    config = backend_config(llama_stack.url, "responses", **sections)
    return BackendProcess(config, workdir).start()


@pytest.fixture(scope="module")
def abuse_backend(llama_stack_073: LlamaStackServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    backend = start_backend_for(
        llama_stack_073, tmp_path_factory.mktemp("abuse"),
        limits={"requests_per_minute": 0, "max_streams_per_user": 0, "body_read_timeout_s": 2},
    )
    yield backend
    backend.stop()


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers.get("content-type", "").startswith("application/json"), response.text[:300]
    body = json.loads(response.text)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return dict(body["error"])
