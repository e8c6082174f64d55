"""The project's own ClusterRole is enough to gather, and cannot read Secrets; remote destinations
resolved from Argo CD cluster Secrets; unknown and unresponsive clusters become notes."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from assistant_backend.config import Settings
from assistant_backend.context.engine import KubeContext
from evals.runner import RECALL_THRESHOLD, ScenarioRun, load_scenarios, prepare_cluster, run_scenarios
from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet

pytestmark = pytest.mark.kube

ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "manifests" / "backend"
ARGOCD_NS = "argocd"
SA = "argocd-assistant"


def _apply_manifest(cluster: KubeCluster, path: Path, namespace: str | None = None) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") not in ("Component", "Kustomization"):
            if namespace and doc["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
                doc["metadata"].setdefault("namespace", namespace)
            cluster.apply_yaml(yaml.safe_dump(doc))


@pytest.fixture(scope="module")
def assistant_kubeconfig(static_kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig with the token of the backend's ServiceAccount, bound to manifests/backend RBAC."""
    cluster = static_kube_cluster
    cluster.ensure_namespace(ARGOCD_NS)
    _apply_manifest(cluster, BACKEND / "serviceaccount.yaml", ARGOCD_NS)
    _apply_manifest(cluster, BACKEND / "clusterrole.yaml")
    _apply_manifest(cluster, BACKEND / "clusterrolebinding.yaml")
    for name in ("role.yaml", "rolebinding.yaml"):  # the opt-in cluster-secrets component
        _apply_manifest(cluster, BACKEND / "components" / "cluster-secrets" / name, ARGOCD_NS)
    token = cluster.service_account_token(ARGOCD_NS, SA)
    return cluster.kubeconfig_for_token(token, tmp_path_factory.mktemp("sa") / "assistant.kubeconfig")


async def test_gathering_works_with_the_projects_clusterrole(
    static_kube_cluster: KubeCluster, fake_kubelet: FakeKubelet, assistant_kubeconfig: Path
) -> None:
    report = await run_scenarios(
        static_kube_cluster, fake_kubelet, load_scenarios(), kubeconfig=assistant_kubeconfig
    )
    forbidden = [
        (r.scenario, n) for r in report.results for n in r.notes if "forbidden" in n or "unauthorized" in n
    ]
    assert forbidden == [], "the ClusterRole misses something the engine reads"
    assert report.leaks == 0
    assert report.recall >= RECALL_THRESHOLD, report.table()


def test_the_clusterrole_cannot_read_secrets(
    static_kube_cluster: KubeCluster, assistant_kubeconfig: Path
) -> None:
    cluster = static_kube_cluster
    cluster.ensure_namespace("rbac-secrets")
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": "rbac-secrets"},
            "stringData": {"password": "x"},
        }
    )
    token = yaml.safe_load(assistant_kubeconfig.read_text())["users"][0]["user"]["token"]
    with httpx.Client(
        base_url=cluster.url,
        verify=ssl.create_default_context(cafile=str(cluster.ca_path)),
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        assert client.get("/api/v1/namespaces/rbac-secrets/secrets/s").status_code == 403
        assert client.get("/api/v1/namespaces/rbac-secrets/secrets").status_code == 403
        assert client.get("/api/v1/secrets").status_code == 403
        assert client.get("/api/v1/namespaces/rbac-secrets/pods").status_code == 200  # reads are allowed
        assert client.delete("/api/v1/namespaces/rbac-secrets/pods/x").status_code == 403  # writes are not


def _cluster_secret(cluster: KubeCluster, name: str, server: str, token: str) -> None:
    import base64
    import json

    config = {"bearerToken": token, "tlsClientConfig": {"caData": base64.b64encode(cluster.ca_pem).decode()}}
    existing = cluster.get("v1", "Secret", name, ARGOCD_NS)
    if existing is not None:
        cluster.delete("v1", "Secret", name, ARGOCD_NS)
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": ARGOCD_NS,
                "labels": {"argocd.argoproj.io/secret-type": "cluster"},
            },
            "stringData": {"name": name, "server": server, "config": json.dumps(config)},
        }
    )


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (an unresponsive API server)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def _scenario(
    cluster: KubeCluster, kubelet: FakeKubelet, name: str, destination: dict[str, Any]
) -> ScenarioRun:
    prepare_cluster(cluster, kubelet)
    scenario = next(s for s in load_scenarios() if s.name == name)
    run = ScenarioRun(cluster, kubelet, scenario)
    run.doc.setdefault("application", {}).setdefault("spec", {})["destination"] = {
        "namespace": run.ns,
        "server": "",
        **destination,
    }
    run.setup()
    return run


async def test_remote_destination_from_cluster_secret_unknown_and_unresponsive_clusters(
    static_kube_cluster: KubeCluster, fake_kubelet: FakeKubelet, assistant_kubeconfig: Path, blackhole: int
) -> None:
    cluster = static_kube_cluster
    remote_token = cluster.service_account_token(ARGOCD_NS, SA)
    # Same apiserver under another name (the certificate has a localhost SAN): a "remote" cluster.
    remote_url = cluster.url.replace("127.0.0.1", "localhost")
    _cluster_secret(cluster, "staging", remote_url, remote_token)
    _cluster_secret(cluster, "hung", f"https://127.0.0.1:{blackhole}", remote_token)
    settings = Settings(
        kubernetes={"kubeconfig": assistant_kubeconfig, "argocd_namespace": ARGOCD_NS},
        context={"call_timeout_s": 0.5, "gather_deadline_s": 2.0, "pod_logs": "backend"},
        auth={"insecure_allow_no_secret": True},
    )
    engine = KubeContext.from_settings(settings)
    try:
        by_name = _scenario(cluster, fake_kubelet, "crashloop-db-connection", {"name": "staging"})
        bundle = await engine.build(by_name.caller(), by_name.selected(), "why?")
        assert bundle.notes == ()
        assert "[crash_loop]" in bundle.text and "could not connect to orders-db" in bundle.text
        assert any(c.server == remote_url for _, c in engine.registry._remote.values())

        unknown = _scenario(
            cluster, fake_kubelet, "crashloop-db-connection", {"server": "https://10.9.9.9:6443"}
        )
        bundle = await engine.build(unknown.caller(), unknown.selected(), "why?")
        assert any("not registered in Argo CD" in n for n in bundle.notes)
        assert "not registered in Argo CD" in bundle.text
        assert "orders-db" not in bundle.text  # nothing from any cluster

        hung = _scenario(cluster, fake_kubelet, "crashloop-app-level", {"name": "hung"})
        bundle = await engine.build(hung.caller(), hung.selected(), "why?")
        assert any("timed out" in n or "deadline" in n for n in bundle.notes), bundle.notes
        assert any(item.kind == "note" for item in bundle.items)
        assert "Degraded" in bundle.text  # the Application summary still comes from the control plane
    finally:
        await engine.aclose()


async def test_overall_deadline_bounds_a_hung_destination(
    static_kube_cluster: KubeCluster, fake_kubelet: FakeKubelet, assistant_kubeconfig: Path, blackhole: int
) -> None:
    cluster = static_kube_cluster
    _cluster_secret(
        cluster, "hung2", f"https://127.0.0.1:{blackhole}", cluster.service_account_token(ARGOCD_NS, SA)
    )
    settings = Settings(
        kubernetes={"kubeconfig": assistant_kubeconfig, "argocd_namespace": ARGOCD_NS},
        context={"call_timeout_s": 30, "gather_deadline_s": 1.0, "pod_logs": "backend"},
        auth={"insecure_allow_no_secret": True},
    )
    engine = KubeContext.from_settings(settings)
    try:
        pod = _scenario(cluster, fake_kubelet, "crashloop-db-connection", {"name": "hung2"})
        bundle = await engine.build(pod.caller(), pod.selected(), "why?")
        assert any("could not verify" in n and "nothing was gathered" in n for n in bundle.notes), (
            bundle.notes
        )
        app = _scenario(cluster, fake_kubelet, "crashloop-app-level", {"name": "hung2"})
        bundle = await engine.build(app.caller(), None, "why?")
        assert any("deadline" in n for n in bundle.notes), bundle.notes
        assert "Degraded" in bundle.text
    finally:
        await engine.aclose()
