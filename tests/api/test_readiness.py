"""Liveness and readiness (``assistant_backend/readiness.py``): /healthz never depends on Llama
Stack; /readyz says why it is not ready, reuses a probe within ``server.readiness_cache_s``, and a
configured model Llama Stack does not offer keeps the service not ready."""

from __future__ import annotations

from assistant_backend.errors import ApiError, ErrorCode
from tests.support.fakes import FakeContext, FakeProvider
from tests.support.inprocess import running_api

DOWN = ApiError(ErrorCode.LLAMA_STACK_UNAVAILABLE, "Llama Stack at http://localhost:8321 is not reachable")


def test_ready_names_the_provider_and_the_version() -> None:
    with running_api() as api:
        response = api.client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"status": "ready", "provider": "responses", "llama_stack_version": "0.7.3"}


def test_not_ready_says_why_and_healthz_stays_up() -> None:
    with running_api(FakeProvider(down=DOWN)) as api:
        response = api.client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {"error": {"code": "not_ready", "message": DOWN.message}}
        assert api.client.get("/healthz").json() == {"status": "ok"}
        metrics = api.client.get("/metrics").text
        assert "assistant_ready 0.0" in metrics


def test_ready_again_once_llama_stack_answers() -> None:
    with running_api(FakeProvider(down=DOWN)) as api:
        assert api.client.get("/readyz").status_code == 503
        api.provider.down = None
        assert api.client.get("/readyz").status_code == 200


def test_a_configured_model_llama_stack_does_not_offer_is_not_ready() -> None:
    with running_api(llama_stack={"model": "openai/gone"}) as api:
        response = api.client.get("/readyz")
        assert response.status_code == 503
        message = response.json()["error"]["message"]
        assert "openai/gone" in message and "openai/scripted-model" in message


def test_a_server_listing_no_model_is_not_ready() -> None:
    with running_api(FakeProvider(models=[])) as api:
        response = api.client.get("/readyz")
        assert response.status_code == 503 and "no LLM" in response.json()["error"]["message"]


def test_probes_are_reused_within_the_cache_window() -> None:
    with running_api(server={"readiness_cache_s": 10}) as api:
        at_start = api.provider.probes  # the lifespan probes once at start
        for _ in range(5):
            assert api.client.get("/readyz").status_code == 200
        assert api.provider.probes == at_start
    with running_api(server={"readiness_cache_s": 0}) as api:
        at_start = api.provider.probes
        for _ in range(3):
            api.client.get("/readyz")
        assert api.provider.probes == at_start + 3


def test_the_service_starts_even_when_llama_stack_is_down() -> None:
    with running_api(FakeProvider(down=DOWN)) as api:
        assert api.client.get("/healthz").status_code == 200
        response, _ = api.chat()
        assert response.status_code == 503 and response.json()["error"]["code"] == "llama_stack_unavailable"


class CachingContext(FakeContext):
    """A context source with a control-plane cache, as the Kubernetes engine reports it."""

    def __init__(self, serving: dict[str, bool]) -> None:
        super().__init__()
        self.serving = serving

    def cache_serving(self) -> dict[str, bool]:
        return dict(self.serving)


def test_metrics_say_which_kinds_the_control_plane_cache_serves() -> None:
    context = CachingContext({"Application": True, "AppProject": True, "ConfigMap": False})
    with running_api(context=context) as api:
        metrics = api.client.get("/metrics").text
        assert 'assistant_control_cache_serving{kind="Application"} 1.0' in metrics
        assert 'assistant_control_cache_serving{kind="ConfigMap"} 0.0' in metrics
        context.serving["Application"] = False  # its watch broke: the next scrape says so
        assert 'assistant_control_cache_serving{kind="Application"} 0.0' in api.client.get("/metrics").text


def test_metrics_without_a_cache_have_no_cache_series() -> None:
    with running_api() as api:
        assert 'assistant_control_cache_serving{' not in api.client.get("/metrics").text
