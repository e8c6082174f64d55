"""Fixtures for tests against a real kube-apiserver (see tests/support/kube.py); ``kube_cluster`` and
``fake_kubelet`` (with controllers) are the session's, in tests/conftest.py."""

from collections.abc import Iterator

import pytest

from tests.support.kube import KubeCluster


@pytest.fixture(scope="session")
def static_kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """etcd + kube-apiserver only: objects stay exactly as a test writes them (no controllers)."""
    with KubeCluster(tmp_path_factory.mktemp("kube-static"), controllers=False) as cluster:
        yield cluster
