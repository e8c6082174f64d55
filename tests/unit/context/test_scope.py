"""Scope: listed resources, owner chains with matching uids, and refusals."""

from __future__ import annotations

from typing import Any

import pytest

from assistant_backend.context.base import ResourceRef
from assistant_backend.context.scope import check_scope
from assistant_backend.errors import ApiError, ErrorCode

APP = {
    "status": {
        "resources": [
            {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop", "name": "web"},
            {"version": "v1", "kind": "Namespace", "name": "shop"},
        ]
    }
}


def obj(
    kind: str, name: str, uid: str, owner: tuple[str, str, str] | None = None, api: str = "apps/v1"
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "uid": uid}
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": api, "kind": owner[0], "name": owner[1], "uid": owner[2], "controller": True}
        ]
    return {"kind": kind, "metadata": meta}


class Cluster:
    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects = {(o["kind"], o["metadata"]["name"]): o for o in objects}
        self.reads: list[str] = []

    async def fetch(self, group: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        self.reads.append(f"{kind}/{name}")
        return self.objects.get((kind, name))


DEPLOY = obj("Deployment", "web", "d1")
RS = obj("ReplicaSet", "web-7d", "r1", ("Deployment", "web", "d1"))
POD = obj("Pod", "web-7d-x", "p1", ("ReplicaSet", "web-7d", "r1"))


async def test_listed_resource_passes() -> None:
    cluster = Cluster(DEPLOY)
    scoped = await check_scope(
        APP, ResourceRef("v1", "Deployment", "web", "apps", "shop"), cluster.fetch, "a"
    )
    assert scoped.obj is DEPLOY and scoped.listed
    missing = await check_scope(
        APP, ResourceRef("v1", "Deployment", "web", "apps", "shop"), Cluster().fetch, "a"
    )
    assert missing.obj is None  # Argo CD lists it, the cluster lacks it (health Missing): still in scope


async def test_cluster_scoped_listed_resource_passes() -> None:
    ns = {"kind": "Namespace", "metadata": {"name": "shop", "uid": "n"}}
    cluster = Cluster(ns)
    cluster.objects[("Namespace", "shop")] = ns
    assert (await check_scope(APP, ResourceRef("v1", "Namespace", "shop"), cluster.fetch, "a")).listed


async def test_pod_reaches_the_deployment_through_its_replicaset() -> None:
    scoped = await check_scope(
        APP, ResourceRef("v1", "Pod", "web-7d-x", "", "shop"), Cluster(DEPLOY, RS, POD).fetch, "a"
    )
    assert scoped.obj is POD and [o["kind"] for o in scoped.owners] == ["ReplicaSet", "Deployment"]


async def test_stale_owner_uid_is_refused() -> None:
    recreated = obj("Deployment", "web", "d2-other")  # same name, different object
    with pytest.raises(ApiError) as refused:
        await check_scope(
            APP, ResourceRef("v1", "Pod", "web-7d-x", "", "shop"), Cluster(recreated, RS, POD).fetch, "a"
        )
    assert refused.value.code is ErrorCode.RESOURCE_NOT_IN_APPLICATION


async def test_unrelated_and_nonexistent_resources_are_refused() -> None:
    stray = obj("Pod", "stray", "s1")
    for ref in (
        ResourceRef("v1", "Pod", "stray", "", "shop"),
        ResourceRef("v1", "Pod", "ghost", "", "shop"),
        ResourceRef("v1", "Deployment", "web", "apps", "other-ns"),
    ):
        with pytest.raises(ApiError) as refused:
            await check_scope(APP, ref, Cluster(stray, DEPLOY).fetch, "a")
        assert refused.value.status == 403


async def test_owner_chain_is_bounded() -> None:
    chain = [
        obj("Thing", f"t{i}", f"u{i}", ("Thing", f"t{i + 1}", f"u{i + 1}"), api="x/v1") for i in range(10)
    ]
    cluster = Cluster(*chain)
    with pytest.raises(ApiError):
        await check_scope(APP, ResourceRef("v1", "Thing", "t0", "x", "shop"), cluster.fetch, "a")
    assert len(cluster.reads) <= 6
