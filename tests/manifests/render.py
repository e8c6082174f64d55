"""Render the kustomizations under ``manifests/`` and find things in them; shared by the manifest tests.

One source of truth for *where* things are: tests ask for "the backend Deployment" by kind and name instead
of re-reading files, so a renamed object fails every check that depends on it.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

Obj = dict[str, Any]


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        raise RuntimeError("kubectl (with its built-in kustomize) is not on PATH")
    return path


def _kind_of(path: Path) -> str:
    return str(yaml.safe_load(path.read_text()).get("kind", "Kustomization"))


def kustomizations() -> list[Path]:
    """Every directory under manifests/ holding a Kustomization (Components are rendered via fixtures)."""
    found = [
        p.parent for p in sorted(MANIFESTS.rglob("kustomization.yaml")) if _kind_of(p) == "Kustomization"
    ]
    return found


def components() -> list[Path]:
    return [p.parent for p in sorted(MANIFESTS.rglob("kustomization.yaml")) if _kind_of(p) == "Component"]


def fixture_kustomizations() -> list[Path]:
    return [p.parent for p in sorted(FIXTURES.rglob("kustomization.yaml"))]


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@functools.cache
def render_text(directory: Path) -> str:
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {rel(directory)} failed:\n{result.stderr}")
    return result.stdout


def render(directory: Path) -> list[Obj]:
    # A fresh copy each time: tests may mutate what they get.
    return [doc for doc in yaml.safe_load_all(render_text(directory)) if doc]


def find(objs: list[Obj], kind: str, name: str | None = None, namespace: str | None = None) -> Obj:
    hits = [
        o
        for o in objs
        if o["kind"] == kind
        and (name is None or o["metadata"]["name"] == name or o["metadata"]["name"].startswith(name + "-"))
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    if len(hits) != 1:
        names = [o["metadata"]["name"] for o in objs if o["kind"] == kind]
        raise AssertionError(f"expected one {kind} {name or ''} (have {names})")
    return hits[0]


def containers(pod_spec: Obj) -> Iterator[Obj]:
    yield from pod_spec.get("initContainers", [])
    yield from pod_spec.get("containers", [])


def container(pod_spec: Obj, name: str) -> Obj:
    for c in containers(pod_spec):
        if c["name"] == name:
            return c
    raise AssertionError(f"no container {name} in {[c['name'] for c in containers(pod_spec)]}")


def env_value(c: Obj, name: str) -> str:
    for e in c.get("env", []):
        if e["name"] == name:
            return str(e["value"])
    raise AssertionError(f"container {c['name']} has no env {name}")


def ui_version() -> str:
    """The UI extension's version: extension-ui/package.json is the one place it is set."""
    return str(json.loads((ROOT / "extension-ui" / "package.json").read_text())["version"])


def backend_version() -> str:
    import tomllib

    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])
