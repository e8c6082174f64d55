"""Gather time for a large Application (default 300 resources), on a real apiserver.

``create_large_application`` builds the objects; ``time_build`` times one ``ContextSource.build``
(the function a benchmark harness calls). ``python -m evals.scale`` starts a throwaway apiserver and
prints cold and warm timings for an Application-level question and a single-Pod question.
"""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from assistant_backend.context.base import ResourceRef
from assistant_backend.context.engine import KubeContext
from assistant_backend.identity import Caller
from evals.runner import NODE, engine_settings, prepare_cluster
from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet


@dataclass(frozen=True)
class LargeApp:
    caller: Caller
    namespace: str
    resources: int
    unhealthy_pod: ResourceRef


def _deployment(name: str) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": f"registry.example.com/{name}:1"}]},
            },
        },
    }


def create_large_application(
    cluster: KubeCluster, kubelet: FakeKubelet, *, resources: int = 300, unhealthy: int = 10
) -> LargeApp:
    """An Application listing ``resources`` objects (Deployments, Services, ConfigMaps in equal parts),
    ``unhealthy`` of the Deployments crash-looping with a ReplicaSet, a Pod, events and logs."""
    prepare_cluster(cluster, kubelet)
    ns = f"scale-{uuid.uuid4().hex[:6]}"
    cluster.ensure_namespace(ns)
    listed: list[dict[str, object]] = []
    per_kind = resources // 3
    first_pod = ""
    for i in range(per_kind):
        name = f"svc-{i:03d}"
        deploy = _deployment(name)
        deploy["metadata"] = {"name": name, "namespace": ns}
        created = cluster.create(deploy)
        cluster.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
            }
        )
        cluster.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns},
                "data": {"LOG_LEVEL": "info", "index": str(i)},
            }
        )
        bad = i < unhealthy
        listed += [
            {
                "group": "apps",
                "version": "v1",
                "kind": "Deployment",
                "namespace": ns,
                "name": name,
                "status": "Synced",
                "health": {"status": "Degraded" if bad else "Healthy"},
            },
            {
                "version": "v1",
                "kind": "Service",
                "namespace": ns,
                "name": name,
                "status": "Synced",
                "health": {"status": "Healthy"},
            },
            {"version": "v1", "kind": "ConfigMap", "namespace": ns, "name": name, "status": "Synced"},
        ]
        if not bad:
            continue
        rs = cluster.create(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{name}-5d5d",
                    "namespace": ns,
                    "labels": {"app": name},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": name,
                            "uid": created["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "app", "image": "i"}]},
                    },
                },
            }
        )
        pod_name = f"{name}-5d5d-abcde"
        first_pod = first_pod or pod_name
        cluster.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name,
                    "namespace": ns,
                    "labels": {"app": name},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "ReplicaSet",
                            "name": f"{name}-5d5d",
                            "uid": rs["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "i"}]},
                "status": {
                    "phase": "Running",
                    "containerStatuses": [
                        {
                            "name": "app",
                            "image": "i",
                            "imageID": "",
                            "ready": False,
                            "restartCount": 3,
                            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                            "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
                        }
                    ],
                },
            },
            status=True,
        )
        kubelet.set_log(
            ns, pod_name, "app", "".join(f"line {j}\n" for j in range(400)) + "FATAL boom\n", previous=True
        )
        for j in range(5):
            cluster.create(
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": f"{pod_name}.{j}", "namespace": ns},
                    "involvedObject": {"kind": "Pod", "name": pod_name, "namespace": ns},
                    "reason": "BackOff",
                    "message": f"Back-off restarting failed container ({j})",
                    "type": "Warning",
                }
            )
    cluster.create(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "big", "namespace": ns},
            "spec": {
                "project": "default",
                "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
            },
            "status": {"sync": {"status": "Synced"}, "health": {"status": "Degraded"}, "resources": listed},
        },
        status=True,
    )
    return LargeApp(
        Caller("bench", ns, "big", "default"), ns, len(listed), ResourceRef("v1", "Pod", first_pod, "", ns)
    )


async def time_build(
    engine: KubeContext, caller: Caller, resource: ResourceRef | None = None
) -> tuple[float, float]:
    """One build: (wall ms, gather ms as the engine measured it)."""
    started = time.perf_counter()
    bundle = await engine.build(caller, resource, "why is this Degraded?")
    return (time.perf_counter() - started) * 1000, bundle.gather_ms or 0.0


async def measure(
    cluster: KubeCluster,
    kubelet: FakeKubelet,
    *,
    resources: int = 300,
    repeats: int = 10,
    kubeconfig: Path | None = None,
) -> dict[str, float]:
    app = create_large_application(cluster, kubelet, resources=resources)
    engine = KubeContext.from_settings(engine_settings(kubeconfig or cluster.admin_kubeconfig))
    try:
        cold_app, _ = await time_build(engine, app.caller)
        warm_app = [await time_build(engine, app.caller) for _ in range(repeats)]
        warm_pod = [await time_build(engine, app.caller, app.unhealthy_pod) for _ in range(repeats)]
    finally:
        await engine.aclose()
    return {
        "resources": float(app.resources),
        "app_cold_ms": cold_app,
        "app_warm_median_ms": statistics.median(w for w, _ in warm_app),
        "app_gather_median_ms": statistics.median(g for _, g in warm_app),
        "pod_warm_median_ms": statistics.median(w for w, _ in warm_pod),
        "pod_gather_median_ms": statistics.median(g for _, g in warm_pod),
    }


def main() -> int:
    import asyncio
    import tempfile

    from tests.support.kube import running_cluster

    with (
        tempfile.TemporaryDirectory(prefix="scale-") as tmp,
        running_cluster(Path(tmp), controllers=False) as cluster,
    ):
        kubelet = FakeKubelet().start()
        try:
            numbers = asyncio.run(measure(cluster, kubelet))
        finally:
            kubelet.stop()
    for key, value in numbers.items():
        print(f"{key:24} {value:10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
