"""Identity through the faithful Argo CD proxy, in both of Argo CD's modes (docs/security.md, "Identity").

Argo CD 2.13 to 3.1 set only ``Argocd-Username`` and pass a browser's ``Argocd-User-Id`` through;
3.2+ always set ``Argocd-User-Id`` and pass a browser's ``Argocd-Username`` through when the real
one is empty. Whatever a browser adds, it can neither continue nor read another person's
conversation, and the rate limit stays per person. Real-world ids (LDAP DNs with commas and spaces,
emails, UUIDs) work end to end.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.support.argocd_proxy import ArgoCDProxy, User, browser_headers
from tests.support.backend import BackendProcess, backend_config
from tests.support.llamastack import LlamaStackServer
from tests.support.model_server import ScriptedModel
from tests.support.sse import parse

pytestmark = pytest.mark.llamastack

USERS = {
    "alice-token": User("alice@example.com", user_id="cn=Alice Liddell,ou=People,dc=acme,dc=example"),
    "mallory-token": User("mallory@example.com", user_id="3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
    # A 2.13/2.14 SSO user without an email claim: Argo CD sets no username at all.
    "noemail-token": User("", user_id="CiQwOGE4Njg0Yi1kYjg4LTRiNzMtOTBhOS0zY2QxNjYxZjU0NjYSBWxvY2Fs"),
}


@pytest.fixture(params=[True, False], ids=["argocd-3.2+", "argocd-2.13-3.1"])
def proxy(
    request: pytest.FixtureRequest,
    llama_stack_073: LlamaStackServer,
    start_backend: Callable[..., BackendProcess],
    start_proxy: Callable[..., ArgoCDProxy],
) -> ArgoCDProxy:
    backend = start_backend(backend_config(llama_stack_073.url, limits={"requests_per_minute": 3}))
    return start_proxy(backend.url, users=dict(USERS), send_user_id=request.param)


def chat(proxy: ArgoCDProxy, token: str, body: dict[str, object], **extra: str) -> httpx.Response:
    with httpx.Client(base_url=proxy.url, cookies={"argocd.token": token}, timeout=60) as client:
        return client.post("/extensions/assistant/v1/chat", json=body, headers={**browser_headers(), **extra})


def restore(proxy: ArgoCDProxy, token: str, handle: str, **extra: str) -> httpx.Response:
    with httpx.Client(base_url=proxy.url, cookies={"argocd.token": token}, timeout=60) as client:
        return client.get(f"/extensions/assistant/v1/conversations/{handle}", headers={**browser_headers(), **extra})


def test_real_world_ids_work_end_to_end(proxy: ArgoCDProxy, model: ScriptedModel) -> None:
    first = chat(proxy, "alice-token", {"question": "Mine?"})
    assert first.status_code == 200, first.text
    handle = parse(first.text)[-1].data["conversation_id"]
    assert restore(proxy, "alice-token", handle).status_code == 200
    forwarded = proxy.forwarded[-1]
    assert forwarded["Argocd-Username"] == "alice@example.com"
    assert forwarded.get("Argocd-User-Id") == (USERS["alice-token"].user_id if proxy.send_user_id else None)


def test_forging_the_other_identity_header_reaches_nobody_elses_conversation(
    proxy: ArgoCDProxy, model: ScriptedModel
) -> None:
    handle = parse(chat(proxy, "alice-token", {"question": "Mine?"}).text)[-1].data["conversation_id"]
    alice = USERS["alice-token"]
    forgeries = [
        # < 3.2: the id is the browser's own; mallory copies alice's (the username stays mallory's).
        {"Argocd-User-Id": alice.user_id},
        # >= 3.2: the username passes when Argo CD has none; mallory names alice (the id stays hers).
        {"Argocd-Username": alice.name},
        {"Argocd-Username": alice.name, "Argocd-User-Id": alice.user_id},
    ]
    calls = len(model.completions())
    for forged in forgeries:
        response = chat(proxy, "mallory-token", {"question": "Yours?", "conversation_id": handle}, **forged)
        assert response.status_code == 404, (forged, response.text)
        assert restore(proxy, "mallory-token", handle, **forged).status_code == 404
    assert len(model.completions()) == calls  # nothing reached the model


def test_a_user_without_a_username_is_served_on_3_2_and_refused_clearly_before(
    proxy: ArgoCDProxy, model: ScriptedModel
) -> None:
    response = chat(proxy, "noemail-token", {"question": "Am I in?"})
    if proxy.send_user_id:
        assert response.status_code == 200, response.text
    else:  # Argo CD < 3.2 forwards no identity for this user: refused, saying which header is missing
        assert response.status_code == 400 and response.json()["error"]["code"] == "missing_header"


def test_the_rate_limit_stays_per_person_whatever_headers_a_browser_adds(
    proxy: ArgoCDProxy, model: ScriptedModel
) -> None:
    spoofs = [{}, {"Argocd-User-Id": "someone-else"}, {"Argocd-Username": "someone-else"}]
    statuses = [chat(proxy, "mallory-token", {"question": f"q{i}"}, **spoofs[i % 3]).status_code for i in range(5)]
    # Each request counts against every identity header it carries; Argo CD sets mallory's username
    # on every version (and her id on 3.2+), so a forged or varied other header changes nothing.
    assert statuses == [200, 200, 200, 429, 429]
    # Alice is never limited by what mallory did.
    assert chat(proxy, "alice-token", {"question": "Me?"}).status_code == 200
