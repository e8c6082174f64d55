"""Benchmark 3, context: gather + render time for Applications of 10, 100, 300 and 1,000 resources on
a real apiserver with injected API latency, against the slowest single API call at that latency.

The engine reads the Application, then the listed resources and their children concurrently, then
a second stage (pods, events, logs) for what looked unhealthy: a chain of dependent round trips, so
the floor is a few round trips, not one. The ratio shows how much of the rest is parallel.

Round trips are counted by instrumenting ``KubeClient._request`` in this process only: "sequential
round trips" is the longest chain of calls where each started after the previous one had answered
(the critical path; an upper bound on the dependent stages), "calls" is every API request of a
build. At 50 ms the build runs over HTTP/2 (what the engine speaks) and, for comparison, over
HTTP/1.1 with the same pool of 20 connections the engine used before.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from assistant_backend.context import kube as kube_client
from assistant_backend.context.engine import KubeContext
from evals.runner import engine_settings
from evals.scale import create_large_application

from .common import WORK, save, table
from .kube import DelayProxy, kube

LATENCIES_S = (0.0, 0.05)


def _slowest_single_call(cluster: Any, proxy: DelayProxy, namespace: str, pod: str, repeats: int) -> float:
    """The slowest of the calls the engine makes, each alone, through the same delay: median ms."""
    paths = [
        f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/applications/big",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/svc-000",
        f"/api/v1/namespaces/{namespace}/pods?labelSelector=app%3Dsvc-000",
        f"/api/v1/namespaces/{namespace}/events",
        f"/api/v1/namespaces/{namespace}/pods/{pod}/log?container=app&previous=true&tailLines=200",
    ]
    verify = ssl.create_default_context(cafile=str(cluster.ca_path))
    medians = []
    with httpx.Client(base_url=f"https://127.0.0.1:{proxy.port}", verify=verify, timeout=30,
                      headers={"Authorization": f"Bearer {cluster.admin_token}"}) as client:
        client.get(paths[0])  # connect once: the engine's pool is warm too
        for path in paths:
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                client.get(path).raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
            medians.append(statistics.median(times))
    return max(medians)


CALLS: list[tuple[float, float]] = []  # (start, end) of every apiserver request while recording


@contextmanager
def counting_round_trips() -> Iterator[None]:
    original = kube_client.KubeClient._request

    async def timed(self: kube_client.KubeClient, path: str, params: Any = None) -> httpx.Response:
        started = time.perf_counter()
        try:
            return await original(self, path, params)
        finally:
            CALLS.append((started, time.perf_counter()))

    kube_client.KubeClient._request = timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        kube_client.KubeClient._request = original  # type: ignore[method-assign]


def sequential_round_trips(calls: list[tuple[float, float]]) -> int:
    """The longest chain of calls each started after the one before it had answered."""
    depth: list[int] = []
    ordered = sorted(calls)
    for i, (start, _) in enumerate(ordered):
        depth.append(1 + max((depth[j] for j in range(i) if ordered[j][1] <= start), default=0))
    return max(depth, default=0)


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


async def _builds(engine: KubeContext, caller: Any, repeats: int) -> dict[str, float]:
    await engine.build(caller, None, "why is this Degraded?")  # warm: discovery, connections
    walls, gathers, trips, calls = [], [], [], []
    tokens = notes = 0
    for _ in range(repeats):
        CALLS.clear()
        started = time.perf_counter()
        with counting_round_trips():
            bundle = await engine.build(caller, None, "why is this Degraded?")
        walls.append((time.perf_counter() - started) * 1000)
        trips.append(sequential_round_trips(CALLS))
        calls.append(len(CALLS))
        gathers.append(bundle.gather_ms or 0.0)
        tokens, notes = bundle.tokens_total, len(bundle.notes)
    return {"build_ms": statistics.median(walls), "gather_ms": statistics.median(gathers), "tokens": tokens,
            "notes": notes, "round_trips": statistics.median(trips), "calls": statistics.median(calls)}


async def _measure(sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with kube(WORK / "context") as (cluster, kubelet, proxy, kubeconfig):
        for size in sizes:
            app = await asyncio.to_thread(create_large_application, cluster, kubelet, resources=size,
                                          unhealthy=max(1, min(10, size // 10)))
            runs = [(latency, "HTTP/2") for latency in LATENCIES_S] + [(LATENCIES_S[-1], "HTTP/1.1")]
            for latency, protocol in runs:
                proxy.delay_s = latency
                with http1_pool() if protocol == "HTTP/1.1" else contextlib.nullcontext():
                    engine = KubeContext.from_settings(engine_settings(kubeconfig))
                try:
                    measured = await _builds(engine, app.caller, repeats)
                finally:
                    await engine.aclose()
                slowest = await asyncio.to_thread(_slowest_single_call, cluster, proxy, app.namespace,
                                                  app.unhealthy_pod.name, 3)
                results.append({"resources": app.resources, "latency_ms": latency * 1000, "protocol": protocol,
                                **measured, "slowest_call_ms": slowest, "ratio": measured["build_ms"] / slowest})
    return results


def run(sizes: list[int] | None = None, repeats: int = 5) -> str:
    sizes = sizes or [10, 100, 300, 1000]
    results = asyncio.run(_measure(sizes, repeats))
    rows = [[r["resources"], r["latency_ms"], r["protocol"], r["build_ms"], r["gather_ms"], r["slowest_call_ms"],
             r["ratio"], r["round_trips"], r["calls"], r["tokens"]] for r in results]
    text = table(f"Context (Application-level question, median of {repeats} warm builds; real apiserver, "
                 "latency added to every request)",
                 ["resources", "added latency ms", "protocol", "build ms", "gather ms", "slowest single call ms",
                  "build / slowest", "sequential round trips", "API calls", "context tokens"], rows)
    targets: dict[str, bool] = {}
    lines = []
    delayed = [r for r in results if r["latency_ms"] > 0 and r["protocol"] == "HTTP/2"]
    for size, limit in ((10, 1.5), (300, 2.0)):
        row = min(delayed, key=lambda r: abs(r["resources"] - size), default=None)
        if row is None:
            continue
        ok = row["ratio"] <= limit
        targets[f"{size}_resources_{limit}x"] = ok
        lines.append(f"- build <= {limit}x the slowest single call at ~{size} resources: "
                     f"{'met' if ok else 'MISSED'} ({row['ratio']:.2f}x at {row['resources']}, "
                     f"{row['round_trips']:g} sequential round trips)")
    text += "\n\nTargets (50 ms added, HTTP/2):\n" + "\n".join(lines)
    save("context", {"parameters": {"sizes": sizes, "repeats": repeats, "latencies_s": LATENCIES_S},
                     "results": results, "targets": targets})
    return text
