"""The Argo CD side of the install, in its three forms (plain kustomize Component, operator ArgoCD CR patch,
Helm values), agrees with itself, with the backend manifests and with the UI tarball the UI build makes.

The names are facts with one home each: the extension name in the argocd-cm key, the backend address in
the backend's Service, the header in the backend's config, the UI version in extension-ui/package.json.
Everything else must match them.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.manifests.render import (
    FIXTURES,
    MANIFESTS,
    ROOT,
    Obj,
    container,
    env_value,
    find,
    render,
    ui_version,
)

EXTENSION = "assistant"
INSTALLER_IMAGE = "quay.io/argoprojlabs/argocd-extension-installer"
EXTENSIONS_DIR = "/tmp/extensions/"
# Where argocd-server sees our files: a folder of its own under the tree it walks, so that another volume at
# /tmp/extensions/ (the operator's rollouts UI, an extension installed per Argo CD's docs) is no duplicate.
SERVER_MOUNT = "/tmp/extensions/assistant/"
OUR_VOLUME = "extension-assistant"
# What the argocd-operator adds to argocd-server with spec.server.enableRolloutsUI: true
# (controllers/argocd/deployment.go: volume `rollout-extensions` at /tmp/extensions/, initContainer
# `rollout-extension`).
OPERATOR_ROLLOUTS = {
    "initContainers": [{"name": "rollout-extension"}],
    "volumes": [{"name": "rollout-extensions", "emptyDir": {}}],
    "volumeMounts": [{"name": "rollout-extensions", "mountPath": "/tmp/extensions/"}],
}
# argocd-server concatenates files under /tmp/extensions/ whose name matches this into /extensions.js.
ARGOCD_EXTENSION_FILE = re.compile(r"^extension(.*)\.js$")
# Argo CD's own rule for extension names (server/extension/extension.go, validateConfigs).
ARGOCD_EXTENSION_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class ArgoInstall:
    """One way of configuring Argo CD, reduced to the facts that must agree."""

    form: str
    extension_config: dict[str, str]  # argocd-cm keys starting with extension.config
    rbac_policy: str
    proxy_extension_enabled: bool
    installer: Obj  # the initContainer (for Helm: what the chart makes from our values)
    server_mounts: list[Obj] | None  # argocd-server's volumeMounts (None: the chart adds them)
    volumes: list[Obj] | None


def _plain() -> ArgoInstall:
    objs = render(FIXTURES / "argocd-plain")
    cm = find(objs, "ConfigMap", "argocd-cm")["data"]
    rbac = find(objs, "ConfigMap", "argocd-rbac-cm")["data"]
    params = find(objs, "ConfigMap", "argocd-cmd-params-cm")["data"]
    pod = find(objs, "Deployment", "argocd-server")["spec"]["template"]["spec"]
    # The Component must add, never replace: the stand-in's own settings survive.
    assert rbac["policy.csv"].strip() == "g, platform-team, role:admin"
    assert cm["url"] == "https://argocd.example.com"
    assert {"/tmp", "/home/argocd"} <= {
        m["mountPath"] for m in container(pod, "argocd-server")["volumeMounts"]
    }
    # The stand-in's other UI extension keeps its installer, volume and mount.
    assert container(pod, "extension-metrics")["volumeMounts"] == [
        {"name": "extensions", "mountPath": EXTENSIONS_DIR}
    ]
    assert {"name": "extensions", "mountPath": EXTENSIONS_DIR} in container(pod, "argocd-server")["volumeMounts"]
    assert {"name": "extensions", "emptyDir": {}} in pod["volumes"]
    return ArgoInstall(
        form="plain",
        extension_config={k: v for k, v in cm.items() if k.startswith("extension.config")},
        rbac_policy="".join(v for k, v in rbac.items() if re.fullmatch(r"policy\.[^.]+\.csv", k)),
        proxy_extension_enabled=params.get("server.enable.proxy.extension") == "true",
        installer=container(pod, f"extension-{EXTENSION}"),
        server_mounts=container(pod, "argocd-server")["volumeMounts"],
        volumes=pod["volumes"],
    )


def _operator() -> ArgoInstall:
    cr = yaml.safe_load((MANIFESTS / "argocd/operator/argocd-patch.yaml").read_text())
    assert (cr["apiVersion"], cr["kind"]) == ("argoproj.io/v1beta1", "ArgoCD")
    spec, server = cr["spec"], cr["spec"]["server"]
    # Field names of the operator's ArgoCDServerSpec (api/v1beta1/argocd_types.go, operator >= 0.12): a
    # misspelt one would be pruned silently by the CRD's structural schema.
    assert set(server) <= {"extraCommandArgs", "initContainers", "volumes", "volumeMounts", "env"}, set(
        server
    )
    assert set(spec) <= {"extraConfig", "rbac", "server"}, set(spec)
    assert set(spec["rbac"]) <= {"policy", "defaultPolicy", "scopes", "policyMatcherMode"}
    (installer,) = server["initContainers"]
    return ArgoInstall(
        form="operator",
        extension_config={k: v for k, v in spec["extraConfig"].items() if k.startswith("extension.config")},
        rbac_policy=spec["rbac"]["policy"],
        proxy_extension_enabled="--enable-proxy-extension" in server["extraCommandArgs"],
        installer=installer,
        server_mounts=server["volumeMounts"],
        volumes=server["volumes"],
    )


HELM_VALUES = MANIFESTS / "argocd/helm/values-assistant.yaml"
HELM_EXTENSION_ENTRY = MANIFESTS / "argocd/helm/values-assistant-extension.yaml"


def helm_merge(base: Any, override: Any) -> Any:
    """Helm's merge of a later values file into earlier ones: maps merge key by key, everything else (lists
    included) is replaced by the later value (Helm's chart values coalescing, pkg/chartutil)."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = helm_merge(base[key], value) if key in base else value
        return merged
    return override


def _lists_in(value: Any, path: str = "") -> list[str]:
    if isinstance(value, list):
        return [path]
    if isinstance(value, dict):
        return [hit for key, item in value.items() for hit in _lists_in(item, f"{path}.{key}")]
    return []


def _helm() -> ArgoInstall:
    values = helm_merge(
        yaml.safe_load(HELM_VALUES.read_text()), yaml.safe_load(HELM_EXTENSION_ENTRY.read_text())
    )
    configs, ext = values["configs"], values["server"]["extensions"]
    assert ext["enabled"] is True
    (entry,) = ext["extensionList"]
    # What the argo-cd chart renders for an extensionList entry: one initContainer with our env, the
    # chart's image, and the `extensions` emptyDir at /tmp/extensions/ (also mounted in argocd-server).
    installer = {
        "name": entry["name"],
        "image": f"{ext['image']['repository']}:{ext['image']['tag']}",
        "env": entry["env"],
        "volumeMounts": [{"name": "extensions", "mountPath": EXTENSIONS_DIR}],
    }
    return ArgoInstall(
        form="helm",
        extension_config={k: v for k, v in configs["cm"].items() if k.startswith("extension.config")},
        rbac_policy="".join(v for k, v in configs["rbac"].items() if re.fullmatch(r"policy\.[^.]+\.csv", k)),
        proxy_extension_enabled=str(configs["params"]["server.enable.proxy.extension"]).lower() == "true",
        installer=installer,
        server_mounts=None,
        volumes=None,
    )


INSTALLS = {"plain": _plain, "operator": _operator, "helm": _helm}


@pytest.fixture(scope="module", params=sorted(INSTALLS))
def install(request: pytest.FixtureRequest) -> ArgoInstall:
    return INSTALLS[request.param]()


@pytest.fixture(scope="module")
def backend() -> list[Obj]:
    return render(MANIFESTS / "backend")


def _backend_config(backend: list[Obj]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(
        find(backend, "ConfigMap", "argocd-assistant-config")["data"]["config.yaml"]
    )
    return config


def _backend_url(backend: list[Obj]) -> str:
    service = find(backend, "Service", "argocd-assistant")
    (port,) = service["spec"]["ports"]
    return f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc:{port['port']}"


def test_extension_config_is_valid_for_argocd_and_targets_the_backend(
    install: ArgoInstall, backend: list[Obj]
) -> None:
    assert list(install.extension_config) == [f"extension.config.{EXTENSION}"]
    assert ARGOCD_EXTENSION_NAME.fullmatch(EXTENSION)
    config = yaml.safe_load(install.extension_config[f"extension.config.{EXTENSION}"])
    # Argo CD's validateConfigs: services required; url required; one service needs no cluster; headers
    # need name and value.
    (service,) = config["services"]
    assert set(config) <= {
        "services",
        "connectionTimeout",
        "keepAlive",
        "idleConnectionTimeout",
        "maxIdleConnections",
    }
    assert set(service) <= {"url", "headers", "cluster"}
    url = urlsplit(service["url"])
    # Argo CD uses only scheme and host of the URL.
    assert f"{url.scheme}://{url.netloc}" == _backend_url(backend) and url.path in ("", "/")
    (header,) = service["headers"]
    assert header["name"] == _backend_config(backend)["auth"]["header"]
    # `$key` makes Argo CD read the value from argocd-secret; never a literal secret in a ConfigMap.
    assert header["value"] == f"${EXTENSION}.secret"


def test_rbac_line_lets_readonly_invoke_this_extension(install: ArgoInstall) -> None:
    lines = [ln.strip() for ln in install.rbac_policy.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines == [f"p, role:readonly, extensions, invoke, {EXTENSION}, allow"]
    fields = [f.strip() for f in lines[0].split(",")]
    assert fields[2:5] == ["extensions", "invoke", EXTENSION]


def test_proxy_extensions_are_enabled(install: ArgoInstall) -> None:
    assert install.proxy_extension_enabled


def test_installer_is_pinned_and_fetches_this_versions_tarball(install: ArgoInstall) -> None:
    image, _, tag = install.installer["image"].rpartition(":")
    assert image == INSTALLER_IMAGE
    assert re.fullmatch(r"v\d+\.\d+\.\d+", tag), f"installer tag must be pinned, got {tag!r}"
    version = ui_version()
    ext_url = env_value(install.installer, "EXTENSION_URL")
    checksum_url = env_value(install.installer, "EXTENSION_CHECKSUM_URL")
    assert PurePosixPath(urlsplit(ext_url).path).name == f"extension-{EXTENSION}-{version}.tar"
    # The installer greps the checksum file for basename(EXTENSION_URL): the file must sit beside the tar.
    assert checksum_url == ext_url + ".sha256"
    assert urlsplit(ext_url).scheme == "https"
    assert env_value(install.installer, "EXTENSION_VERSION") == version
    assert env_value(install.installer, "EXTENSION_NAME") == EXTENSION


def test_installer_failure_does_not_keep_argocd_server_in_init(install: ArgoInstall) -> None:
    # installer v1.0.0 exits non-zero on any failure unless IGNORE_FAILURE=true (its install.sh finalizer);
    # a failing initContainer keeps the whole argocd-server pod, and with it Argo CD's UI and API, down.
    assert env_value(install.installer, "IGNORE_FAILURE") == "true"


def test_installer_and_server_share_our_own_emptydir(install: ArgoInstall) -> None:
    init_mounts = {m["mountPath"]: m["name"] for m in install.installer["volumeMounts"]}
    # The installer copies into /tmp/extensions/resources/, a fixed path in its own container.
    assert EXTENSIONS_DIR in init_mounts
    if install.server_mounts is None:  # Helm: the chart mounts its one `extensions` volume in both itself
        return
    volume = init_mounts[EXTENSIONS_DIR]
    assert volume == OUR_VOLUME
    server_mounts = {m["mountPath"]: m["name"] for m in install.server_mounts}
    # argocd-server walks /tmp/extensions/ recursively: our folder below it is served, and a volume of
    # someone else's at /tmp/extensions/ itself is not shadowed.
    assert server_mounts.get(SERVER_MOUNT) == volume
    assert EXTENSIONS_DIR not in server_mounts or server_mounts[EXTENSIONS_DIR] != volume
    assert SERVER_MOUNT.startswith(EXTENSIONS_DIR) and SERVER_MOUNT != EXTENSIONS_DIR
    assert install.volumes is not None
    volumes = {v["name"]: v for v in install.volumes}
    assert volumes[volume].get("emptyDir") == {}
    # A read-only root filesystem needs a writable /tmp for the installer's download directory.
    if install.installer.get("securityContext", {}).get("readOnlyRootFilesystem"):
        assert "emptyDir" in volumes[init_mounts["/tmp"]]


def test_operator_patch_coexists_with_the_operators_rollouts_ui() -> None:
    """With spec.server.enableRolloutsUI the operator appends its own installer, volume and mount to ours;
    the apiserver rejects a pod with two mounts at one path or two volumes of one name."""
    operator = _operator()
    assert operator.server_mounts is not None and operator.volumes is not None
    mounts = [m["mountPath"] for m in operator.server_mounts + OPERATOR_ROLLOUTS["volumeMounts"]]
    volumes = [v["name"] for v in operator.volumes + OPERATOR_ROLLOUTS["volumes"]]
    inits = [operator.installer["name"]] + [c["name"] for c in OPERATOR_ROLLOUTS["initContainers"]]
    assert len(mounts) == len(set(mounts)), mounts
    assert len(volumes) == len(set(volumes)), volumes
    assert len(inits) == len(set(inits)), inits


def test_operator_installer_sets_no_fixed_uid() -> None:
    # OpenShift's restricted SCC assigns UIDs from the namespace's range and rejects any other fixed one.
    security = _operator().installer["securityContext"]
    assert "runAsUser" not in security and "runAsGroup" not in security
    assert security["runAsNonRoot"] is True and security["allowPrivilegeEscalation"] is False


def test_helm_values_hold_no_list_that_could_replace_a_users() -> None:
    assert _lists_in(yaml.safe_load(HELM_VALUES.read_text())) == []
    # The one list, the installer entry, is a file of its own that holds nothing else.
    entry = yaml.safe_load(HELM_EXTENSION_ENTRY.read_text())
    assert list(entry) == ["server"] and list(entry["server"]) == ["extensions"]
    assert list(entry["server"]["extensions"]) == ["extensionList"]


def test_helm_values_keep_a_users_other_extensions_and_settings() -> None:
    users = {
        "configs": {"cm": {"url": "https://argocd.example.com"}, "rbac": {"policy.csv": "g, ops, role:admin"}},
        "server": {
            "extensions": {
                "enabled": True,
                "extensionList": [{"name": "extension-rollouts", "env": [{"name": "EXTENSION_URL", "value": "x"}]}],
            },
            "volumes": [{"name": "custom", "emptyDir": {}}],
        },
    }
    merged = helm_merge(users, yaml.safe_load(HELM_VALUES.read_text()))
    assert merged["server"]["extensions"]["extensionList"] == users["server"]["extensions"]["extensionList"]
    assert merged["server"]["volumes"] == users["server"]["volumes"]
    assert merged["configs"]["cm"]["url"] == "https://argocd.example.com"
    assert merged["configs"]["rbac"]["policy.csv"] == "g, ops, role:admin"
    assert "extension.config.assistant" in merged["configs"]["cm"]
    # The documented way to add ours to a list of one's own: append the entry; both installers remain.
    (ours,) = yaml.safe_load(HELM_EXTENSION_ENTRY.read_text())["server"]["extensions"]["extensionList"]
    merged["server"]["extensions"]["extensionList"].append(ours)
    names = [e["name"] for e in merged["server"]["extensions"]["extensionList"]]
    assert names == ["extension-rollouts", f"extension-{EXTENSION}"]


def test_helm_merge_model_replaces_lists_like_helm() -> None:
    # Guards the model the two tests above rely on: a later list replaces an earlier one wholesale.
    assert helm_merge({"a": [1, 2], "m": {"x": 1}}, {"a": [3], "m": {"y": 2}}) == {"a": [3], "m": {"x": 1, "y": 2}}


def test_all_forms_agree() -> None:
    forms = [make() for make in INSTALLS.values()]
    first = forms[0]
    for other in forms[1:]:
        assert [yaml.safe_load(v) for v in other.extension_config.values()] == [
            yaml.safe_load(v) for v in first.extension_config.values()
        ], other.form
        assert other.rbac_policy.strip() == first.rbac_policy.strip(), other.form
        assert other.installer["image"] == first.installer["image"], other.form
        assert {e["name"]: e["value"] for e in other.installer["env"]} == {
            e["name"]: e["value"] for e in first.installer["env"]
        }, other.form


def test_ui_tarball_is_what_the_installer_and_argocd_server_expect() -> None:
    """Build the real tarball with the UI's own packaging script and check it against the install."""
    version = ui_version()
    tar_name = f"extension-{EXTENSION}-{version}.tar"
    node_modules = ROOT / "extension-ui" / "node_modules" / "esbuild"
    assert node_modules.is_dir(), "extension-ui dependencies missing: run `npm ci` in extension-ui/"
    result = subprocess.run(
        ["node", "scripts/package.mjs"],
        cwd=ROOT / "extension-ui",
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    tar_path = ROOT / "dist" / tar_name
    with tarfile.open(tar_path) as tar:
        names = [m.name.rstrip("/") for m in tar.getmembers()]
    # The installer copies resources/* into /tmp/extensions/resources/.
    assert {n.split("/")[0] for n in names} == {"resources"}
    scripts = [n for n in names if n.endswith(".js")]
    assert scripts == [f"resources/extension-{EXTENSION}/extension-{EXTENSION}.js"]
    assert ARGOCD_EXTENSION_FILE.match(Path(scripts[0]).name)
    digest, name = (tar_path.parent / (tar_name + ".sha256")).read_text().split()
    assert name == tar_name
    assert digest == hashlib.sha256(tar_path.read_bytes()).hexdigest()
