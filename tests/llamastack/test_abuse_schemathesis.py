"""Schemathesis against the running backend, from the schema it publishes at /v1/openapi.json.

Every check schemathesis has (``--checks all``): no 5xx, status codes, content types and bodies
(JSON and each SSE event) as documented, invalid data refused, valid data accepted, Allow headers
on 405. Identity headers are valid and fixed (the hostile-request table covers header attacks), so
the fuzzing goes into bodies and paths. ``FUZZ_EXAMPLES`` (default 100 per operation) and
``FUZZ_SEED`` make longer or reproducible runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant_backend.errors import STATUS, ErrorCode
from tests.support.backend import UNLIMITED, BackendProcess, backend_config
from tests.support.llamastack import LlamaStackServer
from tests.support.net import argocd_headers

pytestmark = [pytest.mark.llamastack, pytest.mark.fuzz]

HERE = Path(__file__).resolve().parent
FUZZ_IDENTITY = argocd_headers(Argocd_User_Id="alice-id", Argocd_User_Groups="dev")


@pytest.fixture(scope="module")
def fuzz_backend(llama_stack_073: LlamaStackServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    config = backend_config(llama_stack_073.url, "responses", limits=UNLIMITED)
    with BackendProcess(config, tmp_path_factory.mktemp("fuzz")) as backend:
        yield backend


def test_schema_is_published_to_argo_cd_only(fuzz_backend: BackendProcess) -> None:
    assert httpx.get(f"{fuzz_backend.url}/v1/openapi.json").status_code == 401
    schema = httpx.get(f"{fuzz_backend.url}/v1/openapi.json", headers=argocd_headers()).json()
    assert schema["openapi"].startswith("3.1")
    assert set(schema["paths"]) == {"/v1/chat", "/v1/conversations/{conversation_id}", "/v1/models"}
    codes = schema["components"]["schemas"]["ErrorCode"]["enum"]
    assert codes == [code.value for code in ErrorCode]
    chat_statuses = {int(s) for s in schema["paths"]["/v1/chat"]["post"]["responses"]}
    client_facing = set(STATUS.values()) - {405}  # 405 is the router's, on any path
    assert client_facing <= chat_statuses, client_facing - chat_statuses


@pytest.mark.timeout(900)  # ~1,300 generated requests: 25 s idle, 2 minutes on a busy 2-core CI box
def test_schemathesis_finds_nothing(fuzz_backend: BackendProcess, artifacts_dir: Path, tmp_path: Path) -> None:
    report = artifacts_dir / "schemathesis-junit.xml"
    argv = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(HERE / "schemathesis.toml"),
        "run", f"{fuzz_backend.url}/v1/openapi.json", "--checks", "all",
        "--max-examples", os.environ.get("FUZZ_EXAMPLES", "100"), "--workers", "2",
        "--report", "junit", "--report-junit-path", str(report), "--output-truncate", "true",
    ]
    if os.environ.get("FUZZ_SEED"):
        argv += ["--seed", os.environ["FUZZ_SEED"]]
    for name, value in FUZZ_IDENTITY.items():
        argv += ["--header", f"{name}: {value}"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path,
                            env={**os.environ, "NO_COLOR": "1"})  # its cache dir goes to tmp_path
    summary = result.stdout[-6000:]
    assert result.returncode == 0, f"schemathesis found problems (junit: {report}):\n{summary}\n{result.stderr[-2000:]}"
    assert " passed" in summary and "generated" in summary, summary
