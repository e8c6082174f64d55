"""How many dependent round trips a context build takes, on a real apiserver (counted, never timed).

Every API call the engine makes is recorded with the position of its start and its end in one
sequence of events (a counter, not a clock); a call's depth is one more than the deepest call that
had answered before it started. The apiserver is reached through the delay relay
(tests/support/delay_relay.py, pipelined latency), so calls issued together are still in flight
together (the relay makes every answer late by the same amount) and the depth is the number of
dependent stages. A first question: the Application's round trip, then at most two (reads.py). A
repeat question: its last reads go out with the Application's (reads.Footprints), so two. All of it
with the Application read by its GET (no control-plane cache): with the cache synced, one round trip
less each (tests/kube/test_control_cache.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant_backend.context import reads
from assistant_backend.context.base import ResourceRef
from assistant_backend.context.engine import KubeContext
from assistant_backend.wire import LogsAttachment, Resource
from evals.runner import engine_settings
from evals.scale import LargeApp, create_large_application
from tests.support.delay_relay import DelayRelay
from tests.support.kube import KubeCluster
from tests.support.kube_calls import KubeCalls, recording_kube_calls
from tests.support.kubelet import FakeKubelet

pytestmark = pytest.mark.kube


@pytest.fixture
def recorder() -> Iterator[KubeCalls]:
    with recording_kube_calls() as calls:
        yield calls


@pytest.fixture(scope="module")
def delayed(static_kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with DelayRelay(static_kube_cluster.url, delay_s=0.1) as relay:
        yield static_kube_cluster.kubeconfig_for_token(
            static_kube_cluster.admin_token,
            tmp_path_factory.mktemp("stages") / "delayed.kubeconfig",
            user="admin",
            server=relay.url,
        )


@pytest.fixture(scope="module")
def big(static_kube_cluster: KubeCluster, fake_kubelet: FakeKubelet) -> LargeApp:
    return create_large_application(static_kube_cluster, fake_kubelet, resources=30, unhealthy=3)


def questions(app: LargeApp) -> dict[str, ResourceRef | None]:
    workload = app.unhealthy_pod.name.rsplit("-", 2)[0]
    return {
        "Application": None,
        "Pod": app.unhealthy_pod,
        "Deployment": ResourceRef("v1", "Deployment", workload, "apps", app.namespace),
        "Service": ResourceRef("v1", "Service", workload, "", app.namespace),
    }


def settings(kubeconfig: Path, pod_logs: str) -> Any:
    base = engine_settings(kubeconfig)
    return base.model_copy(update={"context": base.context.model_copy(update={"pod_logs": pod_logs})})


def panel_logs(app: LargeApp, question: str) -> list[LogsAttachment]:
    """Under ``pod_logs: argocd`` the panel attaches the selected Pod's logs (read from Argo CD)."""
    if question != "Pod":
        return []
    pod = Resource(version="v1", kind="Pod", namespace=app.namespace, name=app.unhealthy_pod.name)
    return [LogsAttachment(type="logs", resource=pod, previous=True, text="FATAL boom from the panel")]


@pytest.mark.parametrize("question", ["Application", "Pod", "Deployment", "Service"])
async def test_a_first_question_takes_two_dependent_stages_after_the_application(
    question: str, big: LargeApp, delayed: Path, recorder: KubeCalls
) -> None:
    engine = KubeContext.from_settings(engine_settings(delayed), control_cache=False)
    resource = questions(big)[question]
    try:
        await engine.build(big.caller, resource, "why is this crashing?")  # discovery, connections
        engine.footprints.clear()  # a first question: nothing remembered about this Application
        recorder.made.clear()
        bundle = await engine.build(big.caller, resource, "why is this crashing?")
    finally:
        await engine.aclose()
    assert "[crash_loop]" in bundle.text and "FATAL boom" in bundle.text, bundle.notes  # the log was read
    assert recorder.depth() == 3, recorder.in_order()
    pod_lists = [c for c in recorder.made if c.path == f"/api/v1/namespaces/{big.namespace}/pods"]
    # Pods by namespace, filtered locally: never one list per workload.
    assert all("labelSelector" not in c.params for c in pod_lists), pod_lists
    assert len(pod_lists) <= 1
    if question == "Application":
        assert len(pod_lists) == 1
        logs = [c for c in recorder.made if c.path.endswith("/log")]
        assert len(logs) == 3  # the three crash-looping Pods, each read once


@pytest.mark.parametrize("pod_logs", ["backend", "argocd"])
@pytest.mark.parametrize("question", ["Application", "Pod", "Deployment", "Service"])
async def test_a_repeat_question_takes_two_dependent_stages_in_all(
    question: str, pod_logs: str, big: LargeApp, delayed: Path, recorder: KubeCalls
) -> None:
    engine = KubeContext.from_settings(settings(delayed, pod_logs), control_cache=False)
    resource, attached = questions(big)[question], panel_logs(big, question)
    try:
        first = await engine.build(big.caller, resource, "why is this crashing?", attached)
        recorder.made.clear()
        bundle = await engine.build(big.caller, resource, "why is this crashing?", attached)
    finally:
        await engine.aclose()
    assert recorder.depth() == 2, recorder.in_order()
    # The same context as the first question's: what started early answered what the gather asked.
    assert bundle.text == first.text
    assert "[crash_loop]" in bundle.text, bundle.notes
    logs = [c for c in recorder.made if c.path.endswith("/log")]
    if pod_logs == "backend":
        assert "FATAL boom" in bundle.text and logs
    else:
        assert not logs  # the backend reads no logs; the panel's are used for the Pod it attached
        assert ("FATAL boom from the panel" in bundle.text) == (question == "Pod")


async def test_a_cut_list_is_said_and_what_it_missed_is_read_by_selector(
    big: LargeApp, delayed: Path, recorder: KubeCalls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reads, "MAX_NAMESPACE_PODS", 1)
    monkeypatch.setattr(reads, "MAX_EVENTS_PER_NAMESPACE", 2)
    engine = KubeContext.from_settings(engine_settings(delayed), control_cache=False)
    try:
        bundle = await engine.build(big.caller, None, "why Degraded?")
    finally:
        await engine.aclose()
    assert any(f"namespace {big.namespace} has more than 1 Pods" in n for n in bundle.notes), bundle.notes
    assert any(f"namespace {big.namespace} has more than 2 events" in n for n in bundle.notes), bundle.notes
    # Every crash-looping Pod is still found (by its Deployment's selector), and its events too.
    for i in range(3):
        assert f"svc-00{i}-5d5d-abcde" in bundle.text
    assert bundle.text.count("Back-off restarting failed container") >= 3
    selected = [c for c in recorder.made if c.path.endswith("/pods") and "labelSelector" in c.params]
    assert len(selected) == 3
