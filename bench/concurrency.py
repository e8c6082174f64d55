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
same run (paths alternate over rounds). "Steady" counts only the gaps that end after the last stream
of the level got its first token: the start-up burst (every stream's request, context and upstream
call within one token period) is left out, so it shows what relaying costs once the streams run.

CPU per token is the backend's CPU seconds over the answers' model tokens (each answer has
``tokens``, however many the backend coalesced into one event): it includes every turn's own cost
(request, context, handle, the upstream request), spread over a short answer. The replay runs split
the two with a second, longer answer (``--long-tokens``) at one level in the same run: the marginal
cost of a token is the CPU difference over the token difference, the fixed cost of a turn what is
left. Every figure carries the 1-minute load average of the machine while it was taken (the cores
are shared), and CPU time, not wall time, is the cost measure.

``--profile DIR`` records each replay level of the backend with py-spy (speedscope files).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    backend_env,
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


def _steady_gaps(timings: list[Timing]) -> list[float]:
    """The gaps of one level's run that end after every stream of it had its first token."""
    ok = [t for t in timings if t.ok]
    if not ok:
        return []
    started = max(t.first_at for t in ok)
    return [g for t in ok for g, at in zip(t.gaps, t.arrivals, strict=True) if at > started]


class _Profiler:
    """py-spy recording the backend while a level runs (``--profile``); off when ``directory`` is None."""

    def __init__(self, directory: Path | None, pid: int) -> None:
        self.directory, self.pid = directory, pid
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, name: str) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        spy = Path(sys.executable).with_name("py-spy")
        # --nonblocking: the backend is never paused, so the profile does not add to the gaps it measures.
        self._process = subprocess.Popen([str(spy), "record", "--pid", str(self.pid), "--rate", "200", "--nonblocking",
                                          "--format", "speedscope", "--output", str(self.directory / f"{name}.json")],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(2)  # py-spy writes its file on SIGINT
            self._process.wait(timeout=60)
            self._process = None


async def _levels(paths: dict[str, StreamPath], backend_pid: int, levels: list[int], tokens: int, token_delay: float,
                  rounds: int, profile: Path | None = None, tag: str = "") -> list[dict[str, Any]]:
    results = []
    backend = ProcessSampler(backend_pid)
    idle_rss = backend.process.memory_info().rss
    profiler = _Profiler(profile, backend_pid)
    for streams in levels:
        row: dict[str, Any] = {"streams": streams}
        collected: dict[str, list[Timing]] = {name: [] for name in paths}
        steady: dict[str, list[float]] = {name: [] for name in paths}
        cpu: list[float] = []
        loads: list[float] = []
        cpu_s, relayed, peak = 0.0, 0, 0
        # Alternate the paths over several rounds, so a noisy moment does not land on one path only.
        for round_ in range(rounds):
            for name, (url, body, headers, direct) in paths.items():
                loads.append(backend.load())
                if name == "backend" and round_ == 0:
                    profiler.start(f"{tag}-{streams}")
                timings, _ = await _level(url, body, headers, direct, streams, backend, token_delay)
                if name == "backend":
                    cpu.append(backend.cpu_percent())
                    cpu_s += backend.cpu_seconds()
                    relayed += tokens * sum(t.ok for t in timings)
                    peak = max(peak, backend.peak_rss)
                    profiler.stop()
                collected[name].extend(timings)
                steady[name].extend(_steady_gaps(timings))
                await asyncio.sleep(2)  # let the servers settle between runs
        for name, timings in collected.items():
            ok = [t for t in timings if t.ok]
            gaps = [g for t in ok for g in t.gaps]
            row[name] = {
                "errors": len(timings) - len(ok), "error_samples": sorted({t.error for t in timings if not t.ok})[:5],
                "gap_p50_ms": percentile(gaps, 50) * 1000, "gap_p99_ms": percentile(gaps, 99) * 1000,
                "steady_gap_p99_ms": percentile(steady[name], 99) * 1000,
                "ttft_p50_s": percentile([t.ttft for t in ok], 50), "ttft_p99_s": percentile([t.ttft for t in ok], 99),
                "events_per_answer": sum(t.tokens for t in ok) / max(len(ok), 1),
                "streams_measured": len(timings),
            }
        row["backend"].update({"backend_cpu_percent": sum(cpu) / len(cpu), "backend_peak_rss_mb": peak / 2**20,
                               "cpu_ms_per_token": 1000 * cpu_s / max(relayed, 1)})
        row["added_gap_p99_ms"] = row["backend"]["gap_p99_ms"] - row["direct"]["gap_p99_ms"]
        row["added_steady_gap_p99_ms"] = row["backend"]["steady_gap_p99_ms"] - row["direct"]["steady_gap_p99_ms"]
        row["load_1m"] = sum(loads) / len(loads)
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


@contextmanager
def _replay_backend(provider: str, captures: Path, token_delay: float, answer_tokens: int = 0,
                    tag: str = "") -> Iterator[tuple[int, dict[str, StreamPath]]]:
    """A replay server of the capture (``answer_tokens`` text deltas, 0 = as captured) and a backend on
    it: the backend's pid and both stream paths."""
    from .replay_proc import load

    capture = load(captures)
    port = _free_port()
    work = WORK / f"concurrency-replay-{provider}{tag}"
    replay = ServerProcess(
        f"replay llama stack ({provider})",
        [sys.executable, "-m", "bench.replay_proc", "--port", str(port), "--captures", str(captures),
         "--token-delay", str(token_delay), "--tokens", str(answer_tokens)],
        health_url=f"http://127.0.0.1:{port}/v1/health", log_path=work / "replay.log", cwd=ROOT,
    )
    replay.start(timeout_s=30)
    url = f"http://127.0.0.1:{port}"
    try:
        model = json.loads(capture.models)["data"][0]
        config = backend_config(url, provider, **BACKEND_SECTIONS)
        with BackendProcess(config, work / "backend", env=backend_env()) as backend:
            assert backend._process.process is not None
            paths = _backend_paths(url, backend.url, asyncio.run(responses_request(model.get("identifier") or model["id"])))
            if provider == "agents":  # the direct path reads the same Agents stream
                paths["direct"] = (f"{url}/v1alpha/agents/a-replay/session/s-replay/turn",
                                   {"messages": [{"role": "user", "content": QUESTION}], "stream": True}, {}, True)
            yield backend._process.process.pid, paths
    finally:
        replay.stop()


def _check_capture(provider: str, captures: Path, tokens: int) -> None:
    from .replay_proc import is_token, load

    deltas = sum(map(is_token, load(captures).events))
    if deltas != tokens:
        raise RuntimeError(f"the {provider} capture has {deltas} text deltas, not {tokens}")


def _replay_run(provider: str, captures: Path, levels: list[int], tokens: int, token_delay: float,
                rounds: int, profile: Path | None) -> list[dict[str, Any]]:
    _check_capture(provider, captures, tokens)
    with _replay_backend(provider, captures, token_delay) as (pid, paths):
        return asyncio.run(_levels(paths, pid, levels, tokens, token_delay, rounds, profile, f"replay-{provider}"))


async def _backend_cpu(path: StreamPath, pid: int, streams: int, token_delay: float) -> tuple[float, int, float]:
    """Backend CPU seconds, answers completed and load for one run of ``streams`` on the backend path."""
    url, body, headers, direct = path
    sampler = ProcessSampler(pid)
    load = sampler.load()
    timings, _ = await _level(url, body, headers, direct, streams, sampler, token_delay)
    return sampler.cpu_seconds(), sum(t.ok for t in timings), load


def _cost_split(provider: str, captures: Path, streams: int, tokens: int, long_tokens: int, token_delay: float,
                rounds: int) -> dict[str, Any]:
    """A turn's fixed CPU and a token's marginal CPU, from answers of ``tokens`` and ``long_tokens``
    text deltas at ``streams`` streams, runs alternating between the two lengths (each on its own
    replay server and fresh backend)."""
    per_answer: dict[int, list[float]] = {tokens: [], long_tokens: []}
    loads: list[float] = []
    with _replay_backend(provider, captures, token_delay, tag="-short") as short, \
            _replay_backend(provider, captures, token_delay, long_tokens, tag="-long") as long_:
        for _ in range(rounds):
            for length, (pid, paths) in ((tokens, short), (long_tokens, long_)):
                cpu_s, answers, load = asyncio.run(_backend_cpu(paths["backend"], pid, streams, token_delay))
                per_answer[length].append(cpu_s / max(answers, 1))
                loads.append(load)
                time.sleep(2)
    short_cpu = sum(per_answer[tokens]) / rounds
    long_cpu = sum(per_answer[long_tokens]) / rounds
    marginal = (long_cpu - short_cpu) / (long_tokens - tokens)
    return {"streams": streams, "tokens": tokens, "long_tokens": long_tokens, "rounds": rounds,
            "cpu_ms_per_answer": {str(tokens): 1000 * short_cpu, str(long_tokens): 1000 * long_cpu},
            "marginal_cpu_ms_per_token": 1000 * marginal, "fixed_cpu_ms_per_turn": 1000 * (short_cpu - tokens * marginal),
            "load_1m": sum(loads) / len(loads)}


def _measure(levels: list[int], replay_levels: list[int], tokens: int, token_delay: float, rounds: int,
             split: tuple[int, int] | None, profile: Path | None) -> dict[str, Any]:
    captures = WORK / "concurrency-captures"
    out: dict[str, Any] = {}
    with stack("concurrency", tokens=tokens, token_delay=token_delay) as st:
        model = llama_models(st.llama_stack.url)
        body = asyncio.run(responses_request(model))
        asyncio.run(_capture_responses(st.llama_stack.url, body, captures / "responses"))
        if levels:
            out["real"] = asyncio.run(_levels(_backend_paths(st.llama_stack.url, st.backend.url, body),
                                              st.backend_pid, levels, tokens, token_delay, rounds))
    if replay_levels:
        out["replay-responses"] = _replay_run("responses", captures / "responses", replay_levels, tokens,
                                              token_delay, rounds, profile)
        if split:
            out["split-responses"] = _cost_split("responses", captures / "responses", split[0], tokens, split[1],
                                                 token_delay, rounds)
        _capture_agents(tokens, captures / "agents")
        out["replay-agents"] = _replay_run("agents", captures / "agents", replay_levels, tokens, token_delay,
                                           rounds, profile)
        if split:
            out["split-agents"] = _cost_split("agents", captures / "agents", split[0], tokens, split[1],
                                              token_delay, rounds)
    return out


def _table(title: str, results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        d, b = r["direct"], r["backend"]
        rows.append([r["streams"], r["load_1m"], d["errors"], b["errors"], d["gap_p50_ms"], b["gap_p50_ms"],
                     d["gap_p99_ms"], b["gap_p99_ms"], r["added_gap_p99_ms"], d["steady_gap_p99_ms"],
                     r["added_steady_gap_p99_ms"], d["ttft_p50_s"], b["ttft_p50_s"], b["events_per_answer"],
                     b["backend_cpu_percent"], b["cpu_ms_per_token"], b["backend_peak_rss_mb"]])
    return table(
        f"{title}; idle RSS {results[0]['backend_idle_rss_mb']:.1f} MB",
        ["streams", "load 1m", "errors direct", "errors backend", "gap p50 direct ms", "gap p50 backend ms",
         "gap p99 direct ms", "gap p99 backend ms", "added p99 ms", "steady p99 direct ms", "added steady p99 ms",
         "ttft p50 direct s", "ttft p50 backend s", "token events / answer", "backend CPU %", "CPU ms / token",
         "backend peak RSS MB"],
        rows,
    )


def _split_table(title: str, split: dict[str, Any]) -> str:
    per_answer = split["cpu_ms_per_answer"]
    return table(
        f"{title}: CPU of a turn split into fixed and per-token ({split['streams']} streams, {split['rounds']} "
        "rounds per length, alternating)",
        ["load 1m", f"CPU ms / answer of {split['tokens']}", f"CPU ms / answer of {split['long_tokens']}",
         "fixed CPU ms / turn", "marginal CPU ms / token"],
        [[split["load_1m"], per_answer[str(split["tokens"])], per_answer[str(split["long_tokens"])],
          split["fixed_cpu_ms_per_turn"], split["marginal_cpu_ms_per_token"]]],
    )


def _row(results: list[dict[str, Any]], streams: int) -> dict[str, Any] | None:
    return next((r for r in results if r["streams"] == streams), None)


def run(levels: list[int] | None = None, replay_levels: list[int] | None = None, tokens: int = 40,
        token_delay: float = 0.25, rounds: int = 2, split: tuple[int, int] | None = (200, 120),
        profile: Path | None = None) -> str:
    levels = [50, 200, 500] if levels is None else levels
    replay_levels = [50, 200, 500, 1000] if replay_levels is None else replay_levels
    results = _measure(levels, replay_levels, tokens, token_delay, rounds, split, profile)
    common = f"{tokens} tokens per answer, one every {token_delay * 1000:.0f} ms, {rounds} rounds per path and level"
    titles = {
        "real": f"Concurrency through a real Llama Stack 0.7.3 ({common}; one backend process)",
        "replay-responses": f"Concurrency, Responses replay of captured 0.7.3 bytes ({common})",
        "replay-agents": f"Concurrency, Agents replay of captured 0.3.5 bytes ({common})",
    }
    text = "".join(_table(titles[name], rows) for name, rows in results.items() if not name.startswith("split-"))
    for name in ("split-responses", "split-agents"):
        if name in results:
            text += _split_table(f"{name.removeprefix('split-').capitalize()} replay", results[name])

    targets: dict[str, Any] = {}
    lines = []
    replay = results.get("replay-responses")
    if replay:
        at500, top = _row(replay, 500), replay[-1]
        idle = replay[0]["backend_idle_rss_mb"]
        cpu = max(r["backend"]["cpu_ms_per_token"] for r in replay)
        checks = [("idle RSS <= 130 MB", idle <= 130, f"{idle:.1f} MB"),
                  ("CPU per relayed token <= 0.05 ms (worst level, turn costs included)", cpu <= 0.05,
                   f"{cpu:.3f} ms")]
        split_r = results.get("split-responses")
        if split_r:
            marginal = split_r["marginal_cpu_ms_per_token"]
            checks.append((f"marginal CPU per token <= 0.05 ms ({split_r['streams']} streams)", marginal <= 0.05,
                           f"{marginal:.3f} ms; fixed {split_r['fixed_cpu_ms_per_turn']:.2f} ms per turn"))
        if at500:
            checks += [("added p99 gap <= 10 ms at 500 streams", at500["added_gap_p99_ms"] <= 10,
                        f"{at500['added_gap_p99_ms']:.1f} ms; after start-up "
                        f"{at500['added_steady_gap_p99_ms']:.1f} ms; replay read directly "
                        f"{at500['direct']['gap_p99_ms']:.1f} ms; load {at500['load_1m']:.1f}"),
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
                                        "token_delay_s": token_delay, "rounds": rounds, "split": split,
                                        "backend_pythonpath": os.environ.get("BENCH_BACKEND_PYTHONPATH")},
                         "runs": results, "targets": targets})
    return text
