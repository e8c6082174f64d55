"""Manifest tests use the shared real control plane (tests/support/kube.py) for `kube`-marked tests."""

from tests.support.kube import kube_cluster  # noqa: F401
