"""Credentials from Argo CD cluster Secrets and kubeconfigs; the engine without any Kubernetes access."""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
from pathlib import Path

import pytest

from assistant_backend.config import Settings
from assistant_backend.context.application import summarize
from assistant_backend.context.clusters import credentials_from_cluster_secret, load_local_credentials
from assistant_backend.context.engine import KubeContext
from assistant_backend.context.factory import build_context_source
from assistant_backend.context.reference import ReferenceContext
from assistant_backend.identity import Caller
from tests.support.kube import _pem_cert, _pem_key, make_ca, make_serving_cert


def b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


def secret(config: dict[str, object], server: str = "https://k8s.example.com:6443") -> dict[str, object]:
    return {
        "metadata": {"name": "c"},
        "data": {"server": b64(server), "name": b64("prod"), "config": b64(json.dumps(config))},
    }


def test_bearer_token_and_ca_from_a_cluster_secret() -> None:
    creds, problem = credentials_from_cluster_secret(
        secret({"bearerToken": "tok", "tlsClientConfig": {"caData": b64("PEM"), "serverName": "api"}})
    )
    assert problem is None and creds is not None
    assert (creds.server, creds.token, creds.ca_pem, creds.tls_server_name) == (
        "https://k8s.example.com:6443",
        "tok",
        b"PEM",
        "api",
    )


def test_client_certificates_stay_in_memory_and_load_without_leaving_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_key, ca_cert = make_ca("cluster-ca")
    key, cert = make_serving_cert(ca_key, ca_cert, "argocd-manager", ["localhost"], ["127.0.0.1"])
    creds, _ = credentials_from_cluster_secret(
        secret(
            {
                "tlsClientConfig": {
                    "certData": b64(_pem_cert(cert)),
                    "keyData": b64(_pem_key(key)),
                    "caData": b64(_pem_cert(ca_cert)),
                }
            }
        )
    )
    assert creds is not None and creds.cert_pem == _pem_cert(cert) and creds.key_pem == _pem_key(key)
    assert creds.cert_file is None and creds.key_file is None
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    context = creds.ssl_context()
    assert isinstance(context, ssl.SSLContext)  # the real key loaded into a real TLS context
    assert list(tmp_path.iterdir()) == [], "no key material may remain on disk"


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ({"execProviderConfig": {"command": "aws"}}, "not supported"),
        ({"awsAuthConfig": {"clusterName": "x"}}, "not supported"),
    ],
)
def test_unsupported_cluster_auth_is_a_note(config: dict[str, object], why: str) -> None:
    creds, problem = credentials_from_cluster_secret(secret(config))
    assert creds is None and problem is not None and why in problem


def test_no_kubeconfig_anywhere_is_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    access = load_local_credentials(None, None)
    assert access.credentials is None and access.note and "no Kubernetes access configured" in access.note


def test_kubeconfig_token_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "kc"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [
                    {
                        "name": "k",
                        "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True},
                    }
                ],
                "users": [{"name": "u", "user": {"token": "abc"}}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            }
        )
    )
    access = load_local_credentials(path, None)
    assert access.credentials is not None
    assert (access.credentials.server, access.credentials.token, access.credentials.insecure) == (
        "https://127.0.0.1:6443",
        "abc",
        True,
    )


async def test_engine_without_access_still_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    settings = Settings(auth={"insecure_allow_no_secret": True})
    source = build_context_source(settings)
    assert isinstance(source, KubeContext)
    bundle = await source.build(Caller("u", "argocd", "guestbook", "default"), None, "q")
    assert "no Kubernetes access configured" in bundle.text
    assert [i.kind for i in bundle.items][-1] == "note" and bundle.notes
    await source.aclose()
    disabled = build_context_source(
        Settings(auth={"insecure_allow_no_secret": True}, kubernetes={"enabled": False})
    )
    assert isinstance(disabled, ReferenceContext)


def test_application_summary_reads_like_argo_cd() -> None:
    text = summarize(
        {
            "metadata": {"name": "shop", "namespace": "argocd"},
            "spec": {
                "project": "retail",
                "source": {"repoURL": "https://git/x.git", "path": "k8s", "targetRevision": "v2"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
            },
            "status": {
                "sync": {"status": "OutOfSync", "revision": "abc"},
                "health": {"status": "Degraded", "message": "bad"},
                "conditions": [{"type": "SyncError", "message": "boom"}],
                "operationState": {
                    "phase": "Failed",
                    "message": "sync failed",
                    "syncResult": {
                        "resources": [
                            {
                                "kind": "Service",
                                "namespace": "shop",
                                "name": "web",
                                "status": "SyncFailed",
                                "message": "x",
                            }
                        ]
                    },
                },
                "resources": [
                    {
                        "kind": "Service",
                        "namespace": "shop",
                        "name": "web",
                        "status": "OutOfSync",
                        "health": {"status": "Healthy"},
                    },
                    {
                        "group": "apps",
                        "kind": "Deployment",
                        "namespace": "shop",
                        "name": "web",
                        "status": "Synced",
                        "health": {"status": "Degraded", "message": "timed out"},
                    },
                ],
            },
        }
    )
    for expected in (
        "project retail",
        "https://git/x.git k8s @ v2",
        "OutOfSync (revision abc)",
        "Degraded - bad",
        "Condition SyncError: boom",
        "Last operation: Failed - sync failed",
        "failed resource: Service",
        "(2 of 2)",
        "apps/Deployment shop/web: sync Synced, health Degraded - timed out",
    ):
        assert expected in text
    assert text.index("apps/Deployment") < text.index("Service shop/web: sync")  # worst first
