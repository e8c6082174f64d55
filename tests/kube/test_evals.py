"""The eval set (evals/scenarios) against a real apiserver: recall >= 95 % and no canary leaks."""

from __future__ import annotations

import pytest

from evals.runner import RECALL_THRESHOLD, load_scenarios, run_scenarios, write_report
from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet

pytestmark = pytest.mark.kube


async def test_eval_set(static_kube_cluster: KubeCluster, fake_kubelet: FakeKubelet, artifacts_dir) -> None:  # type: ignore[no-untyped-def]
    scenarios = load_scenarios()
    assert len(scenarios) >= 25
    report = await run_scenarios(static_kube_cluster, fake_kubelet, scenarios)
    print(report.table())
    write_report(report, artifacts_dir / "evals.json")
    assert report.leaks == 0, report.table()
    assert report.recall >= RECALL_THRESHOLD, report.table()
