"""The Kubernetes client against a real apiserver: HTTP/2 over TLS, one connection for a burst."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import psutil
import pytest

from assistant_backend.context.kube import Credentials, KubeClient
from tests.support.kube import KubeCluster

pytestmark = pytest.mark.kube


def _connections_to(port: int) -> int:
    return sum(1 for c in psutil.Process().net_connections(kind="tcp")
               if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED)


async def test_a_burst_of_reads_is_multiplexed_over_one_http2_connection(static_kube_cluster: KubeCluster) -> None:
    cluster = static_kube_cluster
    client = KubeClient(Credentials(server=cluster.url, ca_pem=cluster.ca_pem, token=cluster.admin_token),
                        call_timeout_s=10)
    port = urlsplit(cluster.url).port
    assert port is not None
    others = _connections_to(port)  # the fixture's own client, in this process
    try:
        first = await client._request("/api/v1/namespaces/default")
        assert first.http_version == "HTTP/2"
        # 200 reads at once: with the old pool of 20 HTTP/1.1 connections these took 20 sockets
        # and queued in 10 waves; over HTTP/2 they share the one connection already open.
        answers = await asyncio.gather(*(client.get_json("/api/v1/namespaces/default") for _ in range(200)))
        assert all(a is not None and a["metadata"]["name"] == "default" for a in answers)
        assert _connections_to(port) == others + 1
    finally:
        await client.aclose()
