"""What every benchmark needs: the real parts started as processes, clients that time a stream the
same way on both paths, percentiles, tables and the JSON results."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from assistant_backend.config import Settings
from assistant_backend.context.reference import ReferenceContext
from assistant_backend.identity import Caller
from assistant_backend.providers.base import context_message
from tests.support.argocd_proxy import ArgoCDProxy
from tests.support.backend import SECRET, BackendProcess, backend_config
from tests.support.llamastack import LlamaStackServer
from tests.support.net import argocd_headers, free_port
from tests.support.processes import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
WORK = Path(os.environ.get("BENCH_WORKDIR", "/tmp/argocd-assistant-bench"))
# What Argo CD's proxy sends for alice (the secret is added where a request goes straight to the backend).
IDENTITY = argocd_headers(application="argocd:guestbook", secret=None)
QUESTION = "Why is the Deployment web Degraded?"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    cells = [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    out = [f"\n### {title}\n", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                **data}, indent=2))
    return path


@dataclass
class Stack:
    """Model process -> real Llama Stack -> backend -> test Argo CD proxy, all on loopback."""

    model_url: str
    llama_stack: LlamaStackServer
    backend: BackendProcess
    proxy: ArgoCDProxy

    @property
    def backend_pid(self) -> int:
        process = self.backend._process.process
        assert process is not None
        return process.pid


@contextmanager
def model_process(tokens: int, token_delay: float, first_delay: float, tag: str) -> Iterator[str]:
    port = free_port()
    process = ServerProcess(
        "bench model",
        [sys.executable, "-m", "bench.model_proc", "--port", str(port), "--tokens", str(tokens),
         "--token-delay", str(token_delay), "--first-delay", str(first_delay)],
        health_url=f"http://127.0.0.1:{port}/v1/models", log_path=WORK / tag / "model.log", cwd=ROOT,
    )
    process.start(timeout_s=30)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.stop()


def backend_env() -> dict[str, str] | None:
    """``BENCH_BACKEND_PYTHONPATH``: run the backend from another checkout, for an A/B of two versions
    of the backend under the same benchmark code (``git archive REV | tar -x -C /tmp/before``)."""
    other = os.environ.get("BENCH_BACKEND_PYTHONPATH")
    return {"PYTHONPATH": other} if other else None


@contextmanager
def stack(tag: str, *, tokens: int, token_delay: float, first_delay: float = 0.0,
          version: str = "0.7.3", provider: str = "responses", **backend_sections: Any) -> Iterator[Stack]:
    workdir = WORK / tag
    with model_process(tokens, token_delay, first_delay, tag) as model_url:
        llama = LlamaStackServer(version, model_url, workdir / "llama-stack").start()
        try:
            sections = {"limits": {"requests_per_minute": 0, "max_streams_per_user": 0},
                        "server": {"log_level": "warning", "log_format": "json", "readiness_cache_s": 5},
                        **backend_sections}
            backend = BackendProcess(backend_config(llama.url, provider, **sections), workdir / "backend",
                                     env=backend_env()).start()
            try:
                proxy = ArgoCDProxy(backend_url=backend.url, secret=SECRET).start()
                try:
                    yield Stack(model_url, llama, backend, proxy)
                finally:
                    proxy.stop()
            finally:
                backend.stop()
        finally:
            llama.stop()


async def responses_request(model: str) -> dict[str, Any]:
    """The request the backend's responses provider sends for a first turn about the Application
    with no Kubernetes access: the same instructions, context message and question."""
    settings = Settings(auth={"insecure_allow_no_secret": True})
    caller = Caller(username="alice", app_namespace="argocd", app_name="guestbook", project="default")
    bundle = (await ReferenceContext(settings.context.token_budget).build(caller, None, QUESTION)).text
    return {
        "model": model,
        "input": [{"role": "user", "content": context_message(bundle)}, {"role": "user", "content": QUESTION}],
        "instructions": settings.instructions,
        "temperature": settings.llama_stack.temperature,
        "max_output_tokens": settings.llama_stack.max_tokens,
        "store": True,
        "stream": True,
    }


class ProcessSampler:
    """CPU seconds and peak RSS of a process over a window, sampled every ``every_s``."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak_rss = 0
        self._cpu0 = 0.0
        self._t0 = 0.0

    def start(self) -> None:
        times = self.process.cpu_times()
        self._cpu0, self._t0 = times.user + times.system, time.monotonic()
        self.peak_rss = self.process.memory_info().rss

    def sample(self) -> None:
        self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)

    def cpu_percent(self) -> float:
        return 100 * self.cpu_seconds() / max(time.monotonic() - self._t0, 1e-9)

    def load(self) -> float:
        """The machine's 1-minute load average (other users' work shares the cores with ours)."""
        return os.getloadavg()[0]

    def cpu_seconds(self) -> float:
        """CPU (user + system) the process spent since :meth:`start`."""
        times = self.process.cpu_times()
        return times.user + times.system - self._cpu0


def llama_models(url: str) -> str:
    data = httpx.get(f"{url}/v1/models", timeout=30).json()["data"]
    ids = [m.get("identifier") or m.get("id") for m in data]
    return next(i for i in ids if i and "scripted-model" in i and not i.endswith("-b"))


@dataclass
class Timing:
    ok: bool
    ttft: float = float("nan")
    total: float = float("nan")
    gaps: list[float] = field(default_factory=list)
    first_at: float = float("nan")  # perf_counter() of the first token event
    arrivals: list[float] = field(default_factory=list)  # perf_counter() of each token event after the first
    tokens: int = 0
    error: str = ""


def _direct_kind(data: dict[str, Any]) -> tuple[bool, bool, bool]:
    """(token, end, error) for one data line of Llama Stack's own streams, Responses or Agents."""
    if "type" in data:
        kind = data["type"]
        return kind == "response.output_text.delta", kind == "response.completed", kind in ("response.failed", "error")
    if "error" in data:
        return False, False, True
    payload = data.get("event", {}).get("payload", {})
    kind = payload.get("event_type")
    return (kind == "step_progress" and payload.get("delta", {}).get("type") == "text",
            kind == "turn_complete", False)


async def timed_stream(client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str],
                       *, direct: bool) -> Timing:
    """Time one streamed answer at the client: first token, gaps between tokens, end.

    ``direct``: Llama Stack's Responses or Agents stream (``response.output_text.delta`` /
    ``completed``, ``step_progress`` / ``turn_complete``); otherwise the backend's SSE (``token`` / ``end``).
    A backend ``token`` event may carry several model tokens (coalesced): the gap is between events."""
    started = time.perf_counter()
    last: float | None = None
    timing = Timing(ok=False)
    event_name = ""
    try:
        async with client.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code != 200:
                await response.aread()
                timing.error = f"HTTP {response.status_code}"
                return timing
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event_name = line[6:].strip()
                    continue
                if not line.startswith("data:"):
                    continue
                if direct:
                    is_token, is_end, is_error = _direct_kind(json.loads(line[5:]))
                else:
                    is_token, is_end, is_error = event_name == "token", event_name == "end", event_name == "error"
                now = time.perf_counter()
                if is_token:
                    if last is None:
                        timing.ttft, timing.first_at = now - started, now
                    else:
                        timing.gaps.append(now - last)
                        timing.arrivals.append(now)
                    last = now
                    timing.tokens += 1
                elif is_end:
                    timing.total, timing.ok = now - started, True
                    return timing
                elif is_error:
                    timing.error = line[5:200]
                    return timing
    except httpx.HTTPError as exc:
        timing.error = type(exc).__name__
    timing.error = timing.error or "closed before the end"
    return timing
