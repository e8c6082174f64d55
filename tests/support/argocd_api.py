"""A faithful stand-in for the three reads of Argo CD's API the panel makes (``server/application``).

Served from the same origin as the proxy and the host page (mount :meth:`ArgoCDApi.routes` in the
proxy's ``extra_routes``), authenticated by the same ``argocd.token`` cookie, with Argo CD's RBAC:

- ``GET /api/v1/applications/{name}/managed-resources?appNamespace=&group=&kind=&namespace=&name=``:
  ``applications, get``; ``{"items": [ResourceDiff]}`` with ``targetState`` / ``liveState`` /
  ``normalizedLiveState`` as JSON text (the live state read from the real apiserver, as Argo CD's
  cache holds it), hooks left out, filtered like ``isMatchingResource``;
- ``GET /api/v1/applications/{name}/revisions/{revision}/metadata?appNamespace=[&sourceIndex=]``:
  ``applications, get``; a ``RevisionMetadata`` ``{author, date, tags, message}``;
- ``GET /api/v1/applications/{name}/logs?appNamespace=&namespace=&podName=&container=&tailLines=&previous=&follow=``:
  ``applications, get`` then ``logs, get`` (enforced since 3.0; 403 with grpc-gateway's stream error
  ``{"error": {"grpc_code": 7, "http_code": 403, "message": "permission denied: logs, get, ...",
  "http_status": "Forbidden"}}``); only Pods of the Application's tree; newline-delimited
  ``{"result": LogEntry}`` (content, timeStamp, timeStampStr, podName, last) read from the real
  apiserver, ending with a ``last: true`` entry. A log that cannot be read is sent as one line with
  the error text, as Argo CD does.

Unknown session: 401 ``{"error": "no session information", "code": 16, ...}``; no ``applications,
get``: 403 ``permission denied`` (code 7). ``delay_s`` and ``fail`` make an endpoint slow or fail (500),
for the panel's timeouts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .argocd_proxy import User

Endpoint = Literal["managed-resources", "metadata", "logs"]


@dataclass
class ApiApp:
    """What Argo CD knows of one Application beyond the object: desired states, commits, its tree."""

    namespace: str
    name: str
    project: str = "default"
    desired: list[dict[str, Any]] = field(default_factory=list)  # the manifests "in Git"
    live_keys: list[tuple[str, str, str, str]] = field(default_factory=list)  # (apiVersion, kind, ns, name) live only
    revisions: dict[str, dict[str, Any]] = field(default_factory=dict)  # revision -> RevisionMetadata
    pods: list[tuple[str, str]] = field(default_factory=list)  # (namespace, name) of Pods in its tree


def _grpc_error(status: int, grpc_code: int, message: str) -> JSONResponse:
    """A unary API error as argocd-server's grpc-gateway writes it."""
    return JSONResponse({"error": message, "code": grpc_code, "message": message}, status_code=status)


def _stream_error(status: int, grpc_code: int, message: str, http_status: str) -> JSONResponse:
    """A server-streaming API error before the first message (grpc-gateway v1 ``errorChunk``)."""
    body = {"error": {"grpc_code": grpc_code, "http_code": status, "message": message, "http_status": http_status}}
    return JSONResponse(body, status_code=status)


def _api_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


@dataclass
class ArgoCDApi:
    kube: Callable[[], httpx.Client]  # an admin client of the real apiserver (Argo CD's own access)
    users: Mapping[str, User]  # the proxy's sessions: cookie -> user
    apps: dict[str, ApiApp] = field(default_factory=dict)  # "<ns>/<name>"
    no_logs: set[str] = field(default_factory=set)  # user names whose role lacks `logs, get`
    delay_s: dict[Endpoint, float] = field(default_factory=dict)
    fail: set[Endpoint] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)  # path?query of every API call, for assertions

    def add(self, app: ApiApp) -> None:
        self.apps[f"{app.namespace}/{app.name}"] = app

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/v1/applications/{name}/managed-resources", self._managed),
            Route("/api/v1/applications/{name}/revisions/{revision}/metadata", self._metadata),
            Route("/api/v1/applications/{name}/logs", self._logs),
        ]

    # -- shared checks ---------------------------------------------------------------------------
    async def _enter(self, request: Request, endpoint: Endpoint) -> tuple[User, ApiApp] | Response:
        self.requests.append(f"{request.url.path}?{request.url.query}")
        if endpoint in self.delay_s:
            await asyncio.sleep(self.delay_s[endpoint])
        user = self.users.get(request.cookies.get("argocd.token", ""))
        if user is None:
            return _grpc_error(401, 16, "no session information")
        namespace = request.query_params.get("appNamespace") or "argocd"
        key = f"{namespace}/{request.path_params['name']}"
        app = self.apps.get(key)
        if app is None or (user.apps is not None and key not in user.apps):
            # Argo CD answers a missing app like a forbidden one, so names cannot be probed.
            return _grpc_error(403, 7, "permission denied")
        if endpoint in self.fail:
            return _grpc_error(500, 13, "rpc error: code = Unavailable desc = connection error")
        return user, app

    def _live(self, group: str, version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        plural = {"Deployment": "deployments", "Service": "services", "ConfigMap": "configmaps",
                  "Pod": "pods", "ReplicaSet": "replicasets"}.get(kind, kind.lower() + "s")
        base = f"/apis/{group}/{version}" if group else f"/api/{version}"
        where = f"/namespaces/{namespace}" if namespace else ""
        response = self.kube().get(f"{base}{where}/{plural}/{name}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        obj: dict[str, Any] = response.json()
        obj.setdefault("apiVersion", _api_version(group, version))
        obj.setdefault("kind", kind)
        return obj

    # -- the three endpoints -----------------------------------------------------------------------
    async def _managed(self, request: Request) -> Response:
        entered = await self._enter(request, "managed-resources")
        if isinstance(entered, Response):
            return entered
        _, app = entered
        q = request.query_params
        items: list[dict[str, Any]] = []
        keys = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in app.desired}
        for api, kind, ns, name in app.live_keys:
            keys.setdefault((kind, ns, name), {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": ns}, "x-live-only": True})
        for (kind, ns, name), desired in keys.items():
            api = str(desired["apiVersion"])
            group, version = (api.split("/", 1) if "/" in api else ("", api))
            # isMatchingResource: every given filter must match
            wanted = {"group": group, "kind": kind, "namespace": ns, "name": name}
            if any(q.get(k) not in (None, "", v) for k, v in wanted.items()):
                continue
            live = await asyncio.to_thread(self._live, group, version, kind, ns, name)
            target = None if desired.get("x-live-only") else desired
            live_text = json.dumps(live) if live is not None else "null"
            items.append({
                "group": group, "kind": kind, "namespace": ns, "name": name,
                "targetState": json.dumps(target) if target is not None else "null",
                "liveState": live_text,
                "normalizedLiveState": live_text,
                "resourceVersion": str(((live or {}).get("metadata") or {}).get("resourceVersion", "")),
                "modified": live != target,
            })
        return JSONResponse({"items": items})

    async def _metadata(self, request: Request) -> Response:
        entered = await self._enter(request, "metadata")
        if isinstance(entered, Response):
            return entered
        _, app = entered
        meta = app.revisions.get(request.path_params["revision"])
        if meta is None:
            return _grpc_error(500, 2, f"rpc error: code = Unknown desc = unable to resolve revision {request.path_params['revision']}")
        return JSONResponse(meta)

    async def _logs(self, request: Request) -> Response:
        entered = await self._enter(request, "logs")
        if isinstance(entered, Response):
            return entered
        user, app = entered
        if user.name in self.no_logs:
            issued = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            rbac = f"{app.project}/{app.name}"
            return _stream_error(
                403, 7, f"permission denied: logs, get, {rbac}, sub: {user.name}, iat: {issued}", "Forbidden"
            )
        q = request.query_params
        pod = (q.get("namespace", ""), q.get("podName", ""))
        lines: list[str] = []
        pod_name = ""
        if pod in app.pods:  # getSelectedPods: only Pods of the Application's tree
            pod_name = pod[1]
            params = {k: v for k, v in {"container": q.get("container"), "tailLines": q.get("tailLines"),
                                         "previous": q.get("previous"), "timestamps": "true"}.items() if v}
            response = await asyncio.to_thread(
                self.kube().get, f"/api/v1/namespaces/{pod[0]}/pods/{pod[1]}/log", params=params
            )
            if response.status_code == 200:
                lines = response.text.splitlines()
            else:  # Argo CD sends the error as one log line
                lines = [response.json().get("message", response.text) if response.headers.get(
                    "content-type", "").startswith("application/json") else response.text]
        now = dt.datetime.now(dt.UTC)
        chunks = []
        for line in lines:
            stamp, _, content = line.partition(" ")
            if not (stamp[:4].isdigit() and "T" in stamp):  # the kubelet sent no timestamp
                stamp, content = now.isoformat().replace("+00:00", "Z"), line
            chunks.append({"result": {"content": content, "timeStamp": stamp[:19] + "Z", "last": False,
                                      "timeStampStr": stamp, "podName": pod_name}})
        chunks.append({"result": {"content": "", "timeStamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "last": True,
                                  "timeStampStr": now.isoformat().replace("+00:00", "Z"), "podName": ""}})
        body = "".join(json.dumps(c) + "\n" for c in chunks)
        return Response(body, media_type="application/json")
