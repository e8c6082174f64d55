"""The bundle from the tarball loads into an Argo CD-like page (React 16 and 19), registers its
tab and status-panel entry, and renders the panel with suggestions that fit the resource's state.
No backend here: the panel must still render (the model list simply fails)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect
from starlette.applications import Starlette

from tests.support.argocd_proxy import with_root_path
from tests.support.hostpage import HostPage, host_routes, sample_config
from tests.support.threaded import ThreadedServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

DEPLOYMENT = "apps/Deployment/guestbook/guestbook-ui"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def host_url(extensions_dir: Path) -> AsyncIterator[str]:
    with ThreadedServer(Starlette(routes=host_routes(extensions_dir, sample_config())), name="host-page") as server:
        yield server.url


@pytest.mark.parametrize("react", ["16", "19"])
@pytest.mark.parametrize("theme", ["light", "dark"])
async def test_tab_renders_with_state_suggestions(
    chromium: Browser, host_url: str, react: str, theme: str
) -> None:
    context = await chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        host = HostPage(await context.new_page(), host_url, react, theme)
        await host.open()
        assert await host.page.evaluate("window.React.version") == ("16.14.0" if react == "16" else "19.3.1")
        registered = await host.page.evaluate(
            "({r: window.__hostExtensions.resource.map(e => [e.group, e.kind, e.title, e.icon]),"
            " s: window.__hostExtensions.statusPanel.map(e => [e.title, e.id, typeof e.flyout])})"
        )
        assert registered == {
            "r": [["**", "*", "Assistant", "fa fa-comments"]],
            "s": [["Assistant", "argocd-assistant", "function"]],
        }
        await host.open_assistant(DEPLOYMENT)
        await expect(host.page.get_by_test_id("aa-subject")).to_have_text("Deployment guestbook-ui")
        chips = host.page.get_by_test_id("aa-suggestion")
        await expect(chips.first).to_have_text("Why is this Degraded?")
        await expect(chips).to_contain_text(
            ["Why is this Degraded?", "Why is this OutOfSync?", "Explain this Deployment"]
        )
        await expect(host.page.get_by_test_id("aa-send")).to_be_disabled()
        await host.screenshot("empty-deployment")

        # The application node: the chat is about the Application itself.
        await host.open_assistant("app")
        await expect(host.page.get_by_test_id("aa-subject")).to_have_text("Application guestbook")

        # The status-panel entry opens the same chat in a flyout.
        await host.page.get_by_test_id("host-close").click()
        await host.page.get_by_test_id("aa-open-flyout").click()
        flyout = host.page.get_by_test_id("host-flyout")
        await expect(flyout.get_by_test_id("aa-subject")).to_have_text("Application guestbook")
        await host.screenshot("flyout-application")
        host.assert_no_page_errors()
    finally:
        await context.close()


@pytest.mark.parametrize("react", ["16", "19"])
async def test_react_development_build_has_no_warnings(chromium: Browser, host_url: str, react: str) -> None:
    """React's development build warns about bad keys, DOM props and hooks misuse: there must be none."""
    context = await chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        host = HostPage(await context.new_page(), host_url, react, "light", dev=True)
        await host.open()
        assert await host.page.evaluate("typeof window.React.version") == "string"
        await host.open_assistant(DEPLOYMENT)
        await host.page.get_by_test_id("aa-input").fill("Why?\nReally.")
        await host.page.get_by_test_id("host-close").click()
        await host.page.get_by_test_id("aa-open-flyout").click()
        await expect(host.page.get_by_test_id("host-flyout").get_by_test_id("aa-panel")).to_be_visible()
        host.assert_no_page_errors()
        # The only errors allowed: the model list and the restore requests failing (no backend here).
        errors = [e for e in host.console_errors if "Failed to load resource" not in e]
        assert errors == [], errors
        react_warnings = [w for w in host.console_warnings if "React" in w or "Warning:" in w]
        assert react_warnings == [], react_warnings
    finally:
        await context.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def subpath_host_url(extensions_dir: Path) -> AsyncIterator[str]:
    """The page as argocd-server serves it with `--rootpath /argocd`: `<base href="/argocd/">`, and only
    paths under /argocd/ exist (anything else is 404, so an absolute `/extensions/...` call misses)."""
    app = with_root_path(Starlette(routes=host_routes(extensions_dir, sample_config(), base_href="/argocd/")),
                         "/argocd")
    with ThreadedServer(app, name="host-page") as server:
        yield server.url + "/argocd"


@pytest.mark.parametrize("react", ["16", "19"])
async def test_page_provides_what_argocd_provides_and_nothing_more(
    chromium: Browser, host_url: str, react: str
) -> None:
    """Guards the stand-in: no window.ReactDOMClient (Argo CD keeps react-dom/client inside its own
    bundle), minimatch semantics for the tab matcher, and /extensions.js in the release's own form."""
    context = await chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        host = HostPage(await context.new_page(), host_url, react)
        await host.open()
        assert await host.page.evaluate("typeof window.ReactDOMClient") == "undefined"
        assert await host.page.evaluate("typeof window.ReactJSXRuntime") == ("undefined" if react == "16" else "object")
        matches = await host.page.evaluate(
            "[['', '**'], ['', '*'], ['apps', '*'], ['argoproj.io', '**']].map(([v, p]) => window.__testHostMinimatch(v, p))"
        )
        assert matches == [True, False, True, True]
        # '**' is what lets the tab onto core-group resources (group ''): a Service has it.
        await host.open_assistant("/Service/guestbook/guestbook-ui")
        await expect(host.page.get_by_test_id("aa-subject")).to_have_text("Service guestbook-ui")
        script = await host.page.evaluate("fetch(document.querySelector('script[src^=\"extensions.js\"]').src).then(r => r.text())")
        assert script.startswith("// source: ")
        assert ("try {\n" in script and "} catch(e) { console.error('Extension extension-assistant.js failed to load:'" in script) == (react == "19")
        host.assert_no_page_errors()
    finally:
        await context.close()


@pytest.mark.parametrize("react", ["16", "19"])
async def test_under_a_sub_path_requests_go_below_the_root_path(
    chromium: Browser, subpath_host_url: str, react: str
) -> None:
    context = await chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = await context.new_page()
        requested: list[str] = []
        page.on("request", lambda r: requested.append(urlsplit(r.url).path))
        host = HostPage(page, subpath_host_url, react)
        await host.open()
        # The panel asks for the model list as soon as it mounts: wait for that request, wherever it goes.
        async with page.expect_request(lambda r: "extensions/assistant/v1/" in r.url):
            await host.open_assistant(DEPLOYMENT)
        await expect(host.page.get_by_test_id("aa-subject")).to_have_text("Deployment guestbook-ui")
        calls = [p for p in requested if "/extensions/assistant/" in p]
        assert all(p.startswith("/argocd/extensions/assistant/v1/") for p in calls), calls
        assert all(p.startswith("/argocd/") for p in requested), requested
        host.assert_no_page_errors()
    finally:
        await context.close()


@pytest.mark.parametrize("react", ["16", "19"])
async def test_applicationset_page_says_what_the_assistant_works_on_and_sends_nothing(
    chromium: Browser, host_url: str, react: str
) -> None:
    """Argo CD 3.4+ gives '**', '*' tabs the ApplicationSet as `application`; asking about it would be
    refused by Argo CD (or answered about an Application that happens to share its name)."""
    context = await chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = await context.new_page()
        requested: list[str] = []
        page.on("request", lambda r: requested.append(urlsplit(r.url).path))
        host = HostPage(page, host_url, react)
        await page.goto(f"{host_url}/?react={react}&page=appset")
        await expect(page.get_by_test_id("host-appset-page")).to_be_visible()
        await host.tab("Assistant")
        note = page.get_by_test_id("aa-not-an-application")
        await expect(note).to_contain_text("The Assistant works on Applications and their resources")
        await expect(note).to_contain_text("guestbook is an ApplicationSet")
        assert await page.get_by_test_id("aa-input").count() == 0
        await host.screenshot("applicationset")
        assert [p for p in requested if "/extensions/" in p] == []
        host.assert_no_page_errors()
    finally:
        await context.close()


async def test_a_broken_extension_beside_ours_is_contained_on_argocd_3_5_only(
    chromium: Browser, extensions_dir: Path, tmp_path: Path
) -> None:
    """Argo CD 3.5 wraps each extension file in try/catch; <= 3.4 concatenates them into one script, where
    an earlier file that throws stops everything after it (ours included)."""
    shutil.copytree(extensions_dir, tmp_path / "extensions")
    (tmp_path / "extensions" / "resources" / "extension-0-broken.js").write_text("throw new Error('broken neighbour');\n")
    with ThreadedServer(Starlette(routes=host_routes(tmp_path / "extensions", sample_config())), name="host-page") as server:
        url = server.url
        for react, registered in (("19", 1), ("16", 0)):
            context = await chromium.new_context(viewport={"width": 1400, "height": 900})
            try:
                host = HostPage(await context.new_page(), url, react)
                await host.open()
                assert await host.page.evaluate("window.__hostExtensions.resource.length") == registered, react
                if react == "19":
                    assert any("Extension extension-0-broken.js failed to load" in e for e in host.console_errors)
            finally:
                await context.close()
