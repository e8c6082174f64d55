"""The test control plane itself: real apiserver, RBAC, CRDs with /status, controllers, pod logs."""

from __future__ import annotations

import ssl
import time
import uuid

import httpx
import pytest

from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet

pytestmark = pytest.mark.kube


def _ns(cluster: KubeCluster) -> str:
    name = f"fx-{uuid.uuid4().hex[:6]}"
    cluster.ensure_namespace(name)
    return name


def test_application_crd_accepts_objects_and_status(kube_cluster: KubeCluster) -> None:
    ns = _ns(kube_cluster)
    app = kube_cluster.create(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "guestbook", "namespace": ns},
            "spec": {
                "project": "default",
                "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
            },
            "status": {"health": {"status": "Degraded"}},
        },
        status=True,
    )
    assert app["status"]["health"]["status"] == "Degraded"
    again = kube_cluster.get("argoproj.io/v1alpha1", "Application", "guestbook", ns)
    assert again is not None and again["status"]["health"]["status"] == "Degraded"


def test_service_account_token_is_subject_to_rbac(kube_cluster: KubeCluster) -> None:
    ns = _ns(kube_cluster)
    token = kube_cluster.service_account_token(ns, "nobody")
    with httpx.Client(
        base_url=kube_cluster.url,
        verify=ssl.create_default_context(cafile=str(kube_cluster.ca_path)),
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        assert client.get("/api/v1/namespaces/default/pods").status_code == 403
        assert client.get("/version").status_code == 200  # authenticated: discovery is allowed


def test_controllers_turn_a_deployment_into_pods(kube_cluster: KubeCluster) -> None:
    ns = _ns(kube_cluster)
    kube_cluster.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]},
                },
            },
        }
    )
    deadline = time.monotonic() + 60
    pods: list[dict[str, object]] = []
    while time.monotonic() < deadline and not pods:
        pods = kube_cluster.http.get(f"/api/v1/namespaces/{ns}/pods").json()["items"]
        time.sleep(0.3)
    assert pods, "the ReplicaSet controller created no Pod"
    owner = pods[0]["metadata"]["ownerReferences"][0]  # type: ignore[index]
    assert owner["kind"] == "ReplicaSet"


def test_pod_logs_flow_through_the_apiserver_to_the_fake_kubelet(
    kube_cluster: KubeCluster, fake_kubelet: FakeKubelet
) -> None:
    ns = _ns(kube_cluster)
    node = f"node-{ns}"
    registered = fake_kubelet.register_node(kube_cluster, node)
    assert not registered["spec"].get("taints")
    kube_cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": ns},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
        }
    )
    fake_kubelet.set_log(ns, "p", "c", "".join(f"line {i}\n" for i in range(10)))
    fake_kubelet.set_log(ns, "p", "c", "panic: boom\n", previous=True)
    base = f"/api/v1/namespaces/{ns}/pods/p/log"
    tail = kube_cluster.http.get(base, params={"container": "c", "tailLines": "3"})
    assert tail.status_code == 200, tail.text
    assert tail.text == "line 7\nline 8\nline 9\n"
    prev = kube_cluster.http.get(base, params={"container": "c", "previous": "true"})
    assert prev.text == "panic: boom\n"
    assert any("previous=true" in r for r in fake_kubelet.requests)
