"""The control-plane cache (context/control_cache.py) against a real apiserver: what reaches it, what it
serves, and that a question answers exactly as without it when it cannot serve.

The hostile cases come from how informer caches fail in practice: a watch that breaks silently or
ends (every client-go user sees "watch closed" and "too old resource version" relists), an RBAC
that grants get but not list/watch (the cache must not turn a working backend into a failing one),
and an Application moved to another project or deleted while cached (the refusal and the 404 must
come exactly as from a GET). The engine's own waits run on the test's loop, so every wait for a
state of the cache polls from a worker thread (``asyncio.to_thread(wait_for, ...)``), never sleeps.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from assistant_backend.context import control_cache
from assistant_backend.context.control_cache import ControlCache
from assistant_backend.context.engine import KubeContext
from assistant_backend.context.kube import KubeClient
from assistant_backend.errors import ApiError, ErrorCode
from assistant_backend.identity import Caller
from evals.runner import engine_settings
from evals.scale import LargeApp, create_large_application
from tests.support.delay_relay import DelayRelay
from tests.support.kube import KubeCluster
from tests.support.kube_calls import KubeCalls, recording_kube_calls
from tests.support.kubelet import FakeKubelet
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kube

API = "argoproj.io/v1alpha1"


async def waited(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """wait_for, polled from a thread so the cache's tasks keep running on this loop."""
    return await asyncio.to_thread(wait_for, check, what, timeout)


def application(
    namespace: str, name: str, project: str = "default", health: str = "Healthy"
) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "project": project,
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
        },
        "status": {"sync": {"status": "Synced"}, "health": {"status": health}, "resources": []},
    }


def cached(engine: KubeContext, namespace: str, name: str) -> dict[str, Any] | None:
    """What the cache holds for an Application (from the test's thread: bytes, parsed here)."""
    assert engine.control_cache is not None
    data = engine.control_cache.applications.get(namespace, name)
    return orjson.loads(data) if data is not None else None


async def engine_with_own_cache(cluster: KubeCluster, *, server: str | None = None, max_bytes: int | None = None) -> KubeContext:
    """An engine whose control-plane cache talks to ``server`` (a relay) or has ``max_bytes``; the
    engine's own reads keep the direct connection."""
    engine = KubeContext.from_settings(engine_settings(cluster.admin_kubeconfig))
    assert engine.control_cache is not None and engine.registry.local is not None
    await engine.control_cache.client.aclose()
    credentials = engine.registry.local.credentials
    if server is not None:
        credentials = replace(credentials, server=server)
    watches = KubeClient(credentials, call_timeout_s=3.0, name=control_cache.CLIENT_NAME, http2=False)
    caps = {} if max_bytes is None else {"max_bytes": max_bytes}
    engine.control_cache = ControlCache(watches, "argocd", call_timeout_s=3.0, **caps)
    return engine


def serving(engine: KubeContext) -> bool:
    assert engine.control_cache is not None
    return all(i.serving for i in engine.control_cache.informers)


def app_gets(calls: KubeCalls, namespace: str, name: str) -> list[str]:
    return [c.path for c in calls.made if c.path == f"/apis/{API}/namespaces/{namespace}/applications/{name}"]


@pytest.fixture
async def engine(static_kube_cluster: KubeCluster) -> AsyncIterator[KubeContext]:
    static_kube_cluster.put_project("default")
    source = KubeContext.from_settings(engine_settings(static_kube_cluster.admin_kubeconfig))
    source.start()
    yield source
    await source.aclose()


@pytest.fixture
def shop(static_kube_cluster: KubeCluster) -> str:
    namespace = f"shop-{uuid.uuid4().hex[:6]}"
    static_kube_cluster.ensure_namespace(namespace)
    return namespace


async def test_create_update_project_change_and_delete_reach_the_cache(
    static_kube_cluster: KubeCluster, engine: KubeContext, shop: str
) -> None:
    cluster = static_kube_cluster
    await waited(lambda: serving(engine), "the cache to list and watch")
    cluster.create(application(shop, "web"), status=True)
    seen = await waited(lambda: cached(engine, shop, "web"), "the created Application in the cache")
    assert seen["kind"] == "Application" and seen["apiVersion"] == API
    assert "managedFields" not in seen["metadata"], "kept compact"

    cluster.write_status({**application(shop, "web"), "status": {"health": {"status": "Degraded"}}})
    await waited(
        lambda: (
            ((cached(engine, shop, "web") or {}).get("status") or {}).get("health") == {"status": "Degraded"}
        ),
        "the status update in the cache",
    )
    cluster.merge_patch(API, "Application", "web", shop, {"spec": {"project": "elsewhere"}})
    await waited(
        lambda: (cached(engine, shop, "web") or {}).get("spec", {}).get("project") == "elsewhere",
        "the project change in the cache",
    )
    cluster.delete(API, "Application", "web", shop)
    await waited(lambda: cached(engine, shop, "web") is None, "the delete in the cache")


async def test_a_cached_answer_is_the_gets_answer(
    static_kube_cluster: KubeCluster, engine: KubeContext, shop: str
) -> None:
    """Same cluster state, same context text, whether the Application came from the cache or a GET."""
    static_kube_cluster.create(application(shop, "web", health="Degraded"), status=True)
    caller = Caller("alice", shop, "web", "default")
    await waited(lambda: serving(engine) and cached(engine, shop, "web"), "the Application in the cache")
    with recording_kube_calls() as from_cache:
        cached_bundle = await engine.build(caller, None, "why?")
    without = KubeContext.from_settings(
        engine_settings(static_kube_cluster.admin_kubeconfig), control_cache=False
    )
    try:
        with recording_kube_calls() as from_get:
            got_bundle = await without.build(caller, None, "why?")
    finally:
        await without.aclose()
    assert app_gets(from_cache, shop, "web") == [], from_cache.in_order()
    assert app_gets(from_get, shop, "web"), from_get.in_order()
    assert cached_bundle.text == got_bundle.text
    assert cached_bundle.notes == got_bundle.notes


async def test_after_a_delete_a_404_and_after_a_project_change_a_refusal_as_without_the_cache(
    static_kube_cluster: KubeCluster, engine: KubeContext, shop: str
) -> None:
    cluster = static_kube_cluster
    cluster.create(application(shop, "web"), status=True)
    caller = Caller("alice", shop, "web", "default")
    await waited(lambda: serving(engine) and cached(engine, shop, "web"), "the Application in the cache")
    assert (await engine.build(caller, None, "why?")).gather_ms is not None

    without = KubeContext.from_settings(engine_settings(cluster.admin_kubeconfig), control_cache=False)
    try:
        cluster.merge_patch(API, "Application", "web", shop, {"spec": {"project": "elsewhere"}})
        await waited(
            lambda: (cached(engine, shop, "web") or {}).get("spec", {}).get("project") == "elsewhere",
            "the project change in the cache",
        )
        for source in (engine, without):
            with pytest.raises(ApiError) as refused:
                await source.build(caller, None, "why?")
            assert refused.value.code == ErrorCode.PROJECT_MISMATCH

        cluster.delete(API, "Application", "web", shop)
        await waited(lambda: cached(engine, shop, "web") is None, "the delete in the cache")
        for source in (engine, without):
            with pytest.raises(ApiError) as absent:
                await source.build(caller, None, "why?")
            assert absent.value.code == ErrorCode.APPLICATION_NOT_FOUND
    finally:
        await without.aclose()


async def test_an_application_the_cache_has_not_seen_yet_is_read_with_a_get(
    static_kube_cluster: KubeCluster, engine: KubeContext, shop: str
) -> None:
    """Argo CD's informer may see a new Application before ours: absent from the cache is not a 404."""
    await waited(lambda: serving(engine), "the cache to list and watch")
    cache = engine.control_cache
    assert cache is not None
    # Stop the Applications' watch (its store is cleared) but keep the informer serving: a cache
    # that has not seen the new Application yet.
    task = next(t for t in cache._tasks if t.get_name() == "control-cache-Application")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    cache.applications.state = "watching"
    static_kube_cluster.create(application(shop, "new"), status=True)
    with recording_kube_calls() as calls:
        bundle = await engine.build(Caller("alice", shop, "new", "default"), None, "why?")
    assert app_gets(calls, shop, "new"), calls.in_order()
    assert bundle.gather_ms is not None, bundle.notes


@pytest.fixture
def relay(static_kube_cluster: KubeCluster) -> Iterator[DelayRelay]:
    with DelayRelay(static_kube_cluster.url) as started:
        yield started


async def test_a_broken_watch_falls_back_to_gets_and_recovers(
    static_kube_cluster: KubeCluster, relay: DelayRelay, shop: str
) -> None:
    """The cache's own connection goes through a relay that is cut and then refuses (the apiserver
    unreachable for the watches); the engine's reads keep the direct one."""
    cluster = static_kube_cluster
    cluster.put_project("default")
    cluster.create(application(shop, "web"), status=True)
    engine = await engine_with_own_cache(cluster, server=relay.url)
    caller = Caller("alice", shop, "web", "default")
    try:
        engine.start()
        await waited(lambda: serving(engine) and cached(engine, shop, "web"), "the cache to serve")
        assert engine.cache_serving() == {"Application": True, "AppProject": True, "ConfigMap": True}
        with recording_kube_calls() as calls:
            first = await engine.build(caller, None, "why?")
        assert app_gets(calls, shop, "web") == [], calls.in_order()

        relay.refusing = True
        relay.cut()
        await waited(lambda: not serving(engine), "the cache to notice the broken watch")
        assert not all(engine.cache_serving().values()), "/metrics would say the cache is down"
        with recording_kube_calls() as calls:
            fallback = await engine.build(caller, None, "why?")
        assert app_gets(calls, shop, "web"), "read with a GET while the cache cannot serve"
        assert fallback.text == first.text and fallback.notes == first.notes, "no note, the same answer"

        cluster.write_status({**application(shop, "web"), "status": {"health": {"status": "Missing"}}})
        relay.refusing = False
        await waited(
            lambda: (
                serving(engine)
                and ((cached(engine, shop, "web") or {}).get("status") or {}).get("health")
                == {"status": "Missing"}
            ),
            "the cache to relist and see what changed while it was cut off",
        )
        with recording_kube_calls() as calls:
            recovered = await engine.build(caller, None, "why?")
        assert app_gets(calls, shop, "web") == [], calls.in_order()
        assert "Missing" in recovered.text
    finally:
        await engine.aclose()


def _get_only_kubeconfig(cluster: KubeCluster, workdir: Path) -> Path:
    """A service account that may get Applications, AppProjects and ConfigMaps, never list/watch them."""
    cluster.ensure_namespace("argocd")
    name = "assistant-get-only"
    rules = [
        {"apiGroups": ["argoproj.io"], "resources": ["applications", "appprojects"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["events", "pods", "services"], "verbs": ["get", "list"]},
    ]
    rbac = "rbac.authorization.k8s.io/v1"
    if cluster.get(rbac, "ClusterRole", name) is None:
        cluster.create(
            {"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}
        )
    if cluster.get(rbac, "ClusterRoleBinding", name) is None:
        cluster.create(
            {
                "apiVersion": rbac,
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": "get-only", "namespace": "argocd"}],
            }
        )
    token = cluster.service_account_token("argocd", "get-only")
    return cluster.kubeconfig_for_token(token, workdir / "get-only.kubeconfig")


async def test_no_list_or_watch_in_rbac_means_gets_only(
    static_kube_cluster: KubeCluster, shop: str, tmp_path: Path
) -> None:
    cluster = static_kube_cluster
    cluster.put_project("default")
    cluster.create(application(shop, "web", health="Degraded"), status=True)
    engine = KubeContext.from_settings(engine_settings(_get_only_kubeconfig(cluster, tmp_path)))
    try:
        engine.start()
        assert engine.control_cache is not None
        cache = engine.control_cache
        await waited(lambda: set(cache.states().values()) == {"forbidden"}, "every informer refused")
        with recording_kube_calls() as calls:
            bundle = await engine.build(Caller("alice", shop, "web", "default"), None, "why?")
        assert app_gets(calls, shop, "web"), calls.in_order()
        assert "Degraded" in bundle.text
        assert not any("Application" in n for n in bundle.notes), bundle.notes
    finally:
        await engine.aclose()


async def test_over_the_byte_cap_the_cache_serves_nothing(
    static_kube_cluster: KubeCluster, shop: str
) -> None:
    cluster = static_kube_cluster
    cluster.put_project("default")
    cluster.create(application(shop, "web"), status=True)
    engine = await engine_with_own_cache(cluster, max_bytes=200)
    cache = engine.control_cache
    assert cache is not None
    try:
        engine.start()
        await waited(lambda: cache.applications.state == "over_cap", "the Applications over the cap")
        assert len(cache.applications.store) == 0 and cache.budget.used <= cache.budget.cap
        with recording_kube_calls() as calls:
            bundle = await engine.build(Caller("alice", shop, "web", "default"), None, "why?")
        assert app_gets(calls, shop, "web"), calls.in_order()
        assert bundle.gather_ms is not None
    finally:
        await engine.aclose()


# ---- the round trip it saves, counted (tests/support/kube_calls.py) ----


@pytest.fixture(scope="module")
def delayed(static_kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with DelayRelay(static_kube_cluster.url, delay_s=0.1) as relay:
        yield static_kube_cluster.kubeconfig_for_token(
            static_kube_cluster.admin_token,
            tmp_path_factory.mktemp("cache-depth") / "delayed.kubeconfig",
            user="admin",
            server=relay.url,
        )


@pytest.fixture(scope="module")
def big(static_kube_cluster: KubeCluster, fake_kubelet: FakeKubelet) -> LargeApp:
    static_kube_cluster.put_project("default")  # Argo CD authorised the call: its AppProject exists
    return create_large_application(static_kube_cluster, fake_kubelet, resources=30, unhealthy=3)


@pytest.mark.parametrize("question", ["Application", "Pod"])
@pytest.mark.parametrize("asked", ["first", "repeat"])
async def test_a_synced_cache_takes_the_applications_round_trip_off_the_critical_path(
    delayed: Path, big: LargeApp, asked: str, question: str
) -> None:
    """Counted on the delay relay (pipelined latency): a first question is the Application's round
    trip and two stages without the cache, the two stages with it; a repeat question, whose footprint
    starts both stages, the Application's round trip and stage 2 without it, one round trip with it."""
    depths = {}
    resource = big.unhealthy_pod if question == "Pod" else None
    for cache in (False, True):
        engine = KubeContext.from_settings(engine_settings(delayed), control_cache=cache)
        try:
            engine.start()
            await engine.build(big.caller, resource, "why?")  # discovery, connections (and a footprint)
            if engine.control_cache is not None:
                assert await engine.control_cache.wait_serving(60), engine.control_cache.states()
            if asked == "first":
                engine.footprints.clear()
            with recording_kube_calls() as calls:
                bundle = await engine.build(big.caller, resource, "why?")
            assert "[crash_loop]" in bundle.text and "FATAL boom" in bundle.text, bundle.notes
            depths[cache] = calls.depth()
            if cache:
                assert app_gets(calls, big.namespace, "big") == [], calls.in_order()
                assert not any("appprojects" in c.path or "argocd-cm" in c.path for c in calls.made)
        finally:
            await engine.aclose()
    if asked == "first":
        assert depths[True] == depths[False] - 1 == 2, depths
    else:
        # Without the cache the footprint's reads (stages 1 and 2) go out with the Application's
        # and stage 2 is adopted only after it: 2. With it, they are the build: 1.
        assert depths[True] == depths[False] - 1 == 1, depths


async def test_a_moved_application_once_the_cache_saw_the_move_reads_nothing_from_the_old_namespace(
    static_kube_cluster: KubeCluster, fake_kubelet: FakeKubelet, delayed: Path
) -> None:
    """The footprint's early reads go out into the old namespace; the cached Application (the move
    applied) keeps none of them, as the GET did in test_gather_footprints.py."""
    cluster = static_kube_cluster
    cluster.put_project("default")
    old = create_large_application(cluster, fake_kubelet, resources=9, unhealthy=1)
    new = create_large_application(cluster, fake_kubelet, resources=9, unhealthy=1)
    engine = KubeContext.from_settings(engine_settings(delayed))
    try:
        engine.start()
        await waited(lambda: serving(engine) and cached(engine, old.namespace, "big"), "the cache to serve")
        before = await engine.build(old.caller, None, "why?")
        assert f"{old.namespace}/svc-000" in before.text, before.notes
        cluster.merge_patch(
            API, "Application", "big", old.namespace, {"spec": {"destination": {"namespace": new.namespace}}}
        )
        moved = cluster.get(API, "Application", "big", old.namespace)
        target = cluster.get(API, "Application", "big", new.namespace)
        assert moved is not None and target is not None
        cluster.write_status({**moved, "status": target["status"]})
        await waited(
            lambda: (
                ((cached(engine, old.namespace, "big") or {}).get("status") or {}).get("resources")
                == target["status"]["resources"]
            ),
            "the move in the cache",
        )
        with recording_kube_calls() as calls:
            after = await engine.build(old.caller, None, "why?")
    finally:
        await engine.aclose()
    assert calls.in_namespace(old.namespace), "the footprint's reads went out early into the old namespace"
    assert app_gets(calls, old.namespace, "big") == [], calls.in_order()
    assert f"{old.namespace}/svc-" not in after.text
    assert f"{new.namespace}/svc-000" in after.text, after.notes
