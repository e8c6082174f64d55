"""Fixtures for tests against a real kube-apiserver (see tests/support/kube.py)."""

from tests.support.kube import kube_cluster  # noqa: F401
from tests.support.kubelet import fake_kubelet  # noqa: F401
