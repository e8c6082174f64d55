"""Attachments of ``POST /v1/chat`` (what the panel read from Argo CD's API): their schema, their own
size limit on top of the body's, and the scope rule (each names something of the Application, else
403 ``resource_not_in_application``), checked by the engine's own rules (``context/attachments.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from assistant_backend.wire import MAX_ATTACHMENTS, MAX_LOG_CHARS
from tests.support.fakes import FakeContext
from tests.support.inprocess import Api, running_api

LIMITS = {"max_body_bytes": 4096, "max_attachments_bytes": 64 * 1024, "requests_per_minute": 0}
DEPLOYMENT = {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "guestbook", "name": "web"}
POD = {"group": "", "version": "v1", "kind": "Pod", "namespace": "guestbook", "name": "web-7d9c-x2"}
APP: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Application",
    "metadata": {"name": "guestbook", "namespace": "argocd"},
    "spec": {"project": "default", "destination": {"server": "https://kubernetes.default.svc", "namespace": "guestbook"}},
    "status": {
        "sync": {"status": "OutOfSync", "revision": "4f2a9c1"},
        "history": [{"revision": "0b1c2d3", "id": 1}],
        "resources": [{**DEPLOYMENT, "status": "OutOfSync", "health": {"status": "Healthy"}}],
    },
}


def state(replicas: int, **meta: str) -> str:
    return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "namespace": "guestbook", **meta}, "spec": {"replicas": replicas}})


def managed(**changes: Any) -> dict[str, Any]:
    return {"type": "managed_resource", "resource": DEPLOYMENT, "target": state(5), "live": state(3), **changes}


def revision(**changes: Any) -> dict[str, Any]:
    return {"type": "revision", "revision": "4f2a9c1", "author": "Jane <jane@example.com>",
            "date": "2025-05-01T10:00:00Z", "message": "Scale web to 5", "tags": ["v1.2.0"], **changes}


def logs(**changes: Any) -> dict[str, Any]:
    return {"type": "logs", "resource": POD, "container": "web", "previous": True, "text": "boom\n", **changes}


@pytest.fixture
def api() -> Iterator[Api]:
    with running_api(context=FakeContext(app=APP), limits=LIMITS) as running:
        yield running


def test_attachments_reach_the_context_source_typed(api: Api) -> None:
    response, events = api.chat(attachments=[managed(), revision(), logs()])
    assert response.status_code == 200, response.text
    assert events[-1].name == "end"
    kinds = [type(a).__name__ for a in api.context.asked[-1].attachments]
    assert kinds == ["ManagedResourceAttachment", "RevisionAttachment", "LogsAttachment"]
    assert api.context.asked[-1].attachments[1].message == "Scale web to 5"  # type: ignore[union-attr]


def test_no_attachments_is_the_same_as_an_empty_list(api: Api) -> None:
    api.chat()
    api.chat(attachments=[])
    assert api.context.asked[-1].attachments == api.context.asked[-2].attachments == ()


BAD_SHAPES = {
    "unknown type": {"type": "secret", "resource": DEPLOYMENT},
    "no type": {"resource": DEPLOYMENT, "target": "{}"},
    "extra field": managed(cluster="https://evil.example.com"),
    "bad resource name": managed(resource={**DEPLOYMENT, "name": "../secrets"}),
    "target not a string": managed(target={"kind": "Deployment"}),
    "state over its limit": managed(target="x" * (256 * 1024 + 1)),
    "revision with a space": revision(revision="main; rm -rf"),
    "revision empty": revision(revision=""),
    "too many tags": revision(tags=[f"t{i}" for i in range(51)]),
    "commit message too long": revision(message="m" * (16 * 1024 + 1)),
    "log text over its limit": logs(text="l" * (MAX_LOG_CHARS + 1)),
    "container name with a slash": logs(container="web/../x"),
    "previous not a boolean": logs(previous="yes"),
    "source index a boolean": revision(source_index=False),  # found by schemathesis: JSON false is not 0
    "source index a string": revision(source_index="1"),
    "source index a fraction": revision(source_index=1.5),
}


@pytest.mark.parametrize("attachment", BAD_SHAPES.values(), ids=list(BAD_SHAPES))
def test_bad_shapes_are_422(attachment: Any) -> None:
    # The big ones need room: this test raises the attachments' limit so only the shape can refuse.
    with running_api(context=FakeContext(app=APP), limits={**LIMITS, "max_attachments_bytes": 2 * 1024 * 1024}) as api:
        response, _ = api.chat(attachments=[attachment])
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_request"
        assert response.json()["error"]["message"].startswith("attachments")
        assert api.context.asked == [] and api.provider.opened == []


def test_attachments_must_be_a_list(api: Api) -> None:
    response, _ = api.chat(attachments=revision())
    assert response.status_code == 422 and response.json()["error"]["message"].startswith("attachments")


def test_more_than_the_maximum_number_is_422(api: Api) -> None:
    response, _ = api.chat(attachments=[revision()] * (MAX_ATTACHMENTS + 1))
    assert response.status_code == 422 and "attachments" in response.json()["error"]["message"]


STATES_THAT_LIE = {
    "not JSON": managed(target="{not json"),
    "a JSON list": managed(live="[1, 2]"),
    "another object's state": managed(target=json.dumps({"apiVersion": "v1", "kind": "Secret",
                                                         "metadata": {"name": "web", "namespace": "guestbook"}})),
    "logs of a Deployment": logs(resource=DEPLOYMENT),
}


@pytest.mark.parametrize("attachment", STATES_THAT_LIE.values(), ids=list(STATES_THAT_LIE))
def test_states_must_describe_the_named_resource(api: Api, attachment: dict[str, Any]) -> None:
    response, _ = api.chat(attachments=[attachment])
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith("attachments.0: ")
    assert api.provider.opened == []


OUTSIDE = {
    "a resource the Application does not list": managed(
        resource={**DEPLOYMENT, "name": "payments"},
        target=state(1).replace('"web"', '"payments"'), live=None),
    "the same name in another namespace": managed(
        resource={**DEPLOYMENT, "namespace": "team-b"}, target=None, live=None),
    "a revision the Application never synced": revision(revision="deadbeef"),
}


@pytest.mark.parametrize("attachment", OUTSIDE.values(), ids=list(OUTSIDE))
def test_an_attachment_outside_the_application_is_403(api: Api, attachment: dict[str, Any]) -> None:
    response, _ = api.chat(attachments=[managed(), attachment])
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "resource_not_in_application"
    assert api.provider.opened == [], "a refused turn reached the model"


def test_a_revision_from_the_history_is_accepted(api: Api) -> None:
    response, _ = api.chat(attachments=[revision(revision="0b1c2d3")])
    assert response.status_code == 200, response.text


def test_attachments_have_their_own_limit_on_top_of_the_body(api: Api) -> None:
    # Far more than max_body_bytes (4 KiB) of attachments is fine within max_attachments_bytes...
    big = logs(text="line of log\n" * 3000)  # ~36 KB
    response, _ = api.chat(attachments=[big])
    assert response.status_code == 200, response.text
    # ...more than max_attachments_bytes is 413, whether the body as a whole is over both limits
    response, _ = api.chat(attachments=[big, big])
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
    # or only the attachments are,
    response, _ = api.chat(attachments=[logs(text="line of log\n" * 5100)])  # ~66 KB as JSON
    assert response.json()["error"] == {"code": "body_too_large",
                                        "message": "the attachments are larger than 65536 bytes"}
    # and attachments do not lend their room to the rest of the body.
    response, _ = api.chat("q" * 5000, attachments=[revision()])
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "the body is larger than 4096 bytes"
    assert len(api.provider.opened) == 1


def test_a_declared_length_over_both_limits_is_413_before_the_body_is_read(api: Api) -> None:
    headers = {**api.headers, "Content-Type": "application/json", "Content-Length": str(4096 + 64 * 1024 + 1)}
    response = api.client.post("/v1/chat", content=b"{}" + b" " * (4096 + 64 * 1024 - 1), headers=headers)
    assert response.status_code == 413


def test_the_published_schema_states_the_source_index_bounds(api: Api) -> None:
    # Found by schemathesis: a before-validator once made pydantic publish "ge"/"le" instead of
    # JSON Schema's "minimum"/"maximum", so a schema-valid-looking 64094 was refused.
    schema = api.client.get("/v1/openapi.json", headers=api.headers).json()
    revision = schema["components"]["schemas"]["RevisionAttachment"]["properties"]["source_index"]
    integer = next(s for s in revision["anyOf"] if s.get("type") == "integer")
    assert (integer["minimum"], integer["maximum"]) == (0, 99) and "ge" not in integer
