"""Hostile requests that only a real Kubernetes can judge: another Application's resource, a wrong
project, an Application that does not exist, a contradicting ``Argocd-Target-Cluster-*`` header. And
for every request refused before context is gathered, not one connection reaches the apiserver."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from evals.scale import LargeApp, create_large_application
from tests.support.backend import UNLIMITED, BackendProcess, backend_config
from tests.support.client import error_of
from tests.support.delay_relay import DelayRelay
from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet
from tests.support.llamastack import LlamaStackServer
from tests.support.model_server import ScriptedModel
from tests.support.net import argocd_headers
from tests.support.sse import events_if_streamed as events_of

pytestmark = [pytest.mark.kube, pytest.mark.llamastack]


@dataclass
class World:
    backend: BackendProcess
    relay: DelayRelay
    mine: LargeApp
    theirs: LargeApp

    def headers(self, **changes: str) -> dict[str, str]:
        return {**argocd_headers(application=f"{self.mine.namespace}:big"), **changes}


@pytest.fixture(scope="module")
def world(llama_stack_073: LlamaStackServer, kube_cluster: KubeCluster, fake_kubelet: FakeKubelet,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The session's control plane, reached through a relay that counts what the backend sends."""
    workdir: Path = tmp_path_factory.mktemp("hostile-kube")
    relay = DelayRelay(kube_cluster.url).start()  # no delay: it only counts
    try:
        mine = create_large_application(kube_cluster, fake_kubelet, resources=9, unhealthy=1)
        theirs = create_large_application(kube_cluster, fake_kubelet, resources=9, unhealthy=1)
        config = yaml.safe_load(kube_cluster.admin_kubeconfig.read_text())
        for entry in config["clusters"]:
            entry["cluster"]["server"] = relay.url
        kubeconfig = workdir / "relayed.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
        with BackendProcess(backend_config(
            llama_stack_073.url, "responses", limits=UNLIMITED,
            kubernetes={"enabled": True, "kubeconfig": str(kubeconfig), "argocd_namespace": "argocd"},
        ), workdir / "backend") as backend:
            yield World(backend, relay, mine, theirs)
    finally:
        relay.stop()


def chat(world: World, headers: dict[str, str], **body: object) -> httpx.Response:
    return httpx.post(f"{world.backend.url}/v1/chat", json={"question": "Why?", **body}, headers=headers, timeout=60)


def deployment(app: LargeApp, name: str = "svc-000") -> dict[str, str]:
    return {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": app.namespace, "name": name}


def test_refused_before_context_never_reaches_kubernetes(world: World, model: ScriptedModel) -> None:
    # A warm request first, so the backend holds a pooled connection a leak could reuse unseen.
    assert events_of(chat(world, world.headers()))[-1].name == "end"
    model.reset()
    before = world.relay.client_chunks
    refusals = [
        (world.headers(Authorization="Bearer guessed"), {}, 401),
        (world.headers(**{"Argocd-Application-Name": "argocd/../kube-system"}), {}, 400),
        (world.headers(), {"resource": {**deployment(world.mine), "name": "../secrets"}}, 422),
        (world.headers(), {"conversation_id": "c1.e30.AAAA"}, 404),
        (world.headers(), {"model": "openai/nope"}, 400),
    ]
    for headers, body, status in refusals:
        assert chat(world, headers, **body).status_code == status
    assert world.relay.client_chunks == before, "a refused request sent something to the apiserver"
    assert model.completions() == []
    chat(world, world.headers())
    assert world.relay.client_chunks > before, "the relay must see an accepted request's reads"


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("another application's resource", 403, "resource_not_in_application"),
        ("a resource in another namespace that is not listed", 403, "resource_not_in_application"),
        ("a Secret of the same namespace", 403, "resource_not_in_application"),
        ("a project that is not the application's", 403, "project_mismatch"),
        ("an application that does not exist", 404, "application_not_found"),
    ],
)
def test_kubernetes_judged_refusals(world: World, model: ScriptedModel, case: str, status: int, code: str) -> None:
    headers, body = world.headers(), {}
    if case == "another application's resource":
        body = {"resource": deployment(world.theirs)}
    elif case == "a resource in another namespace that is not listed":
        body = {"resource": {"group": "", "version": "v1", "kind": "ConfigMap", "namespace": "kube-system",
                             "name": "extension-apiserver-authentication"}}
    elif case == "a Secret of the same namespace":
        body = {"resource": {"group": "", "version": "v1", "kind": "Secret", "namespace": world.mine.namespace,
                             "name": "db-credentials"}}
    elif case == "a project that is not the application's":
        headers = world.headers(**{"Argocd-Project-Name": "team-a"})
    else:
        headers = world.headers(**{"Argocd-Application-Name": f"{world.mine.namespace}:nope"})
    response = chat(world, headers, **body)
    assert response.status_code == status, response.text[:300]
    assert error_of(response)["code"] == code
    assert model.completions() == [], "a refused request reached the model"


def test_target_cluster_headers_are_ignored(world: World, model: ScriptedModel) -> None:
    """The destination comes from the Application: a forged cluster header changes nothing."""
    plain = chat(world, world.headers(), resource=deployment(world.mine))
    forged = chat(world, world.headers(**{"Argocd-Target-Cluster-URL": "https://evil.example.com:6443",
                                          "Argocd-Target-Cluster-Name": "evil"}), resource=deployment(world.mine))
    plain_events, forged_events = events_of(plain), events_of(forged)
    assert plain_events[-1].name == "end" and forged_events[-1].name == "end"
    # The same objects were read (the controllers may move their status on in between: compare refs).
    refs = {item["ref"] for item in forged_events[1].data["items"]}
    assert refs and refs == {item["ref"] for item in plain_events[1].data["items"]}
    assert not any("evil" in note for note in forged_events[1].data["notes"])
    seen = "\n".join(r.text() for r in model.completions())
    assert "evil" not in seen and "svc-000" in seen
