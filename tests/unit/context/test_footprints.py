"""Footprints (reads.py): where an Application's last question read, bounded and short-lived; the
reads started from one are kept only in the same cluster and in namespaces the fresh Application
names and its AppProject permits, and answer only the reads asked for."""

from __future__ import annotations

import asyncio
from typing import Any

from assistant_backend.context.kube import Page
from assistant_backend.context.reads import (
    EarlyReads,
    Footprint,
    Footprints,
    Reads,
    named_namespaces,
)
from assistant_backend.context.scope import Permissions, ScopeRules, Tracking

APP = {
    "metadata": {"name": "shop", "namespace": "argocd"},
    "spec": {"project": "team-a", "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"}},
    "status": {
        "resources": [
            {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop", "name": "web"},
            {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop-jobs", "name": "cron"},
            # Listed, but its AppProject does not permit the namespace.
            {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "team-b", "name": "ledger"},
        ]
    },
}
PROJECT = {"metadata": {"name": "team-a"}, "spec": {"destinations": [{"server": "*", "namespace": "shop*"}]}}


def rules() -> ScopeRules:
    return ScopeRules(APP, Permissions.from_project(PROJECT, APP), Tracking.for_application("argocd", "shop", "argocd", None))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def footprint(namespace: str = "shop") -> Footprint:
    return Footprint("https://kubernetes.default.svc", "", ((("", "Pod", namespace)),), ())


def test_a_footprint_expires_after_its_ttl() -> None:
    clock = Clock()
    prints = Footprints(ttl_s=600, clock=clock)
    prints.remember(("argocd", "argocd", "shop", "team-a"), footprint())
    clock.now = 599
    assert prints.recall(("argocd", "argocd", "shop", "team-a")) == footprint()
    clock.now = 600
    assert prints.recall(("argocd", "argocd", "shop", "team-a")) is None
    assert len(prints) == 0


def test_the_least_recently_asked_about_application_is_dropped_first() -> None:
    prints = Footprints(size=2)
    for name in ("a", "b"):
        prints.remember(("argocd", "argocd", name, "default"), footprint(name))
    assert prints.recall(("argocd", "argocd", "a", "default")) is not None  # "a" asked about again
    prints.remember(("argocd", "argocd", "c", "default"), footprint("c"))
    assert len(prints) == 2
    assert prints.recall(("argocd", "argocd", "b", "default")) is None
    assert prints.recall(("argocd", "argocd", "a", "default")) is not None


def test_another_project_in_the_header_recalls_nothing() -> None:
    prints = Footprints()
    prints.remember(("argocd", "argocd", "shop", "team-a"), footprint())
    assert prints.recall(("argocd", "argocd", "shop", "team-b")) is None
    prints.forget(("argocd", "argocd", "shop", "team-a"))
    assert prints.recall(("argocd", "argocd", "shop", "team-a")) is None


def test_named_namespaces_are_the_applications_that_its_appproject_permits() -> None:
    assert named_namespaces(rules()) == {"shop", "shop-jobs"}


class Hanging:
    """A client whose reads never answer until told to: what a slow cluster is to the early reads."""

    def __init__(self) -> None:
        self.answer = asyncio.Event()
        self.calls: list[tuple[str, ...]] = []

    async def list_page(self, group: str, kind: str, namespace: str | None, *, limit: int = 500) -> Page:
        self.calls.append(("list", kind, str(namespace)))
        await self.answer.wait()
        return Page([{"kind": kind, "metadata": {"name": "web-1", "namespace": namespace}}], cut=False)

    async def get(self, group: str, kind: str, name: str, namespace: str | None, version: str | None = None) -> Any:
        self.calls.append(("get", kind, name, str(namespace)))
        await self.answer.wait()
        return {"kind": kind, "metadata": {"name": name, "namespace": namespace}}


async def test_early_reads_outside_the_fresh_namespaces_are_cancelled_and_the_others_answer_only_when_asked() -> None:
    client = Hanging()
    remembered = Footprint(
        "https://kubernetes.default.svc",
        "",
        (("", "Pod", "shop"), ("", "Pod", "team-b"), ("", "Pod", "moved-away")),
        (("apps", "Deployment", "web", "shop", "v1"), ("apps", "Deployment", "ledger", "team-b", "v1")),
    )
    early = EarlyReads(client, remembered)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert len(client.calls) == 5  # all started, none answered
    notes: list[str] = []
    reads = Reads(client, rules(), notes.append)  # type: ignore[arg-type]
    reads.adopt(early, named_namespaces(rules()))
    await asyncio.sleep(0)
    assert early.lists[("", "Pod", "team-b")].cancelled()  # listed, not permitted
    assert early.lists[("", "Pod", "moved-away")].cancelled()  # no longer named
    assert early.gets[("apps", "Deployment", "ledger", "team-b", "v1")].cancelled()
    kept = early.lists[("", "Pod", "shop")]
    assert not kept.cancelled()

    client.answer.set()
    pods = await reads.pods("shop")  # asked for: answered by the early list, no new call
    assert [p["metadata"]["name"] for p in pods] == ["web-1"]
    web = await reads.entry_get("apps", "Deployment", "web", "shop", "v1")
    assert web is not None and len(client.calls) == 5
    assert reads.footprint(named_namespaces(rules())) == (
        (("", "Pod", "shop"),),
        (("apps", "Deployment", "web", "shop", "v1"),),
    )
    reads.close()


async def test_early_reads_from_another_cluster_are_all_cancelled() -> None:
    remembered, fresh = Hanging(), Hanging()
    early = EarlyReads(remembered, footprint())  # type: ignore[arg-type]
    reads = Reads(fresh, rules(), [].append)  # type: ignore[arg-type]
    reads.adopt(early, named_namespaces(rules()))
    await asyncio.sleep(0)
    assert all(t.cancelled() for t in early.lists.values())
    fresh.answer.set()
    assert await reads.pods("shop")  # read again, from the cluster the fresh Application names
    assert fresh.calls == [("list", "Pod", "shop")]


class HangingWithLogs(Hanging):
    async def pod_log(self, namespace: str, pod: str, container: str, *, previous: bool, tail_lines: int) -> str:
        self.calls.append(("log", namespace, pod, container, str(previous), str(tail_lines)))
        await self.answer.wait()
        return f"log of {pod}"


async def test_stage_two_starts_early_too_logs_in_the_fresh_namespaces_and_nodes_only_when_asked() -> None:
    """A repeat question's logs and Nodes (its stage 2) go out with stage 1; kept like the rest: a
    log in a namespace the fresh Application names, a Node (cluster-scoped) of the same cluster, and
    used only when the gather asks for that very log or Node."""
    client = HangingWithLogs()
    remembered = Footprint(
        "https://kubernetes.default.svc",
        "",
        (),
        (("", "Node", "node-1", "", None), ("", "Node", "node-2", "", None)),
        (("shop", "web-1", "app", True), ("team-b", "ledger-1", "app", True), ("shop", "web-2", "app", False)),
    )
    early = EarlyReads(client, remembered, log_lines=200)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert len(client.calls) == 5
    reads = Reads(client, rules(), [].append)  # type: ignore[arg-type]
    reads.adopt(early, named_namespaces(rules()))
    await asyncio.sleep(0)
    assert early.logs[("team-b", "ledger-1", "app", True)].cancelled()  # not permitted
    assert not early.logs[("shop", "web-1", "app", True)].cancelled()
    assert not early.gets[("", "Node", "node-1", "", None)].cancelled()

    client.answer.set()
    assert await reads.log("shop", "web-1", "app", previous=True, tail_lines=200) == "log of web-1"
    node = await reads.fetch("", "Node", "node-1", None)
    assert node is not None and len(client.calls) == 5, "answered by the early reads"
    # A different tail than the early read asked for: read again, the early one cancelled.
    await reads.log("shop", "web-2", "app", previous=False, tail_lines=50)
    assert client.calls[-1] == ("log", "shop", "web-2", "app", "False", "50")
    # node-2 was never asked for: not used, not remembered.
    assert reads.footprint(named_namespaces(rules())) == ((), (("", "Node", "node-1", "", None),))
    assert reads.footprint_logs(named_namespaces(rules()), 10) == (
        ("shop", "web-1", "app", True),
        ("shop", "web-2", "app", False),
    )
    assert reads.footprint_logs(named_namespaces(rules()), 1) == (("shop", "web-1", "app", True),)
    reads.close()


class HangingWithEvents(HangingWithLogs):
    async def list(self, group: str, kind: str, namespace: str | None, **params: Any) -> list[dict[str, Any]]:
        self.calls.append(("events", str(namespace), str(params.get("field_selector"))))
        await self.answer.wait()
        return [{"kind": "Event", "message": f"about {params.get('field_selector')}"}]


async def test_an_objects_own_events_start_early_in_the_fresh_namespaces_only() -> None:
    client = HangingWithEvents()
    remembered = Footprint(
        "https://kubernetes.default.svc", "", (), (), (), (("Pod", "web-1", "shop"), ("Pod", "ledger-1", "team-b"))
    )
    early = EarlyReads(client, remembered)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert [c[0] for c in client.calls] == ["events", "events"]
    reads = Reads(client, rules(), [].append)  # type: ignore[arg-type]
    reads.adopt(early, named_namespaces(rules()))
    await asyncio.sleep(0)
    assert early.events[("Pod", "ledger-1", "team-b")].cancelled()
    client.answer.set()
    found = await reads.events_of("Pod", "web-1", "shop")
    assert found == [{"kind": "Event", "message": "about involvedObject.name=web-1,involvedObject.kind=Pod"}]
    assert len(client.calls) == 2, "answered by the early list"
    assert reads.footprint_events(named_namespaces(rules()), 10) == (("Pod", "web-1", "shop"),)
    reads.close()
