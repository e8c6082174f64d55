"""The HTTP API in-process: ``create_app`` with the fakes, driven by Starlette's ``TestClient``.

No sockets, no Llama Stack, no apiserver: a test runs in milliseconds, and what reached the "model"
or the context source is right there on the fakes. The real-server suites hold the same API to the
real parts; this tier is where the HTTP rules themselves are pinned down.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
from starlette.testclient import TestClient

from assistant_backend.app import create_app
from assistant_backend.config import Settings

from .fakes import FakeContext, FakeProvider
from .net import SECRET, argocd_headers
from .sse import Event, events_if_streamed


@dataclass
class Api:
    client: TestClient
    provider: FakeProvider
    context: FakeContext
    headers: dict[str, str] = field(default_factory=argocd_headers)

    def chat(self, question: str = "Why is it Degraded?", headers: dict[str, str] | None = None,
             **body: Any) -> tuple[httpx2.Response, list[Event]]:
        """POST /v1/chat; the events when it streamed, else none (read the JSON error)."""
        response = self.client.post("/v1/chat", json={"question": question, **body},
                                    headers=self.headers if headers is None else headers)
        return response, events_if_streamed(response)

    def converse(self, *questions: str, **body: Any) -> str:
        """Ask each question as one conversation; the handle to continue it."""
        handle: str | None = None
        for question in questions:
            follow_up: dict[str, Any] = {"conversation_id": handle} if handle else {}
            response, events = self.chat(question, **follow_up, **body)
            assert response.status_code == 200 and events[-1].name == "end", response.text
            handle = str(events[-1].data["conversation_id"])
        assert handle is not None
        return handle


def settings(**sections: Any) -> Settings:
    """Test settings: the shared secret, no Kubernetes; ``sections`` merged one level deep."""
    config: dict[str, Any] = {
        "auth": {"secret": SECRET},
        "kubernetes": {"enabled": False},
        "server": {"readiness_cache_s": 0},
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return Settings.model_validate(config)


@contextmanager
def running_api(provider: FakeProvider | None = None, context: FakeContext | None = None,
                **sections: Any) -> Iterator[Api]:
    provider = provider or FakeProvider()
    context = context or FakeContext()
    # The configured provider is the fake's: the handles and the chat rules depend on its name.
    app = create_app(settings(provider=provider.name, **sections), provider=provider, context=context)
    # raise_server_exceptions=False: a bug must reach the client as the 500 a real client would get.
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, provider, context)
