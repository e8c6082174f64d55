"""Scope: listed entries the AppProject permits, owner chains with matching uids, Argo CD tracking,
and refusals (another team's objects reached through a target entry, a selector or a stale owner)."""

from __future__ import annotations

from typing import Any

import pytest

from assistant_backend.context.base import ResourceRef
from assistant_backend.context.kube import ApiResource
from assistant_backend.context.scope import Permissions, ScopeRules, Tracking, check_scope
from assistant_backend.errors import ApiError, ErrorCode

APP = {
    "metadata": {"name": "shop", "namespace": "argocd"},
    "spec": {"project": "team-a", "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"}},
    "status": {
        "resources": [
            {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop", "name": "web"},
            {"version": "v1", "kind": "Namespace", "name": "shop"},
            # A manifest in team A's Git naming team B's namespace: Argo CD keeps the target entry.
            {
                "group": "apps",
                "version": "v1",
                "kind": "Deployment",
                "namespace": "team-b",
                "name": "payments",
                "status": "OutOfSync",
                "health": {"status": "Missing"},
            },
            {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "team-b", "name": "ledger"},
            {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop", "name": "gone",
             "health": {"status": "Missing"}},
        ]
    },
}
PROJECT = {
    "metadata": {"name": "team-a"},
    "spec": {
        "destinations": [
            {"server": "https://kubernetes.default.svc", "namespace": "shop"},
            {"server": "https://kubernetes.default.svc", "namespace": "shop-*"},
            {"server": "https://other.example", "namespace": "*"},  # another cluster: says nothing here
        ],
        "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
    },
}


def rules(project: dict[str, Any] | None = PROJECT, method: str | None = "annotation") -> ScopeRules:
    cm = {"data": {"application.resourceTrackingMethod": method}} if method else None
    return ScopeRules(APP, Permissions.from_project(project, APP), Tracking.for_application("argocd", "shop", "argocd", cm))


def obj(
    kind: str, name: str, uid: str, owner: tuple[str, str, str] | None = None, api: str = "apps/v1",
    namespace: str = "shop", **meta_extra: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid, **meta_extra}
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": api, "kind": owner[0], "name": owner[1], "uid": owner[2], "controller": True}
        ]
    return {"apiVersion": api if kind != "Pod" else "v1", "kind": kind, "metadata": meta}


class Cluster:
    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects = {(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")): o for o in objects}
        self.reads: list[str] = []

    async def fetch(self, group: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        self.reads.append(f"{kind}/{namespace}/{name}")
        found = self.objects.get((kind, name, namespace))
        return dict(found) if found else None


DEPLOY = obj("Deployment", "web", "d1")
RS = obj("ReplicaSet", "web-7d", "r1", ("Deployment", "web", "d1"))
POD = obj("Pod", "web-7d-x", "p1", ("ReplicaSet", "web-7d", "r1"))


async def test_listed_resource_in_a_permitted_namespace_passes() -> None:
    cluster = Cluster(DEPLOY)
    scoped = await check_scope(rules(), ResourceRef("v1", "Deployment", "web", "apps", "shop"), cluster.fetch, "a")
    assert scoped.obj == DEPLOY and scoped.reason is None
    missing = await check_scope(rules(), ResourceRef("v1", "Deployment", "web", "apps", "shop"), Cluster().fetch, "a")
    assert missing.obj is None and missing.reason is None  # listed, but the read found nothing


async def test_target_entry_in_another_teams_namespace_is_never_read() -> None:
    team_b = obj("Deployment", "payments", "b1", namespace="team-b")
    cluster = Cluster(team_b, obj("Deployment", "ledger", "b2", namespace="team-b"))
    for name in ("payments", "ledger"):
        scoped = await check_scope(rules(), ResourceRef("v1", "Deployment", name, "apps", "team-b"), cluster.fetch, "a")
        assert scoped.obj is None and scoped.reason
    assert "Missing" in str((await check_scope(
        rules(), ResourceRef("v1", "Deployment", "payments", "apps", "team-b"), cluster.fetch, "a")).reason)
    assert "team-b is not permitted" in str((await check_scope(
        rules(), ResourceRef("v1", "Deployment", "ledger", "apps", "team-b"), cluster.fetch, "a")).reason)
    assert cluster.reads == []  # nothing of team B was read


async def test_missing_entry_in_our_namespace_is_not_read_either() -> None:
    # Missing means no live object belongs to us: one with that name is someone else's.
    cluster = Cluster(obj("Deployment", "gone", "x1"))
    scoped = await check_scope(rules(), ResourceRef("v1", "Deployment", "gone", "apps", "shop"), cluster.fetch, "a")
    assert scoped.obj is None and cluster.reads == []


@pytest.mark.parametrize(
    ("namespace", "permitted"), [("shop", True), ("shop-eu", True), ("team-b", False), ("kube-system", False)]
)
def test_destination_globs(namespace: str, permitted: bool) -> None:
    assert Permissions.from_project(PROJECT, APP).namespace_permitted(namespace) is permitted


@pytest.mark.parametrize(
    ("namespace", "permitted"), [("shop", True), ("team-b", True), ("kube-system", False), ("kube-public", False)]
)
def test_deny_patterns_follow_argocd(namespace: str, permitted: bool) -> None:
    # Argo CD's isDestinationMatched: "!kube-*" matches every namespace it does not name, so this
    # project permits all but kube-*; a deny that does not match vetoes whatever else matched.
    project = {"spec": {"destinations": [
        {"server": "*", "namespace": "!kube-*"},
        {"server": "https://kubernetes.default.svc", "namespace": "kube-system"},
    ]}}
    assert Permissions.from_project(project, APP).namespace_permitted(namespace) is permitted


def test_a_destination_for_another_cluster_permits_nothing_here() -> None:
    project = {"spec": {"destinations": [{"server": "https://other.example", "namespace": "*"}]}}
    assert not Permissions.from_project(project, APP).namespace_permitted("shop")
    by_name = {**APP, "spec": {**APP["spec"], "destination": {"name": "in-cluster", "namespace": "shop"}}}
    project = {"spec": {"destinations": [{"name": "in-*", "namespace": "shop"}]}}
    assert Permissions.from_project(project, by_name).namespace_permitted("shop")


def test_without_a_readable_project_only_the_destination_namespace_is_permitted() -> None:
    perms = Permissions.from_project(None, APP)
    assert perms.namespace_permitted("shop") and not perms.namespace_permitted("shop-eu")
    assert not perms.cluster_kind_permitted("", "Namespace")


async def test_cluster_scoped_entries_follow_the_cluster_resource_whitelist() -> None:
    ns = {"kind": "Namespace", "metadata": {"name": "shop", "uid": "n"}}
    cluster = Cluster(ns)
    cluster.objects[("Namespace", "shop", None)] = ns
    assert (await check_scope(rules(), ResourceRef("v1", "Namespace", "shop"), cluster.fetch, "a")).obj == ns
    closed = {**PROJECT, "spec": {**PROJECT["spec"], "clusterResourceWhitelist": []}}
    assert (await check_scope(rules(closed), ResourceRef("v1", "Namespace", "shop"), cluster.fetch, "a")).obj is None


async def test_pod_reaches_the_deployment_through_its_replicaset() -> None:
    scoped = await check_scope(
        rules(), ResourceRef("v1", "Pod", "web-7d-x", "", "shop"), Cluster(DEPLOY, RS, POD).fetch, "a"
    )
    assert scoped.obj == POD and [o["kind"] for o in scoped.owners] == ["ReplicaSet", "Deployment"]


async def test_stale_owner_uid_is_refused() -> None:
    recreated = obj("Deployment", "web", "d2-other")  # same name, different object
    with pytest.raises(ApiError) as refused:
        await check_scope(
            rules(), ResourceRef("v1", "Pod", "web-7d-x", "", "shop"), Cluster(recreated, RS, POD).fetch, "a"
        )
    assert refused.value.code is ErrorCode.RESOURCE_NOT_IN_APPLICATION


async def test_an_owner_chain_ending_in_a_non_permitted_entry_is_refused() -> None:
    ledger = obj("Deployment", "ledger", "b2", namespace="team-b")
    rs = obj("ReplicaSet", "ledger-1", "b3", ("Deployment", "ledger", "b2"), namespace="team-b")
    pod = obj("Pod", "ledger-1-x", "b4", ("ReplicaSet", "ledger-1", "b3"), namespace="team-b")
    with pytest.raises(ApiError):
        await check_scope(rules(), ResourceRef("v1", "Pod", "ledger-1-x", "", "team-b"), Cluster(ledger, rs, pod).fetch, "a")


async def test_unrelated_and_nonexistent_resources_are_refused() -> None:
    stray = obj("Pod", "stray", "s1")
    for ref in (
        ResourceRef("v1", "Pod", "stray", "", "shop"),
        ResourceRef("v1", "Pod", "ghost", "", "shop"),
        ResourceRef("v1", "Deployment", "web", "apps", "other-ns"),
    ):
        with pytest.raises(ApiError) as refused:
            await check_scope(rules(), ref, Cluster(stray, DEPLOY).fetch, "a")
        assert refused.value.status == 403


async def test_owner_chain_is_bounded() -> None:
    chain = [
        obj("Thing", f"t{i}", f"u{i}", ("Thing", f"t{i + 1}", f"u{i + 1}"), api="x.io/v1") for i in range(10)
    ]
    cluster = Cluster(*chain)
    with pytest.raises(ApiError):
        await check_scope(rules(), ResourceRef("v1", "Thing", "t0", "x.io", "shop"), cluster.fetch, "a")
    assert len(cluster.reads) <= 6


@pytest.mark.parametrize(
    ("kind", "name", "api"),
    [
        ("ReplicaSet", "../../../api/v1/namespaces/kube-system/configmaps/x?", "apps/v1"),
        ("ReplicaSet", "web-7d/../../x", "apps/v1"),
        ("Replica/Set", "web-7d", "apps/v1"),
        ("ReplicaSet", "web-7d", "../v1"),
        ("ReplicaSet", "web-7d", "apps/v1/x"),
        ("ReplicaSet", "web 7d", "apps/v1"),
    ],
)
async def test_malformed_owner_references_are_never_followed(kind: str, name: str, api: str) -> None:
    pod = obj("Pod", "p", "p9")
    pod["metadata"]["ownerReferences"] = [{"apiVersion": api, "kind": kind, "name": name, "uid": "r1"}]
    cluster = Cluster(pod)
    with pytest.raises(ApiError):
        await check_scope(rules(), ResourceRef("v1", "Pod", "p", "", "shop"), cluster.fetch, "a")
    assert cluster.reads == ["Pod/shop/p"]


def test_path_segments_from_the_cluster_are_percent_encoded() -> None:
    res = ApiResource("v1", "ConfigMap", "configmaps", True, frozenset({"get"}))
    assert res.path("shop", "../../secrets/x?watch=1") == "/api/v1/namespaces/shop/configmaps/..%2F..%2Fsecrets%2Fx%3Fwatch%3D1"
    assert res.path("..", "..") == "/api/v1/namespaces/%2E%2E/configmaps/%2E%2E"


@pytest.mark.parametrize(
    ("method", "annotations", "labels", "tracked"),
    [
        ("annotation", {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/web"}, {}, True),
        ("annotation", {"argocd.argoproj.io/tracking-id": "other:apps/Deployment:shop/web"}, {}, False),
        ("annotation", {"argocd.argoproj.io/tracking-id": "shopping:apps/Deployment:shop/web"}, {}, False),
        ("annotation", {}, {"app.kubernetes.io/instance": "shop"}, False),  # labels don't count then
        ("label", {}, {"app.kubernetes.io/instance": "shop"}, True),
        ("label", {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/web"}, {}, False),
        ("annotation+label", {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/web"}, {}, True),
        (None, {}, {"app.kubernetes.io/instance": "shop"}, True),  # argocd-cm unreadable: either mark
    ],
)
def test_tracking_follows_the_configured_method(
    method: str | None, annotations: dict[str, str], labels: dict[str, str], tracked: bool
) -> None:
    target = {"metadata": {"name": "web", "annotations": annotations, "labels": labels}}
    assert rules(method=method).tracking.names_app(target) is tracked


def test_apps_outside_the_control_plane_namespace_track_as_namespace_underscore_name() -> None:
    tracking = Tracking.for_application("team-a", "shop", "argocd", {"data": {}})
    assert tracking.instance == "team-a_shop"
    assert tracking.names_app({"metadata": {"annotations": {
        "argocd.argoproj.io/tracking-id": "team-a_shop:apps/Deployment:shop/web"}}})
    assert not tracking.names_app({"metadata": {"annotations": {
        "argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/web"}}})
    custom = Tracking.for_application("argocd", "shop", "argocd", {"data": {
        "application.resourceTrackingMethod": "label", "application.instanceLabelKey": "argocd.example/app"}})
    assert custom.names_app({"metadata": {"labels": {"argocd.example/app": "shop"}}})


async def test_selector_matches_are_split_into_ours_and_others() -> None:
    ours = POD
    tracked = obj("Pod", "job-x", "p2", annotations={"argocd.argoproj.io/tracking-id": "shop:/Pod:shop/job-x"})
    theirs_rs = obj("ReplicaSet", "pay-1", "r9", ("Deployment", "payments", "b1"))
    theirs = obj("Pod", "pay-1-x", "p3", ("ReplicaSet", "pay-1", "r9"))
    bare = obj("Pod", "bare", "p4")
    cluster = Cluster(DEPLOY, RS, theirs_rs, obj("Deployment", "payments", "b1"))
    mine, others = await rules().partition([ours, tracked, theirs, bare], cluster.fetch)
    assert [p["metadata"]["name"] for p in mine] == ["web-7d-x", "job-x"]
    assert [p["metadata"]["name"] for p in others] == ["pay-1-x", "bare"]
