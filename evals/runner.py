"""Failure-scenario evals for the context engine, run against a real kube-apiserver.

Each ``evals/scenarios/*.yaml`` creates real objects (an Argo CD Application, its resources, Pods with
kubelet-like statuses, Events, and container logs served by the fake kubelet), selects a resource
(or the Application), builds the context with the real engine, and scores it:

- evidence recall: which expected strings (and expected finding ids, as ``[rule]``) appear in the
  rendered context (case-insensitive);
- canary leaks: planted secret strings that must never appear in the text, items or notes;
- tokens used, findings fired, gather time.

Scenario format (``$NS`` is the scenario's namespace, ``$NODE`` a fake Node whose kubelet serves logs)::

    name: image-pull-typo
    description: what a human would see
    application: {project: shop, status: {...}, spec: {...}}   # merged onto a default Application
    objects: [<k8s objects>]     # created in order; ``status`` written through /status;
                                 # ``x-argocd: {sync, health, message}`` lists it in status.resources;
                                 # ownerReferences get the owner's real uid
    events: [<Event fields>]     # involvedObject {kind, name}; the rest is filled in
    logs: [{pod, container, previous, text}]
    select: {group, version, kind, name} | null   # null = the Application
    attachments: [...]           # what the panel attaches from Argo CD's API, in the wire format of
                                 # POST /v1/chat; a managed_resource's ``target`` / ``live`` may be an
                                 # object (serialised as Argo CD does), and ``live: cluster`` reads the
                                 # live object from the apiserver; ``resource.namespace`` defaults to $NS
    question: what the user asks (default "Why is this not working?")
    appproject: {destinations: [...]}  # the AppProject's spec (default: every destination allowed)
    expect: {evidence: [...], findings: [...], canaries: [...], healthy: bool}

Cluster-scoped objects (Node, PersistentVolume, StorageClass) take no namespace; a Node gets the
fake kubelet's address so its Pods' logs can be read; an object may name another namespace (created
on demand). ``expect.healthy: true`` makes the scenario a false-alarm check: no finding may fire.

The gate (:attr:`Report.passed`): every scenario finds at least :data:`SCENARIO_THRESHOLD` of its
evidence, the pool at least :data:`RECALL_THRESHOLD`, no canary leaks, no false alarm.

Run ``make eval`` (or ``python -m evals``); the pytest ``tests/kube/test_evals.py`` runs the same code.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter

from assistant_backend.config import Settings
from assistant_backend.context.base import ResourceRef
from assistant_backend.context.engine import KubeContext
from assistant_backend.identity import Caller
from assistant_backend.wire import Attachment
from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet

SCENARIOS = Path(__file__).parent / "scenarios"
NODE = "eval-node-1"
RECALL_THRESHOLD = 0.95  # pooled over every scenario's evidence
SCENARIO_THRESHOLD = 0.75  # each scenario on its own
DEFAULT_QUESTION = "Why is this not working?"
ARGOCD_NAMESPACE = "argocd"
DEFAULT_BUDGET = 12_000  # the shipped default of context.token_budget

_API_VERSIONS = {
    "Deployment": "apps/v1",
    "ReplicaSet": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1beta1",
    "Pod": "v1",
    "Service": "v1",
    "PersistentVolumeClaim": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "Application": "argoproj.io/v1alpha1",
    "AppProject": "argoproj.io/v1alpha1",
    "Ingress": "networking.k8s.io/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2beta2",
    "StorageClass": "storage.k8s.io/v1",
    "EndpointSlice": "discovery.k8s.io/v1beta1",
}
_CLUSTER_SCOPED = frozenset({"Namespace", "Node", "PersistentVolume", "StorageClass"})


@dataclass
class Scenario:
    name: str
    description: str
    doc: dict[str, Any]
    path: Path


@dataclass
class Result:
    scenario: str
    evidence_total: int
    evidence_found: int
    missing: list[str]
    leaks: list[str]
    tokens: int
    budget: int
    findings: list[str]
    gather_ms: float
    false_alarms: list[str] = field(default_factory=list)  # findings fired in a healthy scenario
    notes: list[str] = field(default_factory=list)
    text: str = field(default="", repr=False)  # the rendered context, for --show (not in the JSON)

    @property
    def recall(self) -> float:
        return self.evidence_found / self.evidence_total if self.evidence_total else 1.0

    @property
    def passed(self) -> bool:
        return self.recall >= SCENARIO_THRESHOLD and not self.leaks and not self.false_alarms


@dataclass
class Report:
    results: list[Result]

    @property
    def recall(self) -> float:
        total = sum(r.evidence_total for r in self.results)
        return sum(r.evidence_found for r in self.results) / total if total else 1.0

    @property
    def leaks(self) -> int:
        return sum(len(r.leaks) for r in self.results)

    @property
    def false_alarms(self) -> int:
        return sum(len(r.false_alarms) for r in self.results)

    @property
    def failing(self) -> list[Result]:
        """Scenarios that miss the per-scenario gate (recall, leaks or false alarms)."""
        return [r for r in self.results if not r.passed]

    @property
    def passed(self) -> bool:
        return (
            self.recall >= RECALL_THRESHOLD
            and self.leaks == 0
            and self.false_alarms == 0
            and not self.failing
        )

    def table(self) -> str:
        head = (
            f"{'scenario':34} {'recall':>8} {'pct':>5} {'leaks':>5} {'tokens':>7} {'gather ms':>9}  findings"
        )
        lines = [head, "-" * len(head)]
        for r in self.results:
            mark = "" if r.passed else "  << FAIL"
            lines.append(
                f"{r.scenario:34} {r.evidence_found:>3}/{r.evidence_total:<3}  {r.recall:>5.0%} {len(r.leaks):>5} "
                f"{r.tokens:>7} {r.gather_ms:>9.1f}  {','.join(dict.fromkeys(r.findings)) or '-'}{mark}"
            )
            for miss in r.missing:
                lines.append(f"    missing evidence: {miss}")
            for leak in r.leaks:
                lines.append(f"    LEAKED canary: {leak}")
            for alarm in r.false_alarms:
                lines.append(f"    FALSE ALARM: {alarm}")
        lines.append("-" * len(head))
        gathers = sorted(r.gather_ms for r in self.results)
        median = gathers[len(gathers) // 2] if gathers else 0.0
        lines.append(
            f"{len(self.results)} scenarios, evidence recall {self.recall:.1%} (pool threshold "
            f"{RECALL_THRESHOLD:.0%}), {len(self.failing)} below the per-scenario gate "
            f"({SCENARIO_THRESHOLD:.0%}, no leak, no false alarm), canary leaks {self.leaks}, false alarms "
            f"{self.false_alarms}, median gather {median:.1f} ms: {'PASS' if self.passed else 'FAIL'}"
        )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "recall": self.recall,
            "leaks": self.leaks,
            "false_alarms": self.false_alarms,
            "failing": [r.scenario for r in self.failing],
            "passed": self.passed,
            "scenarios": [
                {
                    **{k: v for k, v in asdict(r).items() if k != "text"},
                    "recall": r.recall,
                    "passed": r.passed,
                }
                for r in self.results
            ],
        }


def load_scenarios(directory: Path = SCENARIOS) -> list[Scenario]:
    scenarios = []
    for path in sorted(directory.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        scenarios.append(Scenario(str(doc["name"]), str(doc.get("description", "")), doc, path))
    return scenarios


def _substitute(value: Any, ns: str) -> Any:
    if isinstance(value, str):
        return value.replace("$NS", ns).replace("$NODE", NODE)
    if isinstance(value, list):
        return [_substitute(v, ns) for v in value]
    if isinstance(value, Mapping):
        return {k: _substitute(v, ns) for k, v in value.items()}
    return value


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _now(offset_s: int = 0) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_s)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fill_pod_status(pod: dict[str, Any]) -> None:
    images = {
        c["name"]: c.get("image", "")
        for c in (pod["spec"].get("initContainers") or []) + pod["spec"].get("containers", [])
    }
    for key in ("containerStatuses", "initContainerStatuses"):
        for cs in pod.get("status", {}).get(key) or []:
            cs.setdefault("image", images.get(cs["name"], "unknown"))
            cs.setdefault("imageID", "")
            cs.setdefault("ready", False)
            cs.setdefault("restartCount", 0)
            cs.setdefault("state", {"running": {"startedAt": _now(-60)}})


class ScenarioRun:
    """Creates one scenario's objects in its own namespace and scores the engine's bundle."""

    def __init__(self, cluster: KubeCluster, kubelet: FakeKubelet, scenario: Scenario) -> None:
        self.cluster = cluster
        self.kubelet = kubelet
        self.scenario = scenario
        self.ns = f"ev-{scenario.name[:40]}-{uuid.uuid4().hex[:5]}"
        self.doc: dict[str, Any] = _substitute(scenario.doc, self.ns)
        self.uids: dict[tuple[str, str], str] = {}

    def setup(self) -> None:
        cluster, ns, doc = self.cluster, self.ns, self.doc
        cluster.ensure_namespace(ns)
        listed: list[dict[str, Any]] = []
        for raw in doc.get("objects") or []:
            obj = copy.deepcopy(raw)
            argocd = obj.pop("x-argocd", None)
            obj.setdefault("apiVersion", _API_VERSIONS.get(obj["kind"], "v1"))
            meta = obj.setdefault("metadata", {})
            if obj["kind"] == "Node":
                # a Node whose kubelet is the fake one, so the apiserver can fetch its Pods' logs
                obj = _merge(self.kubelet.node(meta["name"]), obj)
                meta = obj["metadata"]
            if obj["kind"] not in _CLUSTER_SCOPED:
                meta.setdefault("namespace", ns)
                if meta["namespace"] != ns:
                    cluster.ensure_namespace(meta["namespace"])
            for ref in meta.get("ownerReferences") or []:
                ref.setdefault("apiVersion", _API_VERSIONS.get(ref["kind"], "v1"))
                ref.setdefault("controller", True)
                ref["uid"] = self.uids[(ref["kind"], ref["name"])]
            if obj["kind"] == "Pod":
                _fill_pod_status(obj)
            created = cluster.create(obj, status="status" in obj)
            self.uids[(obj["kind"], meta["name"])] = created["metadata"]["uid"]
            if argocd is not None:
                group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
                entry: dict[str, Any] = {
                    "group": group,
                    "version": obj["apiVersion"].split("/")[-1],
                    "kind": obj["kind"],
                    "namespace": meta.get("namespace", ""),
                    "name": meta["name"],
                    "status": argocd.get("sync", "Synced"),
                }
                if argocd.get("health"):
                    entry["health"] = {"status": argocd["health"]}
                    if argocd.get("message"):
                        entry["health"]["message"] = argocd["message"]
                if argocd.get("requiresPruning"):
                    entry["requiresPruning"] = True
                listed.append(entry)
        for entry in doc.get("logs") or []:
            self.kubelet.set_log(
                ns, entry["pod"], entry["container"], entry["text"], previous=bool(entry.get("previous"))
            )
        app_doc = doc.get("application") or {}
        # The AppProject: permissive like Argo CD's `default`, unless the scenario gives its spec.
        self.cluster.put_project(app_doc.get("project", "default"), doc.get("appproject"))
        app: dict[str, Any] = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "app", "namespace": ns},
            "spec": {
                "project": app_doc.get("project", "default"),
                "source": {
                    "repoURL": "https://git.example.com/platform/apps.git",
                    "path": f"apps/{self.scenario.name}",
                    "targetRevision": "main",
                },
                "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
            },
            "status": {
                "sync": {"status": "Synced", "revision": "4f2c1e9"},
                "health": {"status": "Healthy"},
                "resources": listed,
            },
        }
        _merge(app["spec"], app_doc.get("spec") or {})
        status_extra = copy.deepcopy(app_doc.get("status") or {})
        extra_resources = status_extra.pop("resources", [])
        _merge(app["status"], status_extra)
        app["status"]["resources"] = listed + list(extra_resources)
        created_app = cluster.create(app, status=True)
        self.uids[("Application", "app")] = created_app["metadata"]["uid"]
        for i, raw in enumerate(doc.get("events") or []):
            event = copy.deepcopy(raw)
            involved = event["involvedObject"]
            involved.setdefault("namespace", ns)
            involved.setdefault("apiVersion", _API_VERSIONS.get(involved["kind"], "v1"))
            if (involved["kind"], involved["name"]) in self.uids:
                involved["uid"] = self.uids[(involved["kind"], involved["name"])]
            event.setdefault("apiVersion", "v1")
            event.setdefault("kind", "Event")
            event.setdefault(
                "metadata",
                {
                    "name": f"{involved['name']}.{i:04d}{uuid.uuid4().hex[:6]}",
                    "namespace": involved.get("namespace") or ns,
                },
            )
            event.setdefault("type", "Warning")
            event.setdefault("count", 1)
            event.setdefault("firstTimestamp", _now(-600))
            event.setdefault("lastTimestamp", _now(-(len(doc.get("events") or []) - i) * 10))
            event.setdefault("source", {"component": "kubelet", "host": NODE})
            cluster.create(event)

    def caller(self) -> Caller:
        project = (self.doc.get("application") or {}).get("project", "default")
        return Caller(username="eval", app_namespace=self.ns, app_name="app", project=project)

    def selected(self) -> ResourceRef | None:
        select = self.doc.get("select")
        if not select:
            return None
        return ResourceRef(
            group=select.get("group", ""),
            version=select.get("version", "v1"),
            kind=select["kind"],
            name=select["name"],
            namespace=select.get("namespace", self.ns),
        )

    def attachments(self) -> list[Attachment]:
        out: list[Attachment] = []
        for raw in self.doc.get("attachments") or []:
            item = copy.deepcopy(raw)
            if "resource" in item:
                res = item["resource"]
                res.setdefault("group", "")
                res.setdefault("version", "v1")
                res.setdefault("namespace", self.ns)
            if item["type"] == "managed_resource":
                res = item["resource"]
                if item.get("live") == "cluster":
                    api = f"{res['group']}/{res['version']}" if res["group"] else res["version"]
                    item["live"] = self.cluster.get(api, res["kind"], res["name"], res.get("namespace"))
                for side in ("target", "live"):
                    if isinstance(item.get(side), dict):
                        item[side] = json.dumps(item[side])
            out.append(TypeAdapter(Attachment).validate_python(item))
        return out

    async def score(self, engine: KubeContext) -> Result:
        question = str(self.doc.get("question") or DEFAULT_QUESTION)
        bundle = await engine.build(self.caller(), self.selected(), question, self.attachments())
        expect = self.doc.get("expect") or {}
        haystack = bundle.text.lower()
        wanted = [str(e) for e in expect.get("evidence") or []] + [
            f"[{f}]" for f in expect.get("findings") or []
        ]
        missing = [w for w in wanted if w.lower() not in haystack]
        shown = bundle.text + json.dumps(bundle.event_data()) + "\n".join(bundle.notes)
        leaks = [c for c in expect.get("canaries") or [] if str(c) in shown]
        # A healthy scenario is a false-alarm check: any finding there is a failure reported on a
        # healthy app or resource.
        false_alarms = list(bundle.findings) if expect.get("healthy") else []
        return Result(
            scenario=self.scenario.name,
            evidence_total=len(wanted),
            evidence_found=len(wanted) - len(missing),
            missing=missing,
            leaks=leaks,
            tokens=bundle.tokens_total,
            budget=bundle.budget,
            findings=list(bundle.findings),
            gather_ms=round(bundle.gather_ms or 0.0, 1),
            false_alarms=false_alarms,
            notes=list(bundle.notes),
            text=bundle.text,
        )


def engine_settings(kubeconfig: Path, budget: int = 12_000) -> Settings:
    return Settings(
        kubernetes={"kubeconfig": kubeconfig, "argocd_namespace": ARGOCD_NAMESPACE},
        context={"token_budget": budget, "pod_logs": "backend"},  # the scenarios read logs as the backend
        auth={"insecure_allow_no_secret": True},
    )


def prepare_cluster(cluster: KubeCluster, kubelet: FakeKubelet) -> None:
    kubelet.register_node(cluster, NODE)


async def run_scenarios(
    cluster: KubeCluster,
    kubelet: FakeKubelet,
    scenarios: Sequence[Scenario] | None = None,
    *,
    kubeconfig: Path | None = None,
) -> Report:
    """Set up and score each scenario; the engine reads with ``kubeconfig`` (default: cluster admin)."""
    prepare_cluster(cluster, kubelet)
    config = kubeconfig or cluster.admin_kubeconfig
    engines: dict[int, KubeContext] = {}  # one per token budget (a scenario may set ``budget``)
    results = []
    try:
        for scenario in scenarios if scenarios is not None else load_scenarios():
            budget = int(scenario.doc.get("budget", DEFAULT_BUDGET))
            if budget not in engines:
                # GETs, not the control-plane cache: setup() writes each scenario's AppProject and
                # Application on this very loop's thread, so a cache would score the build against
                # the watch events it has not yet had a turn to apply (the answer is the same dicts).
                engines[budget] = KubeContext.from_settings(
                    engine_settings(config, budget), control_cache=False
                )
            run = ScenarioRun(cluster, kubelet, scenario)
            run.setup()
            results.append(await run.score(engines[budget]))
    finally:
        for engine in engines.values():
            await engine.aclose()
    return Report(results)


def write_report(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import asyncio
    import tempfile

    from tests.support.kube import running_cluster

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path("test-artifacts/evals.json"))
    parser.add_argument("-k", dest="only", help="run scenarios whose name contains this")
    parser.add_argument("--show", action="store_true", help="print each rendered context")
    args = parser.parse_args(argv)
    scenarios = [s for s in load_scenarios() if not args.only or args.only in s.name]
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="evals-") as tmp,
        running_cluster(Path(tmp), controllers=False) as cluster,
    ):
        kubelet = FakeKubelet().start()
        try:
            report = asyncio.run(run_scenarios(cluster, kubelet, scenarios))
        finally:
            kubelet.stop()
    if args.show:
        for result in report.results:
            print(f"===== {result.scenario} =====\n{result.text}")
    print(report.table())
    write_report(report, args.json)
    print(f"wrote {args.json} ({time.monotonic() - started:.0f}s)")
    return 0 if report.passed else 1
