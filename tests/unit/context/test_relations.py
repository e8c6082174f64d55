"""Relation walkers (relations.py) and the rules for what they reach (relation_findings.py).

The walkers are driven by an in-memory stand-in for the Kubernetes client (only ``get``, ``list`` and
``pod_log``, answering like the apiserver: ``None`` for a 404); the same walkers run against a real
apiserver in the eval set (tests/kube/test_evals.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from assistant_backend.context.budget import Section, fit, steer
from assistant_backend.context.findings import Finding, run_rules
from assistant_backend.context.kube import Forbidden
from assistant_backend.context.objects import LogTail, Snapshot
from assistant_backend.context.relation_walker import RelationWalker
from assistant_backend.context.relations import (
    facts_of,
    make_in_scope_by_relation,
    nearest_pods,
    pod_references,
    slim_node,
)
from assistant_backend.context.scope import Permissions, ScopeRules, Tracking

NS = "shop"


class FakeClient:
    def __init__(
        self, *objects: dict[str, Any], logs: dict[tuple[str, str, bool], str] | None = None
    ) -> None:
        self.objects = list(objects)
        self.logs = logs or {}
        self.calls: list[str] = []

    async def get(
        self, group: str, kind: str, name: str, namespace: str | None, version: str | None = None
    ) -> Any:
        self.calls.append(f"get {kind} {namespace}/{name}")
        for obj in self.objects:
            m = obj["metadata"]
            if obj["kind"] == kind and m["name"] == name and m.get("namespace") == namespace:
                return dict(obj)
        return None

    async def list(self, group: str, kind: str, namespace: str | None, **_: Any) -> list[dict[str, Any]]:
        self.calls.append(f"list {kind} {namespace}")
        return [
            dict(o) for o in self.objects if o["kind"] == kind and o["metadata"].get("namespace") == namespace
        ]

    async def pod_log(
        self, namespace: str, pod: str, container: str, *, previous: bool, tail_lines: int
    ) -> str | None:
        self.calls.append(f"log {pod}/{container}{' previous' if previous else ''}")
        return self.logs.get((pod, container, previous))


def obj(kind: str, name: str, *, api: str = "v1", ns: str | None = NS, **fields: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{kind}-{name}", **fields.pop("metadata", {})}
    if ns is not None:
        meta["namespace"] = ns
    return {"apiVersion": api, "kind": kind, "metadata": meta, **fields}


def pod(name: str, labels: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    fields.setdefault("spec", {"containers": [{"name": "app", "image": "img:1"}]})
    fields.setdefault(
        "status",
        {"phase": "Running", "containerStatuses": [{"name": "app", "ready": True, "state": {"running": {}}}]},
    )
    extra = fields.pop("metadata", {})
    return obj("Pod", name, metadata={"labels": labels or {}, **extra}, **fields)


def app(*listed: dict[str, Any], **status: Any) -> dict[str, Any]:
    entries = [
        {
            "group": o["apiVersion"].split("/")[0] if "/" in o["apiVersion"] else "",
            "version": o["apiVersion"].split("/")[-1],
            "kind": o["kind"],
            "namespace": o["metadata"].get("namespace", ""),
            "name": o["metadata"]["name"],
            "status": "Synced",
            "health": {"status": "Healthy"},
        }
        for o in listed
    ]
    return {
        "kind": "Application",
        "apiVersion": "argoproj.io/v1alpha1",
        "metadata": {"name": "shop", "namespace": "argocd", "uid": "uid-app"},
        "spec": {"destination": {"server": "https://kubernetes.default.svc", "namespace": NS}},
        "status": {"resources": entries, **status},
    }


OPEN_PROJECT = {
    "spec": {"destinations": [{"server": "*", "namespace": "*"}], "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}
}


def scope_rules(app: dict[str, Any]) -> ScopeRules:
    """Like Argo CD's default project: every destination; tracking as argocd-cm leaves it (either)."""
    return ScopeRules(app, Permissions.from_project(OPEN_PROJECT, app), Tracking.for_application("argocd", "shop", "argocd", None))


async def walk(snap: Snapshot, client: FakeClient, question: str = "") -> None:
    assert snap.app is not None
    walker = RelationWalker(
        client,  # type: ignore[arg-type]
        snap,
        make_in_scope_by_relation(scope_rules(snap.app), snap),
        log_lines=100,
        question=question,
    )
    await walker.walk()


def rules(snap: Snapshot, rule: str) -> list[Finding]:
    return [f for f in run_rules(snap) if f.rule == rule]


# ---- scope ---------------------------------------------------------------------------------------


def test_relation_scope_listed_owned_tracked_or_statefulset_claim() -> None:
    sts = obj(
        "StatefulSet", "db", api="apps/v1", spec={"volumeClaimTemplates": [{"metadata": {"name": "data"}}]}
    )
    snap = Snapshot(app=app(sts), target=sts)
    in_scope = make_in_scope_by_relation(scope_rules(snap.app or {}), snap)
    tracked = obj("Job", "j", metadata={"annotations": {"argocd.argoproj.io/tracking-id": "shop:batch/Job:shop/j"}})
    assert in_scope(tracked) and in_scope(obj("Job", "k", metadata={"labels": {"app.kubernetes.io/instance": "shop"}}))
    assert in_scope(sts)
    assert in_scope(pod("db-0", metadata={"ownerReferences": [{"uid": "uid-StatefulSet-db"}]}))
    assert in_scope(obj("PersistentVolumeClaim", "data-db-0"))
    assert not in_scope(obj("PersistentVolumeClaim", "data-db-x"))
    assert not in_scope(pod("someone-else"))


# ---- relations ----------------------------------------------------------------------------------


async def test_selector_that_matches_nothing_names_the_nearest_in_scope_pods() -> None:
    svc = obj(
        "Service", "api", spec={"selector": {"app": "api-svc", "tier": "backend"}, "ports": [{"port": 80}]}
    )
    rs = obj("ReplicaSet", "api-1", api="apps/v1")
    mine = pod(
        "api-1-a",
        {"app": "api-service", "tier": "backend"},
        metadata={"ownerReferences": [{"uid": "uid-ReplicaSet-api-1"}]},
    )
    foreign = pod("other-a", {"app": "api-svc-legacy", "tier": "backend"})
    snap = Snapshot(app=app(svc), target=svc, related=[rs])
    await walk(snap, FakeClient(svc, mine, foreign))
    facts = facts_of(snap)
    assert [p["metadata"]["name"] for p in facts.nearest["uid-Service-api"]] == ["api-1-a"]
    assert any("app=api-service" in line for line in facts.lines)
    assert "other-a" not in "\n".join(facts.lines)  # out of scope: never shown
    (finding,) = rules(snap, "selector_mismatch")
    assert "app=api-svc (Pod has app=api-service)" in finding.message


async def test_pods_a_selector_matched_in_another_application_are_dropped_and_named() -> None:
    svc = obj("Service", "web", spec={"selector": {"app": "web"}})
    rs = obj("ReplicaSet", "web-1", api="apps/v1")
    mine = pod("web-1-a", {"app": "web"}, metadata={"ownerReferences": [{"uid": "uid-ReplicaSet-web-1"}]})
    foreign = pod("other", {"app": "web"})
    client = FakeClient(svc, mine, foreign, logs={("other", "app", False): "canary-foreign"})
    snap = Snapshot(
        app=app(svc), target=svc, related=[rs], pods=[mine, foreign]
    )  # as the gatherer found them
    await walk(snap, client, "show the logs")
    assert [p["metadata"]["name"] for p in snap.pods] == ["web-1-a"]
    assert "log other/app" not in client.calls
    assert any("Pod shop/other" in line and "not shown" in line for line in facts_of(snap).lines)


def test_nearest_pods_ranks_by_shared_labels() -> None:
    pods = [pod("a", {"app": "x"}), pod("b", {"app": "web", "tier": "fe"}), pod("c", {"zone": "1"})]
    assert [p["metadata"]["name"] for p in nearest_pods({"app": "web", "tier": "be"}, pods, 3)] == ["b", "a"]


async def test_ingress_to_service_ports_and_the_log_that_says_where_it_listens() -> None:
    ing = obj(
        "Ingress",
        "shop",
        api="networking.k8s.io/v1",
        spec={
            "rules": [
                {"http": {"paths": [{"backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}
            ]
        },
    )
    svc = obj(
        "Service", "web", spec={"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
    )
    ep = obj("Endpoints", "web", subsets=[{"addresses": [{"ip": "10.0.0.1"}]}])
    web = pod(
        "web-1",
        {"app": "web"},
        metadata={
            "labels": {"app": "web"},
            "annotations": {"argocd.argoproj.io/tracking-id": "shop:/Pod:shop/web-1"},
        },
        spec={"containers": [{"name": "app", "image": "img", "ports": [{"containerPort": 3000}]}]},
    )
    client = FakeClient(
        ing, svc, ep, web, logs={("web-1", "app", False): "ready - listening on http://0.0.0.0:3000\n"}
    )
    snap = Snapshot(app=app(ing, svc), target=ing)
    await walk(snap, client)
    assert "log web-1/app" in client.calls  # a running container the Ingress routes to
    assert any("targetPort 8080" in line and "app:3000" in line for line in facts_of(snap).lines)
    (finding,) = rules(snap, "port_mismatch")
    assert "targetPort 8080" in finding.message and "0.0.0.0:3000" in finding.message


def test_ingress_backend_without_ready_endpoints() -> None:
    ing = obj(
        "Ingress",
        "docs",
        api="networking.k8s.io/v1",
        spec={"rules": [{"http": {"paths": [{"backend": {"service": {"name": "d"}}}]}}]},
    )
    svc = obj("Service", "d", spec={"selector": {"app": "d"}})
    ep = obj("Endpoints", "d", subsets=[{"notReadyAddresses": [{"ip": "10.0.0.2"}]}])
    (finding,) = rules(Snapshot(target=ing, related=[svc, ep]), "ingress_no_endpoints")
    assert "0 ready address(es) (1 not ready)" in finding.message


async def test_pod_references_configmap_keys_serviceaccount_annotations_and_secret_names_only() -> None:
    cm = obj(
        "ConfigMap", "cfg", data={"LOG_LEVEL": "info", "LOG_FMT": "json", "secret.ini": "password=canary-x"}
    )
    sa = obj(
        "ServiceAccount",
        "exporter",
        metadata={"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"}},
    )
    p = pod(
        "w-1",
        spec={
            "serviceAccountName": "exporter",
            "containers": [
                {
                    "name": "app",
                    "env": [
                        {"name": "F", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "LOG_FORMAT"}}},
                        {"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                    ],
                }
            ],
            "volumes": [
                {"name": "x", "configMap": {"name": "absent"}},
                {"name": "y", "configMap": {"name": "maybe", "optional": True}},
            ],
        },
    )
    assert ("Secret", "db", "password", False) in pod_references(p)
    snap = Snapshot(app=app(cm, sa, p), target=p, pods=[p])
    client = FakeClient(cm, sa, p)
    await walk(snap, client)
    text = "\n".join(facts_of(snap).lines)
    assert "LOG_FMT, LOG_LEVEL, secret.ini" in text and "canary-x" not in text
    assert "eks.amazonaws.com/role-arn=arn:aws:iam::1:role/r" in text
    assert "Secret shop/db key password" in text
    assert not any("Secret" in c for c in client.calls)  # never read
    assert "key LOG_FORMAT" in rules(snap, "config_key_missing")[0].message
    (missing,) = rules(snap, "reference_missing")  # the optional one is not a cause
    assert "ConfigMap shop/absent, which does not exist" in missing.message


async def test_claim_to_mounting_pods_volume_zone_and_storage_class() -> None:
    pvc = obj(
        "PersistentVolumeClaim",
        "data",
        spec={"accessModes": ["ReadWriteOnce"], "volumeName": "pv-1", "storageClassName": "fast"},
    )
    pv = obj(
        "PersistentVolume",
        "pv-1",
        ns=None,
        spec={
            "claimRef": {"uid": "uid-PersistentVolumeClaim-data"},
            "capacity": {"storage": "5Gi"},
            "nodeAffinity": {
                "required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "values": ["b"]}]}]}
            },
            "csi": {"volumeHandle": "vol-secret-handle"},
        },
    )
    user = pod(
        "db-0",
        metadata={"labels": {"app.kubernetes.io/instance": "shop"}},
        spec={"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]},
    )
    snap = Snapshot(app=app(pvc), target=pvc)
    await walk(snap, FakeClient(pvc, pv, user))
    text = "\n".join(facts_of(snap).lines)
    assert "is mounted by Pod shop/db-0" in text
    assert "node affinity zone in b" in text and "vol-secret-handle" not in text
    assert "StorageClass fast, which does not exist" in text
    assert [p["metadata"]["name"] for p in snap.pods] == ["db-0"]


class ForbiddingClient(FakeClient):
    """The backend's ServiceAccount may not read cluster-scoped kinds (a common least-privilege install)."""

    def __init__(self, *objects: dict[str, Any], forbidden: set[str]) -> None:
        super().__init__(*objects)
        self.forbidden = forbidden

    async def get(
        self, group: str, kind: str, name: str, namespace: str | None, version: str | None = None
    ) -> Any:
        if kind in self.forbidden:
            raise Forbidden(f"forbidden to read {kind}", 403)
        return await super().get(group, kind, name, namespace, version)


async def test_an_unreadable_volume_or_storage_class_is_a_note_never_said_to_be_missing() -> None:
    pvc = obj(
        "PersistentVolumeClaim",
        "data",
        spec={"accessModes": ["ReadWriteOnce"], "volumeName": "pv-1", "storageClassName": "fast"},
    )
    snap = Snapshot(app=app(pvc), target=pvc)
    await walk(snap, ForbiddingClient(pvc, forbidden={"PersistentVolume", "StorageClass"}))
    text = "\n".join(facts_of(snap).lines)
    assert "does not exist" not in text
    assert any("could not read StorageClass fast: forbidden" in n for n in snap.notes)
    assert any("could not read PersistentVolume pv-1: forbidden" in n for n in snap.notes)


async def test_a_volume_bound_to_another_claim_is_not_shown() -> None:
    pvc = obj("PersistentVolumeClaim", "data", spec={"volumeName": "pv-x"})
    pv = obj(
        "PersistentVolume",
        "pv-x",
        ns=None,
        spec={"claimRef": {"uid": "someone-else"}, "capacity": {"storage": "9Gi"}},
    )
    snap = Snapshot(app=app(pvc), target=pvc)
    await walk(snap, FakeClient(pvc, pv))
    assert "9Gi" not in "\n".join(facts_of(snap).lines)
    assert any("do not belong to this Application" in line for line in facts_of(snap).lines)


def test_node_keeps_only_the_fields_that_explain_the_pod() -> None:
    node = {
        "metadata": {
            "name": "n",
            "labels": {"kubernetes.io/arch": "arm64", "team-secret-label": "x"},
            "annotations": {"a": "b"},
        },
        "spec": {
            "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
            "providerID": "aws:///i-1",
        },
        "status": {
            "nodeInfo": {"architecture": "arm64", "machineID": "m"},
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "True"}],
            "images": [{"names": ["private/img"]}],
        },
    }
    slim = slim_node(node)
    assert slim["metadata"]["labels"] == {"kubernetes.io/arch": "arm64"}
    assert [c["type"] for c in slim["status"]["conditions"]] == ["DiskPressure"]
    assert "images" not in slim["status"] and "providerID" not in slim["spec"]


async def test_sync_result_lines_and_the_failed_hook_jobs_pod_log() -> None:
    job = obj(
        "Job",
        "migrate",
        api="batch/v1",
        metadata={"annotations": {"argocd.argoproj.io/tracking-id": "shop:batch/Job:shop/migrate"}},
        spec={"selector": {"matchLabels": {"job-name": "migrate"}}},
    )
    hook_pod = pod(
        "migrate-x",
        {"job-name": "migrate"},
        metadata={"ownerReferences": [{"uid": "uid-Job-migrate"}]},
        status={
            "phase": "Failed",
            "containerStatuses": [{"name": "app", "state": {"terminated": {"exitCode": 1}}}],
        },
    )
    a = app(
        operationState={
            "phase": "Failed",
            "syncResult": {
                "resources": [
                    {
                        "group": "batch",
                        "kind": "Job",
                        "namespace": NS,
                        "name": "migrate",
                        "hookType": "PreSync",
                        "hookPhase": "Failed",
                    },
                    {
                        "kind": "ConfigMap",
                        "namespace": NS,
                        "name": "cfg",
                        "status": "Synced",
                        "message": "configmap/cfg configured",
                    },
                ]
            },
        }
    )
    snap = Snapshot(app=a)
    client = FakeClient(
        job, hook_pod, logs={("migrate-x", "app", False): 'ERROR: relation "x" already exists\n'}
    )
    await walk(snap, client)
    text = "\n".join(facts_of(snap).lines)
    assert "configmap/cfg configured" in text and "(PreSync hook) Failed" in text
    assert "ERROR: relation" in rules(snap, "hook_pod_error")[0].message


async def test_an_untracked_sync_result_object_is_named_not_shown() -> None:
    job = obj(
        "Job",
        "migrate",
        api="batch/v1",
        status={
            "failed": 1,
            "conditions": [{"type": "Failed", "status": "True", "message": "canary-untracked"}],
        },
    )
    a = app(
        operationState={
            "syncResult": {
                "resources": [
                    {
                        "group": "batch",
                        "kind": "Job",
                        "namespace": NS,
                        "name": "migrate",
                        "hookType": "PreSync",
                        "hookPhase": "Failed",
                    }
                ]
            }
        }
    )
    snap = Snapshot(app=a)
    await walk(snap, FakeClient(job))
    assert job["metadata"]["uid"] not in {o["metadata"].get("uid") for o in snap.objects()}
    assert any("Job shop/migrate" in line and "not shown" in line for line in facts_of(snap).lines)


async def test_child_applications_of_an_app_of_apps() -> None:
    child = obj(
        "Application",
        "payments",
        api="argoproj.io/v1alpha1",
        status={
            "sync": {"status": "OutOfSync"},
            "health": {"status": "Degraded"},
            "operationState": {"phase": "Failed", "message": "boom"},
        },
    )
    snap = Snapshot(app=app(child))
    await walk(snap, FakeClient(child))
    assert "last sync Failed: boom" in rules(snap, "child_app_failed")[0].message
    healthy = obj(
        "Application",
        "dns",
        api="argoproj.io/v1alpha1",
        status={"sync": {"status": "Synced"}, "health": {"status": "Healthy"}},
    )
    quiet = Snapshot(app=app(healthy))
    await walk(quiet, FakeClient(healthy))
    assert not rules(quiet, "child_app_failed")


async def test_hpa_target_and_its_requests() -> None:
    hpa = obj(
        "HorizontalPodAutoscaler",
        "web",
        api="autoscaling/v2beta2",
        spec={"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}},
        status={
            "conditions": [
                {
                    "type": "ScalingActive",
                    "status": "False",
                    "reason": "FailedGetResourceMetric",
                    "message": "missing request for cpu",
                }
            ]
        },
    )
    deploy = obj(
        "Deployment",
        "web",
        api="apps/v1",
        spec={
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "image": "web:5", "resources": {"limits": {"memory": "1Gi"}}}
                    ]
                }
            }
        },
    )
    snap = Snapshot(app=app(hpa, deploy), target=hpa)
    await walk(snap, FakeClient(hpa, deploy))
    assert any("requests none" in line for line in facts_of(snap).lines)
    assert "missing request for cpu" in rules(snap, "hpa_not_scaling")[0].message


async def test_previous_revision_pod_log_while_a_rollout_is_stuck() -> None:
    deploy = obj("Deployment", "r", api="apps/v1", spec={"replicas": 1}, status={"unavailableReplicas": 1})
    new = obj(
        "ReplicaSet",
        "r-2",
        api="apps/v1",
        metadata={
            "annotations": {"deployment.kubernetes.io/revision": "2"},
            "ownerReferences": [{"uid": "uid-Deployment-r"}],
        },
    )
    old = obj(
        "ReplicaSet",
        "r-1",
        api="apps/v1",
        metadata={
            "annotations": {"deployment.kubernetes.io/revision": "1"},
            "ownerReferences": [{"uid": "uid-Deployment-r"}],
        },
    )
    old_pod = pod("r-1-a", metadata={"ownerReferences": [{"uid": "uid-ReplicaSet-r-1"}]})
    client = FakeClient(logs={("r-1-a", "app", False): "Started App in 94.2 seconds\n"})
    snap = Snapshot(app=app(deploy), target=deploy, related=[new, old], pods=[old_pod])
    await walk(snap, client)
    assert "log r-1-a/app" in client.calls


async def test_question_about_logs_reads_a_running_containers_log() -> None:
    p = pod("ok-1")
    client = FakeClient(p, logs={("ok-1", "app", False): "fine\n"})
    quiet = Snapshot(app=app(p), target=p, pods=[p])
    await walk(quiet, client, "why is it not ready?")
    assert "log ok-1/app" not in client.calls
    asked = Snapshot(app=app(p), target=p, pods=[p])
    await walk(asked, client, "what do its logs say?")
    assert "log ok-1/app" in client.calls


# ---- rules --------------------------------------------------------------------------------------


def event(o: dict[str, Any], reason: str, message: str) -> dict[str, Any]:
    return {
        "metadata": {"uid": f"ev-{reason}-{o['metadata']['name']}"},
        "reason": reason,
        "message": message,
        "type": "Warning",
        "involvedObject": {"kind": o["kind"], "name": o["metadata"]["name"], "uid": o["metadata"]["uid"]},
    }


def test_init_container_not_completing_with_its_last_log_line() -> None:
    p = pod(
        "s",
        status={"phase": "Pending", "initContainerStatuses": [{"name": "wait", "state": {"running": {}}}]},
    )
    snap = Snapshot(target=p, logs=[LogTail(NS, "s", "wait", False, "nslookup: can't resolve 'db'\n")])
    assert "its log ends: nslookup: can't resolve 'db'" in rules(snap, "init_not_completing")[0].message
    done = pod(
        "d", status={"initContainerStatuses": [{"name": "wait", "state": {"terminated": {"exitCode": 0}}}]}
    )
    assert not rules(Snapshot(target=done), "init_not_completing")


def test_sidecar_crash_while_main_runs() -> None:
    p = pod(
        "x",
        status={
            "phase": "Running",
            "containerStatuses": [
                {"name": "app", "ready": True, "state": {"running": {}}},
                {"name": "proxy", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ],
        },
    )
    snap = Snapshot(target=p, logs=[LogTail(NS, "x", "proxy", True, "Error 403: notAuthorized\n")])
    (finding,) = rules(snap, "sidecar_crash")
    assert "proxy crash-loops" in finding.message and "Error 403" in finding.message


def test_liveness_killing_a_slow_start() -> None:
    p = pod(
        "m",
        spec={
            "containers": [
                {
                    "name": "app",
                    "livenessProbe": {"initialDelaySeconds": 15, "periodSeconds": 10, "failureThreshold": 3},
                }
            ]
        },
        status={
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "app",
                    "restartCount": 9,
                    "lastState": {
                        "terminated": {
                            "startedAt": "2026-01-01T10:00:00Z",
                            "finishedAt": "2026-01-01T10:00:45Z",
                        }
                    },
                }
            ],
        },
    )
    snap = Snapshot(
        target=p, events=[event(p, "Killing", "Container app failed liveness probe, will be restarted")]
    )
    (finding,) = rules(snap, "liveness_slow_start")
    assert "initialDelaySeconds: 15" in finding.message and "lasted 45s" in finding.message
    p["spec"]["containers"][0]["startupProbe"] = {"failureThreshold": 30}
    assert not rules(snap, "liveness_slow_start")


def test_arch_mismatch_names_the_nodes_architecture() -> None:
    p = pod("a", spec={"nodeName": "g1", "containers": [{"name": "app", "image": "api:7"}]})
    snap = Snapshot(
        target=p, logs=[LogTail(NS, "a", "app", True, "exec /usr/local/bin/api: exec format error\n")]
    )
    facts_of(snap).nodes["g1"] = slim_node(
        {"metadata": {"name": "g1"}, "status": {"nodeInfo": {"architecture": "arm64"}}}
    )
    assert "architecture arm64" in rules(snap, "arch_mismatch")[0].message


def test_volume_node_affinity_and_multi_attach_and_ephemeral_storage() -> None:
    claim = obj("PersistentVolumeClaim", "data", spec={"accessModes": ["ReadWriteOnce"]})
    p = pod(
        "p",
        spec={
            "containers": [{"name": "app"}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
        },
    )
    deploy = obj("Deployment", "w", api="apps/v1", spec={"strategy": {"type": "RollingUpdate"}})
    snap = Snapshot(
        target=deploy,
        related=[claim],
        pods=[p],
        events=[
            event(
                p, "FailedScheduling", "0/3 nodes are available: 1 node(s) had volume node affinity conflict"
            ),
            event(
                p,
                "FailedAttachVolume",
                'Multi-Attach error for volume "pvc-1" Volume is already used by pod(s) p-old',
            ),
        ],
    )
    facts_of(snap).volumes["uid-PersistentVolumeClaim-data"] = {
        "metadata": {"name": "pv-1"},
        "spec": {
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "values": ["us-east-2b"]}]}]
                }
            }
        },
    }
    assert "zone in us-east-2b" in rules(snap, "volume_node_affinity")[0].message
    multi = rules(snap, "multi_attach_rwo")[0].message
    assert "ReadWriteOnce" in multi and "RollingUpdate" in multi
    evicted = pod(
        "e",
        spec={"containers": [{"name": "app"}], "volumes": [{"name": "scratch", "emptyDir": {}}]},
        status={
            "phase": "Failed",
            "reason": "Evicted",
            "message": "The node was low on resource: ephemeral-storage.",
        },
    )
    assert "emptyDir volumes: scratch" in rules(Snapshot(target=evicted), "ephemeral_storage")[0].message


def test_rbac_forbidden_lines_but_not_ordinary_403_words() -> None:
    line = 'Failed to list *v1.Pod: pods is forbidden: User "system:serviceaccount:shop:default" cannot list pods at the cluster scope'
    snap = Snapshot(logs=[LogTail(NS, "w", "app", False, f"start\n{line}\n")])
    (finding,) = rules(snap, "rbac_forbidden")
    assert "system:serviceaccount:shop:default" in finding.message and "list pods" in finding.message
    benign = Snapshot(
        logs=[LogTail(NS, "w", "app", False, "INFO partners get 403 Forbidden, access denied is logged\n")]
    )
    assert not rules(benign, "rbac_forbidden")


def test_admission_denial_in_sync_results() -> None:
    a = app(
        operationState={
            "phase": "Failed",
            "syncResult": {
                "resources": [
                    {
                        "group": "apps",
                        "kind": "Deployment",
                        "namespace": NS,
                        "name": "n",
                        "status": "SyncFailed",
                        "message": 'admission webhook "validate.kyverno.svc-fail" denied the request: require-limits',
                    }
                ]
            },
        }
    )
    assert "validate.kyverno.svc-fail" in rules(Snapshot(app=a), "admission_denied")[0].message


def test_cronjob_blocked_by_a_long_active_job() -> None:
    started = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cron = obj(
        "CronJob",
        "backup",
        api="batch/v1beta1",
        spec={"concurrencyPolicy": "Forbid"},
        status={"active": [{"name": "backup-1"}]},
    )
    job = obj("Job", "backup-1", api="batch/v1", status={"active": 1, "startTime": started})
    assert "no later run starts" in rules(Snapshot(target=cron, related=[job]), "cronjob_blocked")[0].message
    job["status"]["startTime"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert not rules(Snapshot(target=cron, related=[job]), "cronjob_blocked")


def test_every_new_rule_cites_a_source() -> None:
    from assistant_backend.context.relation_findings import Rules

    for rule in Rules(Finding).all():
        assert "https://" in (rule.__doc__ or ""), rule.__name__


# ---- budget ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("what do the logs say?", "logs"),
        ("why is it OutOfSync?", "application"),
        ("is this a scheduling issue", "events"),
        ("Ingress returns 502", "relations"),
        ("PVC will not mount", "relations"),
        ("permission denied?", "logs"),
    ],
)
def test_question_words_steer_the_budget(question: str, kind: str) -> None:
    assert kind in steer(question)


def test_a_log_question_keeps_more_log_and_still_keeps_the_findings() -> None:
    findings = Section("findings", "x", "Findings", "- [crash_loop] the decisive line")
    log = Section(
        "logs",
        "x",
        "Log",
        "\n".join(f"line {i} error something happened here" for i in range(400)),
        keep="errors",
    )
    events = Section("events", "x", "Events", "\n".join(f"event {i}" for i in range(400)), keep="tail")
    plain = fit([findings, events, log], 1500)
    asked = fit([findings, events, log], 1500, question="show me the logs")
    size = {s.kind: s.tokens for s in plain.sections}
    asked_size = {s.kind: s.tokens for s in asked.sections}
    assert asked_size["logs"] > size["logs"]
    assert asked.sections[0].body == findings.body  # findings are never cut for it
