"""The bundle from the tarball loads into an Argo CD-like page (React 16 and 19), registers its
tab and status-panel entry, and renders the panel with suggestions that fit the resource's state.
No backend here: the panel must still render (the model list simply fails)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect
from starlette.applications import Starlette

from tests.browser.conftest import HostPage
from tests.browser.hostpage import host_routes, sample_config
from tests.browser.server import serve_asgi

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

DEPLOYMENT = "apps/Deployment/guestbook/guestbook-ui"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def host_url(extensions_dir: Path) -> AsyncIterator[str]:
    async with serve_asgi(Starlette(routes=host_routes(extensions_dir, sample_config()))) as url:
        yield url


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
