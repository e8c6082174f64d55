"""Every redaction pattern, and near-misses that must stay readable."""

from __future__ import annotations

import pytest

from assistant_backend.context.redact import LAST_APPLIED, MASK, Redactor, redact_text, secret_looking_name

JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLXBhcnQ"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abcdef0123456789abcdef", "abcdef0123456789abcdef"),
        (f"token={JWT}", JWT),
        (f"got jwt {JWT} from idp", JWT),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEsecretbody\n-----END RSA PRIVATE KEY-----", "MIIEsecretbody"),
        ("-----BEGIN PRIVATE KEY-----\nMIIEtruncatedbody", "MIIEtruncatedbody"),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----",
            "b3BlbnNzaC1rZXk",
        ),
        ("postgres://app:s3cretPass@db:5432/app", "s3cretPass"),
        ("https://deployer:hunter2@charts.example.com/x.tgz", "hunter2"),
        ("aws key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
        ("gh token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        ("glpat-abcdefghij0123456789xyz", "glpat-abcdefghij0123456789xyz"),
        ("slack xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
        ("key AIzaSyA1234567890abcdefghijklmnopqrstuv", "AIzaSyA1234567890abcdefghijklmnopqrstuv"),
        ("stripe sk_live_abcdefghijklmnop1234", "sk_live_abcdefghijklmnop1234"),
        ("openai sk-proj-abcdefghijklmnopqrstuvwx", "sk-proj-abcdefghijklmnopqrstuvwx"),
        ("password=hunter2", "hunter2"),
        ("DB_PASSWORD: 'pa55word!'", "pa55word!"),
        ('{"client_secret": "abc123xyz"}', "abc123xyz"),
        ("spring.datasource.password=topsecret", "topsecret"),
        ("api_key = 0f0f0f0f", "0f0f0f0f"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("args: [--db-password=hunter22, --port=5432]", "hunter22"),
        ('{"token":"abcd1234efgh"}', "abcd1234efgh"),
        (
            "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
        ),
    ],
)
def test_secret_patterns_are_masked_and_counted(text: str, secret: str) -> None:
    result, count = redact_text(text)
    assert secret not in result
    assert MASK in result
    assert count >= 1


@pytest.mark.parametrize(
    "text",
    [
        'FATAL: password authentication failed for user "shop"',
        "the bearer of bad news",
        "Bearer authentication failed",
        "GET http://example.com:8080/path 200",
        "mail alice@example.com about it",
        "-----BEGIN CERTIFICATE-----\nMIIBpublic\n-----END CERTIFICATE-----",
        "token refresh scheduled in 30s",
        "password: ********",
        "secret: [REDACTED]",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
        "image registry.example.com/shop/web:1.8.3 pulled",
        "keyspace=orders replication=3",
        "sha256:9b5ad71b2ce5302211f9c61530b329a4922fc6a4",
    ],
)
def test_near_misses_are_left_alone(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(
    "name",
    [
        "DB_PASSWORD",
        "apiKey",
        "AWS_SECRET_ACCESS_KEY",
        "GITHUB_TOKEN",
        "client-secret",
        "SSH_PRIVATE_KEY",
        "SESSION_COOKIE",
        "STRIPE_APIKEY",
        "MyAuthToken",
        "OAUTH_CREDENTIALS",
    ],
)
def test_secret_looking_env_names(name: str) -> None:
    assert secret_looking_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "KEYCLOAK_URL",
        "TOKENIZER_MODEL",
        "PASSPORT_ENABLED",
        "SECRETARY_EMAIL",
        "MONKEY_COUNT",
        "LOG_LEVEL",
        "KEYSPACE",
        "AUTHOR_NAME",
        "SESSIONS_MAX",
    ],
)
def test_ordinary_env_names(name: str) -> None:
    assert not secret_looking_name(name)


def test_objects_lose_managed_fields_last_applied_and_secret_env_values() -> None:
    red = Redactor()
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"password":"x"}',
                "team": "shop",
            },
        },
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "env": [
                                {"name": "DB_PASSWORD", "value": "hunter2"},
                                {"name": "KEYCLOAK_URL", "value": "https://sso.example.com"},
                                {
                                    "name": "API_TOKEN",
                                    "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}},
                                },
                            ],
                        }
                    ]
                }
            }
        },
    }
    clean = red.obj(obj)
    assert "managedFields" not in clean["metadata"]
    # The copy of the spec is masked, not dropped: the reader still sees it exists.
    assert clean["metadata"]["annotations"] == {LAST_APPLIED: MASK, "team": "shop"}
    env = clean["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0]["value"] == MASK and env[1]["value"] == "https://sso.example.com"
    assert env[2]["valueFrom"] == {"secretKeyRef": {"name": "s", "key": "t"}}
    assert red.count == 2  # last-applied + DB_PASSWORD
    assert obj["metadata"]["managedFields"], "the input is not modified"


def test_a_secret_keeps_only_metadata_and_key_names() -> None:
    red = Redactor()
    clean = red.obj(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": "db", "namespace": "shop"},
            "data": {"password": "aHVudGVyMg==", "user": "c2hvcA=="},
            "stringData": {"extra": "x"},
        }
    )
    assert clean["keys (values never shown)"] == ["extra", "password", "user"]
    assert "aHVudGVyMg==" not in repr(clean) and "data" not in clean
    assert red.count == 3
