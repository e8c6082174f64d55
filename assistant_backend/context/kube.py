"""An async, read-only Kubernetes API client: one ``httpx.AsyncClient`` per cluster, speaking HTTP/2.

The apiserver serves HTTP/2 on TLS (ALPN ``h2``; docs/upstream-facts.md, Kubernetes): one connection
multiplexes every concurrent read of a question (up to the stream limit the server announces), so a
stage of hundreds of reads is one round trip instead of queueing behind a fixed pool of HTTP/1.1
connections. A plain-``http`` apiserver (a local proxy) gets
HTTP/1.1, where the pool bounds the connections as before.

The ``kubernetes`` package is used only to *load* configuration (kubeconfig or in-cluster), because
its API client is synchronous and would block the event loop. Calls here have a per-call timeout,
map HTTP failures to a few exception types the gatherer turns into plain-words notes, and use API
discovery (cached) so kinds a cluster does not serve (batch/v1 CronJob on v1.20...) are skipped
instead of failing.

A cluster reached by an address its serving certificate does not name (an IP, a tunnel, a load
balancer) names the certificate's host in kubeconfig's ``tls-server-name`` or the Argo CD cluster
Secret's ``tlsClientConfig.serverName``: that name is sent as SNI and is the name the certificate is
verified against (docs/upstream-facts.md, Kubernetes). httpx takes it per request as the
``sni_hostname`` extension, which its transport passes to the TLS handshake as ``server_hostname``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson

DISCOVERY_TTL_S = 300.0
# HTTP/2: extra connections are opened only when one's concurrent streams are used up; HTTP/1.1 (a
# plain-http apiserver): at most this many requests in flight.
MAX_CONNECTIONS = 20
# In-cluster service-account tokens rotate (bound tokens, ~1 h): reread the file this often.
TOKEN_FILE_TTL_S = 60.0


class KubeError(Exception):
    """A Kubernetes call failed; ``reason`` is short and safe to show the user and the model."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Forbidden(KubeError):
    pass


class Unreachable(KubeError):
    pass


class Gone(KubeError):
    """410: the resourceVersion asked for is older than the server keeps (relist)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """How to reach and authenticate to one cluster."""

    server: str
    ca_pem: bytes | None = None
    ca_file: str | None = None
    insecure: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    cert_pem: bytes | None = None  # from Argo CD cluster Secrets: held in memory, never left on disk
    key_pem: bytes | None = None
    token: str | None = None
    token_file: str | None = None
    tls_server_name: str | None = None

    def ssl_context(self) -> ssl.SSLContext | bool:
        if self.insecure:
            return False
        context = ssl.create_default_context(
            cafile=self.ca_file, cadata=self.ca_pem.decode() if self.ca_pem else None
        )
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        elif self.cert_pem and self.key_pem:
            # ssl only loads client keys from files: write them to a private directory for the load
            # and remove it at once, so no key outlives this call on disk.
            with tempfile.TemporaryDirectory(prefix="argocd-assistant-") as private:
                cert, key = Path(private, "tls.crt"), Path(private, "tls.key")
                for path, data in ((cert, self.cert_pem), (key, self.key_pem)):
                    path.touch(mode=0o600)
                    path.write_bytes(data)
                context.load_cert_chain(cert, key)
        return context


@dataclass(frozen=True, slots=True)
class ApiResource:
    api_version: str  # "v1" or "apps/v1"
    kind: str
    plural: str
    namespaced: bool
    verbs: frozenset[str]

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        # Names and namespaces may come from the cluster (owner references, events): each is one
        # percent-encoded path segment, so "../x" or "x?y" can never reach another endpoint.
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{segment(namespace)}"
        base += f"/{self.plural}"
        return f"{base}/{segment(name)}" if name else base


def _connect_failure(exc: BaseException) -> str:
    """Why a connection failed, in words a user can act on: a certificate that does not verify is
    named as such (the usual cause: reaching the cluster by an address its certificate does not name,
    without ``tls-server-name`` / ``tlsClientConfig.serverName``)."""
    cause: BaseException | None = exc
    for _ in range(8):  # httpx's error wraps httpcore's, which wraps the ssl module's
        if cause is None or isinstance(cause, ssl.SSLCertVerificationError):
            break
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        detail = str(cause.verify_message or cause.reason or "").rstrip(".")
        return f"cannot connect: TLS certificate verification failed ({detail})"
    return f"cannot connect ({type(exc).__name__})"


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list call: ``cut`` when the server has more items than the page holds."""

    items: list[dict[str, Any]]
    cut: bool = False


def segment(value: str) -> str:
    """One URL path segment: everything but unreserved characters percent-encoded, dots too."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")


def api_version_of(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


class KubeClient:
    """Read-only calls to one cluster. Create once, share, :meth:`aclose` at shutdown."""

    def __init__(
        self, credentials: Credentials, *, call_timeout_s: float, name: str = "", http2: bool = True
    ) -> None:
        self.credentials = credentials
        self.name = name or credentials.server
        self._call_timeout = call_timeout_s
        self._http = httpx.AsyncClient(
            base_url=credentials.server.rstrip("/"),
            verify=credentials.ssl_context(),
            timeout=httpx.Timeout(call_timeout_s),  # per call: connect, each read, pool wait
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=10),
            http2=http2,
            headers={"Accept": "application/json", "User-Agent": "argocd-assistant"},
        )
        # Sent with every request; only a new connection's handshake uses it.
        self._extensions = (
            {"sni_hostname": credentials.tls_server_name} if credentials.tls_server_name else {}
        )
        self._token: str | None = credentials.token
        self._token_read_at = float("-inf")  # read on first use
        self._groups: dict[str, str] | None = None  # group -> preferred version
        self._served: set[str] = set()  # every served group/version
        self._groups_at = 0.0
        self._resources: dict[str, tuple[float, list[ApiResource]]] = {}
        self._discovery_lock = asyncio.Lock()

    @property
    def server(self) -> str:
        return self.credentials.server

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _auth_headers(self) -> dict[str, str]:
        token_file = self.credentials.token_file
        if token_file and time.monotonic() - self._token_read_at > TOKEN_FILE_TTL_S:
            self._token = (await asyncio.to_thread(Path(token_file).read_text)).strip()
            self._token_read_at = time.monotonic()
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    async def _request(self, path: str, params: Mapping[str, str] | None = None) -> httpx.Response:
        try:
            response = await self._http.get(
                path, params=params, headers=await self._auth_headers(), extensions=self._extensions
            )
        except httpx.TimeoutException:
            raise Unreachable(f"timed out after {self._call_timeout:g}s") from None
        except httpx.TransportError as exc:
            raise Unreachable(_connect_failure(exc)) from None
        except (OSError, ssl.SSLError) as exc:
            raise Unreachable(_connect_failure(exc)) from None
        if response.status_code == 403:
            raise Forbidden("forbidden by RBAC", 403)
        if response.status_code == 401:
            raise Forbidden("unauthorized (credentials rejected)", 401)
        return response

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """GET a JSON document; ``None`` when it does not exist (404)."""
        response = await self._request(path, params)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise KubeError(f"HTTP {response.status_code}", response.status_code)
        try:
            # orjson, as the control-plane cache parses: one parser, so a GET and the cache give the
            # same dict (numbers included) and refuse the same input (nesting past 1,024 levels is a
            # JSONDecodeError, a ValueError, where the stdlib's RecursionError would escape).
            body = orjson.loads(response.content)
        except ValueError:
            raise KubeError("invalid JSON from the API server") from None
        if not isinstance(body, dict):
            raise KubeError("unexpected response from the API server")
        return body

    async def get_bytes(self, path: str, params: Mapping[str, str] | None = None) -> bytes | None:
        """GET a document's raw bytes (the caller parses them, off the loop when large); ``None`` on 404."""
        response = await self._request(path, params)
        if response.status_code == 404:
            return None
        if response.status_code == 410:
            raise Gone("resource version expired", 410)
        if response.status_code >= 400:
            raise KubeError(f"HTTP {response.status_code}", response.status_code)
        return response.content

    @contextlib.asynccontextmanager
    async def watch_stream(
        self, path: str, params: Mapping[str, str], *, read_timeout_s: float
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """A watch (``params`` carry ``watch=1``): the open stream's bytes, once the server answered
        200. ``read_timeout_s`` bounds the silence between chunks (a half-open connection), the
        connect and pool waits keep the per-call timeout."""
        timeout = httpx.Timeout(self._call_timeout, read=read_timeout_s)
        try:
            async with self._http.stream(
                "GET",
                path,
                params=params,
                headers=await self._auth_headers(),
                extensions=self._extensions,
                timeout=timeout,
            ) as response:
                if response.status_code in (401, 403):
                    raise Forbidden("forbidden by RBAC", response.status_code)
                if response.status_code == 410:
                    raise Gone("resource version expired", 410)
                if response.status_code >= 400:
                    raise KubeError(f"HTTP {response.status_code}", response.status_code)
                yield response.aiter_bytes()
        except httpx.TimeoutException:
            raise Unreachable("watch timed out") from None
        except httpx.TransportError as exc:
            raise Unreachable(_connect_failure(exc)) from None
        except (OSError, ssl.SSLError) as exc:
            raise Unreachable(_connect_failure(exc)) from None

    async def get_text(self, path: str, params: Mapping[str, str] | None = None) -> str | None:
        response = await self._request(path, params)
        if response.status_code in (400, 404):  # e.g. no previous container, container not started
            return None
        if response.status_code >= 400:
            raise KubeError(f"HTTP {response.status_code}", response.status_code)
        return response.text

    # ---- discovery ----

    async def _load_groups(self) -> dict[str, str]:
        if self._groups is not None and time.monotonic() - self._groups_at < DISCOVERY_TTL_S:
            return self._groups
        async with self._discovery_lock:
            if self._groups is not None and time.monotonic() - self._groups_at < DISCOVERY_TTL_S:
                return self._groups
            core, apis = await asyncio.gather(self.get_json("/api"), self.get_json("/apis"))
            groups: dict[str, str] = {}
            served: set[str] = set()
            for version in (core or {}).get("versions", []):
                served.add(str(version))
            if "v1" in served:
                groups[""] = "v1"
            for group in (apis or {}).get("groups", []):
                name = str(group.get("name", ""))
                for version in group.get("versions", []):
                    served.add(str(version.get("groupVersion")))
                preferred = (group.get("preferredVersion") or {}).get("version")
                if preferred:
                    groups[name] = str(preferred)
            self._groups, self._served, self._groups_at = groups, served, time.monotonic()
            return groups

    async def resources(self, api_version: str) -> list[ApiResource]:
        """What one group/version serves; empty when the server does not serve it."""
        await self._load_groups()
        if api_version not in self._served:
            return []
        cached = self._resources.get(api_version)
        if cached and time.monotonic() - cached[0] < DISCOVERY_TTL_S:
            return cached[1]
        path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        body = await self.get_json(path) or {}
        found = [
            ApiResource(
                api_version=api_version,
                kind=str(item["kind"]),
                plural=str(item["name"]),
                namespaced=bool(item.get("namespaced")),
                verbs=frozenset(item.get("verbs", [])),
            )
            for item in body.get("resources", [])
            if "/" not in str(item.get("name", ""))  # subresources
        ]
        self._resources[api_version] = (time.monotonic(), found)
        return found

    async def resource(self, group: str, kind: str, version: str | None = None) -> ApiResource | None:
        """The served resource for a kind, in ``version`` if served, else the group's preferred one."""
        groups = await self._load_groups()
        candidates = []
        if version:
            candidates.append(api_version_of(group, version))
        if group in groups:
            candidates.append(api_version_of(group, groups[group]))
        # Then any other served version: a kind may live only in an older one (batch/v1beta1 CronJob).
        prefix = f"{group}/" if group else ""
        candidates += sorted(v for v in self._served if (v.startswith(prefix) if group else "/" not in v))
        for api_version in dict.fromkeys(candidates):
            for res in await self.resources(api_version):
                if res.kind == kind:
                    return res
        return None

    # ---- objects ----

    async def get(
        self, group: str, kind: str, name: str, namespace: str | None, version: str | None = None
    ) -> dict[str, Any] | None:
        res = await self.resource(group, kind, version)
        if res is None:
            return None
        return await self.get_json(res.path(namespace, name))

    async def list(
        self,
        group: str,
        kind: str,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]] | None:
        """Items of a kind (``None`` if the kind is not served). Items get apiVersion/kind filled in."""
        page = await self.list_page(
            group, kind, namespace, label_selector=label_selector, field_selector=field_selector, limit=limit
        )
        return None if page is None else page.items

    async def list_page(
        self,
        group: str,
        kind: str,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 500,
    ) -> Page | None:
        """The first ``limit`` items of a kind, and whether the server holds more (a ``continue``
        token in the list's metadata; docs/upstream-facts.md, Kubernetes)."""
        res = await self.resource(group, kind)
        if res is None:
            return None
        params = {"limit": str(limit)}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        body = await self.get_json(res.path(namespace), params) or {}
        items = [dict(item) for item in body.get("items", []) if isinstance(item, dict)]
        for item in items:
            item.setdefault("apiVersion", res.api_version)
            item.setdefault("kind", res.kind)
        return Page(items, cut=bool((body.get("metadata") or {}).get("continue")))

    async def pod_log(
        self, namespace: str, pod: str, container: str, *, previous: bool, tail_lines: int
    ) -> str | None:
        params = {"container": container, "tailLines": str(tail_lines), "limitBytes": str(256 * 1024)}
        if previous:
            params["previous"] = "true"
        return await self.get_text(f"/api/v1/namespaces/{segment(namespace)}/pods/{segment(pod)}/log", params)
