"""The whole configuration surface: one validated model, YAML file + ``ASSISTANT_*`` environment.

Precedence, highest first: environment (``ASSISTANT_LLAMA_STACK__URL``), then the YAML file given by
``--config`` or ``ASSISTANT_CONFIG``, then defaults. Unknown keys are errors, so a typo fails at start
instead of silently doing nothing. Secrets may come from files (``*_file``) so Kubernetes Secrets can
be mounted rather than put in env.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

CONFIG_ENV = "ASSISTANT_CONFIG"


class ProviderName(StrEnum):
    RESPONSES = "responses"
    AGENTS = "agents"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve_secret(inline: SecretStr | None, path: Path | None) -> str | None:
    """A secret from its file (mounted Kubernetes Secret) if given, else the inline value."""
    if path is not None:
        from_file = path.read_text().strip()
        if from_file:
            return from_file
    return inline.get_secret_value() if inline else None


class LlamaStackConfig(Section):
    url: str = Field("http://localhost:8321", description="Base URL of the Llama Stack server")
    api_key: SecretStr | None = Field(None, description="Bearer token for Llama Stack, if it needs one")
    api_key_file: Path | None = Field(None, description="File holding api_key (wins over api_key)")
    model: str | None = Field(None, description="Default model id; null = the first LLM the server lists")
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    max_tokens: int = Field(1024, ge=1, le=200_000)
    timeout_s: float = Field(120.0, gt=0, description="Longest wait for the model to start or continue")
    connect_timeout_s: float = Field(5.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def resolved_api_key(self) -> str | None:
        return _resolve_secret(self.api_key, self.api_key_file)


class AuthConfig(Section):
    header: str = Field("Authorization", description="Header Argo CD's proxy config sets with the secret")
    secret: SecretStr | None = Field(None, description="Expected header value, compared exactly")
    secret_file: Path | None = Field(None, description="File holding the secret (wins over secret)")
    insecure_allow_no_secret: bool = Field(False, description="Accept requests without the secret (dev)")

    @field_validator("header")
    @classmethod
    def _token(cls, value: str) -> str:
        if not value or any(c in value for c in " :\t\r\n"):
            raise ValueError("must be an HTTP header name")
        return value

    def resolved_secret(self) -> str | None:
        return _resolve_secret(self.secret, self.secret_file)


class KubernetesConfig(Section):
    kubeconfig: Path | None = Field(None, description="null = in-cluster service account")
    context: str | None = Field(None, description="kubeconfig context to use")
    argocd_namespace: str = Field("argocd", description="Namespace of the Argo CD control plane")
    enabled: bool = Field(True, description="Gather live Kubernetes context at all")


class ContextConfig(Section):
    token_budget: int = Field(12_000, ge=500, le=500_000)
    log_lines: int = Field(200, ge=0, le=10_000)
    gather_deadline_s: float = Field(8.0, gt=0, description="Overall deadline for gathering context")
    call_timeout_s: float = Field(3.0, gt=0, description="Timeout of one Kubernetes API call")
    pod_logs: Literal["argocd", "backend", "off"] = Field(
        "argocd",
        description="argocd: only the logs the panel read from Argo CD under the user's `logs, get`; "
        "backend: the backend reads pod logs itself (anyone with `extensions, invoke` on an app reads "
        "its logs); off: no logs",
    )


class LimitsConfig(Section):
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="The body without its attachments")
    max_attachments_bytes: int = Field(
        1024 * 1024, ge=0, description="What the panel attaches from Argo CD's API (diffs, logs), on top"
    )
    max_question_chars: int = Field(16_000, ge=1)
    requests_per_minute: int = Field(30, ge=0, description="Per user; 0 = unlimited")
    max_streams_per_user: int = Field(4, ge=0, description="Concurrent answers per user; 0 = unlimited")
    body_read_timeout_s: float = Field(15.0, gt=0, description="A body trickling in longer is cut (408)")


class ConversationsConfig(Section):
    max_age_days: float = Field(
        30.0, gt=0, le=3650, description="A conversation idle longer than this cannot be continued or read"
    )


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    log_format: Literal["json", "text"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    heartbeat_s: float = Field(15.0, gt=0, description="SSE keep-alive comment interval")
    readiness_cache_s: float = Field(5.0, ge=0, le=10, description="How long a readiness probe is reused")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    provider: ProviderName = ProviderName.RESPONSES
    llama_stack: LlamaStackConfig = LlamaStackConfig()
    instructions_file: Path | None = Field(None, description="Replaces the built-in instructions")
    auth: AuthConfig = AuthConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()
    context: ContextConfig = ContextConfig()
    limits: LimitsConfig = LimitsConfig()
    conversations: ConversationsConfig = ConversationsConfig()
    server: ServerConfig = ServerConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = os.environ.get(CONFIG_ENV)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    @model_validator(mode="after")
    def _secret_required(self) -> Settings:
        auth = self.auth
        if auth.secret is None and auth.secret_file is None and not auth.insecure_allow_no_secret:
            raise ValueError(
                "auth.secret (or auth.secret_file) is required; set auth.insecure_allow_no_secret: true "
                "to run without one (development only)"
            )
        return self

    @cached_property
    def instructions(self) -> str:
        if self.instructions_file is not None:
            return self.instructions_file.read_text()
        return resources.files("assistant_backend").joinpath("instructions.md").read_text()


class ConfigError(Exception):
    """Start-up configuration problem, already phrased as one line naming the field."""


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"config error: {where + ': ' if where else ''}{message}{more}"


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Load and validate; raise :class:`ConfigError` with one line naming the bad field."""
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config error: --config: no such file {path}")
        os.environ[CONFIG_ENV] = str(path)
    env_file = os.environ.get(CONFIG_ENV)
    if env_file and not Path(env_file).is_file():
        raise ConfigError(f"config error: {CONFIG_ENV}: no such file {env_file}")
    try:
        settings = Settings(**overrides)
        _ = settings.instructions  # an unreadable instructions_file is a start-up error too
        settings.auth.resolved_secret()
        settings.llama_stack.resolved_api_key()
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except OSError as exc:
        raise ConfigError(f"config error: cannot read {exc.filename}: {exc.strerror}") from None
    except ValueError as exc:  # malformed YAML surfaces as a ValueError subclass
        raise ConfigError(f"config error: {str(exc).splitlines()[0]}") from None
    return settings
