"""Browser fixtures: Debian's Chromium driven by Playwright (never a downloaded browser), the UI
tarball installed the way the extension-installer does, and a helper around the host page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, ConsoleMessage, Locator, Page, async_playwright, expect

from tests.ui.installer import REPO, install, ui_tarball

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts" / "browser"

# The machine is shared (2 cores, other suites running) and the first answer after Llama Stack starts
# is slow: wait up to 20 s for what must appear. Assertions still pass as soon as it does.
expect.set_options(timeout=20_000)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-deps`")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        await browser.close()


@pytest.fixture(scope="session")
def extensions_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`/tmp/extensions` of a fake argocd-server, filled from the built tarball."""
    root = tmp_path_factory.mktemp("argocd-server")
    return install(ui_tarball(), root / "extensions", root / "installer")


class HostPage:
    """The Argo CD-like page with the Assistant in it, plus what a test needs to look at it."""

    def __init__(
        self, page: Page, base_url: str, react: str, theme: str = "light", dev: bool = False
    ) -> None:
        self.page = page
        self.dev = dev
        self.base_url = base_url
        self.react = react
        self.theme = theme
        self.page_errors: list[str] = []
        self.console_errors: list[str] = []
        self.console_warnings: list[str] = []
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("console", self._console)

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.console_errors.append(msg.text)
        elif msg.type == "warning":
            self.console_warnings.append(msg.text)

    async def open(self, node: str | None = None, tab: str | None = None) -> None:
        query = f"react={self.react}&theme={self.theme}" + ("&dev=1" if self.dev else "")
        if node:
            query += f"&node={node}"
        if tab:
            query += f"&tab={tab}"
        await self.page.goto(f"{self.base_url}/?{query}")
        await expect(self.page.get_by_test_id("host-tree")).to_be_visible()

    async def select(self, node: str) -> None:
        # The sliding panel covers the tree, as in Argo CD: close it first.
        if await self.page.get_by_test_id("host-resource-panel").count():
            await self.page.get_by_test_id("host-close").click()
        await self.page.locator(f'[data-testid="host-node"][data-node="{node}"]').click()

    async def tab(self, title: str) -> None:
        await self.page.locator(f'[data-testid="host-tab"][data-tab="{title}"]').click()

    async def open_assistant(self, node: str) -> None:
        await self.select(node)
        await self.tab("Assistant")
        await expect(self.panel).to_be_visible()

    @property
    def panel(self) -> Locator:
        return self.page.get_by_test_id("aa-panel")

    async def ask(self, question: str) -> None:
        box = self.page.get_by_test_id("aa-input")
        await box.fill(question)
        await box.press("Enter")

    def turns(self) -> Locator:
        return self.page.get_by_test_id("aa-turn")

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^\w.-]+", "-", name)
        path = ARTIFACTS / f"react{self.react}-{self.theme}-{safe}.png"
        await self.page.screenshot(path=str(path), full_page=False)
        return path

    def assert_no_page_errors(self) -> None:
        assert self.page_errors == [], self.page_errors


# The real parts the end-to-end scenarios need (shared fixtures from tests/support).
