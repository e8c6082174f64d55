"""Per-user rate limit and concurrent-stream cap on the real backend (real Llama Stack, scripted model)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.support.backend import BackendProcess, backend_config
from tests.support.client import ask, error_of
from tests.support.llamastack import LlamaStackServer
from tests.support.model_server import Reply, ScriptedModel
from tests.support.net import argocd_headers
from tests.support.sse import iter_events

pytestmark = pytest.mark.llamastack


@pytest.fixture(scope="module")
def limited(llama_stack_073: LlamaStackServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    config = backend_config(llama_stack_073.url, "responses",
                            limits={"requests_per_minute": 3, "max_streams_per_user": 2})
    with BackendProcess(config, tmp_path_factory.mktemp("limited")) as backend:
        yield backend


def test_rate_limit_is_per_user_with_retry_after(limited: BackendProcess, model: ScriptedModel) -> None:
    for _ in range(3):
        response, events = ask(limited.url, headers=argocd_headers(user="rita"))
        assert response.status_code == 200 and events[-1].name == "end"
    answered = len(model.completions())

    response, _ = ask(limited.url, headers=argocd_headers(user="rita"))
    assert response.status_code == 429 and error_of(response)["code"] == "rate_limited"
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 20  # 3 a minute: a token every 20 s
    assert len(model.completions()) == answered, "a refused request reached the model"

    # Another user, and the same user on another application header, are separate/same respectively:
    other, events = ask(limited.url, headers=argocd_headers(user="sam"))
    assert other.status_code == 200 and events[-1].name == "end"
    elsewhere, _ = ask(limited.url, headers=argocd_headers(
        user="rita", application="team-a:shop", project="team-a"))
    assert elsewhere.status_code == 429, "the limit follows the user, not the application"


def test_unauthenticated_requests_do_not_spend_a_users_tokens(limited: BackendProcess) -> None:
    for _ in range(10):
        response = httpx.post(f"{limited.url}/v1/chat", json={"question": "q"},
                              headers={**argocd_headers(user="uma"), "Authorization": "Bearer no"})
        assert response.status_code == 401
    response, events = ask(limited.url, headers=argocd_headers(user="uma"))
    assert response.status_code == 200 and events[-1].name == "end"


async def test_stream_cap_and_release_on_disconnect(limited: BackendProcess, model: ScriptedModel) -> None:
    model.set_default(Reply(text=" ".join(f"w{i}" for i in range(400)), token_delay_s=0.05))
    headers = argocd_headers(user="vera")
    async with httpx.AsyncClient(timeout=30) as client:
        streams, readers = [], []  # keep the readers: a collected one closes its response
        for _ in range(2):
            context = client.stream("POST", f"{limited.url}/v1/chat", json={"question": "long?"}, headers=headers)
            response = await context.__aenter__()
            assert response.status_code == 200
            events = iter_events(response)
            while (await anext(events)).name != "token":
                pass
            streams.append(context)
            readers.append(events)

        third = await client.post(f"{limited.url}/v1/chat", json={"question": "third?"}, headers=headers)
        assert third.status_code == 429 and error_of(third)["code"] == "too_many_streams"
        assert "Retry-After" not in third.headers or int(third.headers["Retry-After"]) >= 1

        # The user closes one answer (Stop): its slot comes back; the rate limit (3/min) still has 1 token.
        await streams.pop().__aexit__(None, None, None)
        for _ in range(100):
            fourth = await client.post(f"{limited.url}/v1/chat", json={"question": "again?"}, headers=headers,
                                       timeout=5)
            if fourth.status_code != 429 or error_of(fourth)["code"] != "too_many_streams":
                break
            await asyncio.sleep(0.05)
        assert fourth.status_code == 200, fourth.text[:300]
        for context in streams:
            await context.__aexit__(None, None, None)
