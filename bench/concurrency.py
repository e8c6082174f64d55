"""Benchmark 2, concurrency: N simultaneous streams read directly, then through one backend process;
the p99 gap between tokens the backend adds, errors, backend CPU per relayed token, and RSS.

Two upstreams, both reported:
- **real**: the scripted model behind a real Llama Stack 0.7.3 (levels ``--levels``). On 2 cores
  Llama Stack saturates itself at a few hundred streams, so the backend's cost drowns in its noise.
- **replay**: ``bench/replay_proc.py`` replays, at the same fixed token rate, the exact bytes a real
  Llama Stack sent (one Responses stream captured from 0.7.3 during the real run, one Agents turn
  from 0.3.5), so the backend's parsers see real bytes and the upstream costs almost nothing
  (levels ``--replay-levels``, Responses and Agents).

"Added p99" is the backend path's p99 inter-token gap minus the direct path's, at the client, in the
same run (paths alternate over rounds). CPU per token is the backend's CPU seconds over the answers'
tokens (each answer has ``tokens`` model tokens, whether or not the backend coalesced them).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.backend import SECRET, BackendProcess, backend_config
from tests.support.llamastack import LlamaStackServer
from tests.support.model_server import _free_port
from tests.support.processes import ServerProcess

from .common import (
    IDENTITY,
    QUESTION,
    ROOT,
    WORK,
    ProcessSampler,
    Timing,
    llama_models,
    model_process,
    percentile,
    responses_request,
    save,
    stack,
    table,
    timed_stream,
)

BACKEND_SECTIONS: dict[str, Any] = {
    "limits": {"requests_per_minute": 0, "max_streams_per_user": 0},
    "server": {"log_level": "warning", "log_format": "json", "readiness_cache_s": 5},
}
StreamPath = tuple[str, dict[str, Any], dict[str, str], bool]  # url, body, headers, direct


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


async def _levels(paths: dict[str, StreamPath], backend_pid: int, levels: list[int], tokens: int, token_delay: float,
                  rounds: int) -> list[dict[str, Any]]:
    results = []
    backend = ProcessSampler(backend_pid)
    idle_rss = backend.process.memory_info().rss
    for streams in levels:
        row: dict[str, Any] = {"streams": streams}
        collected: dict[str, list[Timing]] = {name: [] for name in paths}
        cpu: list[float] = []
        cpu_s, relayed, peak = 0.0, 0, 0
        # Alternate the paths over several rounds, so a noisy moment does not land on one path only.
        for _ in range(rounds):
            for name, (url, body, headers, direct) in paths.items():
                timings, _ = await _level(url, body, headers, direct, streams, backend, token_delay)
                collected[name].extend(timings)
                if name == "backend":
                    cpu.append(backend.cpu_percent())
                    cpu_s += backend.cpu_seconds()
                    relayed += tokens * sum(t.ok for t in timings)
                    peak = max(peak, backend.peak_rss)
                await asyncio.sleep(2)  # let the servers settle between runs
        for name, timings in collected.items():
            ok = [t for t in timings if t.ok]
            gaps = [g for t in ok for g in t.gaps]
            row[name] = {
                "errors": len(timings) - len(ok), "error_samples": sorted({t.error for t in timings if not t.ok})[:5],
                "gap_p50_ms": percentile(gaps, 50) * 1000, "gap_p99_ms": percentile(gaps, 99) * 1000,
                "ttft_p50_s": percentile([t.ttft for t in ok], 50), "ttft_p99_s": percentile([t.ttft for t in ok], 99),
                "streams_measured": len(timings),
            }
        row["backend"].update({"backend_cpu_percent": sum(cpu) / len(cpu), "backend_peak_rss_mb": peak / 2**20,
                               "cpu_ms_per_token": 1000 * cpu_s / max(relayed, 1)})
        row["added_gap_p99_ms"] = row["backend"]["gap_p99_ms"] - row["direct"]["gap_p99_ms"]
        results.append(row)
    for row in results:
        row["backend_idle_rss_mb"] = idle_rss / 2**20
    return results


def _backend_paths(llama_url: str, backend_url: str, body: dict[str, Any]) -> dict[str, StreamPath]:
    return {
        "direct": (f"{llama_url}/v1/responses", body, {}, True),
        "backend": (f"{backend_url}/v1/chat", {"question": QUESTION}, {**IDENTITY, "Authorization": SECRET}, False),
    }


def _save_server(url: str, captures: Path) -> None:
    captures.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=url, timeout=30) as client:
        (captures / "version.json").write_bytes(client.get("/v1/version").content)
        (captures / "models.json").write_bytes(client.get("/v1/models").content)


async def _capture_responses(url: str, body: dict[str, Any], captures: Path) -> None:
    """The real server's bytes for the replay: version, models and one whole Responses stream."""
    _save_server(url, captures)
    async with httpx.AsyncClient(timeout=120) as client, client.stream("POST", f"{url}/v1/responses",
                                                                       json=body) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    (captures / "stream.sse").write_bytes(raw)


def _capture_agents(tokens: int, captures: Path) -> None:
    """One Agents turn from a real Llama Stack 0.3.5 (the last version serving the Agents API)."""
    with model_process(tokens, 0.0, 0.0, "concurrency-agents-capture") as model_url:
        llama = LlamaStackServer("0.3.5", model_url, WORK / "concurrency-agents-capture" / "llama-stack").start()
        try:
            _save_server(llama.url, captures)
            with httpx.Client(base_url=llama.url, timeout=120) as client:
                model = llama_models(llama.url)
                agent = client.post("/v1alpha/agents", json={"agent_config": {
                    "model": model, "instructions": "Be brief.", "name": "bench", "max_infer_iters": 1}}).json()
                base = f"/v1alpha/agents/{agent['agent_id']}"
                session = client.post(f"{base}/session", json={"session_name": "bench"}).json()
                with client.stream("POST", f"{base}/session/{session['session_id']}/turn",
                                   json={"messages": [{"role": "user", "content": QUESTION}], "stream": True}) as r:
                    raw = b"".join(r.iter_raw())
        finally:
            llama.stop()
    (captures / "stream.sse").write_bytes(raw)


async def _replay_run(provider: str, captures: Path, levels: list[int], tokens: int, token_delay: float,
                      rounds: int) -> list[dict[str, Any]]:
    from .replay_proc import is_token, load

    capture = load(captures)
    deltas = sum(map(is_token, capture.events))
    if deltas != tokens:
        raise RuntimeError(f"the {provider} capture has {deltas} text deltas, not {tokens}")
    port = _free_port()
    replay = ServerProcess(
        f"replay llama stack ({provider})",
        [sys.executable, "-m", "bench.replay_proc", "--port", str(port), "--captures", str(captures),
         "--token-delay", str(token_delay)],
        health_url=f"http://127.0.0.1:{port}/v1/health", log_path=WORK / f"concurrency-replay-{provider}" / "replay.log",
        cwd=ROOT,
    )
    replay.start(timeout_s=30)
    url = f"http://127.0.0.1:{port}"
    try:
        model = json.loads(capture.models)["data"][0]
        config = backend_config(url, provider, **BACKEND_SECTIONS)
        with BackendProcess(config, WORK / f"concurrency-replay-{provider}" / "backend") as backend:
            assert backend._process.process is not None
            paths = _backend_paths(url, backend.url, await responses_request(model.get("identifier") or model["id"]))
            if provider == "agents":  # the direct path reads the same Agents stream
                paths["direct"] = (f"{url}/v1alpha/agents/a-replay/session/s-replay/turn",
                                   {"messages": [{"role": "user", "content": QUESTION}], "stream": True}, {}, True)
            return await _levels(paths, backend._process.process.pid, levels, tokens, token_delay, rounds)
    finally:
        replay.stop()


async def _measure(levels: list[int], replay_levels: list[int], tokens: int, token_delay: float,
                   rounds: int) -> dict[str, Any]:
    captures = WORK / "concurrency-captures"
    out: dict[str, Any] = {}
    with stack("concurrency", tokens=tokens, token_delay=token_delay) as st:
        model = llama_models(st.llama_stack.url)
        body = await responses_request(model)
        await _capture_responses(st.llama_stack.url, body, captures / "responses")
        if levels:
            out["real"] = await _levels(_backend_paths(st.llama_stack.url, st.backend.url, body), st.backend_pid,
                                        levels, tokens, token_delay, rounds)
    if replay_levels:
        out["replay-responses"] = await _replay_run("responses", captures / "responses", replay_levels, tokens,
                                                    token_delay, rounds)
        _capture_agents(tokens, captures / "agents")
        out["replay-agents"] = await _replay_run("agents", captures / "agents", replay_levels, tokens, token_delay,
                                                 rounds)
    return out


def _table(title: str, results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        d, b = r["direct"], r["backend"]
        rows.append([r["streams"], d["errors"], b["errors"], d["gap_p50_ms"], b["gap_p50_ms"], d["gap_p99_ms"],
                     b["gap_p99_ms"], r["added_gap_p99_ms"], d["ttft_p50_s"], b["ttft_p50_s"],
                     b["backend_cpu_percent"], b["cpu_ms_per_token"], b["backend_peak_rss_mb"]])
    return table(
        f"{title}; idle RSS {results[0]['backend_idle_rss_mb']:.1f} MB",
        ["streams", "errors direct", "errors backend", "gap p50 direct ms", "gap p50 backend ms", "gap p99 direct ms",
         "gap p99 backend ms", "added p99 ms", "ttft p50 direct s", "ttft p50 backend s", "backend CPU %",
         "CPU ms / token", "backend peak RSS MB"],
        rows,
    )


def _row(results: list[dict[str, Any]], streams: int) -> dict[str, Any] | None:
    return next((r for r in results if r["streams"] == streams), None)


def run(levels: list[int] | None = None, replay_levels: list[int] | None = None, tokens: int = 40,
        token_delay: float = 0.25, rounds: int = 2) -> str:
    levels = [50, 200, 500] if levels is None else levels
    replay_levels = [50, 200, 500, 1000] if replay_levels is None else replay_levels
    results = asyncio.run(_measure(levels, replay_levels, tokens, token_delay, rounds))
    common = f"{tokens} tokens per answer, one every {token_delay * 1000:.0f} ms, {rounds} rounds per path and level"
    titles = {
        "real": f"Concurrency through a real Llama Stack 0.7.3 ({common}; one backend process)",
        "replay-responses": f"Concurrency, Responses replay of captured 0.7.3 bytes ({common})",
        "replay-agents": f"Concurrency, Agents replay of captured 0.3.5 bytes ({common})",
    }
    text = "".join(_table(titles[name], rows) for name, rows in results.items())

    targets: dict[str, Any] = {}
    lines = []
    replay = results.get("replay-responses")
    if replay:
        at500, top = _row(replay, 500), replay[-1]
        idle = replay[0]["backend_idle_rss_mb"]
        cpu = max(r["backend"]["cpu_ms_per_token"] for r in replay)
        checks = [("idle RSS <= 130 MB", idle <= 130, f"{idle:.1f} MB"),
                  ("CPU per relayed token <= 0.05 ms (worst level)", cpu <= 0.05, f"{cpu:.3f} ms")]
        if at500:
            checks += [("added p99 gap <= 10 ms at 500 streams", at500["added_gap_p99_ms"] <= 10,
                        f"{at500['added_gap_p99_ms']:.1f} ms"),
                       ("RSS <= 150 MB at 500 streams", at500["backend"]["backend_peak_rss_mb"] <= 150,
                        f"{at500['backend']['backend_peak_rss_mb']:.1f} MB")]
        checks.append((f"zero errors at {top['streams']} streams", top["backend"]["errors"] == 0,
                       f"{top['backend']['errors']} errors"))
        for name, ok, value in checks:
            targets[name] = ok
            lines.append(f"- {name}: {'met' if ok else 'MISSED'} ({value})")
    if lines:
        text += "\n\nTargets (Responses replay):\n" + "\n".join(lines)
    save("concurrency", {"parameters": {"levels": levels, "replay_levels": replay_levels, "tokens": tokens,
                                        "token_delay_s": token_delay, "rounds": rounds},
                         "runs": results, "targets": targets})
    return text
