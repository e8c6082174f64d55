"""The backend manifests are wired together correctly and to the real application.

Static checks tie every name to one home (the Service, the ConfigMap's config, pyproject's version, the
Containerfile); then the backend is started as the Deployment would start it, with the ConfigMap's own
config, to prove the probes, metrics and shared-secret wiring exist in the real app.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jsonschema
import pytest
import yaml

from assistant_backend.config import load_settings
from tests.manifests.render import MANIFESTS, ROOT, Obj, backend_version, container, find, render
from tests.support.backend import BackendProcess

CONFIG_PATH = "/etc/argocd-assistant/config.yaml"


@pytest.fixture(scope="module")
def objs() -> list[Obj]:
    return render(MANIFESTS / "backend")


@pytest.fixture(scope="module")
def config(objs: list[Obj]) -> dict[str, Any]:
    text = find(objs, "ConfigMap", "argocd-assistant-config")["data"]["config.yaml"]
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def _pod(objs: list[Obj]) -> Obj:
    pod: Obj = find(objs, "Deployment", "argocd-assistant")["spec"]["template"]
    return pod


def _mounted_file(pod_spec: Obj, c: Obj, path: str) -> tuple[Obj, str]:
    """The volume and the key inside it that put a file at ``path`` in container ``c``."""
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    for mount in c["volumeMounts"]:
        if mount.get("subPath") and mount["mountPath"] == path:
            return volumes[mount["name"]], mount["subPath"]
        prefix = mount["mountPath"].rstrip("/") + "/"
        if not mount.get("subPath") and path.startswith(prefix):
            volume, rest = volumes[mount["name"]], path[len(prefix) :]
            items = (volume.get("secret") or volume.get("configMap") or {}).get("items")
            if items:
                (key,) = [i["key"] for i in items if i["path"] == rest]
                return volume, key
            return volume, rest
    raise AssertionError(f"nothing mounts {path}")


def test_config_matches_the_backends_own_schema(config: dict[str, Any]) -> None:
    """Unknown keys fail start-up: check against the schema the backend prints for itself."""
    out = subprocess.run(
        [sys.executable, "-m", "assistant_backend", "--print-config-schema"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    jsonschema.validate(config, json.loads(out))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**config, "llama_stak": {}}, json.loads(out))


def test_config_loads_with_the_mounted_secret(config: dict[str, Any], tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("Bearer from-a-secret\n")
    local = {**config, "auth": {**config["auth"], "secret_file": str(secret)}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(local))
    settings = load_settings(path)
    assert settings.auth.resolved_secret() == "Bearer from-a-secret"
    assert settings.server.host == "0.0.0.0"  # reachable through the Service, not loopback only


def test_deployment_runs_the_config_and_secret_it_mounts(objs: list[Obj], config: dict[str, Any]) -> None:
    pod = _pod(objs)["spec"]
    backend = container(pod, "backend")
    assert backend["args"] == ["--config", CONFIG_PATH]
    volume, key = _mounted_file(pod, backend, CONFIG_PATH)
    assert (
        volume["configMap"]["name"] == find(objs, "ConfigMap", "argocd-assistant-config")["metadata"]["name"]
    )
    assert key == "config.yaml"
    volume, key = _mounted_file(pod, backend, config["auth"]["secret_file"])
    assert (volume["secret"]["secretName"], key) == ("argocd-assistant-auth", "secret")
    assert config["auth"].get("secret") is None  # the secret lives in a Secret, never in the ConfigMap


def test_ports_probes_and_selectors_agree(objs: list[Obj], config: dict[str, Any]) -> None:
    template = _pod(objs)
    labels = template["metadata"]["labels"]
    backend = container(template["spec"], "backend")
    (port,) = backend["ports"]
    assert port["containerPort"] == config["server"]["port"] == 8080
    assert backend["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert backend["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert template["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port["containerPort"])

    service = find(objs, "Service", "argocd-assistant")
    assert service["spec"]["selector"].items() <= labels.items()
    (sport,) = service["spec"]["ports"]
    assert (sport["port"], sport["targetPort"]) == (8080, port["name"])

    deployment = find(objs, "Deployment", "argocd-assistant")
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    pdb = find(objs, "PodDisruptionBudget", "argocd-assistant")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]

    policy = find(objs, "NetworkPolicy", "argocd-assistant")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    (rule,) = policy["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "argocd-server"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": port["containerPort"]}]


def test_service_account_binding_and_namespace(objs: list[Obj], config: dict[str, Any]) -> None:
    namespaced = [o for o in objs if o["kind"] not in {"ClusterRole", "ClusterRoleBinding"}]
    assert {o["metadata"]["namespace"] for o in namespaced} == {config["kubernetes"]["argocd_namespace"]}
    sa = find(objs, "ServiceAccount", "argocd-assistant")
    assert _pod(objs)["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    binding = find(objs, "ClusterRoleBinding", "argocd-assistant-read")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "argocd-assistant", "namespace": "argocd"}
    ]
    assert (
        binding["roleRef"]["name"] == find(objs, "ClusterRole", "argocd-assistant-read")["metadata"]["name"]
    )
    assert config["kubernetes"]["kubeconfig"] is None  # in-cluster: the ServiceAccount above


def test_cluster_role_is_read_only_without_secrets(objs: list[Obj]) -> None:
    rules = find(objs, "ClusterRole", "argocd-assistant-read")["rules"]
    for rule in rules:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
        assert "secrets" not in rule["resources"] and "*" not in rule["resources"], rule
        assert "*" not in rule["apiGroups"], rule


def test_pod_is_hardened(objs: list[Obj]) -> None:
    deployment = find(objs, "Deployment", "argocd-assistant")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] >= 2
    assert pod["affinity"]["podAntiAffinity"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    backend = container(pod, "backend")
    sc = backend["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert backend["resources"]["requests"] and backend["resources"]["limits"]["memory"]


def test_image_tag_is_the_backend_version(objs: list[Obj]) -> None:
    image = container(_pod(objs)["spec"], "backend")["image"]
    assert image == f"argocd-assistant:{backend_version()}"


def test_containerfile_matches_the_deployment(objs: list[Obj], config: dict[str, Any]) -> None:
    lines = _containerfile_final_stage()
    user = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    uid = user[-1].split(":")[0]
    pod = _pod(objs)["spec"]
    assert uid.isdigit() and int(uid) != 0
    assert int(uid) == pod["securityContext"]["runAsUser"]
    entrypoint = [json.loads(ln.removeprefix("ENTRYPOINT ")) for ln in lines if ln.startswith("ENTRYPOINT ")]
    cmd = [json.loads(ln.removeprefix("CMD ")) for ln in lines if ln.startswith("CMD ")]
    assert entrypoint == [["python", "-m", "assistant_backend"]]
    assert cmd == [container(pod, "backend")["args"]]
    assert f"EXPOSE {config['server']['port']}" in lines
    final_runs = " ".join(ln for ln in lines if ln.startswith("RUN "))
    for tool in ("pip install", "apt-get", "gcc", "build-essential"):
        assert tool not in final_runs, f"the final stage must not install build tooling ({tool})"


def _containerfile_final_stage() -> list[str]:
    text = (ROOT / "Containerfile").read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    starts = [i for i, ln in enumerate(lines) if ln.startswith("FROM ")]
    assert len(starts) >= 2, "expected a multi-stage build"
    return lines[starts[-1] :]


def test_containerfile_build_stage_installs_a_working_backend(tmp_path: Path) -> None:
    """Rehearse the image's build stage without a container engine: the same pip command, non-editable,
    into a fresh venv, then start the installed backend. Catches package data missing from the wheel
    (an editable dev install would hide it) and dev-only dependencies leaking into the image."""
    text = (ROOT / "Containerfile").read_text().replace("\\\n", " ")
    (pip_line,) = [ln for ln in text.splitlines() if "pip install" in ln and ln.strip().startswith("RUN ")]
    pip_args = shlex.split(pip_line.split("pip install", 1)[1].split("&&", 1)[0])
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *pip_args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "list", "--format=json"], capture_output=True, text=True, check=True
    ).stdout
    names = {p["name"].lower() for p in json.loads(installed)}
    assert "argocd-assistant" in names
    assert not names & {"pytest", "ruff", "mypy", "playwright"}, "dev dependencies in the image"
    # Run it from outside the source tree so the installed copy, not ./assistant_backend, is imported.
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "assistant_backend", "--print-config-schema"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "llama_stack" in json.loads(out.stdout)["properties"]
    # The built-in instructions are package data: they must be inside the installed package.
    code = "import assistant_backend.config as c; print(c.Settings(auth={'insecure_allow_no_secret': True}).instructions)"
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert probe.returncode == 0 and probe.stdout.strip(), probe.stderr


def test_backend_serves_what_the_deployment_probes(config: dict[str, Any], tmp_path: Path) -> None:
    """Start the real backend with the ConfigMap's config. Only what differs outside a cluster changes: the
    secret file's path, loopback host/port (BackendProcess), no Kubernetes, and a Llama Stack address where
    nothing listens, which must leave the process live but not ready."""
    secret = "Bearer manifests-test-secret"
    (tmp_path / "secret").write_text(secret + "\n")
    local = {
        **config,
        "auth": {**config["auth"], "secret_file": str(tmp_path / "secret")},
        "kubernetes": {**config["kubernetes"], "enabled": False},
        "llama_stack": {**config["llama_stack"], "url": "http://127.0.0.1:9", "connect_timeout_s": 1},
        "server": {**config["server"], "readiness_cache_s": 0},
    }
    with (
        BackendProcess(local, tmp_path / "backend") as backend,
        httpx.Client(base_url=backend.url, timeout=20) as http,
    ):
        assert http.get("/healthz").status_code == 200
        ready = http.get("/readyz")
        assert ready.status_code == 503, ready.text
        metrics = http.get("/metrics")
        assert metrics.status_code == 200 and "# TYPE" in metrics.text
        # The header Argo CD's extension config sets, with the value mounted from the Secret.
        header = config["auth"]["header"]
        assert http.get("/v1/models").status_code == 401
        assert http.get("/v1/models", headers={header: "Bearer wrong"}).status_code == 401
        assert http.get("/v1/models", headers={header: secret}).status_code != 401


def test_backend_reaches_the_llama_stack_service(config: dict[str, Any]) -> None:
    llama = render(MANIFESTS / "llama-stack" / "base")
    service = find(llama, "Service", "llama-stack")
    (port,) = service["spec"]["ports"]
    url = urlsplit(config["llama_stack"]["url"])
    assert (url.scheme, url.hostname, url.port) == (
        "http",
        f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc",
        port["port"],
    )
    # Llama Stack's NetworkPolicy admits exactly the backend's pods from Argo CD's namespace.
    backend_labels = _pod(render(MANIFESTS / "backend"))["metadata"]["labels"]
    (rule,) = find(llama, "NetworkPolicy", "llama-stack")["spec"]["ingress"]
    (peer,) = rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": config["kubernetes"]["argocd_namespace"]
    }
    assert peer["podSelector"]["matchLabels"].items() <= backend_labels.items()
    assert rule["ports"] == [{"protocol": "TCP", "port": port["port"]}]
