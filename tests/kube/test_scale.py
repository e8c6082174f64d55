"""The large-Application builder behind the gather-time benchmark keeps working (no timing asserts)."""

from __future__ import annotations

import pytest

from assistant_backend.context.engine import KubeContext
from evals.runner import engine_settings
from evals.scale import create_large_application
from tests.support.kube import KubeCluster
from tests.support.kubelet import FakeKubelet

pytestmark = pytest.mark.kube


async def test_three_hundred_resource_application_is_gathered(
    static_kube_cluster: KubeCluster, fake_kubelet: FakeKubelet
) -> None:
    app = create_large_application(static_kube_cluster, fake_kubelet, resources=300, unhealthy=10)
    assert app.resources == 300
    engine = KubeContext.from_settings(engine_settings(static_kube_cluster.admin_kubeconfig))
    try:
        bundle = await engine.build(app.caller, None, "why Degraded?")
        assert "(10 of 300)" in bundle.text and "[crash_loop]" in bundle.text
        assert any("first 8 of 10 problem resources" in n for n in bundle.notes)
        assert bundle.tokens_total <= bundle.budget
        pod = await engine.build(app.caller, app.unhealthy_pod, "why is this crashing?")
        assert "[crash_loop]" in pod.text and pod.gather_ms is not None  # timings: bench/, python -m evals.scale
    finally:
        await engine.aclose()
