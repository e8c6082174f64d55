"""The operator docs (README sections on installing) name the same things the manifests do, so a reader who
copies the commands gets a working install."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import pytest

from tests.manifests.render import FIXTURES, MANIFESTS, ROOT, container, env_value, find, render

README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert match, f"README has no section {title}"
    return match.group(1)


INSTALL = _section("Install in a cluster")
OPS = "".join(
    _section(t)
    for t in ("Install in a cluster", "Configure a provider", "Secure it", "Upgrade", "Troubleshooting")
)


def test_every_manifest_path_mentioned_exists() -> None:
    paths = set(re.findall(r"manifests/[\w./-]+\w", OPS))
    assert paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, missing


def test_placeholder_url_replaced_by_the_install_command_is_the_one_in_the_manifests() -> None:
    (placeholder,) = set(re.findall(r"grep -rl '([^']+)' manifests/argocd", INSTALL))
    pod = find(render(FIXTURES / "argocd-plain"), "Deployment", "argocd-server")["spec"]["template"]["spec"]
    url = env_value(container(pod, "extension-assistant"), "EXTENSION_URL")
    assert str(PurePosixPath(urlsplit(url).path).parent) == urlsplit(placeholder).path
    assert url.startswith(placeholder + "/")
    for path in (MANIFESTS / "argocd").rglob("*.yaml"):
        text = path.read_text()
        if "EXTENSION_URL" in text:
            assert placeholder in text, path


def test_shared_secret_commands_match_the_manifests() -> None:
    backend = render(MANIFESTS / "backend")
    pod = find(backend, "Deployment", "argocd-assistant")["spec"]["template"]["spec"]
    (auth,) = [v for v in pod["volumes"] if "secret" in v]
    (item,) = auth["secret"]["items"]
    assert f"create secret generic {auth['secret']['secretName']} --from-literal={item['key']}=" in INSTALL
    cm = find(render(FIXTURES / "argocd-plain"), "ConfigMap", "argocd-cm")["data"][
        "extension.config.assistant"
    ]
    (ref,) = re.findall(r"'\$([\w.]+)'", cm)
    # The argocd-secret patch in the docs writes the key the extension config reads (`$key`).
    assert "patch secret argocd-secret" in INSTALL and f'\\"{ref}\\"' in INSTALL


@pytest.mark.parametrize(
    ("directory", "secret"),
    [
        (MANIFESTS / "llama-stack" / "base", "llama-stack-inference"),
        (MANIFESTS / "llama-stack" / "overlays" / "vllm", "llama-stack-vllm"),
    ],
)
def test_llama_stack_secret_keys_in_docs_are_the_ones_the_deployment_reads(directory, secret) -> None:  # type: ignore[no-untyped-def]
    c = container(
        find(render(directory), "Deployment", "llama-stack")["spec"]["template"]["spec"], "llama-stack"
    )
    keys = {
        e["valueFrom"]["secretKeyRef"]["key"]
        for e in c["env"]
        if e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == secret
    }
    assert keys
    for key in keys:
        assert key in OPS, f"{key} of Secret {secret} is not documented"


def test_rbac_line_in_docs_is_the_shipped_one() -> None:
    rbac = find(render(FIXTURES / "argocd-plain"), "ConfigMap", "argocd-rbac-cm")["data"][
        "policy.assistant.csv"
    ]
    assert rbac.strip() in OPS
