"""Manifest tests use the shared real control plane (tests/support/kube.py) for `kube`-marked tests."""

