"""``python -m assistant_backend [--config FILE] [--print-config-schema | --print-openapi]``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

import uvicorn

from . import logs
from .config import AuthConfig, ProviderName, Settings, load_settings
from .errors import ApiError
from .openapi import build_openapi
from .providers.agents import UnsupportedServer, agents_path
from .providers.llamastack import LlamaStack, build_http_client

log = logging.getLogger("assistant_backend")


async def _preflight(settings: Settings) -> None:
    """Refuse at start a Llama Stack that cannot serve the configured provider; an unreachable one
    is fine (the service starts not ready and becomes ready when it answers)."""
    if settings.provider is not ProviderName.AGENTS:
        return
    async with build_http_client(settings.llama_stack) as http:
        try:
            agents_path(await LlamaStack(http).version())
        except UnsupportedServer:
            raise
        except ApiError:
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="argocd-assistant", description=__doc__)
    parser.add_argument("--config", help="YAML config file (also ASSISTANT_CONFIG)")
    parser.add_argument(
        "--print-config-schema", action="store_true", help="print the config JSON schema and exit"
    )
    parser.add_argument(
        "--print-openapi",
        action="store_true",
        help="print the OpenAPI document of /v1/* (as GET /v1/openapi.json serves it) and exit",
    )
    args = parser.parse_args(argv)

    if args.print_config_schema:
        print(json.dumps(Settings.model_json_schema(), indent=2))
        return 0
    if args.print_openapi:
        # Without a config: the defaults (the document depends only on auth.header and the limits).
        shown = (
            load_settings(args.config)
            if args.config
            else Settings(auth=AuthConfig(insecure_allow_no_secret=True))
        )
        print(json.dumps(build_openapi(shown), indent=2))
        return 0
    try:
        settings = load_settings(args.config)
    except Exception as exc:  # ConfigError and anything unreadable: one line, no traceback
        print(str(exc), file=sys.stderr)
        return 2

    logs.configure(settings.server.log_level, settings.server.log_format)
    if settings.auth.resolved_secret() is None:
        log.warning("auth.insecure_allow_no_secret is on: anyone who can reach this port can use it")
    try:
        asyncio.run(_preflight(settings))
    except UnsupportedServer as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2

    from .app import create_app
    from .gc_policy import StreamGc

    uvicorn.run(
        create_app(settings, gc_policy=StreamGc()),
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,  # identity comes from Argo CD's headers, not from X-Forwarded-*
        timeout_keep_alive=75,  # longer than Argo CD's idle connection reuse
        timeout_graceful_shutdown=30,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
