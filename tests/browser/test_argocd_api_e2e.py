"""The panel reads Argo CD's own API with the user's session, end to end, under React 16 and 19.

Host page + faithful Argo CD proxy + the stand-in of Argo CD's API (``tests/support/argocd_api.py``,
its RBAC included) -> the real backend (``context.pod_logs: argocd``, the default) -> a real Llama
Stack -> the scripted model, about an OutOfSync, crash-looping Deployment in a real kube-apiserver:

- the answer's context holds the diff from Git (rendered in the disclosure) and the commit message;
- the crashing Pod's logs arrive for a user with ``logs, get`` and are refused for one without, with
  the disclosure saying why (and the backend, under ``argocd``, never reads them itself);
- a slow or failing Argo CD API call still lets the question through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, expect

from tests.browser.argocd_world import (
    APP_NAME,
    APP_NAMESPACE,
    COMMIT,
    DEPLOYMENT_NODE,
    FATAL,
    create_checkout_world,
)
from tests.support.argocd_api import ArgoCDApi
from tests.support.argocd_proxy import DEFAULT_USERS, App, ArgoCDProxy, User
from tests.support.backend import SECRET, BackendProcess, backend_config
from tests.support.hostpage import HostPage, host_routes
from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet
from tests.support.llamastack import LlamaStackServer
from tests.support.model_server import Reply, ScriptedModel

pytestmark = [pytest.mark.browser, pytest.mark.llamastack, pytest.mark.kube, pytest.mark.asyncio(loop_scope="session")]

VARIANTS = [pytest.param("16", "light", id="react16"), pytest.param("19", "dark", id="react19")]
USERS = {**DEFAULT_USERS, "nologs-token": User("erin", user_id="erin-id", groups=("dev",))}


@dataclass
class World:
    proxy: ArgoCDProxy
    api: ArgoCDApi
    model: ScriptedModel


@pytest.fixture(scope="module")
def world(
    kube_cluster: KubeCluster,
    fake_kubelet: FakeKubelet,
    llama_stack_073: LlamaStackServer,
    _model_server: ScriptedModel,
    extensions_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    config, api_app = create_checkout_world(kube_cluster, fake_kubelet)
    backend = BackendProcess(
        backend_config(
            llama_stack_073.url,
            provider="responses",
            kubernetes={"enabled": True, "kubeconfig": str(kube_cluster.admin_kubeconfig), "argocd_namespace": "argocd"},
            context={"pod_logs": "argocd"},
            limits={"requests_per_minute": 0},
        ),
        tmp_path_factory.mktemp("argocd-api-backend"),
    ).start()
    api = ArgoCDApi(kube=lambda: kube_cluster.http, users=USERS, no_logs={"erin"})
    api.add(api_app)
    proxy = ArgoCDProxy(
        backend_url=backend.url, secret=SECRET, users=dict(USERS),
        extra_routes=[*api.routes(), *host_routes(extensions_dir, config)],
    )
    proxy.add_app(App(APP_NAMESPACE, APP_NAME))
    proxy.start()
    try:
        yield World(proxy, api, _model_server)
    finally:
        proxy.stop()
        backend.stop()


OpenHost = Callable[[str, str, str], Awaitable[HostPage]]


@pytest_asyncio.fixture(loop_scope="session")
async def open_as(chromium: Browser, world: World, model: ScriptedModel) -> AsyncIterator[OpenHost]:
    contexts: list[BrowserContext] = []

    async def open_(token: str, react: str, theme: str) -> HostPage:
        context = await chromium.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(context)
        await context.add_cookies([{"name": "argocd.token", "value": token, "url": world.proxy.url}])
        host = HostPage(await context.new_page(), world.proxy.url, react, theme)
        await host.open()
        await host.open_assistant(DEPLOYMENT_NODE)
        return host

    yield open_
    world.api.delay_s.clear()
    world.api.fail.clear()
    for context in contexts:
        await context.close()


async def ask_and_open_context(host: HostPage, question: str) -> None:
    await host.ask(question)
    turn = host.turns().last
    await expect(turn).to_have_attribute("data-status", "done", timeout=30_000)
    await turn.get_by_test_id("aa-context").locator("summary").click()


@pytest.mark.parametrize(("react", "theme"), VARIANTS)
async def test_the_diff_the_commit_and_the_logs_reach_the_answer(
    world: World, open_as: OpenHost, react: str, theme: str
) -> None:
    world.model.script(Reply(text="Git asks for **2 replicas** of 1.9.0; the Pod crashes on the gateway certificate."))
    host = await open_as("alice-token", react, theme)
    await ask_and_open_context(host, "Why is this OutOfSync?")
    context = host.turns().last.get_by_test_id("aa-context")
    diff = context.get_by_test_id("aa-diff")
    await expect(diff).to_contain_text("-  replicas: 1")
    await expect(diff).to_contain_text("+  replicas: 2")
    await expect(diff).to_contain_text("checkout:1.9.0")
    # the diff, the revision, the current and the previous (crashed) instance's log
    await expect(context.locator('tr[data-source="argocd"]')).to_have_count(4)
    await expect(context.get_by_test_id("aa-context-notes")).to_have_count(0)
    await diff.scroll_into_view_if_needed()
    await host.screenshot("argocd-api-context-diff")
    shown = world.model.completions()[-1].text()
    assert "replicas 1 -> 2 in Git" in shown and "1.8.2 live -> 1.9.0 in Git" in shown
    assert COMMIT in shown and "Dana Developer" in shown
    assert FATAL in shown, "the crashing Pod's previous log (read under alice's `logs, get`) is missing"
    # Read with alice's session through Argo CD's API, paths as Argo CD's UI builds them.
    paths = world.api.requests
    assert any(p.startswith(f"/api/v1/applications/{APP_NAME}/managed-resources?appNamespace={APP_NAMESPACE}") for p in paths)
    assert any("/revisions/9c1e77a" in p and p.split("?")[0].endswith("/metadata") for p in paths)
    assert any("/logs?" in p and "previous=true" in p and "follow=false" in p for p in paths)
    host.assert_no_page_errors()


@pytest.mark.parametrize(("react", "theme"), VARIANTS)
async def test_a_role_without_logs_get_gets_no_logs_and_is_told_why(
    world: World, open_as: OpenHost, react: str, theme: str
) -> None:
    world.model.script(Reply(text="The Deployment differs from Git in its replicas and image."))
    host = await open_as("nologs-token", react, theme)
    await ask_and_open_context(host, "Why is this OutOfSync?")
    context = host.turns().last.get_by_test_id("aa-context")
    await expect(context.get_by_test_id("aa-context-notes")).to_contain_text(
        "logs not included: your Argo CD role has no `logs, get`"
    )
    await expect(context.get_by_test_id("aa-diff")).to_contain_text("+  replicas: 2")
    await host.screenshot("argocd-api-logs-not-included")
    shown = world.model.completions()[-1].text()
    assert "replicas 1 -> 2 in Git" in shown
    assert FATAL not in shown and "waiting for gateway" not in shown, "logs reached the model without `logs, get`"
    assert "context.pod_logs: argocd" in shown  # the model is told why there are no logs
    host.assert_no_page_errors()


@pytest.mark.parametrize(("react", "theme"), VARIANTS)
async def test_a_slow_or_failing_argocd_api_still_lets_the_question_through(
    world: World, open_as: OpenHost, react: str, theme: str
) -> None:
    world.model.script(Reply(text="Still answered."))
    world.api.delay_s["managed-resources"] = 6.0  # longer than the panel's per-read timeout
    world.api.fail.add("metadata")
    host = await open_as("alice-token", react, theme)
    await ask_and_open_context(host, "Why is this OutOfSync?")
    turn = host.turns().last
    await expect(turn.get_by_test_id("aa-markdown")).to_have_text("Still answered.")
    notes = turn.get_by_test_id("aa-context-notes")
    await expect(notes).to_contain_text("the diff from Git not included: Argo CD did not answer in time")
    await expect(notes).to_contain_text("not included: Argo CD answered 500")
    await expect(turn.get_by_test_id("aa-diff")).to_have_count(0)
    assert FATAL in world.model.completions()[-1].text()  # what did arrive was still attached
    host.assert_no_page_errors()
