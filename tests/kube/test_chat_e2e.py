"""A chat through the real backend, a real Llama Stack and a real apiserver: the user sees the context
items in the ``context`` event and the model receives the findings (and never the planted secrets)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from evals.runner import ScenarioRun, load_scenarios, prepare_cluster
from tests.support.backend import backend_config
from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet
from tests.support.llamastack import LlamaStackServer
from tests.support.model_server import Reply, ScriptedModel
from tests.support.net import argocd_headers
from tests.support.sse import parse

pytestmark = [pytest.mark.kube, pytest.mark.llamastack]


async def test_chat_sends_gathered_context_and_findings_to_the_model(
    static_kube_cluster: KubeCluster,
    fake_kubelet: FakeKubelet,
    llama_stack_073: LlamaStackServer,
    model: ScriptedModel,
    start_backend: Any,
) -> None:
    prepare_cluster(static_kube_cluster, fake_kubelet)
    scenario = next(s for s in load_scenarios() if s.name == "crashloop-db-connection")
    run = ScenarioRun(static_kube_cluster, fake_kubelet, scenario)
    run.setup()
    backend = start_backend(
        backend_config(
            llama_stack_073.url,
            "responses",
            kubernetes={
                "enabled": True,
                "kubeconfig": str(static_kube_cluster.admin_kubeconfig),
                "argocd_namespace": "argocd",
            },
            context={"pod_logs": "backend"},  # this test is about what the backend reads itself
        )
    )
    model.script(Reply(text="The database orders-db refuses connections."))
    select = scenario.doc["select"]
    body = {
        "question": "Why does this Pod keep restarting?",
        "resource": {
            "group": "",
            "version": "v1",
            "kind": select["kind"],
            "namespace": run.ns,
            "name": select["name"],
        },
    }
    headers = argocd_headers(application=f"{run.ns}:app")
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(f"{backend.url}/v1/chat", json=body, headers=headers)
    assert response.status_code == 200, response.text
    events = parse(response.text)
    context = next(e.data for e in events if e.name == "context")
    kinds = [item["kind"] for item in context["items"]]
    assert kinds[0] == "findings" and {"application", "status", "events", "logs"} <= set(kinds)
    assert any(item["redactions"] > 0 for item in context["items"])
    assert context["tokens_total"] == sum(item["tokens"] for item in context["items"]) <= context["budget"]
    assert all(
        {"kind", "ref", "tokens", "truncated", "redactions", "source"} <= set(item) and item["source"] == "kubernetes"
        for item in context["items"]
    ), context["items"]

    seen = model.completions()[-1].text()
    assert "[crash_loop]" in seen and "could not connect to orders-db after 3 attempts" in seen
    assert "canary-crash-pgpass-5521" not in seen
    assert "Why does this Pod keep restarting?" in seen

    # A resource outside the Application is refused before anything is gathered or sent.
    outside = {**body, "resource": {**body["resource"], "name": "not-in-the-app"}}
    async with httpx.AsyncClient(timeout=60) as client:
        refused = await client.post(f"{backend.url}/v1/chat", json=outside, headers=headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "resource_not_in_application"
