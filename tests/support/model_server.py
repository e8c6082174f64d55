"""A scripted OpenAI-compatible model server: the one stand-in for the model in the tests.

Llama Stack's ``remote::openai`` provider points its ``base_url`` here. It speaks the real wire format
of ``GET /v1/models`` and ``POST /v1/chat/completions`` (streamed ``chat.completion.chunk`` events, a
final usage chunk when ``stream_options.include_usage`` is set, ``data: [DONE]``). Answers are
deterministic; tests can script replies, per-token delays and failures, read the log of what it
received, and see when a client went away before the answer was complete.

It runs in its own thread and event loop, so tests may block without starving it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .net import free_port
from .server import Server
from .threaded import ThreadedServer

_free_port = free_port  # bench/ imports it from here; tests use tests.support.net.free_port

MODELS = ("scripted-model", "scripted-model-b")


@dataclass
class Reply:
    """How the model answers one request. ``text`` is split into tokens at spaces."""

    text: str | None = None  # None: the default answer (echoes the question)
    first_token_delay_s: float = 0.0
    token_delay_s: float = 0.0
    status: int | None = None  # answer this HTTP error instead
    garbage: bool = False  # answer 200 with bytes that are not SSE JSON
    die_after_tokens: int | None = None  # drop the connection after this many tokens
    hang: bool = False  # accept and then never send anything


@dataclass
class Received:
    """One request as the model server saw it."""

    body: dict[str, Any]
    started: float
    finished: float | None = None
    disconnected: bool = False  # the client went away before the answer was complete

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    def text(self) -> str:
        """Everything the model was shown, as one string (for "does it contain" checks)."""
        parts: list[str] = []
        for message in self.messages:
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return "\n".join(parts)


def default_answer(body: dict[str, Any]) -> str:
    """Deterministic, and it names the last question so tests can tell turns apart."""
    last_user = ""
    for message in body.get("messages", []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            last_user = str(content)
    question = last_user.strip().splitlines()[-1] if last_user.strip() else ""
    return f"Scripted answer about: {question[:200]}. Check the events and the image tag."


def _tokens(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


class ScriptedModel(Server):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.received: list[Received] = []
        self._script: list[Reply] = []
        self._default: Reply = Reply()
        self._answer: Callable[[dict[str, Any]], str] = default_answer
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: ThreadedServer | None = None

    # -- control, from any thread --------------------------------------------------------------
    @property
    def url(self) -> str:
        """The OpenAI base URL (with ``/v1``) to give Llama Stack."""
        return f"http://{self.host}:{self.port}/v1"

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order; afterwards the default applies."""
        with self._lock:
            self._script.extend(replies)

    def set_default(self, reply: Reply) -> None:
        with self._lock:
            self._default = reply

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._default = Reply()
            self.received.clear()

    def completions(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self.completions()):
                return True
            time.sleep(0.02)
        return False

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._script.pop(0) if self._script else self._default

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> ScriptedModel:
        self._server = ThreadedServer(self._app(), self.host, self.port, "scripted-model")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    # -- the HTTP side --------------------------------------------------------------------------
    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/models/{model_id:path}", self._model, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "tests"} for m in MODELS]
        return JSONResponse({"object": "list", "data": data})

    async def _model(self, request: Request) -> Response:
        model_id = request.path_params["model_id"]
        if model_id not in MODELS:
            return JSONResponse({"error": {"message": "model not found", "type": "invalid_request_error"}}, 404)
        return JSONResponse({"id": model_id, "object": "model", "created": 1700000000, "owned_by": "tests"})

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        record = Received(body=body, started=time.monotonic())
        with self._lock:
            self.received.append(record)
        reply = self._next_reply()
        model = body.get("model", MODELS[0])
        if model not in MODELS:
            record.finished = time.monotonic()
            return JSONResponse(
                {"error": {"message": f"The model `{model}` does not exist", "type": "invalid_request_error",
                           "code": "model_not_found"}},
                status_code=404,
            )
        if reply.status is not None:
            record.finished = time.monotonic()
            return JSONResponse({"error": {"message": "scripted failure", "type": "server_error"}},
                                status_code=reply.status)
        text = reply.text if reply.text is not None else self._answer(body)
        completion_id = f"chatcmpl-{next(self._ids)}"
        prompt_tokens = len(record.text().split())
        if not body.get("stream"):
            record.finished = time.monotonic()
            return JSONResponse({
                "id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(_tokens(text)),
                          "total_tokens": prompt_tokens + len(_tokens(text))},
            })
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        stream = self._stream(request, record, reply, completion_id, model, text, prompt_tokens, include_usage)
        return StreamingResponse(stream, media_type="text/event-stream")

    async def _stream(
        self, request: Request, record: Received, reply: Reply, completion_id: str, model: str, text: str,
        prompt_tokens: int, include_usage: bool,
    ) -> AsyncIterator[bytes]:
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None,
                  choices: bool = True) -> bytes:
            payload: dict[str, Any] = {
                "id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [],
            }
            if usage is not None:
                payload["usage"] = usage
            return f"data: {json.dumps(payload)}\n\n".encode()

        tokens = _tokens(text)
        try:
            if reply.hang:
                await asyncio.sleep(3600)
            if reply.first_token_delay_s:
                await asyncio.sleep(reply.first_token_delay_s)
            if reply.garbage:
                yield b"data: {this is not json\n\n<html>502 Bad Gateway</html>\n"
                record.finished = time.monotonic()
                return
            yield chunk({"role": "assistant", "content": ""})
            for index, token in enumerate(tokens):
                if reply.die_after_tokens is not None and index >= reply.die_after_tokens:
                    raise ConnectionAbortedError("scripted connection drop")
                if reply.token_delay_s and index:
                    await asyncio.sleep(reply.token_delay_s)
                yield chunk({"content": token})
            yield chunk({}, finish="stop")
            if include_usage:
                yield chunk({}, usage={"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens),
                                       "total_tokens": prompt_tokens + len(tokens)}, choices=False)
            yield b"data: [DONE]\n\n"
            record.finished = time.monotonic()
        except (asyncio.CancelledError, GeneratorExit):
            # The client (Llama Stack) closed the connection before the answer was complete.
            record.disconnected = True
            record.finished = time.monotonic()
            raise


def main() -> None:  # `python -m tests.support.model_server` for manual runs
    import argparse

    parser = argparse.ArgumentParser(description="scripted OpenAI-compatible model server")
    parser.add_argument("--port", type=int, default=8999)
    args = parser.parse_args()
    server = ScriptedModel(port=args.port).start()
    print(f"scripted model at {server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
