"""What both providers share about Llama Stack: the HTTP client, version, model list, error mapping.

Version facts (checked against real 0.2.12, 0.2.24, 0.3.5, 0.7.3 and OGX 1.5.0 servers; docs/upstream-facts.md,
Llama Stack):
``GET /v1/version`` answers ``{"version": "0.7.3"}``; ``GET /v1/models`` answers
``{data: [{identifier, model_type}]}`` up to 0.3.x and the OpenAI shape ``{data: [{id,
custom_metadata: {model_type}}]}`` from 0.4 on.

Connecting is retried once, and only connecting: httpcore's ``retries`` (in both ``httpx`` and
openai's ``httpx2``) repeats a failed TCP connect (refused, or not accepted within the connect
timeout) and never a request whose bytes were sent, and the streamed answers' aiohttp pool
(:mod:`.transport`) does the same, so a streamed answer cannot be duplicated. A busy Llama Stack
that is slow to accept a connection then costs one retry, not a 503.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx

from ..config import LlamaStackConfig
from ..errors import ApiError, ErrorCode
from .base import Failed, ProviderEvent, UpstreamTurn
from .transport import KEEPALIVE_S, StreamClient

if TYPE_CHECKING:
    import httpx2

log = logging.getLogger(__name__)

_VERSION = re.compile(r"^(\d+)\.(\d+)")

# One more TCP connect attempt after a failed one (httpcore retries immediately, then backs off).
CONNECT_RETRIES = 1
_MAX_CONNECTIONS = 1000
_MAX_KEEPALIVE = 100
# httpx's default keep-alive expiry is 5 s, exactly Llama Stack's (uvicorn's default): a request sent on
# a connection the server is closing at that moment fails ("not reachable", never retried). Expire
# idle connections sooner, as the stream pool does (docs/upstream-facts.md, Llama Stack).
_KEEPALIVE_EXPIRY_S = KEEPALIVE_S


@dataclass(frozen=True, slots=True, order=True)
class Version:
    major: int
    minor: int
    text: str

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION.match(text.strip())
        if not match:
            raise ApiError(
                ErrorCode.LLAMA_STACK_ERROR, f"Llama Stack reported an unreadable version {text!r}"
            )
        return cls(int(match.group(1)), int(match.group(2)), text.strip())

    def at_least(self, major: int, minor: int) -> bool:
        return (self.major, self.minor) >= (major, minor)


def build_http_client(config: LlamaStackConfig) -> httpx.AsyncClient:
    """One pooled client per process; the read timeout bounds every wait for the next chunk."""
    headers = {}
    api_key = config.resolved_api_key()
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    limits = httpx.Limits(
        max_connections=_MAX_CONNECTIONS,
        max_keepalive_connections=_MAX_KEEPALIVE,
        keepalive_expiry=_KEEPALIVE_EXPIRY_S,
    )
    return httpx.AsyncClient(
        base_url=config.url,
        headers=headers,
        timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
        # With a transport given, the client's own `limits` would be ignored: the transport holds them.
        transport=httpx.AsyncHTTPTransport(retries=CONNECT_RETRIES, limits=limits),
    )


def build_openai_http_client() -> httpx2.AsyncClient:
    """The pool for openai's SDK (it runs on httpx2, which cannot share ``httpx``'s pool), with the
    same connect-only retry. The SDK's own ``max_retries`` stays 0: it would resend a request.
    Imported here: only the responses provider loads the SDK (~1 s, ~45 MB)."""
    import httpx2
    import openai

    limits = httpx2.Limits(
        max_connections=_MAX_CONNECTIONS,
        max_keepalive_connections=_MAX_KEEPALIVE,
        keepalive_expiry=_KEEPALIVE_EXPIRY_S,
    )
    return openai.DefaultAsyncHttpxClient(
        transport=httpx2.AsyncHTTPTransport(retries=CONNECT_RETRIES, limits=limits)
    )


class LlamaStack:
    """The server, as far as both providers need it: ``http`` for its JSON calls, ``streams`` for
    the streamed answers (same server, auth header and timeouts; :mod:`.transport`)."""

    def __init__(self, http: httpx.AsyncClient, streams: StreamClient | None = None) -> None:
        self.http = http
        self.streams = streams or StreamClient.like(http)
        self._version: Version | None = None

    async def aclose(self) -> None:
        """Close the stream pool (``http`` belongs to whoever built it)."""
        await self.streams.aclose()

    async def version(self, *, refresh: bool = False) -> Version:
        if self._version is None or refresh:
            data = await self.get_json("/v1/version", timeout_s=5.0)
            self._version = Version.parse(str(data.get("version", "")))
        return self._version

    async def list_models(self) -> list[str]:
        data = await self.get_json("/v1/models")
        models: list[str] = []
        for entry in data.get("data", []):
            if not isinstance(entry, dict):
                continue
            metadata = entry.get("custom_metadata") or entry.get("metadata") or {}
            model_type = entry.get("model_type") or (
                metadata.get("model_type") if isinstance(metadata, dict) else None
            )
            model_id = entry.get("identifier") or entry.get("id")
            if model_id and model_type in (None, "llm"):
                models.append(str(model_id))
        return models

    async def get_json(self, path: str, *, timeout_s: float | None = None) -> dict[str, Any]:
        try:
            response = await self.http.get(path, timeout=timeout_s or httpx.USE_CLIENT_DEFAULT)
        except httpx.HTTPError as exc:
            raise api_error_from(exc) from exc
        if response.status_code >= 400:
            raise ApiError(ErrorCode.LLAMA_STACK_ERROR, f"Llama Stack answered HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise ApiError(
                ErrorCode.LLAMA_STACK_ERROR, "Llama Stack answered something that is not JSON"
            ) from None
        if not isinstance(data, dict):
            raise ApiError(ErrorCode.LLAMA_STACK_ERROR, "Llama Stack answered unexpected JSON")
        return data


def upstream_turn(
    events: AsyncIterator[ProviderEvent], close: Callable[[], Awaitable[None]], what: str
) -> UpstreamTurn:
    """An open turn whose upstream failures (transport, malformed stream) end it with a
    :class:`Failed` event carrying the mapped error, as the provider protocol asks."""
    return UpstreamTurn(_failures_as_events(events, what), close)


async def _failures_as_events(
    events: AsyncIterator[ProviderEvent], what: str
) -> AsyncGenerator[ProviderEvent, None]:
    try:
        async for event in events:
            yield event
    except Exception as exc:
        error = api_error_from(exc)
        log.warning("Llama Stack %s failed: %s", what, type(exc).__name__)
        yield Failed(error.code, error.message)


def api_error_from(exc: BaseException) -> ApiError:
    """Map a transport or SDK failure to the client-facing error; details go to the log only."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, httpx.TimeoutException):
        return ApiError(ErrorCode.LLAMA_STACK_TIMEOUT, "Llama Stack did not answer in time")
    if isinstance(exc, httpx.ConnectError):
        return ApiError(ErrorCode.LLAMA_STACK_UNAVAILABLE, "Llama Stack is not reachable")
    if isinstance(exc, httpx.TransportError):
        return ApiError(ErrorCode.LLAMA_STACK_UNAVAILABLE, "the connection to Llama Stack was lost")
    streamed = _aiohttp_error(exc)
    if streamed is not None:
        return streamed
    # The OpenAI SDK (and httpx2, its transport) are imported only by the responses provider: a
    # process without them cannot have raised their exceptions, so they are not imported here.
    sdk = _sdk_error(exc)
    if sdk is not None:
        return sdk
    if isinstance(exc, ValueError):  # undecodable stream data
        return ApiError(ErrorCode.LLAMA_STACK_ERROR, "Llama Stack sent a malformed stream")
    log.error("unexpected upstream failure", exc_info=exc)
    return ApiError(ErrorCode.LLAMA_STACK_ERROR, "Llama Stack failed")


def _aiohttp_error(exc: BaseException) -> ApiError | None:
    """The streamed answer's aiohttp failures (:mod:`.transport`), the same codes as httpx's: a
    refused connect is unreachable, a connect or read timeout a timeout, a connection or body cut
    short (reset, the server gone mid-stream, a broken chunk) a lost connection.

    A few causes deep, so an aiohttp error wrapped by another layer still reads as itself (openai's
    optional aiohttp transport, for one, turns every ``aiohttp.ClientConnectionError`` into
    ``httpx2.ConnectTimeout``, which would read as a timeout).
    """
    cause: BaseException | None = exc
    for _ in range(4):
        if cause is None:
            return None
        if isinstance(cause, aiohttp.ServerTimeoutError | TimeoutError):
            return ApiError(ErrorCode.LLAMA_STACK_TIMEOUT, "Llama Stack did not answer in time")
        if isinstance(cause, aiohttp.ClientConnectorError):
            return ApiError(ErrorCode.LLAMA_STACK_UNAVAILABLE, "Llama Stack is not reachable")
        if isinstance(cause, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
            return ApiError(ErrorCode.LLAMA_STACK_UNAVAILABLE, "the connection to Llama Stack was lost")
        cause = cause.__cause__
    return None


def _sdk_error(exc: BaseException) -> ApiError | None:
    openai: Any = sys.modules.get("openai")
    httpx2: Any = sys.modules.get("httpx2")
    # openai 3.x speaks httpx2; transport errors during stream iteration arrive unwrapped.
    timeouts = tuple(
        t for t in (getattr(openai, "APITimeoutError", None), getattr(httpx2, "TimeoutException", None)) if t
    )
    if timeouts and isinstance(exc, timeouts):
        return ApiError(ErrorCode.LLAMA_STACK_TIMEOUT, "Llama Stack did not answer in time")
    connects = tuple(
        t for t in (getattr(openai, "APIConnectionError", None), getattr(httpx2, "ConnectError", None)) if t
    )
    if connects and isinstance(exc, connects):
        return ApiError(ErrorCode.LLAMA_STACK_UNAVAILABLE, "Llama Stack is not reachable")
    if httpx2 is not None and isinstance(exc, httpx2.TransportError):
        return ApiError(ErrorCode.LLAMA_STACK_UNAVAILABLE, "the connection to Llama Stack was lost")
    if openai is not None and isinstance(exc, openai.APIStatusError):
        return ApiError(ErrorCode.LLAMA_STACK_ERROR, f"Llama Stack answered HTTP {exc.status_code}")
    if openai is not None and isinstance(exc, openai.APIError):
        return ApiError(ErrorCode.LLAMA_STACK_ERROR, "Llama Stack reported an error while answering")
    return None
