"""Benchmark 3, context: gather + render time for Applications of 10, 100, 300 and 1,000 resources on
a real apiserver with injected API latency, against the slowest single API call at that latency.

The engine reads the Application (with its AppProject and argocd-cm), then stage 1 (the listed
resources and the namespace lists their children, events and owners are filtered from), then stage
2 (logs, Nodes, ConfigMaps of the Pods found). A running backend holds the Application, AppProject
and argocd-cm in its control-plane cache (context/control_cache.py, list+watch), so in its steady
state the Application costs no round trip: every case is measured with the cache synced and
watching (waited for before the builds), as a running backend answers. "first": nothing remembered
about the Application (the engine's footprints cleared before every build): two dependent round
trips, stage 1 then stage 2, so about 2x. "repeat": the same question again within the footprint's
10 minutes (reads.Footprints), whose reads start at once, stage 2's too (the logs and Nodes the last
question read; each used only if the gather asks for it): one round trip. "first, no cache": the Application question with the cache off (a backend that
just started, or whose watch is down): the Application's round trip back on the path, about 3x.

Both ``context.pod_logs`` modes are measured in one run: ``argocd`` (the default deployment: the
backend reads no logs, the panel attaches those it read under the user's ``logs, get``, here the
unhealthy Pods' previous logs as the panel would pick them, at most 4 containers) and ``backend``
(the backend reads the logs itself, what the evals score).

Round trips are counted by instrumenting ``KubeClient._request`` in this process only: "sequential
round trips" is the longest chain of calls where each started after the previous one had answered
(the critical path; an upper bound on the dependent stages; the cache's watches are not requests
through it and its lists are done before the builds), "calls" is every API request of a build. The
slowest single call is the slowest of the calls the last build made, each replayed alone (median of
3 round-robin rounds). At 50 ms the Application question also runs over HTTP/1.1 with the pool of
20 connections the engine used before HTTP/2.

Last, the cache's memory: 1,000 Applications of 20 resources each are created and a fresh cache
lists and watches them; the bytes it holds and the process's RSS before and after are reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import ssl
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from assistant_backend.context import kube as kube_client
from assistant_backend.context.base import ResourceRef
from assistant_backend.context.engine import KubeContext
from assistant_backend.wire import LogsAttachment, Resource
from evals.runner import engine_settings
from evals.scale import create_large_application
from tests.support.delay_relay import DelayRelay
from tests.support.kube_calls import Call, recording_kube_calls

from .common import WORK, save, table
from .kube import kube

LATENCIES_S = (0.0, 0.05)
POD_LOGS = ("argocd", "backend")  # the default deployment first
ASKED = ("first", "repeat")
NO_CACHE = "first, no cache"
RSS_APPLICATIONS, RSS_RESOURCES = 1000, 20
PANEL_LOG_CONTAINERS = 4  # extension-ui/src/attachments.ts MAX_LOG_CONTAINERS


def _slowest_single_call(cluster: Any, proxy: DelayRelay, calls: list[Call], rounds: int) -> float:
    """The slowest of the calls the engine made in a build, each replayed alone through the same
    delay: ms, the median of ``rounds``. Replaying what the build really asked for (not a fixed list
    of paths) keeps the denominator honest when the gather's shape changes: a namespace-wide list
    that replaced many small ones is among the calls measured. Each round replays every call once
    (round robin), so a moment of load on the shared machine lands on one round of every call, not
    on all the repeats of one call, which the maximum over calls would then pick."""
    distinct = sorted({(c.path, tuple(sorted(c.params.items()))) for c in calls})
    verify = ssl.create_default_context(cafile=str(cluster.ca_path))
    times: dict[int, list[float]] = {i: [] for i in range(len(distinct))}
    with httpx.Client(base_url=f"https://127.0.0.1:{proxy.port}", verify=verify, timeout=30,
                      headers={"Authorization": f"Bearer {cluster.admin_token}"}) as client:
        client.get("/version")  # connect once: the engine's pool is warm too
        for _ in range(rounds):
            for i, (path, params) in enumerate(distinct):
                started = time.perf_counter()
                client.get(path, params=dict(params))  # a 404 (no previous log) is a call too
                times[i].append((time.perf_counter() - started) * 1000)
    return max(statistics.median(t) for t in times.values())


@contextmanager
def http1_pool() -> Iterator[None]:
    """The engine's clients as before HTTP/2: HTTP/1.1 over at most 20 connections per cluster."""
    original = httpx.AsyncClient

    def http1(*args: Any, **kwargs: Any) -> httpx.AsyncClient:
        return original(*args, **{**kwargs, "http2": False})

    kube_client.httpx.AsyncClient = http1  # type: ignore[attr-defined,misc]
    try:
        yield
    finally:
        kube_client.httpx.AsyncClient = original  # type: ignore[attr-defined,misc]


async def _builds(engine: KubeContext, caller: Any, resource: ResourceRef | None, repeats: int,
                  attachments: list[LogsAttachment], repeat: bool) -> tuple[dict[str, float], list[Call]]:
    await engine.build(caller, resource, "why is this Degraded?", attachments)  # discovery, connections
    if engine.control_cache is not None and not await engine.control_cache.wait_serving(120):
        raise RuntimeError(f"the control-plane cache did not sync: {engine.control_cache.states()}")
    walls, gathers, trips, calls = [], [], [], []
    tokens = notes = 0
    made: list[Call] = []
    for _ in range(repeats):
        if not repeat:
            engine.footprints.clear()  # a first question: nothing remembered about the Application
        started = time.perf_counter()
        with recording_kube_calls(time.perf_counter) as recorded:
            bundle = await engine.build(caller, resource, "why is this Degraded?", attachments)
        made = recorded.made
        walls.append((time.perf_counter() - started) * 1000)
        trips.append(recorded.depth())
        calls.append(len(made))
        gathers.append(bundle.gather_ms or 0.0)
        tokens, notes = bundle.tokens_total, len(bundle.notes)
    return {"build_ms": statistics.median(walls), "gather_ms": statistics.median(gathers), "tokens": tokens,
            "notes": notes, "round_trips": statistics.median(trips), "calls": statistics.median(calls)}, made


def _questions(app: Any) -> list[tuple[str, ResourceRef | None]]:
    """The common questions: the Application, and its unhealthy Pod, Deployment and Service."""
    pod = app.unhealthy_pod
    workload = pod.name.rsplit("-", 2)[0]  # <deployment>-<hash>-<suffix>
    return [("Application", None), ("Pod", pod),
            ("Deployment", ResourceRef("v1", "Deployment", workload, "apps", app.namespace)),
            ("Service", ResourceRef("v1", "Service", workload, "", app.namespace))]


def _unhealthy_pods(cluster: Any, namespace: str) -> list[str]:
    pods = cluster.http.get(f"/api/v1/namespaces/{namespace}/pods").json()["items"]
    return sorted(p["metadata"]["name"] for p in pods
                  if not all(c.get("ready") for c in p["status"].get("containerStatuses") or []))


def _panel_logs(question: str, resource: ResourceRef | None, namespace: str,
                unhealthy: list[str]) -> list[LogsAttachment]:
    """What the panel attaches under ``pod_logs: argocd`` (extension-ui/src/attachments.ts): the
    unhealthy Pods under the subject in Argo CD's tree (none under a Service: its Pods hang off the
    ReplicaSet), default container, current and previous log of a restarted one, at most 4."""
    if question == "Service":
        return []
    if resource is None:
        pods = unhealthy
    elif question == "Pod":
        pods = [resource.name]
    else:
        pods = [p for p in unhealthy if p.startswith(resource.name + "-")]
    text = "".join(f"line {j}\n" for j in range(200)) + "FATAL boom"
    logs = [LogsAttachment(type="logs", resource=Resource(version="v1", kind="Pod", namespace=namespace, name=pod),
                           container=None, previous=previous, text=text)
            for pod in pods for previous in (False, True)]
    return logs[:PANEL_LOG_CONTAINERS]


@dataclass(frozen=True)
class Run:
    question: str
    resource: ResourceRef | None
    latency_s: float
    protocol: str
    pod_logs: str
    asked: str  # "first" or "repeat"


def _runs(questions: list[tuple[str, ResourceRef | None]]) -> list[Run]:
    """The Application question at every latency in both log modes, first and repeated, and over
    HTTP/1.1 once; the resource questions at the added latency in both log modes, first and repeated."""
    added = LATENCIES_S[-1]
    runs = [Run(*questions[0], latency, "HTTP/2", mode, asked)
            for mode in POD_LOGS for latency in LATENCIES_S for asked in ASKED]
    runs.append(Run(*questions[0], added, "HTTP/1.1", "backend", "first"))
    runs += [Run(*questions[0], added, "HTTP/2", mode, NO_CACHE) for mode in POD_LOGS]
    runs += [Run(*q, added, "HTTP/2", mode, asked) for mode in POD_LOGS for q in questions[1:] for asked in ASKED]
    return runs


async def _measure(sizes: list[int], repeats: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with kube(WORK / "context") as (cluster, kubelet, proxy, kubeconfig):
        # Argo CD authorises a call only when the Application's AppProject exists (server/extension/
        # extension.go): a cache that lacks it asks with a GET, so the benchmark's project exists.
        cluster.put_project("default")
        for size in sizes:
            app = await asyncio.to_thread(create_large_application, cluster, kubelet, resources=size,
                                          unhealthy=max(1, min(10, size // 10)))
            unhealthy = await asyncio.to_thread(_unhealthy_pods, cluster, app.namespace)
            for run in _runs(_questions(app)):
                proxy.delay_s = run.latency_s
                settings = engine_settings(kubeconfig)
                settings = settings.model_copy(
                    update={"context": settings.context.model_copy(update={"pod_logs": run.pod_logs})})
                with http1_pool() if run.protocol == "HTTP/1.1" else contextlib.nullcontext():
                    engine = KubeContext.from_settings(settings, control_cache=run.asked != NO_CACHE)
                engine.start()
                attachments = (_panel_logs(run.question, run.resource, app.namespace, unhealthy)
                               if run.pod_logs == "argocd" else [])
                try:
                    measured, made = await _builds(engine, app.caller, run.resource, repeats, attachments,
                                                   run.asked == "repeat")
                finally:
                    await engine.aclose()
                slowest = await asyncio.to_thread(_slowest_single_call, cluster, proxy, made, 3)
                results.append({"resources": app.resources, "question": run.question,
                                "latency_ms": run.latency_s * 1000, "protocol": run.protocol,
                                "pod_logs": run.pod_logs, "asked": run.asked, "attached_logs": len(attachments),
                                **measured,
                                "slowest_call_ms": slowest, "ratio": measured["build_ms"] / slowest})
        proxy.delay_s = 0.0
        memory = await _cache_memory(cluster, kubeconfig)
    return results, memory


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _argo_application(namespace: str, name: str, resources: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(spec, status) shaped like an Application Argo CD reconciled: listed resources, sync, health,
    the last operation and one history entry."""
    listed = [{"group": "apps" if i % 2 else "", "version": "v1", "kind": "Deployment" if i % 2 else "Service",
               "namespace": namespace, "name": f"{name}-part-{i}", "status": "Synced",
               "health": {"status": "Healthy"}} for i in range(resources)]
    revision = "4f1c0b5f2d3e4a5b6c7d8e9f0a1b2c3d4e5f6a7b"
    spec = {"project": "default", "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "source": {"repoURL": "https://git.example.com/team/apps.git", "path": f"apps/{name}",
                       "targetRevision": "HEAD"}}
    status = {"resources": listed, "sync": {"status": "Synced", "revision": revision},
              "health": {"status": "Healthy"}, "sourceType": "Directory",
              "reconciledAt": "2026-01-01T00:00:00Z", "summary": {"images": [f"registry.example.com/{name}:1.2.3"]},
              "operationState": {"phase": "Succeeded", "message": "successfully synced (all tasks run)",
                                 "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:05Z",
                                 "syncResult": {"revision": revision}},
              "history": [{"id": 1, "revision": revision, "deployedAt": "2026-01-01T00:00:05Z"}]}
    return spec, status


async def _create_applications(cluster: Any, namespace: str, count: int, resources: int) -> None:
    cluster.ensure_namespace(namespace)
    verify = ssl.create_default_context(cafile=str(cluster.ca_path))
    base = f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/applications"
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=cluster.url, verify=verify, timeout=60,
                                 headers={"Authorization": f"Bearer {cluster.admin_token}"}) as client:
        async def one(i: int) -> None:
            name = f"app-{i:04d}"
            spec, status = _argo_application(namespace, name, resources)
            async with limit:
                created = await client.post(base, json={"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                                                        "metadata": {"name": name, "namespace": namespace},
                                                        "spec": spec})
                created.raise_for_status()
                body = {**created.json(), "status": status}
                (await client.put(f"{base}/{name}/status", json=body)).raise_for_status()

        await asyncio.gather(*(one(i) for i in range(count)))


async def _cache_memory(cluster: Any, kubeconfig: Any) -> dict[str, Any]:
    """The cache of 1,000 Applications of 20 resources: bytes held, RSS before and after it synced."""
    await _create_applications(cluster, "cache-rss", RSS_APPLICATIONS, RSS_RESOURCES)
    engine = KubeContext.from_settings(engine_settings(kubeconfig))
    assert engine.control_cache is not None
    try:
        gc.collect()
        before = _rss_bytes()
        engine.start()
        if not await engine.control_cache.wait_serving(300):
            raise RuntimeError(f"the control-plane cache did not sync: {engine.control_cache.states()}")
        gc.collect()
        after = _rss_bytes()
        cache = engine.control_cache
        apps = len(cache.applications.store)
        one = cache.applications.get("cache-rss", "app-0000") or b""
        return {"applications": apps, "resources_each": RSS_RESOURCES, "cache_bytes": cache.budget.used,
                "bytes_per_application": cache.budget.used / max(1, apps), "one_application_bytes": len(one),
                "rss_before": before, "rss_after": after, "rss_delta": after - before,
                "cap_bytes": cache.budget.cap}
    finally:
        await engine.aclose()


def run(sizes: list[int] | None = None, repeats: int = 5) -> str:
    sizes = sizes or [10, 100, 300, 1000]
    results, memory = asyncio.run(_measure(sizes, repeats))
    rows = [[r["resources"], r["question"], r["pod_logs"], r["asked"], r["latency_ms"], r["protocol"], r["build_ms"],
             r["gather_ms"], r["slowest_call_ms"], r["ratio"], r["round_trips"], r["calls"], r["tokens"]]
            for r in results]
    text = table(f"Context (median of {repeats} builds after one that warms connections and discovery; "
                 "asked first: nothing remembered about the Application, repeat: the same question again; "
                 "real apiserver, latency added to every request; control-plane cache synced except 'first, no cache', "
                 "whose sequential round trips include the Application's own)",
                 ["resources", "question", "pod_logs", "asked", "added latency ms", "protocol", "build ms", "gather ms",
                  "slowest single call ms", "build / slowest", "sequential round trips", "API calls",
                  "context tokens"], rows)
    targets: dict[str, bool] = {}
    lines = []
    for mode in POD_LOGS:
        for asked in ASKED:
            delayed = [r for r in results if r["latency_ms"] > 0 and r["protocol"] == "HTTP/2"
                       and r["question"] == "Application" and r["pod_logs"] == mode and r["asked"] == asked]
            for size, limit in ((10, 1.5), (300, 2.0)):
                row = min(delayed, key=lambda r: abs(r["resources"] - size), default=None)
                if row is None:
                    continue
                ok = row["ratio"] <= limit
                targets[f"{mode}_{asked}_{size}_resources_{limit}x"] = ok
                lines.append(f"- pod_logs {mode}, {asked} question: build <= {limit}x the slowest single call "
                             f"at ~{size} resources: {'met' if ok else 'MISSED'} ({row['ratio']:.2f}x at "
                             f"{row['resources']}, {row['round_trips']:g} sequential round trips)")
    text += "\n\nTargets (Application question, 50 ms added, HTTP/2, control-plane cache synced):\n"
    text += "\n".join(lines)
    mb = 1024 * 1024
    text += (f"\n\nControl-plane cache of {memory['applications']} Applications of {memory['resources_each']} "
             f"resources: {memory['cache_bytes'] / mb:.1f} MB held ({memory['bytes_per_application'] / 1024:.1f} KB "
             f"each, cap {memory['cap_bytes'] / mb:.0f} MB); process RSS {memory['rss_before'] / mb:.0f} -> "
             f"{memory['rss_after'] / mb:.0f} MB (+{memory['rss_delta'] / mb:.1f} MB) once synced")
    save("context", {"parameters": {"sizes": sizes, "repeats": repeats, "latencies_s": LATENCIES_S,
                                    "pod_logs": POD_LOGS, "asked": [*ASKED, NO_CACHE]},
                     "results": results, "targets": targets, "cache_memory": memory})
    return text
