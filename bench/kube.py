"""A real kube-apiserver (tests/support/kube.py) for the benchmarks, behind the tests' TCP relay
(tests/support/delay_relay.py) that adds a fixed latency to every request, as a remote cluster's
round trip would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.delay_relay import DelayRelay
from tests.support.kube import KubeCluster, running_cluster
from tests.support.kubelet import FakeKubelet


@contextmanager
def kube(workdir: Path) -> Iterator[tuple[KubeCluster, FakeKubelet, DelayRelay, Path]]:
    """The apiserver (no controllers: objects stay as written), the fake kubelet for logs, and a
    kubeconfig that reaches the apiserver through the delay relay (``relay.delay_s`` per run)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with running_cluster(workdir / "cluster", controllers=False) as cluster, FakeKubelet() as kubelet, \
            DelayRelay(cluster.url) as relay:
        kubeconfig = cluster.kubeconfig_for_token(cluster.admin_token, workdir / "delayed.kubeconfig",
                                                  user="admin", server=relay.url)
        yield cluster, kubelet, relay, kubeconfig
