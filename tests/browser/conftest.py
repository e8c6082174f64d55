"""Browser fixtures: Debian's Chromium driven by Playwright (never a downloaded browser) and the UI
tarball installed the way the extension-installer does. The page driver is
``tests.support.hostpage.HostPage``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright, expect

from tests.support.installer import install, ui_tarball

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

