"""Each finding rule fires on what Kubernetes/Argo CD said, cites its source, and stays quiet otherwise."""

from __future__ import annotations

from typing import Any

from assistant_backend.context.findings import RULES, Finding, run_rules
from assistant_backend.context.objects import LogTail, Snapshot

NS = "shop"


def pod(
    name: str = "web-1",
    *,
    statuses: list[dict[str, Any]] | None = None,
    phase: str = "Running",
    **status: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "labels": {"app": "web"}},
        "spec": {
            "containers": [{"name": "app", "image": "img:1", "resources": {"limits": {"memory": "128Mi"}}}]
        },
        "status": {"phase": phase, "containerStatuses": statuses or [], **status},
    }


def event(obj: dict[str, Any], reason: str, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"uid": f"ev-{reason}-{obj['metadata']['name']}"},
        "reason": reason,
        "message": message,
        "type": "Warning",
        "involvedObject": {
            "kind": obj["kind"],
            "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"],
        },
        **extra,
    }


def fired(snap: Snapshot, rule: str) -> list[Finding]:
    return [f for f in run_rules(snap) if f.rule == rule]


def test_nothing_fires_on_a_healthy_pod() -> None:
    snap = Snapshot(target=pod(statuses=[{"name": "app", "ready": True, "state": {"running": {}}}]))
    assert run_rules(snap) == []


def test_image_pull_names_the_image_and_the_pull_event() -> None:
    p = pod(
        statuses=[
            {"name": "app", "image": "reg/x:typo", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
        ]
    )
    snap = Snapshot(target=p, events=[event(p, "Failed", 'Failed to pull image "reg/x:typo": not found')])
    (finding,) = fired(snap, "image_pull")
    assert "reg/x:typo" in finding.message and "not found" in finding.message
    assert any("event Failed" in s for s in finding.sources)


def test_crash_loop_has_exit_code_and_error_lines_from_the_previous_log() -> None:
    p = pod(
        statuses=[
            {
                "name": "app",
                "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}},
            }
        ]
    )
    logs = [LogTail(NS, "web-1", "app", True, "boot\nERROR cannot open /data\nbye\n")]
    (finding,) = fired(Snapshot(target=p, logs=logs), "crash_loop")
    assert "last exit code 3" in finding.message and "ERROR cannot open /data" in finding.message
    assert "previous instance" in finding.sources[-1]


def test_oom_killed_reports_the_memory_limit() -> None:
    p = pod(
        statuses=[
            {
                "name": "app",
                "state": {"running": {}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
            }
        ]
    )
    (finding,) = fired(Snapshot(target=p), "oom_killed")
    assert "128Mi" in finding.message and "137" in finding.message


def test_failed_scheduling_is_classified() -> None:
    cases = {
        "0/3 nodes are available: 3 Insufficient cpu.": "insufficient resources",
        "0/2 nodes are available: 2 node(s) had taint {a: b}, that the pod didn't tolerate.": "taints",
        "0/3 nodes are available: 3 node(s) didn't match node selector.": "node selector",
    }
    for message, words in cases.items():
        p = pod(phase="Pending")
        (finding,) = fired(
            Snapshot(target=p, events=[event(p, "FailedScheduling", message)]), "failed_scheduling"
        )
        assert words in finding.message and message in finding.message
    unscheduled = pod(
        phase="Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "message": "0/1 nodes are available: 1 Insufficient memory.",
            }
        ],
    )
    assert fired(Snapshot(target=unscheduled), "failed_scheduling")


def test_probe_failures_by_probe_kind() -> None:
    p = pod()
    events = [
        event(p, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", count=7)
    ]
    (finding,) = fired(Snapshot(target=p, events=events), "probe_failed")
    assert "readiness probe failing (7x)" in finding.message
    assert fired(Snapshot(target=p, events=[event(p, "Unhealthy", "something else")]), "probe_failed") == []


def test_missing_configmap_secret_and_key() -> None:
    p = pod(
        statuses=[
            {
                "name": "app",
                "state": {
                    "waiting": {
                        "reason": "CreateContainerConfigError",
                        "message": 'configmap "cfg" not found',
                    }
                },
            }
        ]
    )
    events = [
        event(p, "FailedMount", 'MountVolume.SetUp failed for volume "tls" : secret "tls" not found'),
        event(p, "Failed", "Error: couldn't find key url in ConfigMap shop/cfg2"),
    ]
    findings = fired(Snapshot(target=p, events=events), "missing_config")
    text = " ".join(f.message for f in findings)
    assert "ConfigMap cfg" in text and "Secret tls" in text and "key url" in text
    assert fired(Snapshot(target=p, events=events), "mount_failed") == []  # not reported twice


def test_pvc_pending_and_mount_failure() -> None:
    pvc = {
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": NS, "uid": "pvc"},
        "spec": {"storageClassName": "fast"},
        "status": {"phase": "Pending"},
    }
    snap = Snapshot(related=[pvc], events=[event(pvc, "ProvisioningFailed", 'storageclass "fast" not found')])
    (finding,) = fired(snap, "pvc_pending")
    assert "fast" in finding.message and "not found" in finding.message
    p = pod()
    snap = Snapshot(target=p, events=[event(p, "FailedMount", "mount failed: exit status 32")])
    assert fired(snap, "mount_failed")


def test_service_without_endpoints_says_why() -> None:
    svc = {
        "kind": "Service",
        "metadata": {"name": "web", "namespace": NS, "uid": "svc"},
        "spec": {"selector": {"app": "web"}},
    }
    empty = {"kind": "Endpoints", "metadata": {"name": "web", "namespace": NS, "uid": "ep"}, "subsets": []}
    (none,) = fired(Snapshot(target=svc, related=[empty]), "service_no_endpoints")
    assert "matches no Pod" in none.message
    (unready,) = fired(Snapshot(target=svc, related=[empty], pods=[pod()]), "service_no_endpoints")
    assert "1 Pod(s) match" in unready.message
    ready = {**empty, "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]}
    assert fired(Snapshot(target=svc, related=[ready]), "service_no_endpoints") == []


def test_rollout_stuck_and_job_failed() -> None:
    deploy = {
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS, "uid": "d"},
        "spec": {"replicas": 3},
        "status": {
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": "timed out",
                }
            ]
        },
    }
    assert "ProgressDeadlineExceeded" in fired(Snapshot(target=deploy), "rollout_stuck")[0].message
    job = {
        "kind": "Job",
        "metadata": {"name": "m", "namespace": NS, "uid": "j"},
        "status": {
            "failed": 3,
            "conditions": [
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "limit"}
            ],
        },
    }
    assert "BackoffLimitExceeded" in fired(Snapshot(target=job), "job_failed")[0].message


def app(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "a", "namespace": "argocd"}, "spec": {"project": "p"}, "status": status}


def test_sync_failed_with_hook_and_out_of_sync() -> None:
    snap = Snapshot(
        app=app(
            operationState={
                "phase": "Failed",
                "message": "one or more tasks failed",
                "syncResult": {
                    "resources": [
                        {
                            "group": "batch",
                            "kind": "Job",
                            "namespace": NS,
                            "name": "migrate",
                            "hookType": "PreSync",
                            "hookPhase": "Failed",
                            "message": "backoff limit",
                        }
                    ]
                },
            },
            resources=[
                {
                    "kind": "ConfigMap",
                    "namespace": NS,
                    "name": "c",
                    "status": "OutOfSync",
                    "requiresPruning": True,
                }
            ],
        )
    )
    rules = {f.rule: f for f in run_rules(snap)}
    assert "one or more tasks failed" in rules["sync_failed"].message
    assert "PreSync hook batch/Job shop/migrate" in rules["hook_failed"].message
    assert "1 require pruning" in rules["out_of_sync"].message
    assert run_rules(Snapshot(app=app(operationState={"phase": "Succeeded"}))) == []


def test_unknown_kind_namespace_missing_quota_and_conditions() -> None:
    snap = Snapshot(
        app=app(
            conditions=[
                {
                    "type": "SyncError",
                    "message": 'no matches for kind "ServiceMonitor" in version "monitoring.coreos.com/v1"',
                },
                {"type": "ComparisonError", "message": 'namespaces "prod" not found'},
            ]
        )
    )
    rules = {f.rule for f in run_rules(snap)}
    assert {"unknown_kind", "namespace_missing", "app_condition"} <= rules
    rs = {
        "kind": "ReplicaSet",
        "metadata": {"name": "r", "namespace": NS, "uid": "r"},
        "status": {
            "conditions": [
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "message": "pods is forbidden: exceeded quota: q, requested: cpu=1",
                }
            ]
        },
    }
    assert fired(Snapshot(related=[rs]), "quota_exceeded")


def test_evicted_and_failed_container() -> None:
    evicted = pod(phase="Failed", reason="Evicted", message="The node was low on resource: memory.")
    assert "low on resource" in fired(Snapshot(target=evicted), "evicted")[0].message
    done = pod(
        phase="Failed",
        statuses=[{"name": "app", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}],
    )
    assert "exited with code 2" in fired(Snapshot(target=done), "container_failed")[0].message


def test_every_rule_renders_with_its_sources() -> None:
    assert len(RULES) >= 15
    finding = Finding("x", "msg", ("a", "b"))
    assert finding.render() == "- [x] msg (source: a; b)"


def test_a_rule_tripping_over_odd_data_does_not_lose_the_others() -> None:
    odd = pod(
        statuses=[
            {
                "name": "app",
                "state": {"terminated": {"exitCode": "not-a-number", "reason": "Error"}},
                "lastState": "garbage",
            }
        ]
    )
    odd["status"]["containerStatuses"].append(
        {"name": "app2", "state": {"waiting": {"reason": "ImagePullBackOff"}}, "image": "x:1"}
    )
    rules = {f.rule for f in run_rules(Snapshot(target=odd))}
    assert "image_pull" in rules
