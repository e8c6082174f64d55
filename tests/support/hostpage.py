"""The Argo CD-like host page as Starlette routes, and :class:`HostPage`, the driver a browser test uses.

Served from the same origin as `/extensions/assistant/...` (the test Argo CD proxy mounts these
routes), so the panel's same-origin fetches carry the `argocd.token` cookie exactly as in Argo CD.
`/extensions.js` is built the way argocd-server builds it (``serveExtensions`` in ``server/server.go``):
every regular file (no symlinks) under the extensions directory whose name matches
`^extension(.*)\\.js$`, recursively, in lexical order, each after a `// source: <path>/<name> ` line;
Argo CD <= 3.4 concatenates them as they are (no separator), 3.5 wraps each in
`try { ... } catch(e) { console.error('Extension <name> failed to load:', e); }`. The page pairs React 16
with the 3.4 form and React 19 with the 3.5 form, like the real releases.

Like Argo CD's `index.html`, the page has a `<base href>` (`/`, or `/<rootpath>/` under `--rootpath`) and
every URL in it is relative (``tests.support.argocd_proxy.with_root_path`` serves it under a sub-path).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.async_api import ConsoleMessage, Locator, Page, expect
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

REPO = Path(__file__).resolve().parents[2]
HOST_DIR = REPO / "tests" / "browser" / "host"  # the page's own npm package (`make ui` builds it)
ARTIFACTS = REPO / "test-artifacts" / "browser"  # screenshots
EXTENSION_FILE = re.compile(r"^extension(.*)\.js$")
REACT_VERSIONS = ("16", "19")

PAGE = """<!doctype html>
<html>
<head>
<meta charset="utf-8">
<base href="{base_href}">
<title>{title} - Argo CD (test host)</title>
<link rel="stylesheet" href="host/host.css">
<script src="host/build/react{react}{suffix}.js"></script>
<script src="host/build/host-runtime.js"></script>
<script src="host/host.js"></script>
<script src="extensions.js?argocd={argocd}"></script>
</head>
<body>
<div id="root" class="theme-{theme} host-root" data-react="{react}"></div>
<script>window.__startHost();</script>
</body>
</html>
"""


# The Argo CD release each React version stands for, and so the form of /extensions.js it gets.
ARGOCD_FOR_REACT = {"16": "3.4", "19": "3.5"}


def extension_files(extensions_dir: Path) -> list[Path]:
    """The files argocd-server would serve, in its order (lexical by path, like filepath.Walk)."""
    found = [
        p for p in extensions_dir.rglob("*")
        if p.is_file() and not p.is_symlink() and EXTENSION_FILE.match(p.name)
    ]
    return sorted(found, key=lambda p: p.relative_to(extensions_dir).as_posix())


def extensions_js(extensions_dir: Path, argocd: str) -> str:
    """/extensions.js as argocd-server ``argocd`` ("3.4" or "3.5") writes it."""
    parts: list[str] = []
    for path in extension_files(extensions_dir):
        body = path.read_text(encoding="utf-8")
        # Argo CD prints the walked path and then the name again (filePath already ends with it).
        header = f"// source: {path}/{path.name} \n"
        if argocd == "3.5":
            parts.append(
                f"{header}try {{\n{body}\n}} catch(e) {{ console.error('Extension {path.name} failed to load:', e); }}\n"
            )
        else:
            parts.append(header + body)
    return "".join(parts)


def host_routes(
    extensions_dir: Path, config: Callable[[], dict[str, Any]] | dict[str, Any], base_href: str = "/"
) -> list[BaseRoute]:
    """Routes for `/` (the page: `?react=16|19&theme=light|dark`, `&dev=1` for React's development
    build, `&page=appset` for an ApplicationSet page), `/host/*`, `/extensions.js` and
    `/host-config.json` (the Application, its tree, the live objects and an ApplicationSet). ``base_href``
    is the page's `<base href>`: `/<rootpath>/` when served under a root path."""
    if not (HOST_DIR / "build" / "react16.js").exists():
        raise RuntimeError("host page runtimes not built: run `make ui` (tests/browser/host/build.mjs)")

    async def page(request: Request) -> Response:
        react = request.query_params.get("react", "16")
        theme = request.query_params.get("theme", "light")
        suffix = "-dev" if request.query_params.get("dev") == "1" else ""
        if react not in REACT_VERSIONS or theme not in ("light", "dark"):
            return Response("react must be 16 or 19, theme light or dark", status_code=400)
        cfg = config() if callable(config) else config
        title = str(cfg.get("application", {}).get("metadata", {}).get("name", "app"))
        return HTMLResponse(
            PAGE.format(react=react, suffix=suffix, theme=theme, title=title, base_href=base_href,
                        argocd=ARGOCD_FOR_REACT[react])
        )

    async def serve_extensions(request: Request) -> Response:
        argocd = request.query_params.get("argocd", "3.4")
        body = extensions_js(extensions_dir, argocd)
        return Response(body, media_type="application/javascript", headers={"Cache-Control": "no-store"})

    async def host_config(_: Request) -> Response:
        cfg = config() if callable(config) else config
        if "applicationSet" not in cfg:
            cfg = {**cfg, "applicationSet": application_set_named_like(cfg["application"])}
        return JSONResponse(cfg, headers={"Cache-Control": "no-store"})

    return [
        Route("/", page),
        Route("/extensions.js", serve_extensions),
        Route("/host-config.json", host_config),
        Mount("/host", app=StaticFiles(directory=HOST_DIR)),
    ]


def application_set_named_like(application: dict[str, Any]) -> dict[str, Any]:
    """An ApplicationSet with the Application's name and namespace: a panel that took it for an
    Application would ask about (and be answered about) that Application."""
    meta = application.get("metadata", {})
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": meta.get("name", "app"), "namespace": meta.get("namespace", "argocd")},
        "spec": {"generators": [{"list": {"elements": [{"cluster": "in-cluster"}]}}],
                 "template": {"metadata": {"name": "{{cluster}}-app"}, "spec": {"project": "default"}}},
        "status": {"conditions": [{"type": "ResourcesUpToDate", "status": "True"}]},
    }


def sample_config() -> dict[str, Any]:
    """The sample Application `make ui-dev` shows (the same shape the browser tests build from a
    real apiserver)."""
    loaded: dict[str, Any] = json.loads((HOST_DIR / "sample-app.json").read_text(encoding="utf-8"))
    return loaded


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
