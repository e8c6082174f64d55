"""A real Application in the real test apiserver, and the host-page config built from it.

The page gets exactly what Argo CD would hand the extension: the Application object as stored,
its resource tree (from ``status.resources``) and each resource's live object.
"""

from __future__ import annotations

from typing import Any

from tests.support.kube import KubeCluster

APP_NAMESPACE = "argocd"
APP_NAME = "browser-guestbook"
DEST_NAMESPACE = "browser-guestbook"
DEPLOYMENT_NODE = f"apps/Deployment/{DEST_NAMESPACE}/guestbook-ui"

_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "guestbook-ui", "namespace": DEST_NAMESPACE, "labels": {"app": "guestbook-ui"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "guestbook-ui"}},
        "template": {
            "metadata": {"labels": {"app": "guestbook-ui"}},
            "spec": {
                "containers": [
                    {"name": "guestbook-ui", "image": "gcr.io/heptio-images/ks-guestbook-demo:0.3"}
                ]
            },
        },
    },
}
_SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "guestbook-ui", "namespace": DEST_NAMESPACE},
    "spec": {"ports": [{"port": 80, "targetPort": 80}], "selector": {"app": "guestbook-ui"}},
}
_RESOURCES = [
    {
        "version": "v1",
        "kind": "Service",
        "namespace": DEST_NAMESPACE,
        "name": "guestbook-ui",
        "status": "Synced",
        "health": {"status": "Healthy"},
    },
    {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
        "namespace": DEST_NAMESPACE,
        "name": "guestbook-ui",
        "status": "OutOfSync",
        "health": {"status": "Degraded", "message": "Deployment exceeded its progress deadline"},
    },
]
_APPLICATION: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Application",
    "metadata": {"name": APP_NAME, "namespace": APP_NAMESPACE},
    "spec": {
        "project": "default",
        "destination": {"server": "https://kubernetes.default.svc", "namespace": DEST_NAMESPACE},
        "source": {
            "repoURL": "https://github.com/argoproj/argocd-example-apps",
            "path": "guestbook",
            "targetRevision": "HEAD",
        },
    },
    "status": {"sync": {"status": "OutOfSync"}, "health": {"status": "Degraded"}, "resources": _RESOURCES},
}


def create_world(cluster: KubeCluster) -> dict[str, Any]:
    """Create (idempotently) the Application and its resources; return the host-page config."""
    cluster.ensure_namespace(APP_NAMESPACE)
    cluster.ensure_namespace(DEST_NAMESPACE)
    for obj in (_DEPLOYMENT, _SERVICE):
        meta = obj["metadata"]
        if cluster.get(obj["apiVersion"], obj["kind"], meta["name"], meta["namespace"]) is None:
            cluster.create(obj)
    if cluster.get("argoproj.io/v1alpha1", "Application", APP_NAME, APP_NAMESPACE) is None:
        cluster.create(_APPLICATION, status=True)
    app = cluster.get("argoproj.io/v1alpha1", "Application", APP_NAME, APP_NAMESPACE)
    assert app is not None
    nodes: list[dict[str, Any]] = []
    live: dict[str, Any] = {}
    for res in app["status"]["resources"]:
        group = res.get("group", "")
        api_version = f"{group}/{res['version']}" if group else res["version"]
        node = {
            "group": group,
            "version": res["version"],
            "kind": res["kind"],
            "namespace": res["namespace"],
            "name": res["name"],
            "health": res.get("health", {}),
        }
        nodes.append(node)
        live[f"{group}/{res['kind']}/{res['namespace']}/{res['name']}"] = cluster.get(
            api_version, res["kind"], res["name"], res["namespace"]
        )
    return {"application": app, "tree": {"nodes": nodes}, "live": live}
