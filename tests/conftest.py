"""Shared fixtures: the scripted model, real Llama Stack servers, the real backend, the Argo CD proxy.

Servers are started once per session where they can be shared (the model, one Llama Stack per
version) and per test where a test changes them (a backend with its own config, a Llama Stack a
test kills). A real part that cannot start fails the test with its log; nothing is skipped.

Fixture summary (import nothing, just name them):
- ``model``: the session's :class:`ScriptedModel`, reset before each test.
- ``llama_stack_035`` / ``llama_stack_073`` / ``llama_stack_0224`` / ``llama_stack_ogx150``: session
  :class:`LlamaStackServer` s (started only when a test asks for them).
- ``combo``: parametrised over agents@0.3.5, responses@0.3.5, responses@0.7.3 (use it to run a test
  on every main server/provider pair); ``combo.provider``, ``combo.llama_stack``.
- ``contract_combo``: the same plus the edge versions the chat contract also runs on (agents@0.2.24,
  responses@0.2.24, responses@ogx-1.5.0); only the contract suite uses it, to keep CI's time bounded.
- ``kube_cluster`` / ``fake_kubelet``: one real kube-apiserver (+ etcd, controllers) and test kubelet per
  session (``tests/support/kube.py``).
- ``start_backend(config) -> BackendProcess`` and ``start_proxy(backend_url, **kw) -> ArgoCDProxy``:
  factories that stop what they started at teardown. ``backend_config(...)`` builds a config.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.argocd_proxy import ArgoCDProxy
from tests.support.backend import SECRET, BackendProcess
from tests.support.kube import kube_cluster  # noqa: F401  (session: one real control plane for all folders)
from tests.support.kubelet import fake_kubelet  # noqa: F401
from tests.support.llamastack import LlamaStackServer
from tests.support.model_server import ScriptedModel

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def _model_server() -> Iterator[ScriptedModel]:
    with ScriptedModel() as server:
        yield server


@pytest.fixture
def model(_model_server: ScriptedModel) -> ScriptedModel:
    _model_server.reset()
    return _model_server


def _llama_stack(version: str, model_url: str, tmp_root: Path) -> LlamaStackServer:
    return LlamaStackServer(version, model_url, tmp_root / f"llama-stack-{version}").start()


@pytest.fixture(scope="session")
def llama_stack_035(_model_server: ScriptedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaStackServer]:
    server = _llama_stack("0.3.5", _model_server.url, tmp_path_factory.mktemp("ls035"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def llama_stack_073(_model_server: ScriptedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaStackServer]:
    server = _llama_stack("0.7.3", _model_server.url, tmp_path_factory.mktemp("ls073"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def llama_stack_0224(_model_server: ScriptedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaStackServer]:
    server = _llama_stack("0.2.24", _model_server.url, tmp_path_factory.mktemp("ls0224"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def llama_stack_ogx150(_model_server: ScriptedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaStackServer]:
    server = _llama_stack("ogx-1.5.0", _model_server.url, tmp_path_factory.mktemp("ogx150"))
    yield server
    server.stop()


SERVER_FIXTURES = {
    "0.2.24": "llama_stack_0224",
    "0.3.5": "llama_stack_035",
    "0.7.3": "llama_stack_073",
    "ogx-1.5.0": "llama_stack_ogx150",
}


@dataclass(frozen=True)
class Combo:
    provider: str
    llama_stack: LlamaStackServer

    @property
    def version(self) -> str:
        return self.llama_stack.version


COMBOS = [("agents", "0.3.5"), ("responses", "0.3.5"), ("responses", "0.7.3")]
# The oldest and newest servers we support, run by the chat contract only: the last 0.2.x (Agents at
# /v1/agents, Responses at /v1/openai/v1) and OGX, Llama Stack's renamed successor.
EDGE_COMBOS = [("agents", "0.2.24"), ("responses", "0.2.24"), ("responses", "ogx-1.5.0")]
CONTRACT_COMBOS = COMBOS + EDGE_COMBOS


def _combo(request: pytest.FixtureRequest) -> Combo:
    provider, version = request.param
    return Combo(provider, request.getfixturevalue(SERVER_FIXTURES[version]))


@pytest.fixture(params=COMBOS, ids=[f"{p}@{v}" for p, v in COMBOS])
def combo(request: pytest.FixtureRequest) -> Combo:
    return _combo(request)


@pytest.fixture(params=CONTRACT_COMBOS, ids=[f"{p}@{v}" for p, v in CONTRACT_COMBOS])
def contract_combo(request: pytest.FixtureRequest) -> Combo:
    return _combo(request)


@pytest.fixture
def start_backend(tmp_path: Path) -> Iterator[Callable[..., BackendProcess]]:
    started: list[BackendProcess] = []

    def start(config: dict[str, Any], env: dict[str, str] | None = None) -> BackendProcess:
        backend = BackendProcess(config, tmp_path / f"backend-{len(started)}", env=env).start()
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.stop()


@pytest.fixture
def start_proxy() -> Iterator[Callable[..., ArgoCDProxy]]:
    started: list[ArgoCDProxy] = []

    def start(backend_url: str, **kwargs: Any) -> ArgoCDProxy:
        kwargs.setdefault("secret", SECRET)
        proxy = ArgoCDProxy(backend_url=backend_url, **kwargs).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()
