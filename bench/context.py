"""Benchmark 3, context: gather + render time for Applications of 10, 100 and 300 resources on a
real apiserver with injected API latency, against the slowest single API call at that latency.

The engine reads the Application, then the listed resources and their children concurrently, then
a second stage (pods, events, logs) for what looked unhealthy: a chain of dependent round trips, so
the floor is a few round trips, not one. The ratio shows how much of the rest is parallel.
"""

from __future__ import annotations

import asyncio
import ssl
import statistics
import time
from typing import Any

import httpx

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


async def _builds(engine: KubeContext, caller: Any, repeats: int) -> tuple[float, float, int, int]:
    await engine.build(caller, None, "why is this Degraded?")  # warm: discovery, connections
    walls, gathers = [], []
    tokens = notes = 0
    for _ in range(repeats):
        started = time.perf_counter()
        bundle = await engine.build(caller, None, "why is this Degraded?")
        walls.append((time.perf_counter() - started) * 1000)
        gathers.append(bundle.gather_ms or 0.0)
        tokens, notes = bundle.tokens_total, len(bundle.notes)
    return statistics.median(walls), statistics.median(gathers), tokens, notes


async def _measure(sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with kube(WORK / "context") as (cluster, kubelet, proxy, kubeconfig):
        for size in sizes:
            app = await asyncio.to_thread(create_large_application, cluster, kubelet, resources=size,
                                          unhealthy=max(1, min(10, size // 10)))
            engine = KubeContext.from_settings(engine_settings(kubeconfig))
            try:
                for latency in LATENCIES_S:
                    proxy.delay_s = latency
                    wall, gather, tokens, notes = await _builds(engine, app.caller, repeats)
                    slowest = await asyncio.to_thread(_slowest_single_call, cluster, proxy, app.namespace,
                                                      app.unhealthy_pod.name, 3)
                    results.append({"resources": app.resources, "latency_ms": latency * 1000, "build_ms": wall,
                                    "gather_ms": gather, "slowest_call_ms": slowest, "ratio": wall / slowest,
                                    "tokens": tokens, "notes": notes})
            finally:
                await engine.aclose()
    return results


def run(sizes: list[int] | None = None, repeats: int = 5) -> str:
    sizes = sizes or [10, 100, 300]
    results = asyncio.run(_measure(sizes, repeats))
    rows = [[r["resources"], r["latency_ms"], r["build_ms"], r["gather_ms"], r["slowest_call_ms"], r["ratio"],
             r["tokens"]] for r in results]
    text = table(f"Context (Application-level question, median of {repeats} warm builds; real apiserver, "
                 "latency added to every request)",
                 ["resources", "added latency ms", "build ms", "gather ms", "slowest single call ms",
                  "build / slowest", "context tokens"], rows)
    worst = max((r for r in results if r["latency_ms"] > 0), key=lambda r: r["ratio"])
    met = worst["ratio"] <= 1.5
    text += (f"\n\nTarget build <= 1.5x the slowest single call (with latency): {'met' if met else 'MISSED'} "
             f"(worst {worst['ratio']:.2f}x at {worst['resources']} resources)")
    save("context", {"parameters": {"sizes": sizes, "repeats": repeats, "latencies_s": LATENCIES_S},
                     "results": results, "target_met": met})
    return text
