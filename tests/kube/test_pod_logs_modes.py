"""``context.pod_logs`` on the real apiserver: who reads a crash-looping Pod's logs, and which reach
the model. ``backend``: the backend reads them itself; ``argocd`` (the default): only what the panel
attached from Argo CD under the user's ``logs, get``, the backend never asks the kubelet; ``off``: none.
Attachments pass the scope check and redaction like everything else."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from assistant_backend.context.base import ResourceRef
from assistant_backend.context.engine import KubeContext
from assistant_backend.errors import ApiError, ErrorCode
from assistant_backend.wire import LogsAttachment, ManagedResourceAttachment, Resource
from tests.kube.test_context_engine import caller, crashing_app, settings_for  # noqa: F401  (fixture)
from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet

pytestmark = pytest.mark.kube

FATAL = 'FATAL: database "shop" does not exist'
ATTACHED = "attached line: token=canary-attached-ghp_abcdefghijklmnopqrstuvwxyz0123456789 then exit 3"

Engines = Callable[[str], KubeContext]


@pytest.fixture
async def engine_for(kube_cluster: KubeCluster) -> AsyncIterator[Engines]:
    made: list[KubeContext] = []

    def make(mode: str) -> KubeContext:
        made.append(KubeContext.from_settings(settings_for(str(kube_cluster.admin_kubeconfig), pod_logs=mode)))
        return made[-1]

    yield make
    for engine in made:
        await engine.aclose()


def pod_ref(app: dict[str, Any]) -> ResourceRef:
    return ResourceRef(version="v1", kind="Pod", name=app["pod"], namespace=app["ns"])


def attached_log(app: dict[str, Any], name: str | None = None) -> LogsAttachment:
    pod = Resource(version="v1", kind="Pod", namespace=app["ns"], name=name or app["pod"])
    return LogsAttachment(type="logs", resource=pod, container="app", previous=True, text=f"boot\n{ATTACHED}\n")


def kubelet_asked(kubelet: FakeKubelet, app: dict[str, Any]) -> int:
    return sum(1 for r in kubelet.requests if f"/{app['ns']}/{app['pod']}/" in r)


async def test_backend_reads_the_logs_itself(
    engine_for: Engines, crashing_app: dict[str, Any], fake_kubelet: FakeKubelet  # noqa: F811
) -> None:
    bundle = await engine_for("backend").build(caller(crashing_app["ns"]), pod_ref(crashing_app), "why?")
    assert FATAL in bundle.text and kubelet_asked(fake_kubelet, crashing_app) >= 1
    assert all(i.source == "kubernetes" for i in bundle.items if i.kind == "logs")


async def test_argocd_mode_never_reads_logs_and_says_so(
    engine_for: Engines, crashing_app: dict[str, Any], fake_kubelet: FakeKubelet  # noqa: F811
) -> None:
    before = kubelet_asked(fake_kubelet, crashing_app)
    bundle = await engine_for("argocd").build(caller(crashing_app["ns"]), pod_ref(crashing_app), "why?")
    assert FATAL not in bundle.text and "connecting to db" not in bundle.text
    assert kubelet_asked(fake_kubelet, crashing_app) == before, "the backend read logs under pod_logs: argocd"
    assert any("context.pod_logs: argocd" in n for n in bundle.notes)
    assert "[crash_loop]" in bundle.text  # the status still says it crash-loops


async def test_argocd_mode_uses_the_attached_logs_redacted(
    engine_for: Engines, crashing_app: dict[str, Any], fake_kubelet: FakeKubelet  # noqa: F811
) -> None:
    before = kubelet_asked(fake_kubelet, crashing_app)
    bundle = await engine_for("argocd").build(
        caller(crashing_app["ns"]), pod_ref(crashing_app), "why?", [attached_log(crashing_app)]
    )
    assert "attached line: token=" in bundle.text and "then exit 3" in bundle.text
    assert "canary-attached" not in bundle.text and "ghp_" not in bundle.text
    logs = [i for i in bundle.items if i.kind == "logs"]
    assert logs and all(i.source == "argocd" for i in logs) and sum(i.redactions for i in logs) >= 1
    assert kubelet_asked(fake_kubelet, crashing_app) == before
    assert not any("context.pod_logs" in n for n in bundle.notes)


async def test_off_uses_no_logs_at_all(
    engine_for: Engines, crashing_app: dict[str, Any], fake_kubelet: FakeKubelet  # noqa: F811
) -> None:
    before = kubelet_asked(fake_kubelet, crashing_app)
    bundle = await engine_for("off").build(
        caller(crashing_app["ns"]), pod_ref(crashing_app), "why?", [attached_log(crashing_app)]
    )
    assert "attached line" not in bundle.text and FATAL not in bundle.text
    assert not [i for i in bundle.items if i.kind == "logs"]
    assert any("context.pod_logs: off" in n for n in bundle.notes)
    assert kubelet_asked(fake_kubelet, crashing_app) == before


async def test_an_attached_log_of_a_pod_outside_the_application_is_403(
    engine_for: Engines, crashing_app: dict[str, Any], kube_cluster: KubeCluster  # noqa: F811
) -> None:
    ns = crashing_app["ns"]
    kube_cluster.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "intruder", "namespace": ns},
                         "spec": {"containers": [{"name": "app", "image": "busybox"}]}})
    with pytest.raises(ApiError) as refused:
        await engine_for("argocd").build(caller(ns), None, "why?", [attached_log(crashing_app, "intruder")])
    assert refused.value.code is ErrorCode.RESOURCE_NOT_IN_APPLICATION


async def test_an_attached_diff_is_redacted_and_named_in_a_finding(
    engine_for: Engines, crashing_app: dict[str, Any], kube_cluster: KubeCluster  # noqa: F811
) -> None:
    ns = crashing_app["ns"]
    live = kube_cluster.get("apps/v1", "Deployment", "web", ns)
    assert live is not None
    target = json.loads(json.dumps(live))
    for key in ("status", "metadata"):
        target.pop(key)
    target["metadata"] = {"name": "web", "namespace": ns}
    container = target["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "registry.example.com/shop/web:2.5.0"
    container["env"] = [*container["env"], {"name": "STRIPE_SECRET_KEY", "value": "canary-sk-live-998877"}]
    target["spec"]["replicas"] = 3
    deployment = Resource(group="apps", version="v1", kind="Deployment", namespace=ns, name="web")
    attachment = ManagedResourceAttachment(
        type="managed_resource", resource=deployment, target=json.dumps(target), live=json.dumps(live)
    )
    bundle = await engine_for("argocd").build(
        caller(ns), ResourceRef(group="apps", version="v1", kind="Deployment", name="web", namespace=ns), "q", [attachment]
    )
    assert "[out_of_sync_diff]" in bundle.text
    assert "replicas 1 -> 3 in Git" in bundle.text and "2.4.1 live -> 2.5.0 in Git" in bundle.text
    assert "STRIPE_SECRET_KEY" in bundle.text
    assert "canary-sk-live" not in bundle.text and "canary-env-hunter2" not in bundle.text
    diff = next(i for i in bundle.items if i.kind == "diff")
    assert diff.source == "argocd" and diff.redactions >= 2 and diff.detail and "+  replicas: 3" in diff.detail
