"""Benchmark 4, tokens: what the backend sends to Llama Stack on a first turn about a resource and
on follow-ups about the same resource, when nothing changed in the cluster.

A recording relay between the backend and a real Llama Stack keeps every request body; tokens are
counted with the backend's own estimator over the fields that carry text (instructions, input
messages, agent instructions). Conversation history that Llama Stack adds on its side is not sent
by the backend and is not counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from evals.scale import create_large_application
from tests.support.backend import SECRET, BackendProcess, backend_config
from tests.support.llamastack import LlamaStackServer
from tests.support.recording_relay import RecordingRelay, sent_tokens

from .common import WORK, model_process, save, table
from .kube import kube

FOLLOW_UPS = 3
COMBOS = (("responses", "0.7.3"), ("responses", "0.3.5"), ("agents", "0.3.5"))


@contextmanager
def _backend(provider: str, version: str, kubeconfig: str) -> Iterator[tuple[BackendProcess, RecordingRelay]]:
    tag = f"tokens-{provider}-{version}"
    with model_process(20, 0.0, 0.0, tag) as model_url:
        llama = LlamaStackServer(version, model_url, WORK / tag / "llama-stack").start()
        relay = RecordingRelay(llama.url).start()
        try:
            config = backend_config(relay.url, provider, kubernetes={"enabled": True, "kubeconfig": kubeconfig,
                                                                     "argocd_namespace": "argocd"},
                                    limits={"requests_per_minute": 0, "max_streams_per_user": 0})
            with BackendProcess(config, WORK / tag / "backend") as backend:
                yield backend, relay
        finally:
            relay.stop()
            llama.stop()


def _turn(backend: BackendProcess, headers: dict[str, str], body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    response = httpx.post(f"{backend.url}/v1/chat", json=body, headers=headers, timeout=120)
    events = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    if not events or "conversation_id" not in events[-1]:
        raise RuntimeError(f"turn failed: HTTP {response.status_code} {response.text[-300:]}")
    return str(events[-1]["conversation_id"]), events[1]


def run() -> str:
    results = []
    with kube(WORK / "tokens") as (cluster, kubelet, _proxy, _):
        scenarios = []
        small = create_large_application(cluster, kubelet, resources=30, unhealthy=3)
        pod = small.unhealthy_pod
        scenarios.append(("a Pod, 30-resource app", small,
                          {"group": "", "version": "v1", "kind": "Pod", "namespace": pod.namespace, "name": pod.name}))
        scenarios.append(("the Application, 100 resources",
                          create_large_application(cluster, kubelet, resources=100, unhealthy=10), None))
        for provider, version in COMBOS:
            with _backend(provider, version, str(cluster.admin_kubeconfig)) as (backend, relay):
                for about, app, resource in scenarios:
                    headers = {"Authorization": SECRET, "Argocd-Application-Name": f"{app.namespace}:big",
                               "Argocd-Project-Name": "default", "Argocd-Username": "bench"}
                    extra = {"resource": resource} if resource else {}
                    relay.posts.clear()
                    conversation, context = _turn(backend, headers, {"question": "Why is this broken?", **extra})
                    first = sent_tokens(relay.posts)
                    follow_ups, resent = [], 0
                    for i in range(FOLLOW_UPS):
                        relay.posts.clear()
                        conversation, context = _turn(backend, headers, {"question": f"And what about step {i + 1}?",
                                                                         "conversation_id": conversation, **extra})
                        follow_ups.append(sent_tokens(relay.posts))
                        resent += bool(context.get("sent"))
                    results.append({"provider": f"{provider}@{version}", "about": about, "first_turn": first,
                                    "follow_ups": follow_ups, "context_tokens": context.get("tokens_total"),
                                    "context_resent": resent, "ratio": max(follow_ups) / first})
    rows = [[r["provider"], r["about"], r["context_tokens"], r["first_turn"], ", ".join(map(str, r["follow_ups"])),
             r["context_resent"], r["ratio"]] for r in results]
    text = table(f"Tokens sent to Llama Stack ({FOLLOW_UPS} follow-ups about the same subject, nothing changed "
                 "in the cluster)",
                 ["provider", "question about", "context tokens", "first turn", "follow-ups", "context resent", "max follow-up / first"],
                 rows)
    met = all(r["ratio"] <= 0.10 for r in results)
    text += (f"\n\nTarget follow-ups <= 10% of the first turn: {'met' if met else 'MISSED'}. Responses: the first "
             "turn sends the instructions as a `developer` input item, which `previous_response_id` carries to every "
             "follow-up (the `instructions` field is not carried); Agents: they live in the agent config.")
    save("tokens", {"results": results, "target_met": met})
    return text
