"""The manifests against a real kube-apiserver (v1.20.2, RBAC on).

- Server-side dry-run of every rendered object whose kind the apiserver serves (admission, defaulting and,
  through kubectl's schema check, unknown fields). Kinds v1.20 lacks must be exactly the known newer ones,
  which test_render.py validates with the upstream schemas instead.
- The backend's ClusterRole, bound to a real ServiceAccount and exercised with that ServiceAccount's own
  token: it reads everything the context engine needs and is refused Secrets and every write.
"""

from __future__ import annotations

import copy
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.manifests.render import (
    FIXTURES,
    MANIFESTS,
    Obj,
    fixture_kustomizations,
    kustomizations,
    rel,
    render,
)
from tests.support.kube import KubeCluster

pytestmark = pytest.mark.kube

# Newer API versions the v1.20 test apiserver does not serve (schema-checked offline in test_render.py).
NEWER_THAN_TEST_APISERVER = {("policy/v1", "PodDisruptionBudget")}
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
READ_VERBS = ("get", "list", "watch")


def _served(cluster: KubeCluster, obj: Obj) -> bool:
    try:
        cluster.path_for(obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace"))
    except KeyError:
        return False
    return True


@pytest.mark.parametrize("directory", kustomizations() + fixture_kustomizations(), ids=rel)
def test_server_side_dry_run(kube_cluster: KubeCluster, directory: Path) -> None:
    objs = render(directory)
    for ns in {o["metadata"].get("namespace") for o in objs} - {None}:
        kube_cluster.ensure_namespace(ns)
    served = [o for o in objs if _served(kube_cluster, o)]
    unserved = {(o["apiVersion"], o["kind"]) for o in objs} - {(o["apiVersion"], o["kind"]) for o in served}
    assert unserved <= NEWER_THAN_TEST_APISERVER, f"not validated anywhere: {unserved}"
    assert served
    result = kube_cluster.kubectl(
        "apply", "--dry-run=server", "-o", "name", "-f", "-", input=yaml.safe_dump_all(served), check=False
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) == len(served), result.stdout


def test_dry_run_rejects_invalid_objects(kube_cluster: KubeCluster) -> None:
    """The dry-run is a real check: the apiserver refuses a selector that does not match the pods, and
    kubectl's validation (the apiserver's OpenAPI) refuses a misspelt field."""
    kube_cluster.ensure_namespace("argocd")
    original = next(o for o in render(MANIFESTS / "backend") if o["kind"] == "Deployment")
    bad_selector = copy.deepcopy(original)
    bad_selector["spec"]["selector"]["matchLabels"] = {"app": "something-else"}
    misspelt = copy.deepcopy(original)
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    for broken, expected in ((bad_selector, "selector"), (misspelt, 'unknown field "readinessprobe"')):
        result = kube_cluster.kubectl(
            "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(broken), check=False
        )
        assert result.returncode != 0 and expected in result.stderr, result.stderr


# ---- RBAC ---------------------------------------------------------------------------------------


def _isolate(objs: list[Obj], namespace: str, suffix: str) -> list[Obj]:
    """The RBAC objects moved into their own namespace and names, so this test's bindings cannot change
    what other tests sharing the cluster see (the rules, which are under test, are untouched)."""
    out = []
    for obj in copy.deepcopy(objs):
        meta = obj["metadata"]
        if obj["kind"] in {"ClusterRole", "ClusterRoleBinding"}:
            meta["name"] += f"-{suffix}"
        if "namespace" in meta:
            meta["namespace"] = namespace
        if "roleRef" in obj and obj["roleRef"]["kind"] == "ClusterRole":
            obj["roleRef"]["name"] += f"-{suffix}"
        for subject in obj.get("subjects", []):
            subject["namespace"] = namespace
        out.append(obj)
    return out


RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


@pytest.fixture(scope="module")
def sa(kube_cluster: KubeCluster) -> Iterator[tuple[str, httpx.Client, list[Obj]]]:
    """The backend's ServiceAccount with the base's ClusterRole bound; an HTTP client using its token."""
    suffix = uuid.uuid4().hex[:6]
    namespace = f"assistant-rbac-{suffix}"
    kube_cluster.ensure_namespace(namespace)
    objs = _isolate([o for o in render(MANIFESTS / "backend") if o["kind"] in RBAC_KINDS], namespace, suffix)
    kube_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objs))
    token = kube_cluster.service_account_token(namespace, "argocd-assistant")
    with httpx.Client(
        base_url=kube_cluster.url,
        verify=ssl.create_default_context(cafile=str(kube_cluster.ca_path)),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as client:
        yield namespace, client, objs
    for obj in objs:
        if obj["kind"].startswith("Cluster"):
            kube_cluster.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
    kube_cluster.delete("v1", "Namespace", namespace)


def _can(client: httpx.Client, verb: str, group: str, resource: str, namespace: str | None = None) -> bool:
    """SelfSubjectAccessReview made with the ServiceAccount's own token."""
    name, _, sub = resource.partition("/")
    attrs: dict[str, Any] = {"verb": verb, "group": group, "resource": name}
    if sub:
        attrs["subresource"] = sub
    if namespace:
        attrs["namespace"] = namespace
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attrs},
    }
    response = client.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json=review)
    response.raise_for_status()
    return bool(response.json()["status"].get("allowed"))


def _rules(objs: list[Obj]) -> list[tuple[str, str]]:
    role = next(o for o in objs if o["kind"] == "ClusterRole")
    return [(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]]


# What the context engine reads (docs/security.md, What the backend may do in the cluster); each must be in the ClusterRole.
NEEDED = {
    ("", "pods"),
    ("", "pods/log"),
    ("", "events"),
    ("events.k8s.io", "events"),
    ("", "services"),
    ("", "endpoints"),
    ("", "configmaps"),
    ("", "persistentvolumeclaims"),
    ("", "namespaces"),
    ("", "nodes"),
    ("", "resourcequotas"),
    ("", "limitranges"),
    ("", "serviceaccounts"),  # a Pod's workload-identity annotations (relations)
    ("", "persistentvolumes"),  # a claim's volume: zone, access modes (relations)
    ("storage.k8s.io", "storageclasses"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
    ("networking.k8s.io", "ingresses"),
    ("discovery.k8s.io", "endpointslices"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("policy", "poddisruptionbudgets"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("argoproj.io", "applications"),
    ("argoproj.io", "appprojects"),
}


def test_cluster_role_covers_what_the_context_engine_reads(sa: tuple[str, httpx.Client, list[Obj]]) -> None:
    namespace, client, objs = sa
    assert set(_rules(objs)) == NEEDED
    for group, resource in sorted(NEEDED):
        for verb in READ_VERBS:
            assert _can(client, verb, group, resource, namespace), f"cannot {verb} {group}/{resource}"
            assert _can(client, verb, group, resource), f"cannot {verb} {group}/{resource} cluster-wide"


def test_real_reads_succeed_with_the_service_account_token(
    kube_cluster: KubeCluster, sa: tuple[str, httpx.Client, list[Obj]]
) -> None:
    """Real list requests for every kind the apiserver serves (at its preferred version)."""
    _, client, _ = sa
    listed = 0
    for group, resource in sorted(NEEDED):
        if "/" in resource:
            continue
        version = _preferred_version(kube_cluster, group)
        if version is None:  # group not served by this apiserver (e.g. argoproj.io AppProject CRD absent)
            continue
        base = "/api/v1" if group == "" else f"/apis/{group}/{version}"
        served = kube_cluster.http.get(base).json().get("resources", [])
        if not any(r["name"] == resource for r in served):
            continue
        response = client.get(f"{base}/{resource}", params={"limit": 1})
        assert response.status_code == 200, f"{base}/{resource}: {response.status_code} {response.text[:200]}"
        listed += 1
    assert listed >= 20


def _preferred_version(cluster: KubeCluster, group: str) -> str | None:
    if group == "":
        return "v1"
    response = cluster.http.get(f"/apis/{group}")
    if response.status_code == 404:
        return None
    return str(response.json()["preferredVersion"]["version"])


def test_secrets_and_every_write_are_forbidden(sa: tuple[str, httpx.Client, list[Obj]]) -> None:
    namespace, client, objs = sa
    for verb in (*READ_VERBS, *WRITE_VERBS):
        assert not _can(client, verb, "", "secrets", namespace), f"may {verb} secrets"
        assert not _can(client, verb, "", "secrets"), f"may {verb} secrets cluster-wide"
    for group, resource in sorted(set(_rules(objs))):
        for verb in WRITE_VERBS:
            assert not _can(client, verb, group, resource, namespace), f"may {verb} {group}/{resource}"
    for group, resource, verb in [
        ("", "pods/exec", "create"),
        ("", "serviceaccounts/token", "create"),
        ("", "users", "impersonate"),
        ("", "pods/portforward", "create"),
    ]:
        assert not _can(client, verb, group, resource, namespace), f"may {verb} {resource}"
    # And for real: the apiserver answers 403 Forbidden.
    forbidden = [
        client.get(f"/api/v1/namespaces/{namespace}/secrets"),
        client.get("/api/v1/secrets"),
        client.post(
            f"/api/v1/namespaces/{namespace}/configmaps",
            json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
        ),
        client.delete(f"/api/v1/namespaces/{namespace}"),
        client.patch(
            f"/apis/apps/v1/namespaces/{namespace}/deployments/x",
            json={},
            headers={"Content-Type": "application/merge-patch+json"},
        ),
    ]
    assert [r.status_code for r in forbidden] == [403] * len(forbidden), [r.text[:120] for r in forbidden]


def test_cluster_secrets_component_reads_only_argocd_namespace_secrets(kube_cluster: KubeCluster) -> None:
    suffix = uuid.uuid4().hex[:6]
    namespace = f"assistant-secrets-{suffix}"
    kube_cluster.ensure_namespace(namespace)
    objs = render(FIXTURES / "backend-all-components")
    rbac = _isolate([o for o in objs if o["kind"] in RBAC_KINDS], namespace, suffix)
    assert {o["kind"] for o in rbac} == RBAC_KINDS
    kube_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac))
    try:
        token = kube_cluster.service_account_token(namespace, "argocd-assistant")
        with httpx.Client(
            base_url=kube_cluster.url,
            verify=ssl.create_default_context(cafile=str(kube_cluster.ca_path)),
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as client:
            selector = {"labelSelector": "argocd.argoproj.io/secret-type=cluster"}
            assert client.get(f"/api/v1/namespaces/{namespace}/secrets", params=selector).status_code == 200
            assert client.get("/api/v1/namespaces/default/secrets", params=selector).status_code == 403
            assert client.get("/api/v1/secrets", params=selector).status_code == 403
            for verb in WRITE_VERBS:
                assert not _can(client, verb, "", "secrets", namespace), f"may {verb} secrets"
    finally:
        for obj in rbac:
            if obj["kind"].startswith("Cluster"):
                kube_cluster.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
        kube_cluster.delete("v1", "Namespace", namespace)
