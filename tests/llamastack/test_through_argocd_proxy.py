"""Browser-shaped requests through the faithful Argo CD proxy to the backend, Llama Stack and the model."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.support.argocd_proxy import ArgoCDProxy, browser_headers
from tests.support.backend import BackendProcess, backend_config
from tests.support.llamastack import LlamaStackServer
from tests.support.model_server import Reply, ScriptedModel
from tests.support.sse import answer_text, names, parse

pytestmark = pytest.mark.llamastack


@pytest.fixture
def proxy(llama_stack_073: LlamaStackServer, start_backend: Callable[..., BackendProcess],
          start_proxy: Callable[..., ArgoCDProxy]) -> ArgoCDProxy:
    backend = start_backend(backend_config(llama_stack_073.url))
    return start_proxy(backend.url)


def post_chat(proxy: ArgoCDProxy, body: dict[str, object], *, token: str = "alice-token",
              headers: dict[str, str] | None = None) -> httpx.Response:
    cookies = {"argocd.token": token} if token else {}  # "": no cookie at all
    with httpx.Client(base_url=proxy.url, cookies=cookies, timeout=60) as client:
        return client.post("/extensions/assistant/v1/chat", json=body, headers=headers or browser_headers())


def test_question_streams_back_through_the_proxy(proxy: ArgoCDProxy, model: ScriptedModel) -> None:
    model.script(Reply(text="Your Deployment references image web:v9, which does not exist."))
    # what a browser would send: its own cookie, an Authorization header of some other app, spoofed identity
    headers = {**browser_headers(), "Authorization": "Bearer browser-token", "Argocd-Username": "root"}
    response = post_chat(proxy, {"question": "Why is guestbook Degraded?"}, headers=headers)

    assert response.status_code == 200, response.text
    events = parse(response.text)
    assert names(events)[0] == "start" and names(events)[-1] == "end"
    assert answer_text(events) == "Your Deployment references image web:v9, which does not exist."
    forwarded = proxy.forwarded[-1]
    assert "cookie" not in {k.lower() for k in forwarded}
    assert forwarded["Authorization"] == "Bearer test-shared-secret"  # the browser's value was replaced
    assert forwarded["Argocd-Username"] == "alice"  # Argo CD Sets it: the spoofed value is gone
    assert model.completions()[-1].text().count("Why is guestbook Degraded?") == 1


def test_follow_up_and_restore_through_the_proxy(proxy: ArgoCDProxy, model: ScriptedModel) -> None:
    first = parse(post_chat(proxy, {"question": "First?"}).text)
    second = parse(post_chat(proxy, {"question": "Second?", "conversation_id": first[-1].data["conversation_id"]}).text)
    with httpx.Client(base_url=proxy.url, cookies={"argocd.token": "alice-token"}) as client:
        restored = client.get(f"/extensions/assistant/v1/conversations/{second[-1].data['conversation_id']}",
                              headers=browser_headers())
    assert [t["question"] for t in restored.json()["turns"]] == ["First?", "Second?"]


def test_user_without_groups_cannot_smuggle_groups_into_ownership(proxy: ArgoCDProxy, model: ScriptedModel) -> None:
    """Argo CD forwards a browser's own Argocd-User-Groups when the user has none; it must not matter."""
    alice = parse(post_chat(proxy, {"question": "Mine?"}).text)
    spoofed = {**browser_headers(), "Argocd-User-Groups": "dev"}
    response = post_chat(proxy, {"question": "Let me in", "conversation_id": alice[-1].data["conversation_id"]},
                         token="nogroups-token", headers=spoofed)
    assert proxy.forwarded[-1]["Argocd-User-Groups"] == "dev"  # the hole is real...
    assert response.status_code == 404  # ...and closed: ownership is the user, never the groups


@pytest.mark.parametrize(
    ("token", "headers", "status"),
    [
        ("", browser_headers(), 400),  # no cookie: "Auth cookie not found"
        ("forged-token", browser_headers(), 401),  # "Invalid token"
        ("noinvoke-token", browser_headers(), 401),  # no `extensions, invoke, assistant`
        ("alice-token", browser_headers(project="team-a"), 401),  # project mismatch
        ("alice-token", browser_headers(app="argocd:nope"), 401),  # no such application
        ("alice-token", {"Argocd-Project-Name": "default"}, 400),  # missing app header
    ],
)
def test_argocd_refusals_never_reach_the_backend(proxy: ArgoCDProxy, token: str, headers: dict[str, str],
                                                   status: int) -> None:
    response = post_chat(proxy, {"question": "q"}, token=token, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/plain")
    assert proxy.forwarded == []


@pytest.mark.parametrize(
    ("token", "status", "body"),
    [("", 400, "Auth cookie not found\n"), ("forged-token", 401, "Invalid token\n"),
     ("alice-token", 401, "Invalid session\n")],
)
def test_login_failures_are_argocds_own_plain_text(proxy: ArgoCDProxy, token: str, status: int, body: str) -> None:
    if status == 401 and "session" in body:  # SSO on, the IdP's groups endpoint failing for this user
        proxy.sso_groups_unavailable.add(token)
    response = post_chat(proxy, {"question": "q"}, token=token)
    assert (response.status_code, response.text) == (status, body)
    assert response.headers["content-type"].startswith("text/plain")
    assert proxy.forwarded == []
