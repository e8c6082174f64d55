"""``make ui-dev``: the Argo CD-like host page with the built extension, in front of a running backend.

Serves the page, ``/extensions.js`` (from ``dist/``, so ``make ui`` + reload picks up changes) and the
test Argo CD proxy on one origin. Open ``/dev-login`` once: it sets the ``argocd.token`` cookie of the
proxy's user ``alice`` and opens the sample Application ``argocd:guestbook``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .argocd_proxy import ArgoCDProxy
from .hostpage import REPO, host_routes, sample_config


async def dev_login(request: Request) -> Response:
    react = request.query_params.get("react", "16")
    theme = request.query_params.get("theme", "light")
    response = RedirectResponse(f"/?react={react}&theme={theme}", status_code=303)
    response.set_cookie("argocd.token", "alice-token", httponly=True, samesite="strict")
    return response


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:8091")
    parser.add_argument("--backend", default="http://127.0.0.1:8080")
    parser.add_argument("--secret", default="Bearer dev-only-secret")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    routes = [Route("/dev-login", dev_login), *host_routes(REPO / "dist", sample_config)]
    proxy = ArgoCDProxy(
        backend_url=args.backend,
        secret=args.secret,
        host=host or "127.0.0.1",
        port=int(port),
        extra_routes=routes,
    )
    proxy.start()
    print(
        f"Argo CD-like page on {proxy.url} (backend {args.backend})\n"
        f"  open {proxy.url}/dev-login            React 16, light (Argo CD <= 3.4)\n"
        f"  open {proxy.url}/dev-login?react=19&theme=dark   React 19, dark (Argo CD 3.5+)",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        proxy.stop()


if __name__ == "__main__":
    main()
