"""A real Llama Stack server (pinned venv, cached) whose inference goes to the scripted model.

Versions are Llama Stack releases (``0.2.24``, ``0.3.5``, ``0.7.3``) or ``ogx-<version>`` for OGX, the
renamed successor: its CLI is ``ogx run`` (not ``llama stack run``) and it refuses plain HTTP unless
given ``--insecure`` (docs/upstream-facts.md, Llama Stack).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from .net import free_port
from .processes import ServerProcess
from .server import Server

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "tests" / "infra"
VERSIONS = ("0.2.24", "0.3.5", "0.7.3", "ogx-1.5.0")


def server_command(version: str, venv: Path, port: int) -> list[str]:
    """The command line that serves ``version``'s test config on ``port`` (both CLIs ignore the
    config file's ``server.port``, so it is passed explicitly)."""
    config = str(INFRA / "llama-stack" / f"run-{version}.yaml")
    if version.startswith("ogx-"):
        return [str(venv / "bin" / "ogx"), "run", config, "--port", str(port), "--insecure"]
    return [str(venv / "bin" / "llama"), "stack", "run", config, "--port", str(port)]


def llama_stack_venv(version: str) -> Path:
    """Create (once, cached under ~/.cache/argocd-assistant) and return the venv for ``version``."""
    result = subprocess.run([str(INFRA / "llama-stack-venv.sh"), version], capture_output=True, text=True,
                            check=False, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"could not create the Llama Stack {version} venv:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


class LlamaStackServer(Server):
    def __init__(self, version: str, model_url: str, state_dir: Path) -> None:
        self.version = version
        self.port = free_port()
        venv = llama_stack_venv(version)
        state_dir.mkdir(parents=True, exist_ok=True)
        self._process = ServerProcess(
            f"llama-stack {version}",
            server_command(version, venv, self.port),
            health_url=f"{self.url}/v1/health",
            log_path=state_dir / "server.log",
            env={
                "OPENAI_BASE_URL": model_url,
                "OPENAI_API_KEY": "sk-scripted",
                "STATE_DIR": str(state_dir),
                "TIKTOKEN_CACHE_DIR": str(venv / "tiktoken-cache"),
                "LLAMA_STACK_TELEMETRY_DISABLED": "1",
                "OGX_TELEMETRY_DISABLED": "1",
            },
            cwd=state_dir,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LlamaStackServer:
        self._process.start(timeout_s=120)
        return self

    def stop(self) -> None:
        self._process.stop()

    def kill(self) -> None:
        self._process.kill()

    @property
    def running(self) -> bool:
        return self._process.running

    def log_tail(self) -> str:
        return self._process.log_tail()


@dataclass(frozen=True)
class Combo:
    """One provider on one running server: what the ``combo`` / ``contract_combo`` fixtures give a test."""

    provider: str
    llama_stack: LlamaStackServer

    @property
    def version(self) -> str:
        return self.llama_stack.version
