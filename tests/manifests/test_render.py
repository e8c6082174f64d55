"""Every kustomization renders, and every object it makes is valid for the Kubernetes versions we support.

Kinds the test apiserver (v1.20) serves are also dry-run there (test_kube.py); this file covers every object,
including the newer kinds v1.20 lacks (policy/v1 PodDisruptionBudget), with the strict OpenAPI schemas that
kubernetes-validate ships (strict = unknown fields are errors, which catches misspelt or misplaced keys).
"""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

from tests.manifests.render import (
    components,
    fixture_kustomizations,
    kustomizations,
    rel,
    render,
)

# Oldest and newest Kubernetes the manifests target (kubernetes-validate ships schemas from 1.25 on).
SCHEMA_VERSIONS = ("1.25", kubernetes_validate.utils.latest_version().rsplit(".", 1)[0])
# Custom resources have no upstream schema; they are checked structurally in test_argocd.py.
CUSTOM_KINDS = {("argoproj.io/v1beta1", "ArgoCD")}

ALL = kustomizations() + fixture_kustomizations()


def test_every_manifest_directory_is_covered() -> None:
    """A new kustomization or component must be reachable from a test, or it would never be validated."""
    expected = {
        "manifests/backend",
        "manifests/llama-stack/base",
        "manifests/llama-stack/overlays/legacy-agents",
        "manifests/llama-stack/overlays/postgres",
        "manifests/llama-stack/overlays/vllm",
    }
    assert expected <= {rel(p) for p in kustomizations()}
    covered_components = set()
    for fixture in fixture_kustomizations():
        text = (fixture / "kustomization.yaml").read_text()
        covered_components |= {c for c in components() if rel(c) in text}
    assert covered_components == set(components()), "components without a fixture: " + ", ".join(
        rel(c) for c in set(components()) - covered_components
    )


@pytest.mark.parametrize("directory", ALL, ids=rel)
def test_renders_to_well_formed_unique_objects(directory: Path) -> None:
    objs = render(directory)
    assert objs, f"{rel(directory)} rendered nothing"
    seen = set()
    for obj in objs:
        assert {"apiVersion", "kind", "metadata"} <= obj.keys(), obj
        key = (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        assert key not in seen, f"duplicate {key}"
        seen.add(key)


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("directory", ALL, ids=rel)
def test_objects_match_strict_kubernetes_schema(directory: Path, version: str) -> None:
    errors = []
    checked = 0
    for obj in render(directory):
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
            checked += 1
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(
                f"{obj['kind']}/{obj['metadata']['name']}: no schema for {obj['apiVersion']} in {version}"
            )
    assert not errors, "\n".join(errors)
    assert checked > 0


def test_schema_check_rejects_a_misplaced_field() -> None:
    """The validator is strict: a field in the wrong place fails (so the test above can fail)."""
    from tests.manifests.render import MANIFESTS, find

    deployment = find(render(MANIFESTS / "backend"), "Deployment", "argocd-assistant")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, SCHEMA_VERSIONS[0], strict=True)
