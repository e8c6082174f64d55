"""A real kube-apiserver (tests/support/kube.py) for the benchmarks, behind a TCP relay that adds a
fixed latency to every request, as a remote cluster's round trip would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from tests.faults.relay import DelayRelay as DelayProxy
from tests.support.kube import KubeCluster, running_cluster
from tests.support.kubelet import FakeKubelet


def kubeconfig_via(cluster: KubeCluster, proxy: DelayProxy, path: Path) -> Path:
    config = yaml.safe_load(cluster.admin_kubeconfig.read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def kube(workdir: Path) -> Iterator[tuple[KubeCluster, FakeKubelet, DelayProxy, Path]]:
    """The apiserver (no controllers: objects stay as written), the fake kubelet for logs, and a
    kubeconfig that reaches the apiserver through the delay proxy."""
    workdir.mkdir(parents=True, exist_ok=True)
    with running_cluster(workdir / "cluster", controllers=False) as cluster:
        kubelet = FakeKubelet.start()
        host, port = cluster.url.removeprefix("https://").split(":")
        proxy = DelayProxy(host, int(port))
        try:
            yield cluster, kubelet, proxy, kubeconfig_via(cluster, proxy, workdir / "delayed.kubeconfig")
        finally:
            proxy.stop()
            kubelet.stop()
