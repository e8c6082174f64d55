"""Kubernetes failing under the backend: API errors for some calls (RBAC refusals from the real
apiserver) and calls that hang (a relay that stalls every connection but the first). The answer
still streams, the context says what is missing, and the whole request keeps its deadline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from evals.scale import LargeApp, create_large_application
from tests.support.backend import UNLIMITED, BackendProcess, backend_config
from tests.support.client import converse
from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet
from tests.support.llamastack import LlamaStackServer
from tests.support.model_server import ScriptedModel
from tests.support.net import argocd_headers

pytestmark = [pytest.mark.kube, pytest.mark.llamastack, pytest.mark.faults]

DEADLINE_S = 3.0
CALL_TIMEOUT_S = 1.0


@dataclass
class World:
    cluster: KubeCluster
    app: LargeApp
    workdir: Path


@pytest.fixture(scope="module")
def world(kube_cluster: KubeCluster, fake_kubelet: FakeKubelet, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The session's control plane (shared with the other folders) and an Application of 30 resources."""
    app = create_large_application(kube_cluster, fake_kubelet, resources=30, unhealthy=3)
    return World(kube_cluster, app, tmp_path_factory.mktemp("kube-faults"))


def _backend(start_backend: Callable[..., BackendProcess], llama: LlamaStackServer, kubeconfig: Path) -> BackendProcess:
    return start_backend(backend_config(
        llama.url, "responses", limits=UNLIMITED,
        kubernetes={"enabled": True, "kubeconfig": str(kubeconfig), "argocd_namespace": "argocd"},
        context={"gather_deadline_s": DEADLINE_S, "call_timeout_s": CALL_TIMEOUT_S, "pod_logs": "backend"},
    ))


def _headers(app: LargeApp) -> dict[str, str]:
    return argocd_headers(application=f"{app.namespace}:big")


def _limited_kubeconfig(world: World) -> Path:
    """A service account that may read the Application and workloads, but not Pod logs nor Events."""
    cluster = world.cluster
    cluster.ensure_namespace("argocd")
    rules = [
        {"apiGroups": ["argoproj.io"], "resources": ["applications"], "verbs": ["get", "list"]},
        {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods", "services", "configmaps", "endpoints"], "verbs": ["get", "list"]},
    ]
    if cluster.get("rbac.authorization.k8s.io/v1", "ClusterRole", "assistant-no-logs") is None:
        cluster.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                        "metadata": {"name": "assistant-no-logs"}, "rules": rules})
    if cluster.get("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "assistant-no-logs") is None:
        cluster.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                        "metadata": {"name": "assistant-no-logs"},
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                    "name": "assistant-no-logs"},
                        "subjects": [{"kind": "ServiceAccount", "name": "no-logs", "namespace": "argocd"}]})
    token = cluster.service_account_token("argocd", "no-logs")
    return cluster.kubeconfig_for_token(token, world.workdir / "no-logs.kubeconfig")


async def test_some_calls_forbidden_answer_still_comes(
    world: World, llama_stack_073: LlamaStackServer, start_backend: Callable[..., BackendProcess],
    model: ScriptedModel,
) -> None:
    backend = _backend(start_backend, llama_stack_073, _limited_kubeconfig(world))
    pod = world.app.unhealthy_pod
    resource = {"group": "", "version": "v1", "kind": "Pod", "namespace": pod.namespace, "name": pod.name}
    outcome = await converse(backend.url, "Why does it crash?", deadline_s=60, headers=_headers(world.app),
                             resource=resource)
    assert outcome.names[0] == "start" and outcome.names[-1] == "end", outcome.names
    context = outcome.events[1].data
    notes = " ".join(context["notes"]).lower()
    assert "log" in notes and "event" in notes, context["notes"]
    kinds = {item["kind"] for item in context["items"]}
    assert "logs" not in kinds
    seen = model.completions()[-1].text()
    assert pod.name in seen, "what could be read still reaches the model"
    assert any(note in seen for note in context["notes"]), "the model is told what is missing"


async def test_hanging_calls_keep_the_deadline(
    world: World, fake_kubelet: FakeKubelet, llama_stack_073: LlamaStackServer,
    start_backend: Callable[..., BackendProcess], model: ScriptedModel,
) -> None:
    """Some reads answer, others hang: the Pods' kubelet never answers a log request, so those calls
    hang inside the apiserver while the rest of the gather (on the same HTTP/2 connection) answers."""
    backend = start_backend(backend_config(
        llama_stack_073.url, "responses", limits=UNLIMITED,
        kubernetes={"enabled": True, "kubeconfig": str(world.cluster.admin_kubeconfig), "argocd_namespace": "argocd"},
        context={"gather_deadline_s": DEADLINE_S, "call_timeout_s": CALL_TIMEOUT_S, "pod_logs": "backend"},
    ))
    fake_kubelet.log_delay_s = 60
    # The kubelet serves the whole session: only what it saw from here on is this test's.
    asked_before, answered_before = len(fake_kubelet.requests), len(fake_kubelet.answered)
    try:
        outcome = await converse(backend.url, "Why is it Degraded?", deadline_s=60, headers=_headers(world.app))
        # Read before anything else can pass: a hung log request answers only after 60 s.
        answered_logs = [p for p in fake_kubelet.answered[answered_before:] if "/containerLogs/" in p]
        asked = fake_kubelet.requests[asked_before:]
        assert outcome.names[-1] == "end", outcome.names
        assert any("/containerLogs/" in path for path in asked), "no log was asked for: nothing hung"
        # The gather deadline, not the kubelet, ended the context: the whole answer came while every
        # log request was still hanging (an order of events, not a clock).
        assert answered_logs == [], f"the context waited for the kubelet: {answered_logs}"
        notes = outcome.events[1].data["notes"]
        assert notes, "the context must say what could not be read"
        assert any("timed out" in n or "deadline" in n for n in notes), notes
    finally:
        fake_kubelet.log_delay_s = 0
