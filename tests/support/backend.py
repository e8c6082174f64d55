"""The real backend, started as its own process from a config dict, as it runs in production."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from .net import SECRET, free_port
from .processes import ServerProcess
from .server import Server

__all__ = ["SECRET", "UNLIMITED", "BackendProcess", "backend_config"]

UNLIMITED = {"requests_per_minute": 0, "max_streams_per_user": 0}  # `limits=UNLIMITED`: no per-user limits


def backend_config(llama_stack_url: str, provider: str = "responses", **sections: Any) -> dict[str, Any]:
    """A config with test defaults; ``sections`` are merged one level deep (e.g. ``limits={...}``)."""
    config: dict[str, Any] = {
        "provider": provider,
        "llama_stack": {"url": llama_stack_url, "timeout_s": 30},
        "auth": {"secret": SECRET},
        "kubernetes": {"enabled": False},
        "server": {"log_format": "json", "readiness_cache_s": 0},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


class BackendProcess(Server):
    def __init__(self, config: dict[str, Any], workdir: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        config = {**config, "server": {**config.get("server", {}), "host": "127.0.0.1", "port": self.port}}
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self._process = ServerProcess(
            "backend",
            [sys.executable, "-m", "assistant_backend", "--config", str(self.config_path)],
            health_url=f"{self.url}/healthz",
            log_path=workdir / "backend.log",
            env=env,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The backend's process id (it must be running)."""
        process = self._process.process
        assert process is not None, "the backend was never started"
        return process.pid

    def start(self) -> BackendProcess:
        self._process.start(timeout_s=30)
        return self

    def stop(self) -> None:
        self._process.stop()

    def log(self) -> str:
        return self._process.log_path.read_text(errors="replace")
