"""Where the apiserver keeps Events about cluster-scoped objects, and that ``objects.about`` takes
the Events it stored as being about their object (docs/upstream-facts.md, Kubernetes)."""

from __future__ import annotations

from typing import Any

import pytest

from assistant_backend.context.objects import about
from tests.support.kube import KubeCluster

pytestmark = pytest.mark.kube


def _event(name: str, namespace: str, involved: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": involved,
        "reason": "NodeNotReady",
        "message": "Node worker-7 status is now: NodeNotReady",
        "type": "Normal",
        "source": {"component": "kubelet", "host": "worker-7"},
    }


def test_cluster_scoped_events_live_in_default(static_kube_cluster: KubeCluster) -> None:
    cluster = static_kube_cluster
    cluster.ensure_namespace("events-elsewhere")
    node = cluster.create(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-7", "labels": {"test": "events"}}}
    )
    try:
        # As the kubelet records it: no namespace, the node's name as uid, in "default".
        kubelet = {"apiVersion": "v1", "kind": "Node", "name": "worker-7", "uid": "worker-7", "namespace": ""}
        stored = cluster.create(_event("worker-7.kubelet", "default", kubelet))
        assert (
            stored["metadata"]["namespace"] == "default"
            and stored["involvedObject"].get("namespace", "") == ""
        )
        assert about(stored, node)
        # An empty involved namespace anywhere but "default" is refused.
        with pytest.raises(RuntimeError, match="422"):
            cluster.create(_event("worker-7.elsewhere", "events-elsewhere", kubelet))
        # A namespaced object's Event must live in its object's namespace.
        pod_ref = {"apiVersion": "v1", "kind": "Pod", "name": "web-1", "namespace": "events-elsewhere"}
        with pytest.raises(RuntimeError, match="422"):
            cluster.create(_event("web-1.wrong", "default", pod_ref))
        in_place = cluster.create(_event("web-1.right", "events-elsewhere", pod_ref))
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "events-elsewhere"},
        }
        assert about(in_place, pod)
        assert not about(in_place, {**pod, "metadata": {**pod["metadata"], "namespace": "default"}})
    finally:
        cluster.delete("v1", "Event", "worker-7.kubelet", "default")
        cluster.delete("v1", "Event", "web-1.right", "events-elsewhere")
        cluster.delete("v1", "Node", "worker-7")
