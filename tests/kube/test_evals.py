"""The eval set (evals/scenarios) against a real apiserver.

The gate is per scenario and pooled: every scenario finds >= 75 % of its evidence, the pool >= 95 %,
no canary leaks anywhere, and no finding fires in a healthy scenario (false-alarm check). A failure
lists the scenarios below the gate with what they missed, so it says which relation is missing.
"""

from __future__ import annotations

import pytest

from evals.runner import (
    RECALL_THRESHOLD,
    SCENARIO_THRESHOLD,
    load_scenarios,
    run_scenarios,
    write_report,
)
from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet

pytestmark = pytest.mark.kube


def test_scenarios_are_well_formed() -> None:
    """Each scenario names its evidence; each written from an incident report (after 31) cites its
    source and does not give its evidence away in its own name (the namespace and the Application's
    source path are derived from it)."""
    scenarios = load_scenarios()
    assert len(scenarios) >= 55
    assert len({s.name for s in scenarios}) == len(scenarios)
    healthy = [s for s in scenarios if (s.doc.get("expect") or {}).get("healthy")]
    assert len(healthy) >= 3, "the false-alarm check needs healthy apps and healthy resources"
    for scenario in scenarios:
        expect = scenario.doc.get("expect") or {}
        assert expect.get("evidence"), scenario.name
        if int(scenario.path.name.split("-", 1)[0]) > 31:  # the set written from incident reports
            assert "https://" in scenario.description, f"{scenario.name} cites no source"
            for evidence in expect["evidence"]:
                assert str(evidence).lower() not in scenario.name.lower(), (scenario.name, evidence)


async def test_eval_set(static_kube_cluster: KubeCluster, fake_kubelet: FakeKubelet, artifacts_dir) -> None:  # type: ignore[no-untyped-def]
    scenarios = load_scenarios()
    report = await run_scenarios(static_kube_cluster, fake_kubelet, scenarios)
    print(report.table())
    write_report(report, artifacts_dir / "evals.json")
    assert report.leaks == 0, report.table()
    assert report.false_alarms == 0, report.table()
    failing = [f"{r.scenario} {r.recall:.0%} missing {r.missing}" for r in report.failing]
    assert not failing, f"below the per-scenario gate ({SCENARIO_THRESHOLD:.0%}):\n" + "\n".join(failing)
    assert report.recall >= RECALL_THRESHOLD, report.table()
