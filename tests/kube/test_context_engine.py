"""The context engine against a real apiserver, controllers and scheduler, and the fake kubelet."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from assistant_backend.config import Settings
from assistant_backend.context.base import ResourceRef
from assistant_backend.context.engine import KubeContext
from assistant_backend.errors import ApiError, ErrorCode
from assistant_backend.identity import Caller
from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kube

NODE = "ctx-node-1"


def settings_for(kubeconfig: str, **context: Any) -> Settings:
    return Settings(
        kubernetes={"kubeconfig": kubeconfig, "argocd_namespace": "argocd"},
        context={"token_budget": 8000, "pod_logs": "backend", **context},
        auth={"insecure_allow_no_secret": True},
    )


@pytest.fixture
async def engine(kube_cluster: KubeCluster) -> AsyncIterator[KubeContext]:
    source = KubeContext.from_settings(settings_for(str(kube_cluster.admin_kubeconfig)))
    yield source
    await source.aclose()


@pytest.fixture
def crashing_app(kube_cluster: KubeCluster, fake_kubelet: FakeKubelet) -> dict[str, Any]:
    """A Deployment the real controllers roll out; its Pod crash-loops (status written like a kubelet)."""
    ns = f"shop-{uuid.uuid4().hex[:6]}"
    kube_cluster.ensure_namespace(ns)
    fake_kubelet.register_node(kube_cluster, NODE)
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
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "registry.example.com/shop/web:2.4.1",
                                "env": [
                                    {"name": "DB_PASSWORD", "value": "canary-env-hunter2"},
                                    {"name": "KEYCLOAK_URL", "value": "https://sso.example.com"},
                                ],
                            }
                        ]
                    },
                },
            },
        }
    )
    kube_cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"selector": {"app": "web-typo"}, "ports": [{"port": 80}]},
        }
    )
    pod = wait_for(
        lambda: [
            p
            for p in kube_cluster.http.get(f"/api/v1/namespaces/{ns}/pods").json()["items"]
            if p["spec"].get("nodeName")
        ],
        "the scheduler to bind the Pod",
    )[0]
    pod.update(apiVersion="v1", kind="Pod")
    name = pod["metadata"]["name"]
    pod["status"] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {
                "name": "app",
                "ready": False,
                "restartCount": 5,
                "image": "registry.example.com/shop/web:2.4.1",
                "imageID": "",
                "started": False,
                "state": {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": "back-off 2m40s restarting failed container",
                    }
                },
                "lastState": {
                    "terminated": {
                        "exitCode": 3,
                        "reason": "Error",
                        "startedAt": "2026-01-01T00:00:00Z",
                        "finishedAt": "2026-01-01T00:00:05Z",
                    }
                },
            }
        ],
    }
    kube_cluster.write_status(pod)
    fake_kubelet.set_log(ns, name, "app", "starting\nconnecting to db\n", previous=False)
    fake_kubelet.set_log(
        ns,
        name,
        "app",
        "starting\nconnecting to postgres://shop:canary-url-pass@db:5432/shop\n"
        'FATAL: database "shop" does not exist\n',
        previous=True,
    )
    kube_cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.backoff", "namespace": ns},
            "involvedObject": {
                "kind": "Pod",
                "name": name,
                "namespace": ns,
                "uid": pod["metadata"]["uid"],
                "apiVersion": "v1",
            },
            "reason": "BackOff",
            "message": "Back-off restarting failed container",
            "type": "Warning",
            "count": 12,
            "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:10:00Z",
            "source": {"component": "kubelet", "host": NODE},
        }
    )
    kube_cluster.create(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "shop", "namespace": ns},
            "spec": {
                "project": "retail",
                "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
                "source": {
                    "repoURL": "https://git.example.com/shop.git",
                    "path": "deploy",
                    "targetRevision": "main",
                },
            },
            "status": {
                "sync": {"status": "Synced", "revision": "abc123"},
                "health": {"status": "Degraded"},
                "resources": [
                    {
                        "group": "apps",
                        "version": "v1",
                        "kind": "Deployment",
                        "namespace": ns,
                        "name": "web",
                        "status": "Synced",
                        "health": {"status": "Degraded", "message": "Deployment has minimum availability."},
                    },
                    {
                        "version": "v1",
                        "kind": "Service",
                        "namespace": ns,
                        "name": "web",
                        "status": "Synced",
                        "health": {"status": "Healthy"},
                    },
                ],
            },
        },
        status=True,
    )
    return {"ns": ns, "pod": name}


def caller(ns: str, project: str = "retail", app: str = "shop") -> Caller:
    return Caller(username="alice", app_namespace=ns, app_name=app, project=project)


async def test_pod_reached_through_owners_gets_status_events_and_previous_logs(
    engine: KubeContext, crashing_app: dict[str, Any]
) -> None:
    ns, pod = crashing_app["ns"], crashing_app["pod"]
    bundle = await engine.build(
        caller(ns), ResourceRef(version="v1", kind="Pod", name=pod, namespace=ns), "why?"
    )
    text = bundle.text
    assert "[crash_loop]" in text and "last exit code 3" in text
    assert 'FATAL: database "shop" does not exist' in text
    assert "Back-off restarting failed container" in text
    assert "canary-url-pass" not in text and "canary-env-hunter2" not in text
    assert "sso.example.com" in text  # KEYCLOAK_URL is not a secret
    kinds = [item.kind for item in bundle.items]
    assert kinds[0] == "findings" and "logs" in kinds and "events" in kinds and "status" in kinds
    assert sum(item.redactions for item in bundle.items) >= 2
    assert bundle.tokens_total <= bundle.budget


async def test_application_level_question_looks_into_problem_resources(
    engine: KubeContext, crashing_app: dict[str, Any]
) -> None:
    bundle = await engine.build(caller(crashing_app["ns"]), None, "why degraded?")
    assert "[crash_loop]" in bundle.text
    assert "Deployment" in bundle.text and "abc123" in bundle.text


async def test_service_with_selector_matching_nothing(
    engine: KubeContext, crashing_app: dict[str, Any]
) -> None:
    ns = crashing_app["ns"]
    bundle = await engine.build(
        caller(ns), ResourceRef(version="v1", kind="Service", name="web", namespace=ns), "q"
    )
    assert "[service_no_endpoints]" in bundle.text and "app=web-typo matches no Pod" in bundle.text


async def test_refusals(engine: KubeContext, crashing_app: dict[str, Any], kube_cluster: KubeCluster) -> None:
    ns = crashing_app["ns"]
    with pytest.raises(ApiError) as missing:
        await engine.build(caller(ns, app="nope"), None, "q")
    assert missing.value.code is ErrorCode.APPLICATION_NOT_FOUND
    with pytest.raises(ApiError) as project:
        await engine.build(caller(ns, project="other"), None, "q")
    assert project.value.code is ErrorCode.PROJECT_MISMATCH
    kube_cluster.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "foreign", "namespace": ns},
            "data": {"x": "y"},
        }
    )
    with pytest.raises(ApiError) as foreign:
        await engine.build(
            caller(ns), ResourceRef(version="v1", kind="ConfigMap", name="foreign", namespace=ns), "q"
        )
    assert foreign.value.code is ErrorCode.RESOURCE_NOT_IN_APPLICATION


async def test_unreachable_api_still_answers_and_gathers_nothing(
    kube_cluster: KubeCluster, tmp_path: Any
) -> None:
    from tests.support.net import free_port

    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(
        kube_cluster.admin_kubeconfig.read_text().replace(
            kube_cluster.url, f"https://127.0.0.1:{free_port()}"
        )
    )
    source = KubeContext.from_settings(settings_for(str(dead), call_timeout_s=1.0))
    try:
        bundle = await source.build(caller("whatever"), None, "q")
    finally:
        await source.aclose()
    assert any("could not read Application" in n for n in bundle.notes)
    assert "could not read Application" in bundle.text
    assert any(item.kind == "note" for item in bundle.items)
