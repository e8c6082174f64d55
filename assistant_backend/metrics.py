"""Prometheus metrics, in a registry of the app's own (so several apps in one process don't collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "assistant_http_requests", "HTTP requests", ["route", "method", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "assistant_http_request_duration_seconds",
            "Time to the response's first byte",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.llm_calls = Counter(
            "assistant_llm_calls", "Turns sent to Llama Stack", ["provider", "outcome"], registry=r
        )
        self.llm_failures = Counter(
            "assistant_llm_failures", "Failed turns by error code", ["provider", "code"], registry=r
        )
        self.time_to_first_token = Histogram(
            "assistant_llm_time_to_first_token_seconds",
            "From request to the first token",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.llm_tokens = Counter(
            "assistant_llm_tokens", "Tokens reported by Llama Stack", ["provider", "direction"], registry=r
        )
        self.context_tokens = Counter(
            "assistant_context_tokens", "Estimated context tokens sent to the model", registry=r
        )
        self.context_seconds = Histogram(
            "assistant_context_build_seconds",
            "Time to gather and render context",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.active_streams = Gauge("assistant_active_streams", "Answers being streamed now", registry=r)
        self.event_loop_tasks = Gauge(
            "assistant_event_loop_tasks", "asyncio tasks alive, sampled when /metrics is read", registry=r
        )
        self.control_cache_serving = Gauge(
            "assistant_control_cache_serving",
            "1 while the control-plane cache serves this kind (else every question GETs it), sampled "
            "when /metrics is read",
            ["kind"],
            registry=r,
        )
        self.ready = Gauge("assistant_ready", "1 when Llama Stack is reachable and supported", registry=r)
