"""The Starlette app: routes, the lifespan that creates every client once, and error answers."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import logs, wire
from .catalogue import ModelCatalogue
from .chat import ChatService
from .config import Settings, load_settings
from .context.base import CachedSource, ContextSource
from .context.factory import build_context_source
from .conversations import Handles
from .errors import ApiError, ErrorCode
from .gc_policy import StreamGc
from .identity import Caller, caller_from_headers, check_secret
from .limits import UserLimits
from .metrics import Metrics
from .openapi import build_openapi
from .providers import Provider, build_provider
from .providers.llamastack import build_http_client
from .readiness import Readiness
from .requests import check_chat_size, parse_chat, parse_json, read_body
from .stream import TurnResponse

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass
class Services:
    """Everything a request needs, created once per process in the lifespan."""

    settings: Settings
    secret: str | None  # resolved once at start: no file read per request
    provider: Provider
    context: ContextSource
    handles: Handles
    catalogue: ModelCatalogue
    readiness: Readiness
    chat: ChatService
    limits: UserLimits
    gc: StreamGc | None  # the collector policy of a served process (None in-process: tests)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _authenticate(request: Request) -> Caller:
    services = _services(request)
    check_secret(request.headers, services.settings.auth.header, services.secret)
    return caller_from_headers(request.headers)


# ---- handlers -----------------------------------------------------------------------------------
async def chat(request: Request) -> Response:
    caller = _authenticate(request)
    services = _services(request)
    limits = services.settings.limits
    # Everything this turn holds goes on one stack: unwound here if the turn is refused before it
    # streams, else handed to the response, which closes it however the stream ends.
    async with AsyncExitStack() as resources:
        slot = services.limits.admit(*caller.limit_keys)  # 429 before the body is even read
        resources.callback(slot.release)
        if services.gc is not None:  # no full collection while this stream is open (gc_policy.py)
            services.gc.opened()
            resources.callback(services.gc.closed)
        # Attachments have their own limit on top of the body's (limits.max_attachments_bytes).
        body = await read_body(
            request, limits.max_body_bytes + limits.max_attachments_bytes, limits.body_read_timeout_s
        )
        raw = parse_json(body)
        check_chat_size(len(body), raw, limits.max_body_bytes, limits.max_attachments_bytes)
        turn = await services.chat.prepare(caller, parse_chat(raw, limits.max_question_chars))
        resources.push_async_callback(turn.upstream.aclose)
        resources = resources.pop_all()
    log.info(
        "chat turn",
        extra={
            "user": caller.username,
            "user_id": caller.user_id,
            "application": caller.application,
            "model": turn.model,
            "context_tokens": turn.bundle.tokens_total,
        },
    )
    return TurnResponse(services.chat.events(turn), resources, ping=services.settings.server.heartbeat_s)


async def get_conversation(request: Request) -> Response:
    caller = _authenticate(request)
    services = _services(request)
    handle = request.path_params["conversation_id"]
    conversation = services.handles.open(caller, handle, services.provider.name)
    turns = await services.provider.turns(conversation.state)
    return _json(
        wire.Conversation(
            conversation_id=handle,
            model=conversation.model,
            turns=[wire.StoredTurn(question=t.question, answer=t.answer) for t in turns],
        )
    )


async def delete_conversation(request: Request) -> Response:
    caller = _authenticate(request)
    services = _services(request)
    conversation = services.handles.open(
        caller, request.path_params["conversation_id"], services.provider.name
    )
    await services.provider.forget(conversation.state)
    return Response(status_code=204)


async def conversation(request: Request) -> Response:
    if request.method == "DELETE":
        return await delete_conversation(request)
    return await get_conversation(request)


async def list_models(request: Request) -> Response:
    _authenticate(request)
    catalogue = _services(request).catalogue
    models = await catalogue.models()
    default = await catalogue.default()
    return _json(wire.Models(models=[wire.ModelInfo(id=m, default=m == default) for m in models]))


async def openapi_schema(request: Request) -> Response:
    services = _services(request)
    check_secret(request.headers, services.settings.auth.header, services.secret)
    return JSONResponse(build_openapi(services.settings))


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services = _services(request)
    status = await services.readiness.status()
    if not status.ready:
        return _error_response(ApiError(ErrorCode.NOT_READY, status.reason))
    return JSONResponse(
        {"status": "ready", "provider": services.provider.name, "llama_stack_version": status.version}
    )


async def metrics(request: Request) -> Response:
    metrics_: Metrics = request.app.state.metrics
    # Sampled at scrape time: a count that only grows under steady load is a task leak.
    metrics_.event_loop_tasks.set(len(asyncio.all_tasks()))
    context = _services(request).context
    if isinstance(context, CachedSource):
        for kind, serving in context.cache_serving().items():
            metrics_.control_cache_serving.labels(kind).set(1 if serving else 0)
    return Response(generate_latest(metrics_.registry), media_type=CONTENT_TYPE_LATEST)


# ---- errors -------------------------------------------------------------------------------------
def _json(body: BaseModel, status_code: int = 200, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code, headers=headers)


def _error_response(error: ApiError) -> JSONResponse:
    return _json(wire.ErrorResponse.of(error.code, error.message), error.status, error.headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if exc.status >= 500:
        log.warning("request failed: %s", exc.code.value)
    return _error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
        exc.status_code, ErrorCode.INVALID_REQUEST
    )
    message = {404: "no such endpoint", 405: "method not allowed"}.get(exc.status_code, "bad request")
    return _json(wire.ErrorResponse.of(code, message), exc.status_code, exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return _error_response(ApiError(ErrorCode.INTERNAL, "internal error"))


# ---- middleware ---------------------------------------------------------------------------------
class RequestContext:
    """Request id (honoured from X-Request-Id when sane), access log, request metrics. Pure ASGI so
    streamed responses pass through untouched."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = logs.request_id.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
                route = _route_of(scope)
                self.metrics.request_seconds.labels(route, scope["method"]).observe(
                    time.perf_counter() - started
                )
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = _route_of(scope)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            if route not in ("/healthz", "/readyz", "/metrics"):
                log.info(
                    "%s %s %s",
                    scope["method"],
                    route,
                    status,
                    extra={"status": status, "duration_ms": int((time.perf_counter() - started) * 1000)},
                )
            logs.request_id.reset(token)


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


# ---- factory ------------------------------------------------------------------------------------
async def _start(
    settings: Settings,
    metrics_: Metrics,
    provider: Provider | None,
    context: ContextSource | None,
    owned: AsyncExitStack,
    gc_policy: StreamGc | None,
) -> Services:
    """Create every client once; what is created here is pushed on ``owned`` to close at shutdown."""
    secret = settings.auth.resolved_secret()
    if provider is None:
        http = build_http_client(settings.llama_stack)
        owned.push_async_callback(http.aclose)
        provider = build_provider(settings, http)
        owned.push_async_callback(provider.aclose)
    if context is None:
        context = build_context_source(settings)
        owned.push_async_callback(context.aclose)
    handles = Handles(secret, max_age_s=settings.conversations.max_age_days * 86400)
    catalogue = ModelCatalogue(provider, settings.llama_stack.model)
    readiness = Readiness(provider, catalogue, metrics_, settings.server.readiness_cache_s)
    chat_service = ChatService(settings, provider, context, handles, catalogue, metrics_)
    services = Services(
        settings,
        secret,
        provider,
        context,
        handles,
        catalogue,
        readiness,
        chat_service,
        UserLimits(settings.limits),
        gc_policy,
    )
    status = await readiness.status()
    if not status.ready:
        log.warning(
            "not ready: %s. The service runs and turns ready when Llama Stack at %s answers "
            "(start one for development with `make llama-stack`).",
            status.reason,
            settings.llama_stack.url,
        )
    return services


def create_app(
    settings: Settings | None = None,
    *,
    provider: Provider | None = None,
    context: ContextSource | None = None,
    gc_policy: StreamGc | None = None,
) -> Starlette:
    """The app. ``provider`` and ``context`` replace the ones the settings describe (tests run the
    HTTP API in-process against fakes this way); the app closes only what it built itself.
    ``gc_policy`` takes the garbage collector over once start-up is done (``python -m
    assistant_backend`` gives one; it is process-wide, so in-process tests leave it out)."""
    settings = settings or load_settings()
    metrics_ = Metrics()
    given_provider, given_context = provider, context

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as owned:
            app.state.services = await _start(
                settings, metrics_, given_provider, given_context, owned, gc_policy
            )
            if gc_policy is not None:
                gc_policy.start()
                owned.callback(gc_policy.stop)
                watcher = asyncio.create_task(gc_policy.run(), name="gc-policy")
                owned.callback(watcher.cancel)
            yield

    app = Starlette(
        routes=[
            Route("/v1/chat", chat, methods=["POST"]),
            # One route for both methods, so a 405 on this path lists both in its Allow header.
            Route("/v1/conversations/{conversation_id}", conversation, methods=["GET", "DELETE"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/openapi.json", openapi_schema, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _unexpected},
        lifespan=lifespan,
    )
    app.state.metrics = metrics_
    app.add_middleware(RequestContext, metrics=metrics_)
    return app
