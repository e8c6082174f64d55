"""The Argo CD-like host page as Starlette routes.

Served from the same origin as `/extensions/assistant/...` (the test Argo CD proxy mounts these
routes), so the panel's same-origin fetches carry the `argocd.token` cookie exactly as in Argo CD.
`/extensions.js` is built the way argocd-server builds it: every file under the extensions
directory whose name matches `^extension(.*)\\.js$`, recursively, in lexical order, concatenated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

HOST_DIR = Path(__file__).resolve().parent / "host"
EXTENSION_FILE = re.compile(r"^extension(.*)\.js$")
REACT_VERSIONS = ("16", "19")

PAGE = """<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>{title} - Argo CD (test host)</title>
<link rel="stylesheet" href="/host/host.css">
<script src="/host/build/react{react}{suffix}.js"></script>
<script src="/host/host.js"></script>
<script src="/extensions.js"></script>
</head>
<body>
<div id="root" class="theme-{theme} host-root" data-react="{react}"></div>
<script>window.__startHost();</script>
</body>
</html>
"""


def extension_files(extensions_dir: Path) -> list[Path]:
    """The files argocd-server would serve, in its order (lexical by path, like filepath.Walk)."""
    found = [p for p in extensions_dir.rglob("*") if p.is_file() and EXTENSION_FILE.match(p.name)]
    return sorted(found, key=lambda p: p.relative_to(extensions_dir).as_posix())


def host_routes(
    extensions_dir: Path, config: Callable[[], dict[str, Any]] | dict[str, Any]
) -> list[BaseRoute]:
    """Routes for `/` (the page: `?react=16|19&theme=light|dark`, `&dev=1` for React's development
    build), `/host/*`, `/extensions.js` and `/host-config.json` (the Application, its tree and the live
    objects the page shows)."""
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
        return HTMLResponse(PAGE.format(react=react, suffix=suffix, theme=theme, title=title))

    async def extensions_js(_: Request) -> Response:
        body = "\n".join(p.read_text(encoding="utf-8") for p in extension_files(extensions_dir))
        return Response(body, media_type="application/javascript", headers={"Cache-Control": "no-store"})

    async def host_config(_: Request) -> Response:
        cfg = config() if callable(config) else config
        return JSONResponse(cfg, headers={"Cache-Control": "no-store"})

    return [
        Route("/", page),
        Route("/extensions.js", extensions_js),
        Route("/host-config.json", host_config),
        Mount("/host", app=StaticFiles(directory=HOST_DIR)),
    ]


def sample_config() -> dict[str, Any]:
    """The sample Application `make ui-dev` shows (the same shape the browser tests build from a
    real apiserver)."""
    loaded: dict[str, Any] = json.loads((HOST_DIR / "sample-app.json").read_text(encoding="utf-8"))
    return loaded
