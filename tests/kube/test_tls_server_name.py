"""``tls-server-name`` (kubeconfig) and ``tlsClientConfig.serverName`` (Argo CD cluster Secret)
against the real apiserver: the name is what its certificate is verified against.

The test apiserver's certificate names localhost, kubernetes, kubernetes.default,
kubernetes.default.svc and 127.0.0.1 (tests/support/kube.py). It is reached here through a TCP
relay on 127.0.0.2, an address the certificate does not name, as a cluster reached by an IP or a
tunnel is: TLS runs end to end through the relay.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from assistant_backend.context.clusters import (
    ClusterRegistry,
    credentials_from_cluster_secret,
    load_local_credentials,
)
from assistant_backend.context.kube import Credentials, KubeClient, Unreachable
from tests.support.kube import KubeCluster

pytestmark = pytest.mark.kube

NAMED = "kubernetes.default.svc"  # in the serving certificate


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def relay(cluster: KubeCluster) -> AsyncIterator[str]:
    """``https://127.0.0.2:<port>``, relayed byte for byte to the apiserver on 127.0.0.1. On exit
    every relayed connection is closed and waited for, so none outlives the test."""
    port = urlsplit(cluster.url).port
    writers: list[asyncio.StreamWriter] = []
    done: list[asyncio.Future[list[object]]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        writers.extend((writer, up_writer))
        both = asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True)
        done.append(both)
        await both

    server = await asyncio.start_server(handle, "127.0.0.2", 0)
    try:
        yield f"https://127.0.0.2:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await asyncio.gather(*done, return_exceptions=True)
        await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
        await server.wait_closed()


async def _namespace(credentials: Credentials) -> str:
    client = KubeClient(credentials, call_timeout_s=10)
    try:
        found = await client.get_json("/api/v1/namespaces/default")
        assert found is not None
        return str(found["metadata"]["name"])
    finally:
        await client.aclose()


def _kubeconfig(path: Path, cluster: KubeCluster, server: str, server_name: str | None) -> Path:
    entry = {"server": server, "certificate-authority-data": base64.b64encode(cluster.ca_pem).decode()}
    if server_name:
        entry["tls-server-name"] = server_name
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": entry}],
                "users": [{"name": "u", "user": {"token": cluster.admin_token}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return path


async def test_kubeconfig_tls_server_name(static_kube_cluster: KubeCluster, tmp_path: Path) -> None:
    async with relay(static_kube_cluster) as server:
        named = load_local_credentials(
            _kubeconfig(tmp_path / "named", static_kube_cluster, server, NAMED), None
        )
        assert named.credentials is not None and named.credentials.tls_server_name == NAMED
        assert await _namespace(named.credentials) == "default"

        plain = load_local_credentials(
            _kubeconfig(tmp_path / "plain", static_kube_cluster, server, None), None
        )
        assert plain.credentials is not None and plain.credentials.tls_server_name is None
        with pytest.raises(Unreachable) as failed:
            await _namespace(plain.credentials)
        # The note says what went wrong, in words a user can act on.
        assert failed.value.reason.startswith("cannot connect: TLS certificate verification failed")
        assert "127.0.0.2" in failed.value.reason


async def test_the_name_is_what_the_certificate_is_checked_against(static_kube_cluster: KubeCluster) -> None:
    # 127.0.0.1 is in the certificate; a server name that is not overrides it, and fails.
    base = Credentials(
        server=static_kube_cluster.url,
        ca_pem=static_kube_cluster.ca_pem,
        token=static_kube_cluster.admin_token,
    )
    assert await _namespace(base) == "default"
    with pytest.raises(Unreachable) as failed:
        await _namespace(replace(base, tls_server_name="not-in-the-certificate.example"))
    assert "TLS certificate verification failed" in failed.value.reason
    assert "not-in-the-certificate.example" in failed.value.reason


async def test_argocd_cluster_secret_server_name(static_kube_cluster: KubeCluster) -> None:
    """A destination registered in Argo CD by IP, with ``tlsClientConfig.serverName``: the registry
    reads the cluster Secret from the control plane and reaches the destination through it."""
    cluster = static_kube_cluster
    cluster.ensure_namespace("argocd")
    local = KubeClient(
        Credentials(server=cluster.url, ca_pem=cluster.ca_pem, token=cluster.admin_token), call_timeout_s=10
    )
    registry = ClusterRegistry(local, None, argocd_namespace="argocd", call_timeout_s=10)

    def secret(name: str, server: str, server_name: str | None) -> dict[str, object]:
        tls = {"caData": base64.b64encode(cluster.ca_pem).decode()}
        if server_name:
            tls["serverName"] = server_name
        config = {"bearerToken": cluster.admin_token, "tlsClientConfig": tls}
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": "argocd",
                "labels": {"argocd.argoproj.io/secret-type": "cluster"},
            },
            "data": {
                "name": base64.b64encode(name.encode()).decode(),
                "server": base64.b64encode(server.encode()).decode(),
                "config": base64.b64encode(json.dumps(config).encode()).decode(),
            },
        }

    async with relay(cluster) as server:
        named = secret("by-ip-named", server, NAMED)
        credentials, problem = credentials_from_cluster_secret(named)
        assert problem is None and credentials is not None and credentials.tls_server_name == NAMED
        cluster.create(named)
        try:
            dest = await registry.destination({"server": server, "namespace": "default"})
            assert dest.client is not None and dest.note is None
            found = await dest.client.get_json("/api/v1/namespaces/default")
            assert found is not None and found["metadata"]["name"] == "default"
        finally:
            cluster.delete("v1", "Secret", "by-ip-named", "argocd")
            await registry.aclose()

        plain, _ = credentials_from_cluster_secret(secret("by-ip", server, None))
        assert plain is not None
        with pytest.raises(Unreachable) as failed:
            await _namespace(plain)
        assert "TLS certificate verification failed" in failed.value.reason
