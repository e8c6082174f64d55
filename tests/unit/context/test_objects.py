"""The shared object helpers (context/objects.py): one error-line pattern, one "event is about this
object" check, one selector join."""

from __future__ import annotations

from typing import Any

import pytest

from assistant_backend.context.budget import truncate_lines
from assistant_backend.context.findings import run_rules
from assistant_backend.context.objects import (
    ERROR_LINE,
    Snapshot,
    about,
    api_group,
    error_lines,
    labels_selector,
    selector_string,
)

# ---- error lines: the budget's cut and the findings' quote use the same pattern -----------------

# Lines as real programs print them. The first group is what the budget's old pattern knew and the
# findings' did not ("warning"), the second what only the findings' knew ("can't", "no such").
ERRORS = [
    # docker / containerd on an arm64 node running an amd64-only image
    "WARNING: The requested image's platform (linux/amd64) does not match the detected host platform "
    "(linux/arm64/v8) and no specific platform was requested",
    'time="2024-03-01T10:00:00Z" level=warning msg="failed to load config, using defaults"',
    # busybox nslookup in an init container waiting for a Service
    "nslookup: can't resolve 'db'",
    # the runtime when the entrypoint is missing from the image
    "exec /usr/local/bin/docker-entrypoint.sh: no such file or directory",
    # both patterns always knew these
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "psycopg2.OperationalError: could not connect to server: Connection refused",
    "Traceback (most recent call last):",
]
NOT_ERRORS = [
    "Started ReportsApplication in 94.2 seconds (JVM running for 97.8)",
    '10.244.0.1 - - [01/Mar/2024:10:00:00 +0000] "GET /healthz HTTP/1.1" 200 2',
    "Listening on :8080",
    "processed 120 items, errors=0",  # "errors" is not the word "error"
]


@pytest.mark.parametrize("line", ERRORS)
def test_error_looking_lines(line: str) -> None:
    assert ERROR_LINE.search(line)


@pytest.mark.parametrize("line", NOT_ERRORS)
def test_ordinary_lines(line: str) -> None:
    assert not ERROR_LINE.search(line)


def test_the_budget_keeps_what_the_findings_quote() -> None:
    log = [f"GET /item/{i} 200" for i in range(200)]
    log[20] = "exec /usr/local/bin/docker-entrypoint.sh: no such file or directory"
    log[40] = "WARNING: The requested image's platform (linux/amd64) does not match the detected host platform"
    kept = truncate_lines(log, 150, "errors")  # room for a few lines: the last ones, then errors
    assert log[20] in kept and log[40] in kept
    assert len(kept) < 30 and "GET /item/100 200" not in kept
    quoted = error_lines("\n".join(log))
    assert quoted == [log[20], log[40]]


def test_without_error_lines_the_last_lines_are_quoted() -> None:
    assert error_lines("one\ntwo\nthree\nfour\n") == ["two", "three", "four"]


# ---- which Events are about which object -------------------------------------------------------


def obj(kind: str, name: str, namespace: str | None = None, api: str = "v1", uid: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": uid or f"uid-{kind}-{namespace}-{name}"}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api, "kind": kind, "metadata": meta}


def event(kind: str, name: str, *, involved_ns: str = "", event_ns: str = "default", **involved: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{name}.17b", "namespace": event_ns, "uid": f"ev-{kind}-{name}-{event_ns}"},
        "involvedObject": {"kind": kind, "name": name, "namespace": involved_ns, **involved},
        "reason": "Test",
    }


def test_a_namespaced_object_only_gets_events_from_its_namespace() -> None:
    shop, other = obj("Pod", "web-1", "shop"), obj("Pod", "web-1", "other")
    in_shop = event("Pod", "web-1", involved_ns="shop", event_ns="shop")
    assert about(in_shop, shop)
    assert not about(in_shop, other)  # same kind and name, another namespace: not ours


def test_an_event_naming_its_object_only_through_its_own_namespace() -> None:
    # Clients may leave involvedObject.namespace empty; the Event then lives where its object does.
    pod = obj("Pod", "web-1", "shop")
    assert about(event("Pod", "web-1", event_ns="shop"), pod)
    assert not about(event("Pod", "web-1", event_ns="other"), pod)


@pytest.mark.parametrize(
    ("kind", "name"), [("Node", "worker-1"), ("Namespace", "shop"), ("PersistentVolume", "pv-data")]
)
def test_cluster_scoped_objects_get_their_events_from_default(kind: str, name: str) -> None:
    # Events about cluster-scoped objects carry no involvedObject.namespace and live in "default".
    target = obj(kind, name)
    assert about(event(kind, name, event_ns="default"), target)
    assert about(event(kind, name, event_ns=""), target)


def test_the_kubelets_node_events_name_the_node_as_uid() -> None:
    node = obj("Node", "worker-1", uid="6a1f0c2e-real-uid")
    kubelet = event("Node", "worker-1", uid="worker-1")  # the kubelet's NodeNotReady, Rebooted...
    assert about(kubelet, node)


def test_uid_decides_and_the_group_must_agree() -> None:
    deploy = obj("Deployment", "web", "shop", api="apps/v1")
    assert about(event("Whatever", "renamed", uid=deploy["metadata"]["uid"]), deploy)
    custom = event("Deployment", "web", involved_ns="shop", event_ns="shop", apiVersion="example.com/v1")
    assert not about(custom, deploy)  # a custom kind of the same name in another group
    assert about({**custom, "involvedObject": {**custom["involvedObject"], "apiVersion": "apps/v1"}}, deploy)


def test_findings_cite_only_the_events_of_their_pod() -> None:
    def pending(namespace: str) -> dict[str, Any]:
        pod = obj("Pod", "web-1", namespace)
        pod["status"] = {"phase": "Pending"}
        return pod

    mine, theirs = pending("shop"), pending("other")
    unschedulable = {
        **event("Pod", "web-1", involved_ns="other", event_ns="other"),
        "reason": "FailedScheduling",
        "message": "0/3 nodes are available: 3 Insufficient memory.",
    }
    snap = Snapshot(target=mine, pods=[mine, theirs], events=[unschedulable])
    assert snap.events_about(mine) == [] and snap.events_about(theirs) == [unschedulable]
    cited = [f for f in run_rules(snap) if f.rule == "failed_scheduling"]
    assert [f.message.split(" cannot")[0] for f in cited] == ["Pod other/web-1"]


# ---- groups and selectors ----------------------------------------------------------------------


def test_api_group() -> None:
    assert (api_group("v1"), api_group("apps/v1"), api_group("argoproj.io/v1alpha1")) == (
        "",
        "apps",
        "argoproj.io",
    )


def test_selectors() -> None:
    assert labels_selector({"app": "web", "tier": "front"}) == "app=web,tier=front"
    assert (
        selector_string(
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["a", "b"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                ],
            }
        )
        == "app=web,tier in (a,b),!canary"
    )
    assert selector_string({}) is None and selector_string({"matchLabels": {}}) is None
