"""A faithful stand-in for Argo CD's proxy extension (``server/extension/extension.go``).

What it does, in Argo CD's order:
1. ``/extensions/<name>/...`` only; an unknown extension is 404 "Extension not found".
2. The ``argocd.token`` cookie authenticates the user (Argo CD's session, ``WithAuthMiddleware`` in
   ``util/session/sessionmanager.go``), answered with Go's ``http.Error`` (plain text, newline): no
   cookie is 400 "Auth cookie not found"; a token that does not verify (forged, expired, revoked) is
   401 "Invalid token"; with SSO configured, a verified token whose groups cannot be fetched from the
   IdP's endpoint is 401 "Invalid session".
3. ``ValidateHeaders``: ``Argocd-Application-Name`` must be ``<namespace>:<name>`` and
   ``Argocd-Project-Name`` present; else 400 "Invalid headers: ...".
4. ``authorize``: RBAC ``applications, get`` on the app, ``extensions, invoke`` on the extension, the app
   exists, its project matches the header; any failure is 401 "Unauthorized extension request".
5. ``prepareRequest``: strip ``/extensions/<name>`` from the path; ``Set`` ``Argocd-Namespace``; ``Set``
   the target cluster name / URL, the user name, the user id and the groups *only when non-empty*
   (incoming copies are not deleted: the spoofing hole the backend must survive).
6. The reverse proxy's director deletes ``Authorization`` and ``Cookie``, then ``Set``s the configured
   headers (the shared secret). Responses stream through unbuffered; a backend that cannot be reached
   is a 502 with an empty body (Go's ReverseProxy default).

It also serves extra routes (a host page, ``/extensions.js``) from the same origin, like argocd-server,
and with ``root_path`` (``--rootpath``) serves everything under that prefix only (``withRootPath``).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .net import SECRET, free_port
from .server import Server
from .threaded import ThreadedServer

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length",
}
_APP_HEADER = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?):([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$")


@dataclass(frozen=True)
class User:
    name: str
    user_id: str = ""  # Argo CD 3.2+ sends Argocd-User-Id
    groups: tuple[str, ...] = ()
    can_invoke: bool = True  # `extensions, invoke, assistant`
    apps: frozenset[str] | None = None  # `applications, get`: "<ns>/<name>" allowed; None = all


@dataclass(frozen=True)
class App:
    namespace: str
    name: str
    project: str = "default"
    dest_server: str = "https://kubernetes.default.svc"
    dest_name: str = ""


DEFAULT_USERS = {
    "alice-token": User("alice", user_id="alice-id", groups=("dev",)),
    "bob-token": User("bob", user_id="bob-id", groups=("dev",)),
    "nogroups-token": User("carol"),
    "noinvoke-token": User("dave", can_invoke=False),
}
DEFAULT_APPS = (App("argocd", "guestbook"), App("team-a", "shop", project="team-a"))


@dataclass
class ArgoCDProxy(Server):
    backend_url: str
    secret: str | None = SECRET
    secret_header: str = "Authorization"
    extension: str = "assistant"
    control_plane_namespace: str = "argocd"
    users: dict[str, User] = field(default_factory=lambda: dict(DEFAULT_USERS))
    apps: dict[str, App] = field(default_factory=lambda: {f"{a.namespace}/{a.name}": a for a in DEFAULT_APPS})
    extra_routes: Sequence[BaseRoute] = ()
    send_user_id: bool = True  # False behaves like Argo CD < 3.2
    root_path: str = ""  # Argo CD's --rootpath, e.g. "/argocd"
    sso_groups_unavailable: set[str] = field(default_factory=set)  # tokens whose IdP groups lookup fails
    host: str = "127.0.0.1"
    port: int = 0
    forwarded: list[httpx.Headers] = field(default_factory=list)  # headers the backend received

    def __post_init__(self) -> None:
        self.port = self.port or free_port(self.host)
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=2.0))  # no response timeout
        self._server: ThreadedServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Where Argo CD's UI is: the origin plus the root path."""
        return self.url + ("/" + self.root_path.strip("/") if self.root_path.strip("/") else "")

    def add_app(self, app: App) -> None:
        self.apps[f"{app.namespace}/{app.name}"] = app

    # -- the proxy --------------------------------------------------------------------------------
    def asgi(self) -> ASGIApp:
        routes = [
            *self.extra_routes,
            Route("/extensions/{rest:path}", self._handle,
                  methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
        ]
        return with_root_path(Starlette(routes=routes), self.root_path)

    async def _handle(self, request: Request) -> Response:
        segments = request.url.path.lstrip("/").split("/")
        ext_name = segments[1] if len(segments) > 1 else ""
        if not ext_name:
            return PlainTextResponse("Invalid URL: extension name must be provided\n", 400)
        token = request.cookies.get("argocd.token", "")
        if not token:
            return _go_http_error("Auth cookie not found", 400)
        user = self.users.get(token)
        if user is None:
            return _go_http_error("Invalid token", 401)
        if token in self.sso_groups_unavailable:
            return _go_http_error("Invalid session", 401)
        app_header = request.headers.get("Argocd-Application-Name", "")
        project = request.headers.get("Argocd-Project-Name", "")
        match = _APP_HEADER.match(app_header)
        if not app_header or not match:
            return PlainTextResponse("Invalid headers: invalid value for namespace:app-name header\n", 400)
        if not project:
            return PlainTextResponse("Invalid headers: header Argocd-Project-Name must be provided\n", 400)
        app_key = f"{match.group(1)}/{match.group(3)}"
        app = self.apps.get(app_key)
        allowed_app = user.apps is None or app_key in user.apps
        if not allowed_app or not user.can_invoke or app is None or app.project != project:
            return PlainTextResponse("Unauthorized extension request\n", 401)
        if ext_name != self.extension:
            return PlainTextResponse("Extension not found\n", 404)

        path = request.url.path.removeprefix(f"/extensions/{ext_name}") or "/"
        headers: list[tuple[str, str]] = [
            (k, v) for k, v in request.headers.items()
            if k.lower() not in HOP_BY_HOP and k.lower() not in ("authorization", "cookie")
        ]

        def set_header(name: str, value: str) -> None:
            nonlocal headers
            headers = [(k, v) for k, v in headers if k.lower() != name.lower()]
            headers.append((name, value))

        set_header("Argocd-Namespace", self.control_plane_namespace)
        if app.dest_name:
            set_header("Argocd-Target-Cluster-Name", app.dest_name)
        if app.dest_server:
            set_header("Argocd-Target-Cluster-URL", app.dest_server)
        if user.name:
            set_header("Argocd-Username", user.name)
        if user.user_id and self.send_user_id:
            set_header("Argocd-User-Id", user.user_id)
        if user.groups:
            set_header("Argocd-User-Groups", ",".join(user.groups))
        client_ip = request.client.host if request.client else ""
        prior = request.headers.get("X-Forwarded-For")
        set_header("X-Forwarded-For", f"{prior}, {client_ip}" if prior else client_ip)
        if self.secret is not None:
            set_header(self.secret_header, self.secret)
        self.forwarded.append(httpx.Headers(headers))

        upstream_request = self._client.build_request(
            request.method, self.backend_url.rstrip("/") + path, params=request.url.query,
            headers=headers, content=request.stream(),
        )
        try:
            upstream = await self._client.send(upstream_request, stream=True)
        except httpx.HTTPError:
            return Response(status_code=502)
        response_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
        return StreamingResponse(
            _relay(upstream), status_code=upstream.status_code, headers=response_headers,
            background=BackgroundTask(upstream.aclose),
        )

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> ArgoCDProxy:
        self._server = ThreadedServer(self.asgi(), self.host, self.port, "argocd-proxy")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()


def _go_http_error(message: str, status: int) -> Response:
    """What Go's ``http.Error`` writes: the message and a newline, as plain text, not sniffable."""
    return PlainTextResponse(
        message + "\n", status, headers={"X-Content-Type-Options": "nosniff"}, media_type="text/plain"
    )


def with_root_path(app: ASGIApp, root_path: str) -> ASGIApp:
    """argocd-server's ``withRootPath``: under ``--rootpath /x`` only ``/x/...`` is served, with the
    prefix stripped (``http.StripPrefix``); any other path is 404."""
    root = "/" + root_path.strip("/")
    if root == "/":
        return app

    async def stripped(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(root + "/"):
            await PlainTextResponse("404 page not found\n", 404)(scope, receive, send)
            return
        raw = scope.get("raw_path") or path.encode()
        inner = dict(scope, path=path[len(root):], raw_path=raw[len(root.encode()):])
        await app(inner, receive, send)

    return stripped


async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError:
        return  # the backend went away mid-response: Go's proxy just ends the body
    finally:
        await upstream.aclose()


def browser_headers(app: str = "argocd:guestbook", project: str = "default") -> dict[str, str]:
    """What the UI extension sends (the cookie is set separately)."""
    return {"Argocd-Application-Name": app, "Argocd-Project-Name": project}


def main(argv: Sequence[str] | None = None, on_start: Callable[[ArgoCDProxy], None] | None = None) -> None:
    """``python -m tests.support.argocd_proxy``: run it in front of a local backend (``make proxy``)."""
    import argparse

    parser = argparse.ArgumentParser(description="test Argo CD proxy extension")
    parser.add_argument("--listen", default="127.0.0.1:8090")
    parser.add_argument("--backend", default="http://127.0.0.1:8080")
    parser.add_argument("--secret", default="Bearer dev-only-secret")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    proxy = ArgoCDProxy(backend_url=args.backend, secret=args.secret, host=host or "127.0.0.1", port=int(port))
    proxy.start()
    print(
        f"Argo CD proxy on {proxy.url} -> {args.backend}\n"
        "users (cookie argocd.token): " + ", ".join(f"{t} ({u.name})" for t, u in proxy.users.items()) + "\n"
        "apps: " + ", ".join(f"{a.namespace}:{a.name} (project {a.project})" for a in proxy.apps.values()) + "\n"
        f"try: curl -N {proxy.url}/extensions/assistant/v1/chat -b argocd.token=alice-token "
        "-H 'Argocd-Application-Name: argocd:guestbook' -H 'Argocd-Project-Name: default' "
        "-H 'Content-Type: application/json' -d '{\"question\": \"Why is this app Degraded?\"}'",
        flush=True,
    )
    if on_start:
        on_start(proxy)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        proxy.stop()


if __name__ == "__main__":
    main()
