"""The Assistant panel in a real Chromium, end to end: host page -> faithful Argo CD proxy -> the real
backend -> a real Llama Stack (0.7.3, Responses) -> the scripted model, about a real Application in a
real kube-apiserver. Every scenario runs under React 16 (Argo CD <= 3.4) and React 19 (3.5+)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, expect

from tests.browser.world import APP_NAME, APP_NAMESPACE, DEPLOYMENT_NODE, create_world
from tests.support.argocd_proxy import App, ArgoCDProxy
from tests.support.backend import SECRET, BackendProcess, backend_config
from tests.support.hostpage import HostPage, host_routes
from tests.support.kube import KubeCluster
from tests.support.llamastack import LlamaStackServer
from tests.support.model_server import Received, Reply, ScriptedModel
from tests.support.net import free_port

pytestmark = [
    pytest.mark.browser,
    pytest.mark.llamastack,
    pytest.mark.kube,
    pytest.mark.asyncio(loop_scope="session"),
]

# One theme per React version so both themes get real content in the screenshots.
VARIANTS = [pytest.param("16", "light", id="react16"), pytest.param("19", "dark", id="react19")]

ANSWER = (
    "The Deployment **guestbook-ui** is *Degraded*: its Pod cannot start.\n\n"
    "1. The image `ks-guestbook-demo:0.3` is pending.\n"
    "2. No node has been scheduled.\n\n"
    "Check it with:\n\n"
    "```sh\nkubectl -n browser-guestbook describe deploy guestbook-ui\n```\n\n"
    "See [the docs](https://argo-cd.readthedocs.io/) for health checks."
)
HOSTILE = (
    "Here you go <img src=x onerror=\"window.__pwned='img'\"> and "
    "<script>window.__pwned='script'</script> then [click me](javascript:window.__pwned='link') "
    "and <a href=\"javascript:window.__pwned='a'\">this</a>.\n\n"
    "<iframe src=\"javascript:window.parent.__pwned='iframe'\"></iframe>\n\n"
    "![pixel](https://evil.example/beacon.png)"
)


OpenHost = Callable[..., Awaitable[HostPage]]  # (base_url, react, theme, dev=False) -> HostPage


@dataclass
class World:
    proxy: ArgoCDProxy
    backend: BackendProcess
    model: ScriptedModel


@pytest.fixture(scope="module")
def world(
    kube_cluster: KubeCluster,
    llama_stack_073: LlamaStackServer,
    _model_server: ScriptedModel,
    extensions_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    config = create_world(kube_cluster)
    workdir = tmp_path_factory.mktemp("browser-backend")
    backend = BackendProcess(
        backend_config(
            llama_stack_073.url,
            provider="responses",
            kubernetes={
                "enabled": True,
                "kubeconfig": str(kube_cluster.admin_kubeconfig),
                "argocd_namespace": "argocd",
            },
            limits={"requests_per_minute": 0},
        ),
        workdir,
    ).start()
    proxy = ArgoCDProxy(
        backend_url=backend.url, secret=SECRET, extra_routes=host_routes(extensions_dir, config)
    )
    proxy.add_app(App(APP_NAMESPACE, APP_NAME))
    proxy.start()
    try:
        yield World(proxy, backend, _model_server)
    finally:
        proxy.stop()
        backend.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def open_host(chromium: Browser, model: ScriptedModel) -> AsyncIterator[OpenHost]:
    """Factory: a fresh browser context (own cookies and sessionStorage) logged in as alice."""
    contexts: list[BrowserContext] = []

    async def open_(base_url: str, react: str, theme: str, dev: bool = False) -> HostPage:
        context = await chromium.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(context)
        await context.add_cookies([{"name": "argocd.token", "value": "alice-token", "url": base_url}])
        await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
        host = HostPage(await context.new_page(), base_url, react, theme, dev=dev)
        await host.open()
        return host

    yield open_
    for context in contexts:
        await context.close()


async def wait_model(
    model: ScriptedModel, predicate: Callable[[list[Received]], bool], timeout_s: float = 15.0
) -> bool:
    # ScriptedModel.wait_for blocks; keep the event loop (and Playwright) running meanwhile.
    return await asyncio.to_thread(model.wait_for, predicate, timeout_s)


@pytest.mark.parametrize(("react", "theme"), VARIANTS)
async def test_ask_stream_follow_up_switch_tabs_and_reload(
    world: World, open_host: OpenHost, react: str, theme: str
) -> None:
    model = world.model
    model.script(Reply(text=ANSWER, token_delay_s=0.06), Reply(text="Pin the image tag and sync again."))
    host = await open_host(world.proxy.url, react, theme)
    page = host.page
    await host.open_assistant(DEPLOYMENT_NODE)
    await expect(page.get_by_test_id("aa-subject")).to_have_text("Deployment guestbook-ui")

    # Ask by tapping the suggestion that fits the state; the answer streams in.
    await page.get_by_test_id("aa-suggestion").filter(has_text="Why is this Degraded?").click()
    turn = host.turns().nth(0)
    await expect(turn.get_by_test_id("aa-question")).to_have_text("Why is this Degraded?")
    await expect(turn.get_by_test_id("aa-markdown")).to_contain_text("guestbook-ui is Degraded")
    await expect(turn).to_have_attribute("data-status", "streaming")
    await expect(page.get_by_test_id("aa-stop")).to_be_visible()
    partial = await turn.get_by_test_id("aa-markdown").inner_text()
    assert "health checks" not in partial, "the whole answer arrived at once: not streamed"
    await host.screenshot("1-streaming")

    await expect(turn).to_have_attribute("data-status", "done", timeout=30_000)
    md = turn.get_by_test_id("aa-markdown")
    await expect(md.locator("strong")).to_have_text("guestbook-ui")
    await expect(md.locator("ol > li")).to_have_count(2)
    await expect(md.locator(".aa-code code")).to_have_text(
        "kubectl -n browser-guestbook describe deploy guestbook-ui\n"
    )
    await expect(md.locator('a[href="https://argo-cd.readthedocs.io/"]')).to_have_attribute(
        "target", "_blank"
    )
    copy = md.locator(".aa-code__copy")
    await copy.click()
    await expect(copy).to_have_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == (
        "kubectl -n browser-guestbook describe deploy guestbook-ui\n"
    )
    # The "context sent" disclosure from the `context` event: what the backend read for the model.
    context = turn.get_by_test_id("aa-context")
    await expect(context).to_contain_text("Context sent:")
    await context.locator("summary").click()
    await expect(context.locator("tbody tr").first).to_be_visible()
    await host.screenshot("2-answer-with-context")
    assert "Why is this Degraded?" in model.completions()[0].text()

    # Follow-up with the keyboard: Shift+Enter is a newline, Enter sends.
    box = page.get_by_test_id("aa-input")
    await box.click()
    await box.type("And how do I fix it?")
    await box.press("Shift+Enter")
    await box.type("Briefly.")
    assert await box.input_value() == "And how do I fix it?\nBriefly."
    await box.press("Enter")
    second = host.turns().nth(1)
    await expect(second).to_have_attribute("data-status", "done", timeout=30_000)
    await expect(second.get_by_test_id("aa-markdown")).to_have_text("Pin the image tag and sync again.")
    follow_up = model.completions()[-1].text()
    assert "Briefly." in follow_up
    assert "Why is this Degraded?" in follow_up, "the follow-up did not continue the conversation"
    await host.screenshot("3-follow-up")

    # Switch to another tab and back: the conversation is still there (no new model call).
    calls = len(model.completions())
    await host.tab("Summary")
    await expect(page.get_by_test_id("aa-panel")).to_have_count(0)
    await host.tab("Assistant")
    await expect(host.turns()).to_have_count(2)

    # Another resource has its own conversation.
    await host.open_assistant(f"/Service/{DEPLOYMENT_NODE.split('/')[2]}/guestbook-ui")
    await expect(page.get_by_test_id("aa-empty")).to_be_visible()
    await host.open_assistant(DEPLOYMENT_NODE)
    await expect(host.turns()).to_have_count(2)

    # Reload: the URL keeps the tab; the turns come back from the backend.
    await page.reload()
    await expect(host.panel).to_be_visible()
    await expect(host.turns()).to_have_count(2)
    await expect(host.turns().nth(0).get_by_test_id("aa-question")).to_have_text("Why is this Degraded?")
    await expect(host.turns().nth(0).get_by_test_id("aa-markdown")).to_contain_text(
        "guestbook-ui is Degraded"
    )
    await expect(host.turns().nth(1).get_by_test_id("aa-question")).to_have_text(
        "And how do I fix it?\nBriefly."
    )
    await expect(host.turns().nth(1).get_by_test_id("aa-markdown")).to_have_text(
        "Pin the image tag and sync again."
    )
    assert len(model.completions()) == calls
    await host.screenshot("4-restored-after-reload")

    # New conversation starts over (and the next question carries no history).
    await page.get_by_test_id("aa-new").click()
    await expect(page.get_by_test_id("aa-empty")).to_be_visible()
    host.assert_no_page_errors()


@pytest.mark.parametrize(("react", "theme"), VARIANTS)
async def test_stop_mid_answer_disconnects(world: World, open_host: OpenHost, react: str, theme: str) -> None:
    model = world.model
    # 60 s of answer: the model cannot finish on its own inside the disconnect wait below (40 s, room
    # for a loaded CI machine, where browser -> proxy -> backend -> Llama Stack -> model once took > 15 s).
    long_answer = " ".join(f"word{i}" for i in range(600))
    model.script(Reply(text=long_answer, token_delay_s=0.1))
    host = await open_host(world.proxy.url, react, theme)
    page = host.page
    await host.open_assistant(DEPLOYMENT_NODE)
    await host.ask("Explain this Deployment")
    turn = host.turns().nth(0)
    await expect(turn.get_by_test_id("aa-markdown")).to_contain_text("word3")
    # Leaving the tab unmounts the panel; the answer keeps streaming and is there on return.
    await host.tab("Summary")
    await expect(host.panel).to_have_count(0)
    await host.tab("Assistant")
    await expect(turn).to_have_attribute("data-status", "streaming")
    await expect(turn.get_by_test_id("aa-markdown")).to_contain_text("word8")
    await page.get_by_test_id("aa-stop").click()
    await expect(turn).to_have_attribute("data-status", "stopped")
    await expect(turn.get_by_test_id("aa-stopped")).to_be_visible()
    await expect(page.get_by_test_id("aa-send")).to_be_visible()
    shown = await turn.get_by_test_id("aa-markdown").inner_text()
    assert "word599" not in shown
    # The disconnect travels browser -> proxy -> backend -> Llama Stack -> model.
    assert await wait_model(model, lambda r: bool(r) and r[-1].disconnected, timeout_s=40), (
        "the model never saw the disconnect"
    )
    assert model.completions()[-1].finished is not None
    await host.screenshot("5-stopped")
    host.assert_no_page_errors()


@pytest.mark.parametrize(("react", "theme"), VARIANTS)
async def test_backend_down_shows_a_clear_message(
    world: World, open_host: OpenHost, extensions_dir: Path, react: str, theme: str
) -> None:
    # Argo CD in front of a backend that is not running: its proxy answers 502.
    config = {
        "application": {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": APP_NAME, "namespace": APP_NAMESPACE},
            "spec": {"project": "default"},
            "status": {"health": {"status": "Degraded"}},
        }
    }
    dead = f"http://127.0.0.1:{free_port()}"
    proxy = ArgoCDProxy(backend_url=dead, secret=SECRET, extra_routes=host_routes(extensions_dir, config))
    proxy.add_app(App(APP_NAMESPACE, APP_NAME))
    proxy.start()
    try:
        host = await open_host(proxy.url, react, theme)
        await host.open_assistant("app")
        await host.ask("Why is this Degraded?")
        error = host.turns().nth(0).get_by_test_id("aa-error")
        await expect(error).to_contain_text("The Assistant backend is not reachable")
        await expect(error).to_have_attribute("data-code", "argocd_502")
        await expect(error.get_by_test_id("aa-retry")).to_be_enabled()
        await host.screenshot("6-backend-down")
        # Retry goes out again (and fails the same way, still clearly).
        before = len(proxy.forwarded)
        await error.get_by_test_id("aa-retry").click()
        await expect(host.turns()).to_have_count(1)
        await expect(host.turns().nth(0).get_by_test_id("aa-error")).to_be_visible()
        assert len(proxy.forwarded) > before
        host.assert_no_page_errors()
    finally:
        proxy.stop()


@pytest.mark.parametrize(("react", "theme"), VARIANTS)
async def test_hostile_markdown_does_not_execute(
    world: World, open_host: OpenHost, react: str, theme: str
) -> None:
    world.model.script(Reply(text=HOSTILE))
    # React's development build here, so its warnings about the chat's rendering surface too.
    host = await open_host(world.proxy.url, react, theme, dev=True)
    page = host.page
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    await host.open_assistant(DEPLOYMENT_NODE)
    # The backend offers two models: the picker shows, and the choice reaches the model.
    await host.page.get_by_test_id("aa-model").select_option("openai/scripted-model-b")
    await host.ask("Show me something nasty")
    turn = host.turns().nth(0)
    await expect(turn).to_have_attribute("data-status", "done", timeout=30_000)
    md = turn.get_by_test_id("aa-markdown")
    # The raw HTML is shown as text...
    await expect(md).to_contain_text("<script>window.__pwned='script'</script>")
    # ...and none of it became an element.
    for selector in ("img", "script", "iframe", "a[href^='javascript']", "[onerror]"):
        await expect(md.locator(selector)).to_have_count(0)
    await expect(md.locator("a[href='https://evil.example/beacon.png']")).to_have_text("pixel")
    await md.get_by_text("click me").click()
    await page.wait_for_timeout(200)
    assert await page.evaluate("window.__pwned") is None
    assert dialogs == []
    assert world.model.completions()[-1].body["model"] == "scripted-model-b"
    await turn.get_by_test_id("aa-context").locator("summary").click()
    await host.screenshot("7-hostile-markdown")
    host.assert_no_page_errors()
    react_warnings = [
        w for w in host.console_errors + host.console_warnings if "Warning:" in w or "React" in w
    ]
    assert react_warnings == [], react_warnings


@pytest.mark.parametrize(("react", "theme"), VARIANTS)
async def test_no_extension_permission_says_whom_to_ask(
    world: World, chromium: Browser, react: str, theme: str
) -> None:
    # A user without `extensions, invoke, assistant`: Argo CD's proxy answers 401 before the backend.
    context = await chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        await context.add_cookies(
            [{"name": "argocd.token", "value": "noinvoke-token", "url": world.proxy.url}]
        )
        host = HostPage(await context.new_page(), world.proxy.url, react, theme)
        await host.open()
        await host.open_assistant(DEPLOYMENT_NODE)
        await host.ask("Why is this Degraded?")
        error = host.turns().nth(0).get_by_test_id("aa-error")
        await expect(error).to_have_attribute("data-code", "argocd_401")
        await expect(error).to_contain_text('"extensions, invoke, assistant" permission')
        await host.screenshot("8-no-permission")
        host.assert_no_page_errors()
    finally:
        await context.close()


@pytest.mark.parametrize(("react", "theme"), VARIANTS)
async def test_ask_and_stream_with_argocd_under_a_sub_path(
    world: World, chromium: Browser, extensions_dir: Path, kube_cluster: KubeCluster, react: str, theme: str
) -> None:
    """argocd-server with `--rootpath /argocd`: the page has `<base href="/argocd/">` and only /argocd/...
    is served; the panel's requests must go below it and still reach the backend."""
    proxy = ArgoCDProxy(
        backend_url=world.backend.url, secret=SECRET, root_path="/argocd",
        extra_routes=host_routes(extensions_dir, create_world(kube_cluster), base_href="/argocd/"),
    )
    proxy.add_app(App(APP_NAMESPACE, APP_NAME))
    proxy.start()
    context = await chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        await context.add_cookies([{"name": "argocd.token", "value": "alice-token", "url": proxy.base_url}])
        host = HostPage(await context.new_page(), proxy.base_url, react, theme)
        await host.open()
        world.model.script(Reply(text="Served from below the root path."))
        await host.open_assistant(DEPLOYMENT_NODE)
        await host.ask("Does it work under /argocd?")
        turn = host.turns().nth(0)
        await expect(turn).to_have_attribute("data-status", "done", timeout=30_000)
        await expect(turn.get_by_test_id("aa-markdown")).to_have_text("Served from below the root path.")
        assert proxy.forwarded, "the chat went through the proxy under /argocd"
        host.assert_no_page_errors()
    finally:
        await context.close()
        proxy.stop()
