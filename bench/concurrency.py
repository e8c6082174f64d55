"""Benchmark 2, concurrency: N simultaneous streams straight to Llama Stack, then through one
backend process; the p99 gap between tokens the backend adds, errors, backend CPU and RSS."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.support.backend import SECRET

from .common import (
    IDENTITY,
    QUESTION,
    ProcessSampler,
    Timing,
    llama_models,
    percentile,
    responses_request,
    save,
    stack,
    table,
    timed_stream,
)


async def _staggered(delay: float, client: httpx.AsyncClient, url: str, body: dict[str, Any],
                     headers: dict[str, str], direct: bool) -> Timing:
    await asyncio.sleep(delay)
    return await timed_stream(client, url, body, headers, direct=direct)


async def _level(url: str, body: dict[str, Any], headers: dict[str, str], direct: bool, streams: int,
                 sampler: ProcessSampler, stagger_s: float) -> tuple[list[Timing], float]:
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    async with httpx.AsyncClient(timeout=httpx.Timeout(300), limits=limits) as client:
        sampler.start()
        done = asyncio.Event()

        async def sample() -> None:
            while not done.is_set():
                sampler.sample()
                await asyncio.sleep(0.2)

        sampling = asyncio.create_task(sample())
        started = time.monotonic()
        # Starts spread over one token period: real users do not press Enter on the same
        # millisecond, and lock-step streams would measure the benchmark's own synchrony.
        timings = await asyncio.gather(*(_staggered(i * stagger_s / streams, client, url, body, headers, direct)
                                         for i in range(streams)))
        elapsed = time.monotonic() - started
        done.set()
        await sampling
    return list(timings), elapsed


async def _measure(levels: list[int], tokens: int, token_delay: float, rounds: int) -> list[dict[str, Any]]:
    results = []
    with stack("concurrency", tokens=tokens, token_delay=token_delay) as st:
        model = llama_models(st.llama_stack.url)
        backend = ProcessSampler(st.backend_pid)
        idle_rss = backend.process.memory_info().rss
        paths = {
            "direct": (f"{st.llama_stack.url}/v1/responses", await responses_request(model), {}, True),
            "backend": (f"{st.backend.url}/v1/chat", {"question": QUESTION}, {**IDENTITY, "Authorization": SECRET}, False),
        }
        for streams in levels:
            row: dict[str, Any] = {"streams": streams}
            collected: dict[str, list[Timing]] = {name: [] for name in paths}
            cpu: list[float] = []
            peak = 0
            # Alternate the paths over several rounds, so a noisy moment does not land on one path only.
            for _ in range(rounds):
                for name, (url, body, headers, direct) in paths.items():
                    timings, _ = await _level(url, body, headers, direct, streams, backend, token_delay)
                    collected[name].extend(timings)
                    if name == "backend":
                        cpu.append(backend.cpu_percent())
                        peak = max(peak, backend.peak_rss)
                    await asyncio.sleep(2)  # let both servers settle between runs
            for name, timings in collected.items():
                ok = [t for t in timings if t.ok]
                gaps = [g for t in ok for g in t.gaps]
                row[name] = {
                    "errors": len(timings) - len(ok), "error_samples": sorted({t.error for t in timings if not t.ok})[:5],
                    "gap_p50_ms": percentile(gaps, 50) * 1000, "gap_p99_ms": percentile(gaps, 99) * 1000,
                    "ttft_p50_s": percentile([t.ttft for t in ok], 50), "ttft_p99_s": percentile([t.ttft for t in ok], 99),
                    "streams_measured": len(timings),
                }
            row["backend"].update({"backend_cpu_percent": sum(cpu) / len(cpu), "backend_peak_rss_mb": peak / 2**20})
            row["added_gap_p99_ms"] = row["backend"]["gap_p99_ms"] - row["direct"]["gap_p99_ms"]
            results.append(row)
        for row in results:
            row["backend_idle_rss_mb"] = idle_rss / 2**20
    return results


def run(levels: list[int] | None = None, tokens: int = 40, token_delay: float = 0.25, rounds: int = 2) -> str:
    levels = levels or [50, 200, 500]
    results = asyncio.run(_measure(levels, tokens, token_delay, rounds))
    rows = []
    for r in results:
        d, b = r["direct"], r["backend"]
        rows.append([r["streams"], d["errors"], b["errors"], d["gap_p50_ms"], b["gap_p50_ms"], d["gap_p99_ms"],
                     b["gap_p99_ms"], r["added_gap_p99_ms"], d["ttft_p50_s"], b["ttft_p50_s"],
                     b["backend_cpu_percent"], b["backend_peak_rss_mb"]])
    text = table(
        f"Concurrency ({tokens} tokens per answer, one every {token_delay * 1000:.0f} ms, {rounds} rounds per path "
        f"and level; one backend process; "
        f"idle RSS {results[0]['backend_idle_rss_mb']:.1f} MB)",
        ["streams", "errors direct", "errors backend", "gap p50 direct ms", "gap p50 backend ms", "gap p99 direct ms",
         "gap p99 backend ms", "added p99 ms", "ttft p50 direct s", "ttft p50 backend s", "backend CPU %",
         "backend peak RSS MB"],
        rows,
    )
    top = results[-1]
    gap_ok = top["added_gap_p99_ms"] <= 10
    rss_ok = top["backend"]["backend_peak_rss_mb"] <= 150
    text += (f"\n\nTargets at {top['streams']} streams: added p99 gap <= 10 ms: "
             f"{'met' if gap_ok else 'MISSED'} ({top['added_gap_p99_ms']:.1f} ms); RSS <= 150 MB: "
             f"{'met' if rss_ok else 'MISSED'} ({top['backend']['backend_peak_rss_mb']:.1f} MB)")
    save("concurrency", {"parameters": {"levels": levels, "tokens": tokens, "token_delay_s": token_delay,
                                        "rounds": rounds},
                         "levels": results, "targets": {"added_gap_p99_ms": gap_ok, "rss_150_mb": rss_ok}})
    return text
