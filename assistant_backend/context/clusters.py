"""Which cluster to read: the control plane (where Applications live) and each destination.

The destination comes from ``Application.spec.destination`` only, never from request headers (Argo
CD's proxy lets clients add their own ``Argocd-Target-Cluster-*``). ``https://kubernetes.default.svc``
or the name ``in-cluster`` is the cluster we run in (or, in development, the kubeconfig's); any other
destination is resolved from Argo CD's cluster Secrets (label ``argocd.argoproj.io/secret-type:
cluster`` in the Argo CD namespace), which are cached and refreshed. Every failure is a note, not an
exception: the answer still comes, saying what could not be read.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .kube import Credentials, KubeClient, KubeError

log = logging.getLogger(__name__)

IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
IN_CLUSTER_NAME = "in-cluster"
CLUSTER_SECRET_LABEL = "argocd.argoproj.io/secret-type=cluster"  # noqa: S105 (a label, not a password)
SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
SECRETS_TTL_S = 60.0


@dataclass(frozen=True, slots=True)
class LocalAccess:
    credentials: Credentials | None
    source: str  # where they came from, for logs
    note: str | None = None  # why there is no access


def load_local_credentials(kubeconfig: Path | None, context: str | None) -> LocalAccess:
    """The cluster we run against: explicit kubeconfig, in-cluster, ``$KUBECONFIG``, ``~/.kube/config``.

    Blocking (reads files, may run kubeconfig exec plugins): call at start or in a thread.
    """
    from kubernetes import client as kclient  # imported lazily: only the loader is used
    from kubernetes import config as kconfig

    candidates: list[tuple[str, Path | None]] = []
    if kubeconfig is not None:
        candidates.append(("kubeconfig", kubeconfig))
    elif os.environ.get("KUBERNETES_SERVICE_HOST") and (SA_DIR / "token").is_file():
        candidates.append(("in-cluster", None))
    else:
        for entry in os.environ.get("KUBECONFIG", "").split(os.pathsep):
            if entry:
                candidates.append(("$KUBECONFIG", Path(entry)))
        candidates.append(("~/.kube/config", Path.home() / ".kube" / "config"))

    problems: list[str] = []
    for source, path in candidates:
        cfg = kclient.Configuration()
        try:
            if path is None:
                kconfig.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
                return LocalAccess(
                    Credentials(server=cfg.host, ca_file=cfg.ssl_ca_cert, token_file=str(SA_DIR / "token")),
                    source,
                )
            if not path.is_file():
                if source == "kubeconfig":
                    problems.append(f"kubeconfig {path} does not exist")
                continue
            kconfig.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(path), context=context, client_configuration=cfg, persist_config=False
            )
        except Exception as exc:  # the loader raises many types (ConfigException, KeyError, ValueError)
            problems.append(f"{source}: {type(exc).__name__}")
            continue
        # The loader stores "Bearer <token>" under "authorization" or (newer) "BearerToken".
        keys = {str(k).lower(): str(v) for k, v in (cfg.api_key or {}).items()}
        auth = keys.get("authorization") or keys.get("bearertoken") or ""
        token = auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else None
        return LocalAccess(
            Credentials(
                server=cfg.host,
                ca_file=cfg.ssl_ca_cert,
                insecure=not cfg.verify_ssl,
                cert_file=cfg.cert_file,
                key_file=cfg.key_file,
                token=token,
                tls_server_name=getattr(cfg, "tls_server_name", None),
            ),
            f"{source} {path}",
        )
    reason = "; ".join(problems) if problems else "no kubeconfig and not running in a pod"
    return LocalAccess(None, "none", f"no Kubernetes access configured ({reason})")


def _b64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return b""


def credentials_from_cluster_secret(secret: Mapping[str, Any]) -> tuple[Credentials | None, str | None]:
    """Argo CD's declarative cluster Secret -> credentials, or why it cannot be used.

    Blocking (decoding; the client's TLS context is built from it next): call in a thread.
    """
    data = secret.get("data") or {}
    server = _b64(data.get("server", "")).decode(errors="replace").strip()
    if not server:
        return None, "cluster Secret has no server"
    try:
        config = json.loads(_b64(data.get("config", "")) or b"{}")
    except ValueError:
        return None, f"cluster {server}: config is not JSON"
    if not isinstance(config, dict):
        return None, f"cluster {server}: config is not an object"
    if config.get("execProviderConfig") or config.get("awsAuthConfig"):
        return None, f"cluster {server}: exec/AWS authentication is not supported by the assistant"
    tls = config.get("tlsClientConfig") or {}
    ca = _b64(tls["caData"]) if tls.get("caData") else None
    cert_pem = key_pem = None
    if tls.get("certData") and tls.get("keyData"):
        cert_pem, key_pem = _b64(tls["certData"]), _b64(tls["keyData"])
    return (
        Credentials(
            server=server,
            ca_pem=ca or None,
            insecure=bool(tls.get("insecure")),
            cert_pem=cert_pem,
            key_pem=key_pem,
            token=config.get("bearerToken") or None,
            tls_server_name=tls.get("serverName") or None,
        ),
        None,
    )


@dataclass(frozen=True, slots=True)
class Destination:
    client: KubeClient | None
    label: str  # how the cluster is named in the context
    note: str | None = None


def _norm(server: str) -> str:
    return server.rstrip("/")


class ClusterRegistry:
    """The control-plane client plus one cached client per destination cluster."""

    def __init__(
        self,
        local: KubeClient | None,
        local_note: str | None,
        *,
        argocd_namespace: str,
        call_timeout_s: float,
    ) -> None:
        self.local = local
        self.local_note = local_note
        self._argocd_namespace = argocd_namespace
        self._call_timeout = call_timeout_s
        self._secrets: list[dict[str, Any]] = []
        self._secrets_at = -SECRETS_TTL_S
        self._secrets_lock = asyncio.Lock()
        self._remote: dict[str, tuple[str, KubeClient]] = {}  # server -> (resourceVersion, client)

    async def aclose(self) -> None:
        clients = [c for _, c in self._remote.values()]
        if self.local is not None:
            clients.append(self.local)
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
        self._remote.clear()

    async def _cluster_secrets(self) -> list[dict[str, Any]]:
        assert self.local is not None
        async with self._secrets_lock:
            if time.monotonic() - self._secrets_at >= SECRETS_TTL_S:
                items = await self.local.list(
                    "", "Secret", self._argocd_namespace, label_selector=CLUSTER_SECRET_LABEL
                )
                self._secrets = items or []
                self._secrets_at = time.monotonic()
            return self._secrets

    @property
    def argocd_namespace(self) -> str:
        """The control-plane namespace (AppProjects live there; Argo CD's instance names use it)."""
        return self._argocd_namespace

    async def destination(self, spec_destination: Mapping[str, Any]) -> Destination:
        server = _norm(str(spec_destination.get("server") or ""))
        name = str(spec_destination.get("name") or "")
        label = server or name or "(no destination)"
        if self.local is None:
            return Destination(None, label, self.local_note or "no Kubernetes access configured")
        if (
            server == IN_CLUSTER_SERVER
            or name == IN_CLUSTER_NAME
            or (server and server == _norm(self.local.server))
        ):
            return Destination(self.local, label)
        if not server and not name:
            return Destination(None, label, "the Application has no destination cluster")
        try:
            secrets = await self._cluster_secrets()
        except KubeError as exc:
            return Destination(None, label, f"cannot read Argo CD cluster Secrets for {label}: {exc.reason}")
        for secret in secrets:
            data = secret.get("data") or {}
            s_server = _norm(_b64(data.get("server", "")).decode(errors="replace"))
            s_name = _b64(data.get("name", "")).decode(errors="replace")
            if (server and s_server == server) or (name and not server and s_name == name):
                return await self._client_for(secret, s_server, label)
        return Destination(None, label, f"destination cluster {label} is not registered in Argo CD")

    async def _client_for(self, secret: Mapping[str, Any], server: str, label: str) -> Destination:
        version = str((secret.get("metadata") or {}).get("resourceVersion", ""))
        cached = self._remote.get(server)
        if cached and cached[0] == version:
            return Destination(cached[1], label)
        credentials, problem = await asyncio.to_thread(credentials_from_cluster_secret, secret)
        if credentials is None:
            return Destination(None, label, problem)
        try:
            client = await asyncio.to_thread(
                KubeClient, credentials, call_timeout_s=self._call_timeout, name=label
            )
        except (OSError, ValueError) as exc:
            return Destination(None, label, f"cluster {label}: bad TLS configuration ({type(exc).__name__})")
        if cached:
            await cached[1].aclose()
        self._remote[server] = (version, client)
        return Destination(client, label)
