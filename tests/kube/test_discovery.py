"""Kinds the v1.20 apiserver serves only in older versions, unserved kinds, refs without a namespace."""

from __future__ import annotations

import pytest

from assistant_backend.context.base import ResourceRef
from assistant_backend.context.engine import KubeContext
from evals.runner import ScenarioRun, engine_settings, load_scenarios, prepare_cluster
from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet

pytestmark = pytest.mark.kube


def _run(cluster: KubeCluster, kubelet: FakeKubelet, name: str) -> ScenarioRun:
    prepare_cluster(cluster, kubelet)
    run = ScenarioRun(cluster, kubelet, next(s for s in load_scenarios() if s.name == name))
    run.setup()
    return run


async def test_served_version_is_found_and_unserved_kinds_are_named(
    static_kube_cluster: KubeCluster, fake_kubelet: FakeKubelet
) -> None:
    engine = KubeContext.from_settings(engine_settings(static_kube_cluster.admin_kubeconfig))
    try:
        cron = _run(static_kube_cluster, fake_kubelet, "cronjob-failing")
        # Argo CD on a newer control plane may say batch/v1; this apiserver serves CronJob in v1beta1 only.
        ref = ResourceRef("v1", "CronJob", "nightly-report", "batch", cron.ns)
        bundle = await engine.build(cron.caller(), ref, "q")
        assert "[job_failed]" in bundle.text and bundle.notes == ()

        # Without a namespace, a namespaced ref takes the one Argo CD lists.
        crash = _run(static_kube_cluster, fake_kubelet, "crashloop-db-connection")
        bundle = await engine.build(crash.caller(), ResourceRef("v1", "Deployment", "api", "apps"), "q")
        assert "[crash_loop]" in bundle.text

        crd = _run(static_kube_cluster, fake_kubelet, "missing-crd")
        ref = ResourceRef("v1", "ServiceMonitor", "api-metrics", "monitoring.coreos.com", crd.ns)
        bundle = await engine.build(crd.caller(), ref, "q")
        assert any("does not serve ServiceMonitor" in n for n in bundle.notes)
    finally:
        await engine.aclose()
