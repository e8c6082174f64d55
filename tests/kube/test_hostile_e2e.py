"""The trust issue's attack end to end: real backend, real Llama Stack 0.7.3, real apiserver.

Scenario evals/scenarios/62-hostile-shared-namespace.yaml: a shared namespace with another team's
Pods matching this Application's Service selector, a target entry naming another team's live
Deployment in a namespace the AppProject does not permit, a Pod log with two 8 KB lines shaped to
make backtracking regexes quadratic and credentials planted around them, and a ConfigMap of
credentials in many formats. Everything the scripted model received is scanned: no planted string
may be there, the legitimate evidence must, and the answers (also a second user's, asked at the same
time) arrive well inside the request's deadline.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from evals.runner import ScenarioRun, load_scenarios, prepare_cluster
from tests.support.backend import backend_config
from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet
from tests.support.llamastack import LlamaStackServer
from tests.support.model_server import ScriptedModel
from tests.support.net import argocd_headers
from tests.support.sse import parse

pytestmark = [pytest.mark.kube, pytest.mark.llamastack]

GATHER_DEADLINE_S = 8.0


def headers(run: ScenarioRun, user: str) -> dict[str, str]:
    return argocd_headers(user=user, application=f"{run.ns}:app", project="team-a-hostile")


async def ask(url: str, run: ScenarioRun, body: dict[str, Any], user: str) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(f"{url}/v1/chat", json=body, headers=headers(run, user))
    assert response.status_code == 200, response.text
    return time.perf_counter() - started, parse(response.text)


async def test_nothing_planted_reaches_the_model_and_the_evidence_does(
    static_kube_cluster: KubeCluster,
    fake_kubelet: FakeKubelet,
    llama_stack_073: LlamaStackServer,
    model: ScriptedModel,
    start_backend: Any,
) -> None:
    prepare_cluster(static_kube_cluster, fake_kubelet)
    scenario = next(s for s in load_scenarios() if s.name == "hostile-shared-namespace")
    run = ScenarioRun(static_kube_cluster, fake_kubelet, scenario)
    run.setup()
    backend = start_backend(
        backend_config(
            llama_stack_073.url,
            kubernetes={
                "enabled": True,
                "kubeconfig": str(static_kube_cluster.admin_kubeconfig),
                "argocd_namespace": "argocd",
            },
            context={"gather_deadline_s": GATHER_DEADLINE_S, "pod_logs": "backend"},
        )
    )
    configmap = {"group": "", "version": "v1", "kind": "ConfigMap", "namespace": run.ns, "name": "web-config"}
    service = {"group": "", "version": "v1", "kind": "Service", "namespace": run.ns, "name": "web"}
    # Three questions at once: the Application (hostile logs), the ConfigMap, the Service (selector).
    answers = await asyncio.gather(
        ask(backend.url, run, {"question": "Why is the app Degraded?"}, "alice"),
        ask(backend.url, run, {"question": "Is the config right?", "resource": configmap}, "bob"),
        ask(backend.url, run, {"question": "Which Pods does it serve?", "resource": service}, "carol"),
    )
    for elapsed, events in answers:
        assert [e.name for e in events][-1] == "end", events[-1]
        assert elapsed < GATHER_DEADLINE_S, f"an answer took {elapsed:.1f}s"

    received = "\n".join(c.text() for c in model.completions())
    contexts = "\n".join(str(e.data) for _, events in answers for e in events if e.name == "context")
    leaked = [c for c in scenario.doc["expect"]["canaries"] if c in received or c in contexts]
    assert leaked == []
    # The evidence a human needs is there: the crash, the log line, the ConfigMap's harmless parts,
    # and that a listed entry was not read (named, never shown).
    for evidence in (
        "password authentication failed for user",
        "CrashLoopBackOff",
        "jdbc:postgresql://db.shop.svc:5432/shop",
        "feature.checkout.enabled=true",
        "smtp.example.com",
        "cache.shop.svc:6379",
        "not shown",
        "characters of this line not shown",
    ):
        assert evidence in received, evidence
    assert f"{run.ns}-team-b" in received  # the target entry is named (Argo CD lists it) ...
    assert "payments:canary" not in received  # ... its live object is not read
    assert any(i["redactions"] > 0 for _, ev in answers for e in ev if e.name == "context" for i in e.data["items"])
