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
- ``kube_cluster`` / ``fake_kubelet``: one real kube-apiserver (+ etcd, controllers, scheduler) and test
  kubelet per session (``tests/support/kube.py``, ``tests/support/kubelet.py``).
- ``start_backend(config) -> BackendProcess`` and ``start_proxy(backend_url, **kw) -> ArgoCDProxy``:
  factories that stop what they started at teardown. ``backend_config(...)`` builds a config.

The tier check (:func:`pytest_collection_modifyitems`): a test that uses a real part's fixture carries
that part's marker, a test in ``tests/kube``, ``tests/llamastack`` or ``tests/browser`` carries the
folder's marker, and ``tests/unit`` / ``tests/api`` carry none. A mismatch stops the run before any test
(see tests/README.md, "Where a new test goes").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.argocd_proxy import ArgoCDProxy
from tests.support.backend import SECRET, BackendProcess
from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet
from tests.support.llamastack import Combo, LlamaStackServer
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


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler, shared by the session."""
    with KubeCluster(tmp_path_factory.mktemp("kube"), controllers=True, scheduler=True) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def fake_kubelet() -> Iterator[FakeKubelet]:
    with FakeKubelet() as kubelet:
        yield kubelet


# ---- the tier check ------------------------------------------------------------------------------
# The fixtures that start (or depend on) a real part, by the marker a test using them must carry.
# ``item.fixturenames`` is the closure, so a module's own fixture built on ``kube_cluster`` counts too.
REAL_PART_FIXTURES = {
    "llamastack": {"llama_stack_035", "llama_stack_073", "llama_stack_0224", "llama_stack_ogx150",
                   "combo", "contract_combo"},
    "kube": {"kube_cluster", "static_kube_cluster", "fake_kubelet"},
    "browser": {"chromium"},
}
TIER_MARKERS = {"kube": "kube", "llamastack": "llamastack", "browser": "browser"}  # folder -> marker
IN_PROCESS_TIERS = {"unit", "api"}  # nothing real but loopback stand-ins


def tier_problems(item: pytest.Item) -> list[str]:
    """What is wrong with where ``item`` is and which markers it carries (empty: nothing)."""
    path = Path(str(item.path)).resolve()
    folder = path.relative_to(ROOT / "tests").parts[0] if path.is_relative_to(ROOT / "tests") else ""
    markers = {m.name for m in item.iter_markers()} & set(REAL_PART_FIXTURES)
    used = set(getattr(item, "fixturenames", ()))  # pytest.Function's; other items have none
    problems = [
        f"uses {sorted(fixtures & used)} but is not marked {marker!r}"
        for marker, fixtures in REAL_PART_FIXTURES.items()
        if fixtures & used and marker not in markers
    ]
    if folder in TIER_MARKERS and TIER_MARKERS[folder] not in markers:
        problems.append(f"is in tests/{folder}/ but not marked {TIER_MARKERS[folder]!r}")
    if folder in IN_PROCESS_TIERS and markers:
        problems.append(f"is in the in-process tier tests/{folder}/ but marked {sorted(markers)}: move it")
    return problems


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    wrong = [f"{item.nodeid} {problem}" for item in items for problem in tier_problems(item)]
    if wrong:
        raise pytest.UsageError("tests in the wrong tier (see tests/README.md):\n  " + "\n  ".join(wrong))
