"""A repeat question starts its last reads early (reads.Footprints); the fresh Application and
AppProject still decide everything, on a real apiserver.

Through the delay relay, so the early reads are still in flight when the Application answers and
the engine has to cancel (or keep) them: the Application moved to another namespace, or its
AppProject no longer permits the namespace, and nothing read early from there reaches the context,
while the reads the fresh Application does name are made. The Application is read by its GET here
(no control-plane cache), so "fresh" is that GET; with the cache it is the watch's version, once the
change reached it (tests/kube/test_control_cache.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant_backend.context.engine import KubeContext
from assistant_backend.identity import Caller
from evals.runner import engine_settings
from evals.scale import LargeApp, create_large_application
from tests.support.delay_relay import DelayRelay
from tests.support.kube import KubeCluster
from tests.support.kube_calls import KubeCalls, recording_kube_calls
from tests.support.kubelet import FakeKubelet

pytestmark = pytest.mark.kube

APP = ("argoproj.io/v1alpha1", "Application")
OLD_LOG = "FATAL from the old namespace"
OLD_EVENT = "an event only the old namespace has"


@pytest.fixture
def calls() -> Iterator[KubeCalls]:
    with recording_kube_calls() as recorded:
        yield recorded


@pytest.fixture(scope="module")
def delayed(static_kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with DelayRelay(static_kube_cluster.url, delay_s=0.05) as relay:
        yield static_kube_cluster.kubeconfig_for_token(
            static_kube_cluster.admin_token,
            tmp_path_factory.mktemp("footprints") / "delayed.kubeconfig",
            user="admin",
            server=relay.url,
        )


def mark_old(cluster: KubeCluster, kubelet: FakeKubelet, app: LargeApp) -> None:
    """What only the old namespace holds: a log line and an event about its crash-looping Pod."""
    pod = app.unhealthy_pod.name
    kubelet.set_log(app.namespace, pod, "app", f"{OLD_LOG}\n", previous=True)
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{pod}.old", "namespace": app.namespace},
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": app.namespace},
            "reason": "BackOff",
            "message": OLD_EVENT,
            "type": "Warning",
        }
    )


@pytest.mark.parametrize("question", ["Application", "Pod"])
async def test_an_application_moved_to_another_namespace_reads_nothing_from_the_old_one(
    question: str,
    static_kube_cluster: KubeCluster,
    fake_kubelet: FakeKubelet,
    delayed: Path,
    calls: KubeCalls,
) -> None:
    cluster = static_kube_cluster
    old = create_large_application(cluster, fake_kubelet, resources=9, unhealthy=1)
    new = create_large_application(cluster, fake_kubelet, resources=9, unhealthy=1)
    mark_old(cluster, fake_kubelet, old)
    caller = old.caller  # the Application "big" in the old namespace, the one that moves
    engine = KubeContext.from_settings(engine_settings(delayed), control_cache=False)
    try:
        before = await engine.build(caller, old.unhealthy_pod if question == "Pod" else None, "why?")
        assert OLD_LOG in before.text and OLD_EVENT in before.text, before.notes  # visible while in scope

        # It now deploys to the new namespace: destination and listed resources both there.
        cluster.merge_patch(
            *APP, "big", old.namespace, {"spec": {"destination": {"namespace": new.namespace}}}
        )
        moved = cluster.get(*APP, "big", old.namespace)
        target = cluster.get(*APP, "big", new.namespace)
        assert moved is not None and target is not None
        cluster.write_status({**moved, "status": target["status"]})
        calls.made.clear()
        pod = new.unhealthy_pod if question == "Pod" else None
        after = await engine.build(caller, pod, "why?")
    finally:
        await engine.aclose()

    # The last footprint's reads did go out, early, into the old namespace...
    early = calls.in_namespace(old.namespace)
    assert early, [c.path for c in calls.made]
    application = next(c for c in calls.made if c.path.endswith(f"/{old.namespace}/applications/big"))
    assert all(c.start < application.end for c in early)  # with the Application's read, not after it
    # ...and nothing of theirs reached the context, while the new namespace was read.
    assert OLD_LOG not in after.text and OLD_EVENT not in after.text
    assert f"{old.namespace}/svc-" not in after.text
    assert f"{new.namespace}/svc-000" in after.text and "FATAL boom" in after.text, after.notes
    assert calls.in_namespace(new.namespace)


async def test_a_namespace_its_appproject_no_longer_permits_is_not_read(
    static_kube_cluster: KubeCluster, fake_kubelet: FakeKubelet, delayed: Path, calls: KubeCalls
) -> None:
    cluster = static_kube_cluster
    app = create_large_application(cluster, fake_kubelet, resources=9, unhealthy=1)
    mark_old(cluster, fake_kubelet, app)
    project = f"narrow-{app.namespace}"
    permits = {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": app.namespace}]}
    cluster.put_project(project, permits)
    cluster.merge_patch(*APP, "big", app.namespace, {"spec": {"project": project}})
    caller = Caller("bench", app.namespace, "big", project)
    engine = KubeContext.from_settings(engine_settings(delayed), control_cache=False)
    try:
        before = await engine.build(caller, None, "why?")
        assert OLD_LOG in before.text and OLD_EVENT in before.text, before.notes

        cluster.put_project(project, {**permits, "destinations": [{"server": "*", "namespace": "elsewhere"}]})
        calls.made.clear()
        after = await engine.build(caller, None, "why?")
    finally:
        await engine.aclose()

    assert calls.in_namespace(app.namespace), [c.path for c in calls.made]  # started early...
    # ...cancelled unread: the Application still names the namespace, its AppProject does not permit it.
    assert OLD_LOG not in after.text and OLD_EVENT not in after.text and "FATAL boom" not in after.text
    assert f"{app.namespace}/svc-000-5d5d-abcde" not in after.text
    assert any("is not permitted by the destinations of AppProject" in n for n in after.notes), after.notes
