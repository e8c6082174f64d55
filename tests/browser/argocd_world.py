"""An OutOfSync, crash-looping Application in the real apiserver, with what Argo CD's API knows of it.

The Deployment runs 1 replica of ``checkout:1.8.2`` while Git (the stand-in's desired state) asks for
2 replicas of ``1.9.0``; its Pod (made by the real controllers) crash-loops, with a previous log in the
fake kubelet. The host page gets the tree as Argo CD builds it (Deployment -> ReplicaSet -> Pod by
parentRefs, Pod health and restart count), and :class:`ApiApp` the desired manifest, the commit and
the Pods of the tree for the stand-in API (``tests/support/argocd_api.py``).
"""

from __future__ import annotations

import copy
from typing import Any

from tests.support.argocd_api import ApiApp
from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet
from tests.support.waiting import wait_for

APP_NAMESPACE = "argocd"
APP_NAME = "browser-checkout"
NS = "browser-checkout"
NODE = "browser-node-1"
REVISION = "9c1e77a5d3f0b2c4e6a8091b2c3d4e5f6a7b8c9d"
COMMIT = "checkout: scale to 2 and ship 1.9.0 for the sale"
DEPLOYMENT_NODE = f"apps/Deployment/{NS}/checkout"
FATAL = "FATAL payment gateway handshake failed: certificate signed by unknown authority"

_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "checkout", "namespace": NS, "labels": {"app": "checkout"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "checkout"}},
        "template": {
            "metadata": {"labels": {"app": "checkout"}},
            "spec": {"containers": [{"name": "checkout", "image": "registry.example.com/shop/checkout:1.8.2"}]},
        },
    },
}


def _desired() -> dict[str, Any]:
    desired = copy.deepcopy(_DEPLOYMENT)
    desired["spec"]["replicas"] = 2
    desired["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example.com/shop/checkout:1.9.0"
    return desired


def create_checkout_world(cluster: KubeCluster, kubelet: FakeKubelet) -> tuple[dict[str, Any], ApiApp]:
    """(host-page config, the stand-in API's view of the Application); idempotent per session."""
    cluster.ensure_namespace(APP_NAMESPACE)
    cluster.ensure_namespace(NS)
    kubelet.register_node(cluster, NODE)
    if cluster.get("apps/v1", "Deployment", "checkout", NS) is None:
        cluster.create(_DEPLOYMENT)
    pod = wait_for(
        lambda: [p for p in cluster.http.get(f"/api/v1/namespaces/{NS}/pods").json()["items"] if p["spec"].get("nodeName")],
        "the scheduler to bind the checkout Pod",
    )[0]
    pod.update(apiVersion="v1", kind="Pod")
    name = pod["metadata"]["name"]
    pod["status"] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [{
            "name": "checkout", "ready": False, "restartCount": 4, "image": "registry.example.com/shop/checkout:1.8.2",
            "imageID": "", "started": False,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 1m20s restarting failed container"}},
            "lastState": {"terminated": {"exitCode": 2, "reason": "Error", "startedAt": "2026-01-01T00:00:00Z",
                                         "finishedAt": "2026-01-01T00:00:03Z"}},
        }],
    }
    cluster.write_status(pod)
    kubelet.set_log(NS, name, "checkout", "starting checkout 1.8.2\nwaiting for gateway\n")
    kubelet.set_log(NS, name, "checkout", f"starting checkout 1.8.2\n{FATAL}\n", previous=True)
    resources = [{
        "group": "apps", "version": "v1", "kind": "Deployment", "namespace": NS, "name": "checkout",
        "status": "OutOfSync", "health": {"status": "Degraded", "message": "Deployment does not have minimum availability."},
    }]
    if cluster.get("argoproj.io/v1alpha1", "Application", APP_NAME, APP_NAMESPACE) is None:
        cluster.create({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": APP_NAME, "namespace": APP_NAMESPACE},
            "spec": {
                "project": "default",
                "destination": {"server": "https://kubernetes.default.svc", "namespace": NS},
                "source": {"repoURL": "https://git.example.com/shop.git", "path": "checkout", "targetRevision": "main"},
            },
            "status": {"sync": {"status": "OutOfSync", "revision": REVISION}, "health": {"status": "Degraded"},
                       "resources": resources},
        }, status=True)
    app = cluster.get("argoproj.io/v1alpha1", "Application", APP_NAME, APP_NAMESPACE)
    deployment = cluster.get("apps/v1", "Deployment", "checkout", NS)
    owner = pod["metadata"]["ownerReferences"][0]
    replicaset = cluster.get("apps/v1", "ReplicaSet", owner["name"], NS)
    assert app and deployment and replicaset

    def node(obj: dict[str, Any], group: str, parents: list[dict[str, Any]], health: str, info: list[Any]) -> dict[str, Any]:
        m = obj["metadata"]
        return {
            "group": group, "version": "v1", "kind": obj.get("kind") or "", "namespace": m["namespace"], "name": m["name"],
            "uid": m["uid"], "health": {"status": health}, "info": info,
            "parentRefs": [{"group": "apps", "kind": p["kind"], "namespace": NS, "name": p["metadata"]["name"],
                            "uid": p["metadata"]["uid"]} for p in parents],
        }

    deployment.setdefault("kind", "Deployment")
    replicaset.setdefault("kind", "ReplicaSet")
    live_pod = cluster.get("v1", "Pod", name, NS)
    assert live_pod is not None
    live_pod.setdefault("kind", "Pod")
    nodes = [
        node(deployment, "apps", [], "Degraded", []),
        node(replicaset, "apps", [deployment], "Degraded", [{"name": "Revision", "value": "Rev:1"}]),
        node(live_pod, "", [replicaset], "Degraded",
             [{"name": "Status Reason", "value": "CrashLoopBackOff"}, {"name": "Containers", "value": "0/1"},
              {"name": "Restart Count", "value": "4"}]),
    ]
    live = {
        DEPLOYMENT_NODE: deployment,
        f"apps/ReplicaSet/{NS}/{replicaset['metadata']['name']}": replicaset,
        f"/Pod/{NS}/{name}": live_pod,
    }
    api_app = ApiApp(
        APP_NAMESPACE, APP_NAME, desired=[_desired()],
        revisions={REVISION: {"author": "Dana Developer <dana@example.com>", "date": "2026-01-02T09:30:00Z",
                              "tags": ["v1.9.0"], "message": f"{COMMIT}\n\nOne-click payments for the sale."}},
        pods=[(NS, name)],
    )
    return {"application": app, "tree": {"nodes": nodes}, "live": live}, api_app
