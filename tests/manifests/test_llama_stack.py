"""The Llama Stack manifests: each run config is valid for the Llama Stack version its image pins, every
``${env.X}`` it needs is provided by its Deployment, and the manifests' own configs (Llama Stack's run.yaml
and the backend's config.yaml) serve a real chat together.

Run configs are checked with the real Llama Stack of the pinned version (its own config models, in the
cached venvs that `make llama-stack-venvs` builds), not a copy of their rules.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.manifests.render import MANIFESTS, Obj, container, find, render
from tests.support.backend import BackendProcess
from tests.support.llamastack import llama_stack_venv
from tests.support.model_server import Reply, ScriptedModel
from tests.support.net import argocd_headers, free_port
from tests.support.processes import ServerProcess
from tests.support.sse import answer_text, names, parse

pytestmark = pytest.mark.llamastack

CHECKER = Path(__file__).with_name("llama_stack_check.py")
LLAMA = MANIFESTS / "llama-stack"
# Which API each variant must serve for the backend provider it is meant for.
VARIANTS = {
    "base": ("responses", LLAMA / "base"),
    "vllm": ("responses", LLAMA / "overlays" / "vllm"),
    "postgres": ("responses", LLAMA / "overlays" / "postgres"),
    "legacy-agents": ("agents", LLAMA / "overlays" / "legacy-agents"),
}


def _deployment(objs: list[Obj]) -> Obj:
    return find(objs, "Deployment", "llama-stack")


def _run_config(objs: list[Obj]) -> str:
    text: str = find(objs, "ConfigMap", "llama-stack-run-config")["data"]["run.yaml"]
    return text


def _image_version(objs: list[Obj]) -> str:
    image = container(_deployment(objs)["spec"]["template"]["spec"], "llama-stack")["image"]
    return str(image.rpartition(":")[2])


def _secret_keys(directory: Path, secret: str) -> set[str]:
    """Keys of a Secret the user creates, as the kustomization's own instructions create it."""
    text = (directory / "kustomization.yaml").read_text()
    commands = re.findall(rf"create secret generic {re.escape(secret)}((?:[^\n]|\n#\s+--)*)", text)
    assert commands, f"{directory.name}: no instructions for Secret {secret}"
    return set(re.findall(r"--from-literal=([A-Z0-9_]+)=", " ".join(commands)))


def _placeholder(name: str) -> str:
    if name.endswith("_URL"):
        return "http://placeholder.invalid:8000/v1"
    if name.endswith("_PORT"):
        return "5432"
    return "placeholder"


def _pod_env(directory: Path, objs: list[Obj], *, optional: bool) -> dict[str, str]:
    """The environment the Deployment gives Llama Stack, values replaced by placeholders (``optional``:
    include keys the user may leave out)."""
    c = container(_deployment(objs)["spec"]["template"]["spec"], "llama-stack")
    env: dict[str, str] = {}
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef", {})
        if ref.get("optional") and not optional:
            continue
        env[e["name"]] = e.get("value", _placeholder(e["name"]))
    for source in c.get("envFrom", []):
        for key in _secret_keys(directory, source["secretRef"]["name"]):
            env[key] = _placeholder(key)
    return env


def _check(version: str, run_yaml: str, env: dict[str, str]) -> dict[str, Any]:
    venv = llama_stack_venv(version)
    result = subprocess.run(
        [str(venv / "bin" / "python"), str(CHECKER)],
        input=run_yaml,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"llama-stack {version} rejects the run config:\n{result.stderr[-3000:]}"
    checked: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return checked


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_run_config_is_valid_for_the_pinned_llama_stack(variant: str) -> None:
    api, directory = VARIANTS[variant]
    objs = render(directory)
    version = _image_version(objs)
    # The minimal environment a user provides (optional Secret keys left out) must be enough.
    checked = _check(version, _run_config(objs), _pod_env(directory, objs, optional=False))
    assert api in checked["apis"]
    assert {p["api"] for p in checked["providers"]} >= {"inference", api}


def test_checker_rejects_a_misspelt_provider_key() -> None:
    objs = render(LLAMA / "base")
    broken = _run_config(objs).replace("base_url:", "base_urll:", 1)
    venv = llama_stack_venv(_image_version(objs))
    result = subprocess.run(
        [str(venv / "bin" / "python"), str(CHECKER)],
        input=broken,
        capture_output=True,
        text=True,
        env={"OPENAI_API_KEY": "x", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert result.returncode != 0 and "base_urll" in result.stderr


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_deployment_mounts_what_the_command_reads(variant: str) -> None:
    _, directory = VARIANTS[variant]
    objs = render(directory)
    pod = _deployment(objs)["spec"]["template"]["spec"]
    c = container(pod, "llama-stack")
    command = c["command"]
    assert command[:3] == ["llama", "stack", "run"]
    config_path = Path(command[3])
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    run_cm = find(objs, "ConfigMap", "llama-stack-run-config")
    assert volumes[mounts[str(config_path.parent)]]["configMap"]["name"] == run_cm["metadata"]["name"]
    assert config_path.name in run_cm["data"]
    # `llama stack run` ignores server.port from the file: the flag, the container and the Service agree.
    port = int(command[command.index("--port") + 1])
    (cport,) = c["ports"]
    assert cport["containerPort"] == port
    service = find(objs, "Service", "llama-stack")
    assert service["spec"]["ports"][0]["targetPort"] == cport["name"]
    state_dir = {e["name"]: e.get("value") for e in c["env"]}["STATE_DIR"]
    assert state_dir in mounts
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] == "/v1/health"


def _serve_with_manifest_configs(
    variant: str, provider: str, model: ScriptedModel, tmp_path: Path
) -> tuple[ServerProcess, BackendProcess]:
    """Llama Stack from the variant's rendered run.yaml, the backend from the backend ConfigMap."""
    _, directory = VARIANTS[variant]
    objs = render(directory)
    version = _image_version(objs)
    venv = llama_stack_venv(version)
    state = tmp_path / "llama-stack"
    state.mkdir()
    (state / "run.yaml").write_text(_run_config(objs))
    port = free_port()
    env = _pod_env(directory, objs, optional=True)
    env.update(
        OPENAI_BASE_URL=model.url,  # the optional Secret key, pointing at the scripted model
        STATE_DIR=str(state),  # the pod's /data volume
        TIKTOKEN_CACHE_DIR=str(venv / "tiktoken-cache"),
        LLAMA_STACK_TELEMETRY_DISABLED="1",
    )
    llama = ServerProcess(
        f"llama-stack {version} ({variant} manifests)",
        [str(venv / "bin" / "llama"), "stack", "run", str(state / "run.yaml"), "--port", str(port)],
        health_url=f"http://127.0.0.1:{port}/v1/health",
        log_path=state / "server.log",
        env=env,
        cwd=state,
    )
    llama.start(timeout_s=120)

    backend_objs = render(MANIFESTS / "backend")
    config = yaml.safe_load(find(backend_objs, "ConfigMap", "argocd-assistant-config")["data"]["config.yaml"])
    (tmp_path / "secret").write_text("Bearer e2e\n")
    config = {
        **config,
        "provider": provider,
        "llama_stack": {**config["llama_stack"], "url": f"http://127.0.0.1:{port}"},
        "auth": {**config["auth"], "secret_file": str(tmp_path / "secret")},
        "kubernetes": {**config["kubernetes"], "enabled": False},
    }
    try:
        backend = BackendProcess(config, tmp_path / "backend").start()
    except BaseException:
        llama.stop()
        raise
    return llama, backend


@pytest.mark.parametrize(("variant", "provider"), [("base", "responses"), ("legacy-agents", "agents")])
def test_manifest_configs_serve_a_chat_together(
    variant: str, provider: str, model: ScriptedModel, tmp_path: Path
) -> None:
    llama, backend = _serve_with_manifest_configs(variant, provider, model, tmp_path)
    try:
        with httpx.Client(base_url=backend.url, timeout=60) as http:
            assert http.get("/readyz").status_code == 200, http.get("/readyz").text
            model.script(Reply(text="The Deployment is fine."))
            response = http.post(
                "/v1/chat",
                json={"question": "Is it healthy?"},
                headers=argocd_headers(secret="Bearer e2e"),
            )
        assert response.status_code == 200, response.text
        events = parse(response.text)
        assert names(events)[0] == "start" and names(events)[-1] == "end", names(events)
        assert answer_text(events) == "The Deployment is fine."
    finally:
        backend.stop()
        llama.stop()
